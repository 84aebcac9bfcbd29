"""`nmt export --format ctranslate2`: CTranslate2 translates as nmt does, for every Transformer variant.

Each variant is a 1-layer model trained 200 updates on the toy corpus (a few seconds), so that its
translations end by themselves (at a length limit nmt forces EOS and CTranslate2 does not: such a
sentence is not compared) and it gives <pad> and <s> no real probability (nmt never generates
them, CTranslate2 could). Both sides
then search with the same conventions: no length penalty (the score is the sum of the token
log-probs, EOS included) and no minimum length (CTranslate2 masks before the softmax, nmt after).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from helpers import TINY_TRAIN, cli, shrink
from rich.console import Console

import nmt.export.ctranslate2 as ct2_module
from nmt import Translator
from nmt.checkpoint import save_model
from nmt.config import ExportConfig, PreprocessConfig
from nmt.data.dataset import read_meta
from nmt.data.preprocess import preprocess
from nmt.data.tokenizer import read_blobs
from nmt.errors import UserError
from nmt.export.run import export
from nmt.flags import parse_train_args
from nmt.models import arch_config, build_model
from nmt.training.loop import train

ctranslate2 = pytest.importorskip("ctranslate2")

MAX_LEN = 40  # nmt's --max-len-b; CTranslate2's max_decoding_length counts the EOS step too
SENTENCES = 10

# name: (data dir kind, `nmt train` flags on top of TINY_TRAIN)
VARIANTS = {
    "postnorm-sinusoidal-shared": ("joined", ["--share-all-embeddings"]),
    "prenorm-learned-untied": ("joined", ["--normalize-before", "--learned-pos"]),
    "separate-tied-gelu-sizes": (
        "separate",
        [
            *("--share-decoder-input-output-embed", "--activation-fn", "gelu", "--no-scale-embedding"),
            *("--decoder-embed-dim", "48", "--decoder-attention-heads", "4"),
        ],
    ),
    "trimmed-shared-prenorm": ("trimmed", ["--share-all-embeddings", "--normalize-before"]),
    "trimmed-untied-learned": ("trimmed", ["--learned-pos"]),
    "words-prenorm-tied": ("words", ["--normalize-before", "--share-decoder-input-output-embed"]),
}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_dirs(toy_raw_dir, toy_data_dir, tmp_path_factory) -> dict[str, Path]:
    """The shared joined data dir, and the corpus with separate dictionaries, a trimmed target vocabulary, words."""
    root = tmp_path_factory.mktemp("ct2_data")
    dirs = {"joined": toy_data_dir}
    kinds = {"separate": dict(joined_dictionary=False, vocab_size=150), "trimmed": {}, "words": dict(tokenizer="none")}
    for kind, extra in kinds.items():
        cfg = dict(joined_dictionary=True, vocab_size=300, trim_target_vocab=kind == "trimmed") | extra
        prefixes = dict(trainpref=str(toy_raw_dir / "train"), validpref=str(toy_raw_dir / "valid"))
        dest = root / kind
        preprocess(
            PreprocessConfig(source_lang="en", target_lang="fr", destdir=str(dest), **prefixes, **cfg),
            Console(quiet=True),
        )
        dirs[kind] = dest
    return dirs


@pytest.fixture(scope="module")
def trained(data_dirs, tmp_path_factory) -> dict[str, str]:
    """Variant name -> its checkpoint, trained through `nmt train`."""
    root = tmp_path_factory.mktemp("ct2_models")
    out = {}
    for name, (kind, flags) in VARIANTS.items():
        save = root / name
        args = [str(data_dirs[kind]), "--save-dir", str(save), *TINY_TRAIN, *flags, "--dropout", "0"]
        args += ["--max-update", "200", "--lr", "1e-2", "--warmup-updates", "10", "--log-interval", "1000"]
        cfg, overrides = parse_train_args(args)
        assert train(cfg, overrides) == 0
        out[name] = str(save / "checkpoint_last.pt")
    return out


@pytest.fixture(scope="module")
def lines(toy_raw_dir) -> list[str]:
    return (toy_raw_dir / "test.en").read_text(encoding="utf-8").split("\n")[:SENTENCES]


def _ct2_translate(model_dir: str, lines: list[str], beam: int, **options) -> list:
    translator = ctranslate2.Translator(model_dir, device="cpu", intra_threads=1)
    if os.path.exists(os.path.join(model_dir, "source.spm")):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "source.spm"))
        tokens = [sp.encode(line, out_type=str) for line in lines]
    else:  # a word vocabulary
        tokens = [line.split() for line in lines]
    return translator.translate_batch(
        tokens,
        beam_size=beam,
        length_penalty=0,
        min_decoding_length=0,
        max_decoding_length=MAX_LEN + 1,
        return_scores=True,
        **options,
    )


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_ctranslate2_translates_as_nmt(variant, trained, lines, tmp_path):
    ckpt = trained[variant]
    out = str(tmp_path / "ct2")
    export(ExportConfig(path=ckpt, out=out))
    nmt_translator = Translator.load(ckpt, device="cpu")
    for beam in (1, 4):
        ours = nmt_translator.translate(lines, beam=beam, lenpen=0, min_len=0, max_len_b=MAX_LEN)
        theirs = _ct2_translate(out, lines, beam)
        compared = 0
        for line, mine, other in zip(lines, ours, theirs):
            best, where = mine[0], f"{variant} beam {beam}: {line!r}"
            if len(best.pieces) == MAX_LEN:  # nmt forced EOS at the limit, CTranslate2 does not: not comparable
                continue
            compared += 1
            assert other.hypotheses[0] == best.pieces, where
            assert other.scores[0] == pytest.approx(best.score * math.log(2), abs=1e-4), where
        assert compared >= SENTENCES - 2, f"{variant} beam {beam}: {compared} translations ended before the limit"


def test_export_writes_vocabularies_config_and_tokenizers(trained, data_dirs, tmp_path):
    out = tmp_path / "ct2"
    export(ExportConfig(path=trained["trimmed-shared-prenorm"], out=str(out)))
    names = sorted(os.listdir(out))
    assert names == sorted(
        ["README.md", "config.json", "model.bin", "nmt_export.json", "source.spm", "source_vocabulary.json"]
        + ["target.spm", "target_vocabulary.json"]
    )
    meta = read_meta(str(data_dirs["trimmed"]))
    src_vocab = json.loads((out / "source_vocabulary.json").read_text(encoding="utf-8"))
    tgt_vocab = json.loads((out / "target_vocabulary.json").read_text(encoding="utf-8"))
    sp = spm.SentencePieceProcessor(model_file=str(out / "source.spm"))
    assert len(src_vocab) == meta["vocab_size"]["en"] and len(tgt_vocab) == meta["vocab_size"]["fr"] < len(src_vocab)
    assert src_vocab[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert src_vocab[4:] == [sp.id_to_piece(i) for i in range(4, sp.get_piece_size())]  # CT2 token i is nmt id i
    assert tgt_vocab == src_vocab[: len(tgt_vocab)]  # the output layer's first K pieces
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["add_source_eos"] and not config["add_source_bos"] and config["decoder_start_token"] == "<s>"
    assert config["layer_norm_epsilon"] == 1e-5
    info = json.loads((out / "nmt_export.json").read_text(encoding="utf-8"))
    assert info["target_vocab_size"] == len(tgt_vocab) and info["quantization"] == "float32"
    blobs = read_blobs(str(data_dirs["trimmed"]), meta)
    assert (out / "target.spm").read_bytes() == blobs[meta["tokenizer"]["files"]["fr"]]


def test_separate_dictionaries_keep_two_vocabularies(trained, tmp_path):
    out = tmp_path / "ct2"
    export(ExportConfig(path=trained["separate-tied-gelu-sizes"], out=str(out)))
    assert (out / "source_vocabulary.json").exists() and (out / "target_vocabulary.json").exists()
    assert (out / "source.spm").read_bytes() != (out / "target.spm").read_bytes()


def test_word_vocabulary_exports_without_sentencepiece(trained, tmp_path):
    out = tmp_path / "ct2"
    export(ExportConfig(path=trained["words-prenorm-tied"], out=str(out)))
    assert not list(out.glob("*.spm"))
    assert "line.split()" in (out / "README.md").read_text(encoding="utf-8")
    assert json.loads((out / "nmt_export.json").read_text(encoding="utf-8"))["tokenizer"] == "word"


def _python_block(text: str) -> str:
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_readme_and_deploy_doc_code_translate(trained, lines, tmp_path, monkeypatch, capsys):
    """The lines README.md and docs/deploy.md show run as they are and give nmt's greedy translation."""
    ckpt = trained["postnorm-sinusoidal-shared"]
    out = tmp_path / "ende-ct2"
    export(ExportConfig(path=ckpt, out=str(out)))
    monkeypatch.chdir(out)
    readme = _python_block((out / "README.md").read_text(encoding="utf-8"))
    exec(readme.replace("beam_size=5", "beam_size=1").replace('lines = ["..."]', f"lines = {lines[:2]!r}"), {})
    monkeypatch.chdir(tmp_path)
    doc = _python_block((Path(__file__).parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8"))
    exec(doc.replace("beam_size=5", "beam_size=1"), {})
    printed = capsys.readouterr().out.splitlines()
    nmt_greedy = [h[0].text for h in Translator.load(ckpt, device="cpu").translate(lines[:2], beam=1)]
    assert printed[:2] == nmt_greedy
    assert printed[2] == str(
        [Translator.load(ckpt, device="cpu").translate("The red car sees the small dog.", beam=1)[0].text]
    )


@pytest.mark.parametrize("quantization", ["int8", "float16"])
def test_quantized_exports_load_and_translate(quantization, trained, lines, tmp_path):
    ckpt = trained["prenorm-learned-untied"]
    out, full = tmp_path / quantization, tmp_path / "float32"
    export(ExportConfig(path=ckpt, out=str(out), quantization=quantization))
    export(ExportConfig(path=ckpt, out=str(full)))
    assert (out / "model.bin").stat().st_size < (full / "model.bin").stat().st_size
    results = _ct2_translate(str(out), lines, 1)
    assert len(results) == len(lines) and all(r.hypotheses[0] for r in results)
    assert json.loads((out / "nmt_export.json").read_text(encoding="utf-8"))["quantization"] == quantization


# ----------------------------------------------------------------------------- the command and its refusals
def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_exports_and_force_replaces(tiny_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    code, stdout, err = cli(
        monkeypatch, capsys, "export", "--format", "ctranslate2", "--path", tiny_model, "--out", str(out)
    )
    assert code == 0, err
    assert str(out) in stdout and (out / "model.bin").exists()
    code, _, err = cli(monkeypatch, capsys, "export", "--path", tiny_model, "--out", str(out))
    assert "--force" in _one_line_error(code, err)
    (out / "stale.txt").write_text("old", encoding="utf-8")
    code, _, err = cli(monkeypatch, capsys, "export", "--path", tiny_model, "--out", str(out), "--force")
    assert code == 0, err
    assert (out / "model.bin").exists() and not (out / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary directory left beside it


def _lstm_checkpoint(toy_data_dir: Path, path: Path) -> str:
    return _untrained(toy_data_dir, path, shrink(arch_config("lstm_luong")), "lstm_luong")


def _untrained(toy_data_dir: Path, path: Path, cfg, arch: str) -> str:
    meta = read_meta(str(toy_data_dir))
    v = meta["vocab_size"]["en"]
    torch.manual_seed(0)
    model = build_model(cfg, v, v, True)
    save_model(str(path), model, cfg, arch, meta, read_blobs(str(toy_data_dir), meta))
    return str(path)


@pytest.mark.parametrize(
    "arch, says",
    [
        ("lstm_luong", "LSTM"),
        ("transformer_lm_tiny", "only translation"),
        ("mlm_tiny", "only translation"),
    ],
)
def test_non_translation_transformers_are_refused(arch, says, toy_data_dir, tmp_path, monkeypatch, capsys):
    ckpt = _untrained(toy_data_dir, tmp_path / "model.pt", shrink(arch_config(arch)), arch)
    code, _, err = cli(monkeypatch, capsys, "export", "--path", ckpt, "--out", str(tmp_path / "out"))
    assert says in _one_line_error(code, err)
    assert not (tmp_path / "out").exists()


def test_refusals_are_one_line(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    cases = [
        (["--format", "onnx"], "--format"),
        (["--quantization", "int4"], "--quantization"),
        (["--out", str(afile / "sub")], "--out"),
        (["--out", str(afile)], "--out"),
        (["--path", str(tmp_path / "missing.pt")], "not found"),
        (["--path", str(corrupt)], "not a readable nmt checkpoint"),
        (["--path", f"{tiny_model}:{tiny_model}"], "ensemble"),
        (["--out", os.path.dirname(tiny_model), "--force"], "holds the checkpoint"),
        (["--out", str(tmp_path), "--force"], "holds the current directory"),
    ]
    for extra, says in cases:
        args = ["--path", tiny_model, "--out", str(tmp_path / "out"), *extra]
        code, _, err = cli(monkeypatch, capsys, "export", *args)
        assert says in _one_line_error(code, err), extra
    assert sorted(os.listdir(tmp_path)) == ["afile", "corrupt.pt"]


def test_without_ctranslate2_the_command_says_how_to_install(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ct2_module, "ctranslate2", None)
    code, _, err = cli(monkeypatch, capsys, "export", "--path", tiny_model, "--out", str(tmp_path / "out"))
    assert 'pip install "nmt[ct2]"' in _one_line_error(code, err)
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    def disk_full(info):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ct2_module, "readme", disk_full)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    with pytest.raises(UserError, match="No space left on device"):
        export(ExportConfig(path=tiny_model, out=str(out), force=True))
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(out) == ["keep.txt"]


def test_unexportable_features_are_refused(tiny_model, monkeypatch, tmp_path):
    monkeypatch.delitem(ct2_module.ACTIVATIONS, "relu")  # as if CTranslate2 had no exact relu
    with pytest.raises(UserError, match="no exact CTranslate2 equivalent"):
        export(ExportConfig(path=tiny_model, out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
