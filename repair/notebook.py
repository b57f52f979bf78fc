"""What the chapters need to show results, and executing them in place.

* :func:`table` turns rows of numbers into one table object: HTML in the book and in Jupyter,
  Markdown where only Markdown is shown, plain text in a terminal; the same numbers in each.
* :func:`execute` runs a chapter top to bottom at a profile and saves it with tidy outputs
  (``python -m repair.notebook_cli execute notebooks/01_dataset_damage.ipynb``).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["Table", "table", "execute", "scrub"]

_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
           (re.compile(r"(?<![\w*])\*(?!\s)(.+?)\*(?!\w)"), r"<em>\1</em>")]


def _inline_html(text: str) -> str:
    """A cell's text as HTML: escaped, with Markdown's **bold**, `code` and *italic*."""
    text = html.escape(text)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


class Table:
    """Rows of cells already formatted as text, with column titles and alignments.

    Jupyter and the book show it as an HTML table (``_repr_html_``); ``_repr_markdown_`` gives
    the same cells as a Markdown table and ``str`` as aligned plain text. Cells may use
    Markdown's ``**bold**``, ```code``` and ``*italic*``."""

    def __init__(self, rows: Sequence[Sequence[str]], columns: Sequence[str],
                 align: Sequence[str], caption: str = "", rule_before: int | None = None):
        self.rows = [list(r) for r in rows]
        self.columns = list(columns)
        self.align = list(align)
        self.caption = caption
        self.rule_before = rule_before

    def _repr_html_(self) -> str:
        style = {"l": "left", "r": "right", "c": "center"}
        head = "".join(f'<th style="text-align: {style[a]}">{_inline_html(c)}</th>'
                       for c, a in zip(self.columns, self.align))
        body = []
        for i, row in enumerate(self.rows):
            rule = ' style="border-top: 2px solid #888"' if i == self.rule_before else ""
            cells = "".join(f'<td style="text-align: {style[a]}">{_inline_html(c)}</td>'
                            for c, a in zip(row, self.align))
            body.append(f"<tr{rule}>{cells}</tr>")
        caption = f"<caption>{_inline_html(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="repair-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>")

    def _repr_markdown_(self) -> str:
        rule = {"l": "---", "r": "--:", "c": ":-:"}
        lines = [self.caption, ""] if self.caption else []
        lines += ["| " + " | ".join(self.columns) + " |",
                  "|" + "|".join(rule[a] for a in self.align) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in self.rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        plain = [[re.sub(r"\*\*|`", "", c) for c in row] for row in [self.columns, *self.rows]]
        widths = [max(len(r[j]) for r in plain) for j in range(len(self.columns))]
        fit = [" ".join(c.rjust(w) if a == "r" else c.ljust(w)
                        for c, w, a in zip(r, widths, self.align)).rstrip() for r in plain]
        return "\n".join(([self.caption] if self.caption else []) + fit)

    def __repr__(self) -> str:
        return str(self)


_NUMBER = re.compile(r"^\**[-+\u2212]?[\d.,]+(e[-+]?\d+)?( ?(dB|%|x))?\**$|^-$")


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and value != value and fmt is None):
        return "-"
    if isinstance(value, str):
        return value
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(rows: Sequence[Sequence] | Mapping[str, Sequence], columns: Sequence[str],
          fmt: Mapping[str, str] | Sequence[str | None] | None = None,
          best: Mapping[str, str | Callable] | None = None, apart: Sequence[str] = (),
          caption: str = "") -> Table:
    """Show ``rows`` as a table with ``columns`` as titles.

    Args:
        rows: a list of rows (each a list of cells), or ``{first cell: other cells}``.
        columns: one title per cell of a row.
        fmt: format specs (``".2f"``, ``",d"``, ``"+.2f"``) by column title, or one per column;
            without one, text is kept, integers get thousands separators, floats 2 decimals.
        best: ``{column: "max" | "min" | key}``: the best value of that column is bold
            (``key`` maps a value to a score, higher is better).
        apart: first cells of rows that come last, below a rule, and never bold (oracles).
        caption: a line above the table.

    Returns:
        A :class:`Table`: HTML in Jupyter and in the book, Markdown via ``_repr_markdown_``.
    """
    columns = list(columns)
    if isinstance(rows, Mapping):
        rows = [[key, *values] for key, values in rows.items()]
    rows = [list(r) for r in rows]
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"every row needs {len(columns)} cells ({', '.join(columns)}); got "
                         f"rows of {sorted({len(r) for r in rows})}")
    fmts = ([fmt.get(c) for c in columns] if isinstance(fmt, Mapping)
            else list(fmt) if fmt is not None else [None] * len(columns))
    rows = ([r for r in rows if str(r[0]) not in apart]
            + [r for r in rows if str(r[0]) in apart])
    n_users = sum(str(r[0]) not in apart for r in rows)
    bold = set()
    for column, how in (best or {}).items():
        j = columns.index(column)
        key = {"max": lambda v: v, "min": lambda v: -v}.get(how, how) if isinstance(how, str) \
            else how
        values = [key(r[j]) for r in rows[:n_users] if isinstance(r[j], (int, float))]
        if values:
            top = max(values)
            bold |= {(i, j) for i, r in enumerate(rows[:n_users])
                     if isinstance(r[j], (int, float)) and key(r[j]) == top}
    text = [[_cell(v, fmts[j]) for j, v in enumerate(r)] for r in rows]
    text = [[f"**{c}**" if (i, j) in bold else c for j, c in enumerate(r)]
            for i, r in enumerate(text)]
    align = ["r" if rows and all(_NUMBER.match(r[j]) for r in text) else "l"
             for j in range(len(columns))]
    rule = n_users if 0 < n_users < len(rows) else None
    return Table(text, columns, align, caption=caption, rule_before=rule)


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
