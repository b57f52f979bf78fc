"""The book builds with warnings as errors, every chapter in the table of contents is there, and
numbers quoted in the prose come from the notebooks (myst-nb glue)."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


@pytest.mark.book
def test_every_page_is_built(built_book):
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.is_file(), f"{name} missing from the built book"


@pytest.mark.book
def test_glued_numbers_appear_in_prose(built_book):
    html = (built_book / "notebooks" / "01_dataset_damage.html").read_text()
    match = re.search(r"damaged cameraman scores\s*(?:<[^>]+>\s*)*([0-9.]+)", html)
    assert match and 0 < float(match.group(1)) < 60


@pytest.mark.book
def test_no_cdn_widget_scripts(built_book):
    html = (built_book / "notebooks" / "01_dataset_damage.html").read_text()
    assert "embed-amd.js" not in html and "repair-slider" in html


def test_every_notebook_is_in_the_toc():
    notebooks = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks <= set(toc_files())


def raw_markdown_tables(html: str) -> list[str]:
    """Paragraphs of a built page that are a Markdown table printed as text (pipes and a
    ``|---|`` rule) instead of a rendered ``<table>``."""
    found = []
    for paragraph in re.findall(r"<p>(.*?)</p>", html, flags=re.S):
        text = re.sub(r"<[^>]+>", "", paragraph)
        if re.search(r"\|\s*:?[-\u2013\u2014]{1,}:?\s*\|", text) and text.count("|") >= 4:
            found.append(text[:120])
    return found


def test_raw_table_check_catches_an_unrendered_table():
    today = "<p>| method | PSNR (dB) |\n|—|–:|\n| damaged | 19.94 |</p><p>a | b</p>"
    assert len(raw_markdown_tables(today)) == 1
    assert raw_markdown_tables("<table><tr><td>1</td></tr></table><p>x | y</p>") == []


@pytest.mark.book
def test_result_tables_render_as_tables(built_book):
    for name in toc_files():
        html = (built_book / f"{name}.html").read_text()
        assert raw_markdown_tables(html) == [], f"{name}: Markdown table printed as text"
    chapter_04 = (built_book / "notebooks" / "04_evaluation.html").read_text()
    outputs = re.findall(r'<div class="cell_output.*?</div>\s*</div>', chapter_04, flags=re.S)
    assert sum("<table" in out for out in outputs) >= 5   # the result tables of chapter 04
