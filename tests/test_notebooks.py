"""Notebook anatomy (house style) and papermill runs with overrides."""

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def glued(nb) -> dict:
    """Values a notebook recorded with myst_nb.glue."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook")
            if record:
                values[record["name"]] = out["data"].get(record["mime_prefix"] + "text/plain")
    return values


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_anatomy(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert first.startswith(f"# {path.stem[:2]} · "), "title: '# NN · Title'"
    assert "colab.research.google.com" in first and "kaggle.com" in first
    assert any("## Running this notebook" in c.source for c in nb.cells if c.cell_type == "markdown")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "PROFILE" in params[0].source
    install = [c for c in nb.cells if "nbval-skip" in c.metadata.get("tags", [])]
    assert install and "skip-execution" in install[0].metadata["tags"]
    assert "git clone" in install[0].source      # the committed weights come with the clone
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## Summary", "## Exercises", "### References"):
        assert heading in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_small_and_scrubbed(path):
    assert path.stat().st_size < 5_000_000
    nb = json.loads(path.read_text())
    assert "widgets" not in nb["metadata"]
    assert all("execution" not in c.get("metadata", {}) for c in nb["cells"])


def test_papermill_runs_chapter_01_with_overrides(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "01_dataset_damage.ipynb"), str(out),
                               parameters={"PROFILE": "tiny", "blur": 0.0, "splotches": 0.0,
                                           "cracks": 0.0, "contrast": 0.0},
                               cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert float(glued(nb)["psnr_damaged"]) > 0
