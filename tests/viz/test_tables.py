"""The statistics tables: NaN and rounding in the files, the terminal table's columns."""

from __future__ import annotations

import json
import math

from rich.console import Console

from nmt.viz import tables
from nmt.viz.stats import STAT_NAMES


def row(model: str, head: int, entropy: float) -> dict:
    r = {"model": model, "kind": "cross", "layer": 1, "head": head, "label": "broad", "sentences": 2}
    r.update({name: math.nan for name in STAT_NAMES})
    r["entropy"] = entropy
    return r


def test_clean_and_cell():
    assert tables.clean(math.nan) is None and tables.clean(0.123456789) == 0.123457
    assert tables.clean("cross") == "cross" and tables.clean(3) == 3
    assert tables.cell(math.nan) == "-" and tables.cell(0.5) == "0.50" and tables.cell(2) == "2"


def test_write_stats_csv_and_json(tmp_path):
    paths = tables.write_stats(str(tmp_path), [row("a", 1, 0.123456789), row("a", 2, 1.0)])
    assert paths == [str(tmp_path / "stats.csv"), str(tmp_path / "stats.json")]
    lines = (tmp_path / "stats.csv").read_text().split("\n")
    assert lines[0].split(",") == list(tables.COLUMNS) and lines[1].startswith("a,cross,1,1,0.123457,,")
    data = json.loads((tmp_path / "stats.json").read_text())
    assert data["columns"] == list(tables.COLUMNS)
    assert data["rows"][0]["entropy"] == 0.123457 and data["rows"][0]["eos"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.csv", "stats.json"]  # no temp file left


def test_stats_table_columns():
    assert "model" not in tables.table_columns([row("a", 1, 0.5)])
    assert tables.table_columns([row("a", 1, 0.5), row("b", 1, 0.5)])[0] == "model"
    console = Console(width=200, record=True)
    console.print(tables.stats_table([row("a", 1, 0.5)], "heads"))
    text = console.export_text()
    assert "heads" in text and "diag" in text and "0.50" in text and "sentences" not in text
