"""docs/reliability.md names, for each guarantee, tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_reliability_page_exists():
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert len(refs) >= 25
    for path, name in refs:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} named in docs/reliability.md does not exist"
    named = {name for _, name in refs}
    for path in sorted((ROOT / "tests").glob("test_reliability_*.py")):  # and every reliability test is listed
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), re.M):
            assert name in named or path.name == "test_reliability_docs.py", f"{path.name}::{name} is not in the page"
