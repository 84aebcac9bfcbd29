"""nmt.generation.generate and the generate / average-checkpoints commands, on the toy corpus."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import load, load_models
from nmt.config import GenerateConfig
from nmt.config import check_generate as validate
from nmt.data.dataset import load_split
from nmt.data.tokenizer import EOS
from nmt.errors import UserError
from nmt.generation.decoding import PAD
from nmt.generation.generate import read_lines, run, translate_lines, translate_pairs, translate_split
from nmt.generation.output import alignment
from nmt.generation.search import translate_batch


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from nmt import cli

    monkeypatch.setattr(sys, "argv", ["nmt", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    return (e.value.code or 0), out.out, out.err


def _toy_lines(toy_raw_dir: Path, n: int) -> list[str]:
    return (toy_raw_dir / "test.en").read_text(encoding="utf-8").split("\n")[:n]


def test_raw_text_keeps_order_and_empty_lines(ckpts, toy_raw_dir):
    (loaded,) = load_models(ckpts["a"])
    lines = _toy_lines(toy_raw_dir, 9)
    lines = lines[:3] + [""] + lines[3:6] + ["   "] + lines[6:] + [""]
    cfg = GenerateConfig(beam=2, max_len_b=8, chunk_size=4, max_tokens=40)  # several chunks and batches
    from nmt.generation.output import Stats

    got = [
        (line, h)
        for chunk in translate_lines([loaded.model], lines, loaded.src_tok, cfg, torch.device("cpu"), Stats())
        for line, h in chunk
    ]
    assert [line for line, _ in got] == lines
    for line, hyps in got:
        if not line.strip():
            assert hyps == []
            continue
        ids = loaded.src_tok.encode(line) + [EOS]
        src = torch.tensor([ids])
        alone = translate_batch([loaded.model], src, src.eq(PAD), cfg)[0]
        assert hyps[0].tokens.tolist() == alone[0].tokens.tolist()


def test_translate_split_is_in_split_order(ckpts, toy_data_dir):
    (loaded,) = load_models(ckpts["a"])
    pairs = load_split(str(toy_data_dir), "test")
    cfg = GenerateConfig(beam=1, max_len_b=6, max_tokens=60)
    out = translate_split([loaded.model], pairs, loaded.tgt_tok, cfg, "cpu")
    assert len(out) == len(pairs)
    for i in (0, 7, len(pairs) - 1):
        src = torch.tensor([pairs.src[i].tolist() + [EOS]])
        hyp = translate_batch([loaded.model], src, src.eq(PAD), cfg)[0][0]
        assert out[i] == loaded.tgt_tok.decode(hyp.tokens.tolist())


def test_invalid_utf8_names_the_line():
    with pytest.raises(UserError, match="in.txt: line 3 is not valid UTF-8"):
        list(read_lines(io.BytesIO(b"ok\nfine\nbad \xff\nlater\n"), "in.txt"))
    assert list(read_lines(io.BytesIO("a\r\n\nb".encode()), "x")) == ["a", "", "b"]


def test_alignment_is_argmax_without_eos():
    attn = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.1, 0.3], [0.0, 0.0, 1.0]])  # (L=3 incl. EOS, S=3 incl. EOS)
    assert alignment(attn) == "1-0 0-1"


@pytest.mark.parametrize(
    "change, flag",
    [
        (dict(beam=0), "--beam"),
        (dict(beam=2, nbest=3), "--nbest"),
        (dict(max_tokens=0), "--max-tokens"),
        (dict(lenpen=float("nan")), "--lenpen"),
        (dict(sampling=True, sampling_topp=1.5), "--sampling-topp"),
        (dict(temperature=0.0), "--temperature"),
        (dict(max_len_b=-1), "--max-len-b"),
        (dict(sampling_topk=3), "--sampling-topk / --sampling-topp need --sampling"),
        (dict(device="tpu"), "--device"),
        (dict(amp="fp8"), "--amp"),
        (dict(format="json"), "--format"),
        (dict(workers=0), "--workers"),
    ],
)
def test_validation_names_the_flag(change, flag):
    base = dict(path="x.pt", input="-")
    with pytest.raises(UserError, match=flag.replace("-", r"\-")):
        validate(GenerateConfig(**(base | change)))


def test_cli_plain_and_fairseq_formats(ckpts, toy_raw_dir, tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.en"
    lines = _toy_lines(toy_raw_dir, 5)
    src.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n", encoding="utf-8")
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        ckpts["a"],
        "--input",
        str(src),
        "--beam",
        "3",
        "--max-len-b",
        "6",
        "--device",
        "cpu",
    )
    assert code == 0 and out.count("\n") == 6 and out.split("\n")[2] == ""
    assert "translated 6 sentences" in err and "sentences/s" in err and "tokens/s" in err
    code, fs, _ = _cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        ckpts["a"],
        "--input",
        str(src),
        "--beam",
        "3",
        "--nbest",
        "2",
        "--max-len-b",
        "6",
        "--format",
        "fairseq",
        "--print-alignment",
    )
    assert code == 0
    rows = [r.split("\t") for r in fs.strip().split("\n")]
    kinds = [r[0].split("-")[0] for r in rows]
    # the empty line has one hypothesis (the empty translation), the others --nbest 2
    assert kinds.count("S") == 6 and kinds.count("H") == 11 and kinds.count("A") == 11
    plain_best = out.split("\n")
    for i in range(6):  # the first D of a sentence is the plain output
        d = [r[2] for r in rows if r[0] == f"D-{i}"]
        assert d[:1] == [plain_best[i]] and len(d) == (1 if i == 2 else 2), i
    assert [r for r in rows if r[0].endswith("-2")] == [
        ["S-2", ""],
        ["H-2", "0.0", ""],
        ["D-2", "0.0", ""],
        ["P-2", "0.0000"],
        ["A-2", ""],
    ]
    h = [r for r in rows if r[0] == "H-1"]
    p = [r for r in rows if r[0] == "P-1"]
    assert len(h) == 2 and float(h[0][1]) >= float(h[1][1])
    assert len(p[0][1].split()) == len(h[0][2].split()) + 1  # one score per piece and one for EOS


@pytest.mark.parametrize("split", [False, True], ids=["raw", "split"])
def test_quiet_keeps_stdout_clear_but_still_writes_the_output_file(
    ckpts, toy_raw_dir, toy_data_dir, tmp_path, monkeypatch, capsys, split
):
    src = tmp_path / "in.en"
    src.write_text("\n".join(_toy_lines(toy_raw_dir, 4)) + "\n", encoding="utf-8")
    where = [str(toy_data_dir), "--gen-subset", "valid"] if split else ["--input", str(src)]
    common = ["generate", *where, "--path", ckpts["a"], "--beam", "2", "--max-len-b", "5"]
    code, expected, _ = _cli(monkeypatch, capsys, *common)
    assert code == 0 and expected.strip()
    code, stdout, err = _cli(monkeypatch, capsys, *common, "--quiet")
    assert code == 0 and stdout == "" and "translated" in err
    out = tmp_path / "hyp.txt"
    code, stdout, _ = _cli(monkeypatch, capsys, *common, "--quiet", "--output", str(out))
    assert code == 0 and stdout == "" and out.read_text(encoding="utf-8") == expected


def test_cli_split_reports_bleu_and_output_is_atomic(ckpts, toy_data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "hyp.txt"
    code, stdout, err = _cli(
        monkeypatch,
        capsys,
        "generate",
        str(toy_data_dir),
        "--path",
        ckpts["a"],
        "--beam",
        "1",
        "--max-len-b",
        "5",
        "--output",
        str(out),
        "--gen-subset",
        "valid",
    )
    assert code == 0 and stdout == ""
    assert len(out.read_text(encoding="utf-8").split("\n")) == len(load_split(str(toy_data_dir), "valid")) + 1
    assert "BLEU = " in err and "nrefs:1|case:mixed|eff:no|tok:13a" in err
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"one\ntwo\nthree\n\xfe\n")
    target = tmp_path / "never.txt"
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        ckpts["a"],
        "--input",
        str(bad),
        "--beam",
        "1",
        "--chunk-size",
        "2",
        "--max-len-b",
        "3",
        "--output",
        str(target),
    )
    assert code == 2 and err.strip() == f"error: {bad}: line 4 is not valid UTF-8 (byte 0)"
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beam", "0"], "--beam must be >= 1"),
        (["--beam", "2", "--nbest", "3"], "--nbest must be between 1 and --beam (2)"),
        (["--sampling", "--sampling-topp", "0"], "--sampling-topp must be in (0, 1]"),
        (["--max-tokens", "-5"], "--max-tokens must be > 0"),
        (["--input", "/nonexistent/x.en"], "--input /nonexistent/x.en"),
    ],
)
def test_cli_errors_exit_2_with_one_line(ckpts, toy_raw_dir, monkeypatch, capsys, args, message):
    base = ["generate", "--path", ckpts["a"]] + ([] if "--input" in args else ["--input", str(toy_raw_dir / "test.en")])
    code, out, err = _cli(monkeypatch, capsys, *base, *args)
    lines = err.strip().split("\n")
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_long_lines_are_truncated_with_one_warning(ckpts, tmp_path, monkeypatch, capsys):
    src = tmp_path / "long.en"
    src.write_text("the cat\n" + " ".join(["the big cat eats"] * 6) + "\n" + " ".join(["a dog"] * 9) + "\n")
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        ckpts["short"],
        "--input",
        str(src),
        "--beam",
        "2",
        "--max-len-b",
        "4",
        "--chunk-size",
        "1",
    )
    assert code == 0 and out.count("\n") == 3
    warnings = [line for line in err.split("\n") if "truncated" in line]
    assert warnings == ["warning: 2 source sentence(s) longer than the model's 6 source positions were truncated"]


def test_run_ensemble_equals_single_model_twice(ckpts, toy_raw_dir, tmp_path):
    src = tmp_path / "in.en"
    src.write_text("\n".join(_toy_lines(toy_raw_dir, 6)) + "\n", encoding="utf-8")
    outs = []
    for path in (ckpts["a"], f"{ckpts['a']}:{ckpts['a']}"):
        out = tmp_path / f"out{len(outs)}.txt"
        run(GenerateConfig(path=path, input=str(src), output=str(out), beam=2, max_len_b=6, device="cpu"))
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1] and outs[0].count("\n") == 6


def test_average_checkpoints(ckpts, tmp_path, monkeypatch, capsys):
    a, b = load(ckpts["a"])["model"], load(ckpts["b"])["model"]
    out = tmp_path / "avg.pt"
    code, _, err = _cli(
        monkeypatch, capsys, "average-checkpoints", "--inputs", ckpts["a"], "--inputs", ckpts["b"], "--output", str(out)
    )
    assert code == 0 and "averaged 2 checkpoints" in err
    avg = load(str(out))["model"]
    for k in a:
        assert torch.allclose(avg[k], (a[k] + b[k]) / 2, atol=1e-6)
    out2 = tmp_path / "avg2.pt"
    code, _, _ = _cli(
        monkeypatch,
        capsys,
        "average-checkpoints",
        "--inputs",
        ckpts["dir"],
        "--num-epoch-checkpoints",
        "2",
        "--output",
        str(out2),
    )
    assert code == 0 and all(torch.equal(load(str(out2))["model"][k], avg[k]) for k in avg)
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "average-checkpoints",
        "--inputs",
        ckpts["dir"],
        "--num-epoch-checkpoints",
        "3",
        "--output",
        str(out2),
    )
    assert code == 2 and "has only 2 such checkpoint(s)" in err
    out3 = tmp_path / "avg3.pt"  # several files after one --inputs
    code, _, err = _cli(
        monkeypatch, capsys, "average-checkpoints", "--inputs", ckpts["a"], ckpts["b"], "--output", str(out3)
    )
    assert code == 0 and "averaged 2 checkpoints" in err
    assert all(torch.equal(load(str(out3))["model"][k], avg[k]) for k in avg)
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "average-checkpoints",
        "--inputs",
        ckpts["dir"],
        ckpts["a"],
        "--num-epoch-checkpoints",
        "2",
        "--output",
        str(out3),
    )
    assert code == 2 and "needs exactly one directory in --inputs" in err


def test_end_to_end_preprocess_train_generate_score(toy_raw_dir, tmp_path, monkeypatch, capsys, tiny_sizes):
    data, ck = tmp_path / "bin", tmp_path / "ck"
    code, _, _ = _cli(
        monkeypatch,
        capsys,
        "preprocess",
        "-s",
        "en",
        "-t",
        "fr",
        "--trainpref",
        str(toy_raw_dir / "train"),
        "--validpref",
        str(toy_raw_dir / "valid"),
        "--testpref",
        str(toy_raw_dir / "test"),
        "--destdir",
        str(data),
        "--vocab-size",
        "300",
        "--joined-dictionary",
    )
    assert code == 0
    train = [
        "train",
        str(data),
        "--arch",
        "transformer_tiny",
        "--save-dir",
        str(ck),
        "--max-update",
        "3",
        "--max-tokens",
        "1000",
        "--threads",
        "1",
    ] + [f"--{k.replace('_', '-')}={v}" for k, v in tiny_sizes.items()]
    code, _, _ = _cli(monkeypatch, capsys, *train)
    assert code == 0 and (ck / "checkpoint_last.pt").exists()
    hyp = tmp_path / "hyp.fr"
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "generate",
        str(data),
        "--path",
        str(ck / "checkpoint_last.pt"),
        "--beam",
        "2",
        "--max-len-b",
        "5",
        "--output",
        str(hyp),
    )
    assert code == 0 and "BLEU = " in err
    bleu = float(err.split("BLEU = ")[1].split()[0])
    refs = tmp_path / "ref.fr"
    pairs = load_split(str(data), "test")
    (loaded,) = load_models(str(ck / "checkpoint_last.pt"))
    refs.write_text("\n".join(loaded.tgt_tok.decode(pairs.tgt[i].tolist()) for i in range(len(pairs))) + "\n")
    code, out, _ = _cli(monkeypatch, capsys, "score", "--sys", str(hyp), "--ref", str(refs))
    assert code == 0 and out.startswith("BLEU = ") and float(out.split()[2]) == pytest.approx(bleu, abs=0.01)


def test_workers_give_the_same_hypotheses_in_the_same_order(ckpts, toy_data_dir):
    (loaded,) = load_models(ckpts["a"])
    pairs = load_split(str(toy_data_dir), "test")
    seen = []
    for workers in (1, 3):
        cfg = GenerateConfig(beam=3, nbest=2, max_len_b=8, max_tokens=60, workers=workers)  # many batches
        done = []
        hyps, _ = translate_pairs([loaded.model], pairs, cfg, torch.device("cpu"), on_batch=done.append)
        assert sum(done) == len(pairs) and len(done) > 3
        seen.append(hyps)
    assert len(seen[0]) == len(pairs)
    for one, three in zip(*seen, strict=True):
        assert [h.tokens.tolist() for h in one] == [h.tokens.tolist() for h in three]
        assert [h.score for h in one] == pytest.approx([h.score for h in three], abs=1e-5)


def test_workers_share_the_threads_and_stop_at_the_first_error(ckpts, toy_raw_dir, tmp_path, monkeypatch):
    import time

    from nmt.generation import generate

    src = tmp_path / "in.en"
    src.write_text("\n".join(_toy_lines(toy_raw_dir, 40)) + "\n", encoding="utf-8")
    calls, threads = [], []

    def fake(models, src, src_pad_mask, cfg, need_attn=False):
        calls.append(src.size(0))
        threads.append(torch.get_num_threads())
        if len(calls) == 1:
            raise RuntimeError("boom")
        time.sleep(0.05)
        return [[] for _ in range(src.size(0))]

    monkeypatch.setattr(generate, "translate_batch", fake)
    before = torch.get_num_threads()
    cfg = GenerateConfig(
        path=ckpts["a"],
        input=str(src),
        output=str(tmp_path / "out.txt"),
        max_tokens=40,
        device="cpu",
        threads=2,
        workers=2,
    )
    with pytest.raises(RuntimeError, match="boom"):
        run(cfg)
    assert torch.get_num_threads() == before  # restored for the caller
    assert set(threads) == {1}  # 2 threads in all, one per worker
    assert 1 < len(calls) < 10  # batches not yet started when the error came are dropped
    assert not (tmp_path / "out.txt").exists()
