"""Reliability on text nobody cleaned: `generate` and `preprocess` on hostile input.

Empty files, empty lines, a 1 MB line, NUL and control characters, invalid UTF-8, mixed scripts
and emoji, CRLF line ends, no final newline: no crash, one output line per input line, order kept.
Lines end at "\\n" only (a "\\r" before it is dropped), in `generate` and `preprocess` alike; the
other characters `str.splitlines` breaks at (\\x1c, \\u2028, a lone \\r, ...) stay inside their line.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from nmt.checkpoint import load_models, save_model
from nmt.config import GenerateConfig, PreprocessConfig
from nmt.data.dataset import load_split, read_meta
from nmt.data.preprocess import preprocess
from nmt.data.tokenizer import EOS, PAD, load_tokenizers, read_blobs
from nmt.generation.generate import read_lines, translate_lines
from nmt.generation.output import LINE_BREAKS, Stats, format_sentence
from nmt.generation.search import translate_batch
from nmt.models import arch_config, build_model

SIZES = {
    "encoder_layers": "1",
    "decoder_layers": "1",
    "encoder_embed_dim": "32",
    "decoder_embed_dim": "32",
    "encoder_ffn_embed_dim": "64",
    "decoder_ffn_embed_dim": "64",
    "encoder_attention_heads": "2",
    "decoder_attention_heads": "2",
    "dropout": "0",
}
FAST = ["--beam", "1", "--max-len-b", "4", "--device", "cpu", "--threads", "1"]
BREAKERS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at, besides "\n"
HOSTILE = [
    "a small cat",
    "",
    "   ",
    "nul \x00 and bell \x07 and escape \x1b[31m red",
    "mixed: Ж ñ 中文 العربية हिन्दी 🤖👍🏽 \u200b\ufeff end",
    "separators a\x1cb\u2028c\x85d\re inside one line",
    "w " * 500_000,  # about 1 MB
    "\t\x0b\x0c",
    "the last line",
]


@pytest.fixture(scope="module")
def model_path(toy_data_dir, tmp_path_factory) -> str:
    """An untrained tiny transformer for the toy data dir (its meta and tokenizer)."""
    meta = read_meta(str(toy_data_dir))
    torch.manual_seed(0)
    cfg = arch_config("transformer_tiny", SIZES)
    v = meta["vocab_size"]
    model = build_model(cfg, v[meta["source_lang"]], v[meta["target_lang"]], meta["joined_dictionary"])
    path = tmp_path_factory.mktemp("reliability_model") / "model.pt"
    save_model(str(path), model, cfg, "transformer_tiny", meta, read_blobs(str(toy_data_dir), meta))
    return str(path)


@pytest.fixture(scope="module")
def loaded(model_path):
    (item,) = load_models(model_path)
    return item


def generate(monkeypatch, capsys, model_path: str, path: Path, *extra) -> tuple[int, str, str]:
    return cli(monkeypatch, capsys, "generate", "--path", model_path, "--input", str(path), *FAST, *extra)


def fairseq_sources(out: str) -> list[str]:
    """The S-i lines' texts, checking that i counts 0, 1, 2, ... (one sentence per input line, in order)."""
    sources = [line.split("\t", 1) for line in out.split("\n") if line.startswith("S-")]
    assert [s[0] for s in sources] == [f"S-{i}" for i in range(len(sources))]
    return [s[1] for s in sources]


# ----------------------------------------------------------------------------- generate
@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("final_newline", [True, False], ids=["final-newline", "no-final-newline"])
def test_generate_hostile_file_one_line_out_per_line_in(
    ending, final_newline, model_path, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "in.txt"
    path.write_bytes((ending.join(HOSTILE) + (ending if final_newline else "")).encode("utf-8"))
    code, out, err = generate(monkeypatch, capsys, model_path, path)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == len(HOSTILE)
    lines = out[:-1].split("\n")
    for src, hyp in zip(HOSTILE, lines):
        assert len(hyp.splitlines()) <= 1  # no line break of any kind inside a translation
        if not src.strip():
            assert hyp == ""
    assert f"translated {len(HOSTILE)} sentences" in err
    assert "warning: 1 source sentence(s) longer than the model's 1024 source positions were truncated" in err
    # fairseq format: S-i echoes input line i, in order, and stays one line whatever it holds
    code, out, err = generate(monkeypatch, capsys, model_path, path, "--format", "fairseq")
    assert code == 0, err
    assert fairseq_sources(out) == [line.translate(LINE_BREAKS) for line in HOSTILE]
    assert fairseq_sources(out)[5] == "separators a b c d e inside one line"
    assert all(len(line.splitlines()) == 1 for line in out.rstrip("\n").split("\n"))


def test_generate_crlf_and_lf_give_the_same_output(model_path, tmp_path, monkeypatch, capsys):
    outs = []
    for ending in ("\n", "\r\n"):
        path = tmp_path / "in.txt"
        path.write_bytes(ending.join(HOSTILE[:6]).encode("utf-8"))
        code, out, _ = generate(monkeypatch, capsys, model_path, path)
        assert code == 0
        outs.append(out)
    assert outs[0] == outs[1] and outs[0].count("\n") == 6


@pytest.mark.parametrize("content, lines", [(b"", 0), (b"\n", 1), (b"\n\n\n", 3), (b"\r\n", 1)])
def test_generate_empty_input(content, lines, model_path, tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    code, out, err = generate(monkeypatch, capsys, model_path, path)
    assert code == 0 and out == "\n" * lines and f"translated {lines} sentences" in err


def test_generate_invalid_utf8_names_the_line_and_writes_no_output_file(model_path, tmp_path, monkeypatch, capsys):
    path, target = tmp_path / "in.txt", tmp_path / "out.txt"
    path.write_bytes("fine\r\nalso fine\n\nbad \xff byte\nlater\n".encode("latin-1"))
    code, out, err = generate(monkeypatch, capsys, model_path, path, "--output", str(target))
    assert code == 2 and err == f"error: {path}: line 4 is not valid UTF-8 (byte 4)\n"
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["in.txt"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.text(alphabet=st.sampled_from("ab \t\x00\r" + BREAKERS), max_size=12),
            st.builds(
                lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1500, 3000)
            ),  # longer than the model
        ),
        max_size=8,
    ).filter(lambda lines: all("\n" not in line for line in lines))
)
def test_translate_lines_property_one_output_line_per_input_line(loaded, lines):
    """Random Unicode lines (\\r, NUL, separators, very long) -> bytes -> read_lines -> translate_lines."""
    data = "\n".join(lines).encode("utf-8")
    read = list(read_lines(io.BytesIO(data), "in"))
    expected = [line.rstrip("\r") for line in lines]  # "\n" ends a line; a "\r" before it is dropped
    if lines and lines[-1] == "":  # "a\n" is one line, as in every text tool
        expected.pop()
    assert read == expected
    cfg = GenerateConfig(beam=1, max_len_b=3, chunk_size=3, format="fairseq")
    stats = Stats()
    got = [
        pair
        for chunk in translate_lines([loaded.model], read, loaded.src_tok, cfg, torch.device("cpu"), stats)
        for pair in chunk
    ]
    assert [line for line, _ in got] == read  # one result per input line, in order
    for i, (line, hyps) in enumerate(got):
        plain = format_sentence(i, line, None, hyps, loaded.tgt_tok, GenerateConfig(format="plain"))
        assert len(plain) == 1 and len(plain[0].splitlines()) <= 1 and "\n" not in plain[0]
        if not line.strip():
            assert hyps == [] and plain == [""]
        ids = loaded.src_tok.encode(line.strip())
        if ids:  # the hypothesis is this line's own: the same as translating it alone (truncated as generate does)
            src = torch.tensor([ids[: loaded.model.max_positions()[0] - 1] + [EOS]])
            alone = translate_batch([loaded.model], src, src.eq(PAD), cfg)[0][0]
            assert hyps[0].tokens.tolist() == alone.tokens.tolist()
        for out in format_sentence(i, line, None, hyps, loaded.tgt_tok, cfg):
            assert len(out.splitlines()) == 1 and "\n" not in out


# ----------------------------------------------------------------------------- preprocess
def _write(prefix: Path, lang: str, lines: list[str], ending: str = "\n", final: bool = True) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.{lang}").write_bytes((ending.join(lines) + (ending if final else "")).encode("utf-8"))


def _preprocess(raw: Path, dest: Path, **extra) -> dict:
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        destdir=str(dest),
        vocab_size=120,
        joined_dictionary=True,
        **extra,
    )
    return preprocess(cfg, console=Console(quiet=True))


def test_preprocess_hostile_text_keeps_every_evaluation_line_in_order(toy_raw_dir, tmp_path):
    train_en = (toy_raw_dir / "train.en").read_text(encoding="utf-8").split("\n")[:200]
    train_fr = (toy_raw_dir / "train.fr").read_text(encoding="utf-8").split("\n")[:200]
    hostile_fr = [
        "une petite chatte",
        "",
        "  ",
        "nul \x00 ici",
        "🤖 中文",
        "a\x1cb\u2028c\x85d\re",
        "x " * 500_000,
        "\t",
        "fin",
    ]
    raw = tmp_path / "raw"
    _write(raw / "train", "en", train_en[:100] + HOSTILE, "\r\n", final=False)
    _write(raw / "train", "fr", train_fr[:100] + hostile_fr)
    _write(raw / "valid", "en", HOSTILE, "\r\n")
    _write(raw / "valid", "fr", hostile_fr, final=False)
    meta = _preprocess(raw, tmp_path / "bin")
    train, valid = meta["splits"]["train"], meta["splits"]["valid"]
    assert train["lines"] == 100 + len(HOSTILE) and valid["lines"] == valid["kept"] == len(HOSTILE)
    assert train["dropped"] == {"empty": 3, "too_long": 1, "ratio": 0}  # blank pairs and the 1 MB line
    pairs = load_split(str(tmp_path / "bin"), "valid")
    tok_src, _ = load_tokenizers(meta, read_blobs(str(tmp_path / "bin"), meta))
    for i, line in enumerate(HOSTILE):  # sentence i is line i, whatever it holds
        assert pairs.src[i].tolist() == tok_src.encode(line.strip()), i


def test_preprocess_crlf_equals_lf(toy_raw_dir, tmp_path):
    lines = {
        lang: (toy_raw_dir / f"train.{lang}").read_text(encoding="utf-8").split("\n")[:150] for lang in ("en", "fr")
    }
    for name, ending, final in (("lf", "\n", True), ("crlf", "\r\n", False)):
        for split in ("train", "valid"):
            for lang in ("en", "fr"):
                _write(tmp_path / name / split, lang, lines[lang], ending, final)
        _preprocess(tmp_path / name, tmp_path / f"bin-{name}")
    for f in ("train.en.bin", "train.en.idx", "train.fr.bin", "valid.fr.bin", "valid.fr.idx", "spm.vocab"):
        assert (tmp_path / "bin-lf" / f).read_bytes() == (tmp_path / "bin-crlf" / f).read_bytes(), f
    a = np.fromfile(tmp_path / "bin-lf" / "valid.en.idx", dtype=np.int64)
    assert len(a) == 150 + 1
