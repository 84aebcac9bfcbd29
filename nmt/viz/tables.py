"""The per-head statistics as tables: stats.csv, stats.json and the terminal table.

A row is one model, kind, layer and head (see `nmt.viz.stats.stat_rows`). Files are written
atomically; NaN (a statistic that does not apply) becomes an empty CSV cell, JSON null, and '-'
in the terminal and HTML tables. Floats are rounded to 6 significant digits in the files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Sequence

from rich import box
from rich.table import Table

from nmt.fileio import atomic_write
from nmt.viz.stats import STAT_NAMES

COLUMNS = ("model", "kind", "layer", "head", *STAT_NAMES, "label", "sentences")
SHORT = {"max_weight": "max", "distance": "dist", "diag_agree": "diag"}  # column headers of the tables
TEXT_COLUMNS = ("model", "kind", "label")  # left-aligned in the tables


def clean(value):
    """NaN -> None (JSON null / empty CSV cell); floats rounded to 6 significant digits."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    return value


def cell(value) -> str:
    """The text of one table cell: 2 decimals for floats, '-' for NaN."""
    value = clean(value)
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_stats(out: str, rows: Sequence[dict]) -> list[str]:
    """OUT/stats.csv and OUT/stats.json (one row per model, kind, layer, head); returns the paths."""
    cleaned = [{c: clean(r[c]) for c in COLUMNS} for r in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in cleaned:
        w.writerow(["" if r[c] is None else r[c] for c in COLUMNS])
    paths = [os.path.join(out, "stats.csv"), os.path.join(out, "stats.json")]
    with atomic_write(paths[0]) as f:
        f.write(buf.getvalue().encode())
    with atomic_write(paths[1]) as f:
        f.write((json.dumps({"columns": list(COLUMNS), "rows": cleaned}, indent=1) + "\n").encode())
    return paths


def table_columns(rows: Sequence[dict]) -> list[str]:
    """Columns worth showing: 'model' only with several models."""
    several = len({r["model"] for r in rows}) > 1
    return [c for c in COLUMNS if c != "sentences" and (several or c != "model")]


def stats_table(rows: Sequence[dict], title: str) -> Table:
    """A rich Table of the statistics (NaN shown as '-')."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    cols = table_columns(rows)
    for c in cols:
        table.add_column(SHORT.get(c, c), justify="left" if c in TEXT_COLUMNS else "right")
    for r in rows:
        table.add_row(*[cell(r[c]) for c in cols])
    return table
