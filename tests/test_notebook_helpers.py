"""repair.notebook.table (one table for Jupyter, the book and a terminal), repair.plots.panels
(pictures at exact pixel sizes) and the notebook command line."""

import re

import pytest
import torch

from repair import notebook_cli, plots
from repair.notebook import Table, table


def cells_of_html(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", html)]


def test_table_shows_the_same_numbers_as_html_markdown_and_text():
    t = table({"damaged": [19.944, 0.5123, 3], "ours": [25.1, 0.8, 1]},
              ["method", "PSNR (dB)", "SSIM", "worse"], fmt={"SSIM": ".3f"})
    assert isinstance(t, Table)
    assert cells_of_html(t._repr_html_()) == ["damaged", "19.94", "0.512", "3",
                                              "ours", "25.10", "0.800", "1"]
    md = t._repr_markdown_().splitlines()
    assert md[:2] == ["| method | PSNR (dB) | SSIM | worse |", "|---|--:|--:|--:|"]
    assert md[2] == "| damaged | 19.94 | 0.512 | 3 |"
    assert "19.94" in str(t) and "<" not in str(t)


def test_best_values_are_bold_and_oracles_kept_apart():
    t = table([["oracle", 40.0], ["a", 20.0], ["b", 22.0]], ["method", "PSNR"],
              best={"PSNR": "max"}, apart=["oracle"])
    assert [r[0] for r in t.rows] == ["a", "b", "oracle"]       # the oracle last, never bold
    assert t.rows[1][1] == "**22.00**" and t.rows[2][1] == "40.00"
    html = t._repr_html_()
    assert "<strong>22.00</strong>" in html and "border-top" in html


def test_code_and_escaping_in_html():
    html = table([["`restorer-book`", "a < b"]], ["model", "note"])._repr_html_()
    assert "<code>restorer-book</code>" in html and "a &lt; b" in html


def test_rows_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        table([["a", 1, 2]], ["method", "PSNR"])


def test_panels_draw_each_picture_in_its_own_square():
    import matplotlib

    matplotlib.use("Agg")
    crop = plots.crop(torch.zeros(1, 1, 64, 64), (8, 16), 32)
    assert crop.shape == (32, 32)
    fig = plots.panels([("a", torch.zeros(1, 1, 64, 64)), ("b", crop)], px=64, ncols=2)
    width, height = fig.get_size_inches() * fig.dpi
    assert round(width) == 2 * (64 + 6) + 6
    for ax in fig.axes:
        box = ax.get_position()
        assert round(box.width * width) == 64 and round(box.height * height) == 64


def test_notebook_cli_rejects_an_unknown_action(capsys):
    with pytest.raises(SystemExit):
        notebook_cli.main(["run", "x.ipynb"])
    assert "invalid choice" in capsys.readouterr().err
