"""Command line of :mod:`repair.notebook`: execute chapters in place (``make notebooks``).

``python -m repair.notebook_cli execute notebooks/01_dataset_damage.ipynb [--profile book]``
"""

from __future__ import annotations

import argparse
import os

from repair.notebook import execute

__all__ = ["main"]


def main(argv=None) -> int:
    """Parse ``execute NOTEBOOK... [--profile NAME]`` and run each notebook in place."""
    parser = argparse.ArgumentParser(prog="python -m repair.notebook_cli")
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
