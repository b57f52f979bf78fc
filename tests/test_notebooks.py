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


def run_with_papermill(name: str, out_dir, profile: str = "tiny", cwd=None, **parameters) -> dict:
    """Execute notebooks/<name>.ipynb with papermill at ``profile`` with ``parameters``, into
    ``out_dir``, in ``cwd`` (default: notebooks/); return its glued values."""
    papermill = pytest.importorskip("papermill")
    out = Path(out_dir) / f"{name}.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(out),
                               parameters={"PROFILE": profile, **parameters},
                               cwd=str(cwd or ROOT / "notebooks"), progress_bar=False,
                               kernel_name="python3", execution_timeout=900)
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    return glued(nb)


def unquote(value: str) -> str:
    """A glued string as the prose shows it (glue records its repr)."""
    return value.strip("'\"")


def test_papermill_runs_chapter_01_with_overrides(tmp_path):
    values = run_with_papermill("01_dataset_damage", tmp_path, blur=0.0, splotches=0.0, cracks=0.0,
                                contrast=0.0)
    assert float(values["psnr_damaged"]) > 0


def test_papermill_runs_chapter_02_with_overrides(tmp_path):
    values = run_with_papermill("02_dcgan_architecture", tmp_path, PAPER_WIDTH=16)
    assert float(unquote(values["paper_gflop"])) < 146 / 2  # the paper's width 32: FLOPs ~ width^2


def test_papermill_runs_chapter_03_with_overrides(tmp_path):
    values = run_with_papermill("03_training_loop", tmp_path, RECIPES=["pix2pix"],
                                OUT=str(tmp_path / "runs"))
    assert "psnr_pix2pix" in values and "psnr_paper" not in values
    assert (tmp_path / "runs" / "pix2pix").is_dir()


def test_papermill_runs_chapter_04_with_overrides(tmp_path):
    values = run_with_papermill("04_evaluation", tmp_path, LIMIT=1, SEED=3)
    assert int(values["n_photos"]) == 1


def test_papermill_runs_chapter_05_with_overrides(tmp_path):
    values = run_with_papermill("05_stylegan_inversion", tmp_path, STEPS=[1, 0, 1], N_KNOWN=1)
    assert unquote(values["steps"]) == "1+0+1" and int(values["n_known"]) == 1


def test_papermill_runs_chapter_06_with_overrides(tmp_path):
    values = run_with_papermill("06_daguerreotype_study", tmp_path, MODELS=["l1-book"])
    assert unquote(values["lines_l1"]) != "-" and unquote(values["lines_pix2pix"]) == "-"
