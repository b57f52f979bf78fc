"""The chapters' code as a reader meets it: every code line fits the book's code box (about 80
characters at 1280 px; a longer line hides its end, often the shape comment), result tables come
from `repair.notebook.table` rather than Markdown assembled from strings, and the late chapters
build ideas in small cells (issue 14: median <= 5 lines, >= 80% of cells <= 10 lines)."""

from __future__ import annotations

import base64
import io
import re
import statistics
from pathlib import Path

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CHARS = 80
SMALL_CELL_CHAPTERS = ("04_", "05_", "06_")
# the book's text column at 1280 px; a wider figure is shrunk below 1:1 (tests/test_browser.py
# checks the freshly built book; this checks the committed outputs GitHub and Colab show)
COLUMN_PX = 688


def code_cells(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def long_lines(path: Path, limit: int = MAX_CHARS) -> list[str]:
    """``cell N: <line>`` for every code line longer than ``limit`` characters."""
    return [f"cell {i} ({len(line)} chars): {line[:60]}..."
            for i, src in code_cells(path) for line in src.splitlines() if len(line) > limit]


# a Markdown table row or rule written inside a string, or a Markdown object displayed
TABLE_STRINGS = re.compile(r"""["']\|\s*[-:]{3}|["']\|[^"'\n]*\|\s*["']|\bMarkdown\(""")


def table_strings(path: Path) -> list[str]:
    """Code cells that assemble a Markdown table (or any Markdown output) from strings."""
    return [f"cell {i}: {m.group(0)!r}" for i, src in code_cells(path)
            for m in [TABLE_STRINGS.search(src)] if m]


def wide_figures(path: Path, limit: int = COLUMN_PX) -> list[str]:
    """``cell N: W x H px`` for every committed PNG output wider than ``limit`` pixels."""
    found = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                w, h = Image.open(io.BytesIO(base64.b64decode(png))).size
                if w > limit:
                    found.append(f"cell {i}: {w} x {h} px")
    return found


def cell_sizes(path: Path) -> list[int]:
    """Non-blank lines per code cell (as ../shared/tools/style_stats.py counts them)."""
    return [sum(1 for line in src.splitlines() if line.strip()) for _, src in code_cells(path)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_fit_the_book(path):
    found = long_lines(path)
    assert not found, f"{path.name}: lines over {MAX_CHARS} characters:\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_figures_fit_the_book(path):
    found = wide_figures(path)
    assert not found, (f"{path.name}: committed figures wider than the book's {COLUMN_PX} px "
                       "column (re-execute it with `make notebooks`):\n" + "\n".join(found))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tables_come_from_the_table_helper(path):
    found = table_strings(path)
    assert not found, (f"{path.name}: build tables with repair.notebook.table, not strings:\n"
                       + "\n".join(found))


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.startswith(SMALL_CELL_CHAPTERS)],
                         ids=lambda p: p.stem)
def test_late_chapters_have_small_cells(path):
    sizes = cell_sizes(path)
    short = sum(n <= 10 for n in sizes) / len(sizes)
    assert statistics.median(sizes) <= 5 and short >= 0.8, (
        f"{path.name}: median code cell {statistics.median(sizes)} lines (<= 5 wanted), "
        f"{short:.0%} of cells <= 10 lines (>= 80% wanted)")


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path.write_text(nbformat.writes(nb))
    return path


def test_checks_catch_a_long_line_and_a_string_table(tmp_path):
    bad = write_notebook(tmp_path / "bad.ipynb", "x = 1\n" + "y = " + "1 + " * 30 + "1",
                         'rows = ["| a | b |", "|---|---|"]\nMarkdown("\\n".join(rows))')
    assert [f.split(" (")[0] for f in long_lines(bad)] == ["cell 0"]
    assert len(table_strings(bad)) == 1


def test_width_check_catches_a_wide_committed_figure(tmp_path):
    def png(width):
        buf = io.BytesIO()
        Image.new("L", (width, 10)).save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show()")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", {"image/png": png(w)})
                           for w in (688, 999)]
    path = tmp_path / "wide.ipynb"
    path.write_text(nbformat.writes(nb))
    assert wide_figures(path) == ["cell 0: 999 x 10 px"]
    good = write_notebook(tmp_path / "good.ipynb", "x = 1  # (B, 1, H, W)",
                          'table([[1, 2]], ["a", "b"])\nprint("a | b")')
    assert long_lines(good) == [] and table_strings(good) == []
