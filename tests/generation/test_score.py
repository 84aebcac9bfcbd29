"""nmt score: equal to sacreBLEU's own API; significance; bad inputs exit 2 with one line."""

from __future__ import annotations

import json
import sys

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from nmt.errors import UserError
from nmt.generation.score import read_text, score_files

REF = ["the cat sat on the mat .", "a dog runs in the park", "She reads a Book every evening.", "it rains"]
REF2 = ["the cat is on the mat .", "one dog runs through the park", "She reads books in the evening.", "rain falls"]
SYS1 = ["the cat sat on a mat .", "a dog is running in a park", "she reads a book each evening .", "it is raining"]
SYS2 = ["cat on mat", "dog park", "She reads a Book every evening.", "it rains"]


def _write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


def _cli(monkeypatch, capsys, *args):
    from nmt import cli

    monkeypatch.setattr(sys, "argv", ["nmt", "score", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    return (e.value.code or 0), out.out, out.err


@pytest.mark.parametrize("lowercase, tokenize", [(False, "13a"), (True, "intl"), (False, "char")])
def test_scores_equal_sacrebleu_api(tmp_path, monkeypatch, capsys, lowercase, tokenize):
    sys1, ref, ref2 = _write(tmp_path, "s1", SYS1), _write(tmp_path, "r", REF), _write(tmp_path, "r2", REF2)
    args = ["--sys", sys1, "--ref", ref, "--ref", ref2, "--metrics", "bleu,chrf,ter", "--tokenize", tokenize, "--json"]
    code, out, err = _cli(monkeypatch, capsys, *(args + (["--lowercase"] if lowercase else [])))
    assert code == 0 and err == ""
    got = json.loads(out)
    refs = [REF, REF2]
    bleu = BLEU(tokenize=tokenize, lowercase=lowercase)
    want = {
        "bleu": bleu.corpus_score(SYS1, refs).score,
        "chrf": CHRF(lowercase=lowercase).corpus_score(SYS1, refs).score,
        "ter": TER(case_sensitive=not lowercase).corpus_score(SYS1, refs).score,
    }
    system = got["systems"][0]
    for key, value in want.items():
        assert system[key]["score"] == pytest.approx(value, abs=1e-9)
    assert got["signatures"]["bleu"] == str(bleu.get_signature())
    assert f"tok:{tokenize}" in got["signatures"]["bleu"] and got["segments"] == 4


def test_text_output_matches_sacrebleu(tmp_path, monkeypatch, capsys):
    sys1, ref = _write(tmp_path, "s1", SYS1), _write(tmp_path, "r", REF)
    code, out, _ = _cli(monkeypatch, capsys, "--sys", sys1, "--ref", ref)
    bleu = BLEU()
    assert code == 0
    assert out.split("\n")[0] == str(bleu.corpus_score(SYS1, [REF]))
    assert out.split("\n")[1].strip() == f"signature: {bleu.get_signature()}"


def test_several_systems_get_paired_bootstrap(tmp_path, monkeypatch, capsys):
    s1, s2, ref = _write(tmp_path, "s1", SYS1), _write(tmp_path, "s2", SYS2), _write(tmp_path, "r", REF)
    report = score_files([s1, s2], [ref], ["bleu", "chrf"], n_bootstrap=200)
    bleu = report.systems[1].metrics["bleu"]
    _, direct = PairedTest([("a", SYS1), ("b", SYS2)], {"bleu": BLEU()}, [REF], test_type="bs", n_samples=200)()
    assert bleu.score == pytest.approx(BLEU().corpus_score(SYS2, [REF]).score)
    assert bleu.p_value == pytest.approx(direct["BLEU"][1].p_value)
    assert report.systems[0].metrics["bleu"].p_value is None and 0 <= bleu.p_value <= 1
    assert "bs:200" in report.signatures["bleu"]
    code, out, _ = _cli(monkeypatch, capsys, "--sys", s1, "--sys", s2, "--ref", ref)
    assert code == 0 and "baseline" in out and "paired bootstrap" in out
    code, out, _ = _cli(monkeypatch, capsys, "--sys", s1, "--sys", s2, "--ref", ref, "--json")
    got = json.loads(out)
    assert [s["path"] for s in got["systems"]] == [s1, s2] and got["systems"][1]["bleu"]["p_value"] is not None


@pytest.mark.parametrize(
    "case, message",
    [
        ("lines", "has 3 lines but --ref"),
        ("missing", "No such file or directory"),
        ("empty", "is empty"),
        ("metric", "--metrics 'bleu,meteor': choose from bleu, chrf, ter"),
        ("tokenize", "--tokenize 'moses'"),
        ("utf8", "line 2 is not valid UTF-8"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, monkeypatch, capsys, case, message):
    sys1, ref = _write(tmp_path, "s1", SYS1), _write(tmp_path, "r", REF)
    extra = []
    if case == "lines":
        sys1 = _write(tmp_path, "short", SYS1[:3])
    elif case == "missing":
        sys1 = str(tmp_path / "nope.txt")
    elif case == "empty":
        ref = _write(tmp_path, "empty", [])
        (tmp_path / "empty").write_text("")
    elif case == "metric":
        extra = ["--metrics", "bleu,meteor"]
    elif case == "tokenize":
        extra = ["--tokenize", "moses"]
    elif case == "utf8":
        (tmp_path / "s1").write_bytes(b"fine\nbad \xc3\x28\n")
    code, out, err = _cli(monkeypatch, capsys, "--sys", sys1, "--ref", ref, *extra)
    lines = err.strip().split("\n")
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_read_text_keeps_empty_segments(tmp_path):
    p = tmp_path / "t"
    p.write_bytes(b"a\r\n\nb\n")
    assert read_text(str(p), "--sys") == ["a", "", "b"]
    p.write_bytes(b"no newline at end")
    assert read_text(str(p), "--sys") == ["no newline at end"]
    with pytest.raises(UserError):
        score_files([], [str(p)])
