"""Executing the course notebooks in place (``make notebooks``) with tidy, small outputs.

``python -m repair.notebook execute notebooks/01_dataset_damage.ipynb [--profile book]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["execute", "scrub"]


def scrub(nb) -> None:
    """Drop execution timestamps, widget state and kernel noise so diffs show only content."""
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if o.get("output_type") != "display_data"
                            or "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]


def execute(path: str | os.PathLike, profile: str = "book", timeout: int = 1800) -> Path:
    """Run a notebook top to bottom at ``profile`` in its own folder and save it in place."""
    import nbformat
    from nbclient import NotebookClient

    from repair.images import atomic_write_bytes

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    previous = os.environ.get("REPAIR_PROFILE")
    os.environ["REPAIR_PROFILE"] = profile
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("REPAIR_PROFILE", None)
        else:
            os.environ["REPAIR_PROFILE"] = previous
    scrub(nb)
    atomic_write_bytes(path, (nbformat.writes(nb) + "\n").encode())
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repair.notebook")
    parser.add_argument("action", choices=["execute"])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--profile", default=os.environ.get("REPAIR_PROFILE", "book"))
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        print(f"executing {nb} at the {args.profile} profile", flush=True)
        execute(nb, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
