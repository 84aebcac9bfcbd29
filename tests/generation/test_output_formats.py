"""Output formats of `nmt generate` on raw text: fairseq lines for every input line (empty ones
included), --post-process / --remove-bpe, and plain --nbest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nmt.config import GenerateConfig
from nmt.config import check_generate as validate
from nmt.errors import UserError

EMPTY = (3, 10)  # input lines that are empty or blank


@pytest.fixture(scope="module")
def source(toy_raw_dir, tmp_path_factory) -> Path:
    """12 input lines (more than 9, so numeric and text order of ids differ), two of them empty or blank."""
    lines = (toy_raw_dir / "test.en").read_text(encoding="utf-8").split("\n")[:10]
    lines.insert(EMPTY[0], "")
    lines.insert(EMPTY[1], "   ")
    path = tmp_path_factory.mktemp("formats") / "in.en"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _generate(monkeypatch, capsys, ckpt: str, src: Path, *args: str) -> str:
    from nmt import cli

    base = ["generate", "--path", ckpt, "--input", str(src), "--beam", "3", "--max-len-b", "6", "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", ["nmt", *base, *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    assert (e.value.code or 0) == 0, out.err
    return out.out


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.rstrip("\n").split("\n")]


def test_fairseq_format_gives_every_input_line_its_lines(ckpts, source, monkeypatch, capsys):
    rows = _rows(_generate(monkeypatch, capsys, ckpts["a"], source, "--format", "fairseq", "--nbest", "2"))
    counts = Counter(row[0] for row in rows)
    for i in range(12):
        hyps = 1 if i in EMPTY else 2  # an empty line has one hypothesis: the empty translation
        assert [counts[f"{kind}-{i}"] for kind in "SHDP"] == [1, hyps, hyps, hyps], i
    assert len(counts) == 4 * 12
    ids = [int(row[0].split("-")[1]) for row in rows]
    assert ids == sorted(ids)  # sentences in input order, each one's lines together
    for i in EMPTY:
        assert [r[1:] for r in rows if r[0] in (f"H-{i}", f"D-{i}", f"P-{i}")] == [["0.0", ""], ["0.0", ""], ["0.0000"]]


@pytest.mark.skipif(not all(shutil.which(t) for t in ("sh", "grep", "sort", "cut")), reason="needs a POSIX shell")
def test_grep_sort_cut_gives_one_line_per_input_line(ckpts, source, tmp_path, monkeypatch, capsys):
    plain = _generate(monkeypatch, capsys, ckpts["a"], source)
    assert plain.count("\n") == 12
    for post in ([], ["--post-process", "sentencepiece"]):
        out = tmp_path / "fairseq.txt"
        out.write_text(_generate(monkeypatch, capsys, ckpts["a"], source, "--format", "fairseq", *post))
        got = subprocess.run(
            f"grep ^H {out} | sort -V | cut -f3", shell=True, capture_output=True, text=True, check=True
        ).stdout
        assert got.count("\n") == 12
        if post:  # detokenized hypotheses: exactly the plain output
            assert got == plain
        else:  # pieces
            assert got != plain and "\u2581" in got


def test_post_process_puts_the_detokenized_text_in_h_lines(ckpts, source, monkeypatch, capsys):
    pieces = _rows(_generate(monkeypatch, capsys, ckpts["a"], source, "--format", "fairseq", "--nbest", "3"))
    for flag in ("--post-process", "--remove-bpe"):
        args = ("--format", "fairseq", "--nbest", "3", flag, "sentencepiece")
        rows = _rows(_generate(monkeypatch, capsys, ckpts["a"], source, *args))
        h = [r for r in rows if r[0].startswith("H-")]
        d = [r for r in rows if r[0].startswith("D-")]
        assert len(h) == len(d) == 10 * 3 + 2
        assert [r[1:] for r in h] == [r[1:] for r in d]  # same score, same text as the D line
        # only H changes: every other line is as without post-processing
        assert [r for r in rows if not r[0].startswith("H-")] == [r for r in pieces if not r[0].startswith("H-")]
    assert [r for r in pieces if r[0].startswith("H-")] != h


def test_plain_nbest_prints_n_lines_per_input_best_first(ckpts, source, monkeypatch, capsys):
    plain = _generate(monkeypatch, capsys, ckpts["a"], source, "--nbest", "3").split("\n")
    assert plain[-1] == "" and len(plain) - 1 == 3 * 12
    rows = _rows(_generate(monkeypatch, capsys, ckpts["a"], source, "--format", "fairseq", "--nbest", "3"))
    for i in range(12):
        d = [r for r in rows if r[0] == f"D-{i}"]
        scores = [float(r[1]) for r in d]
        assert scores == sorted(scores, reverse=True)
        want = ["", "", ""] if i in EMPTY else [r[2] for r in d]
        assert plain[3 * i : 3 * i + 3] == want, i
    best = _generate(monkeypatch, capsys, ckpts["a"], source).split("\n")
    assert best[:-1] == plain[:-1][::3]  # --nbest 1 (the default): the first of each group


def test_unknown_post_process_names_the_value(ckpts, source, monkeypatch, capsys):
    with pytest.raises(UserError, match=r"^--post-process must be one of none, sentencepiece, got 'bpe'$"):
        validate(GenerateConfig(path="x.pt", input="-", post_process="bpe"))
    from nmt import cli

    argv = ["nmt", "generate", "--path", ckpts["a"], "--input", str(source), "--remove-bpe", "subword_nmt"]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == ""
    assert out.err == "error: --post-process must be one of none, sentencepiece, got 'subword_nmt'\n"
