"""Bad numeric flags of every command end in one `error:` line naming the flag, exit code 2."""

from __future__ import annotations

import pytest
from helpers import cli

TINY = [
    "--encoder-layers",
    "1",
    "--decoder-layers",
    "1",
    "--encoder-embed-dim",
    "32",
    "--decoder-embed-dim",
    "32",
    "--encoder-ffn-embed-dim",
    "64",
    "--decoder-ffn-embed-dim",
    "64",
    "--encoder-attention-heads",
    "2",
    "--decoder-attention-heads",
    "2",
    "--max-tokens",
    "600",
    "--threads",
    "1",
    "--max-update",
    "1",
    "--no-save",
]


TRAIN = [
    ("--max-tokens", "0", "--max-tokens must be > 0"),
    ("--max-tokens", "many", "--max-tokens: cannot read 'many'"),
    ("--batch-size", "0", "--batch-size must be > 0"),
    ("--pad-to-multiple", "0", "--pad-to-multiple must be >= 1 (1 = off)"),
    ("--row-sizes", "0", "--row-sizes must be >= 1"),
    ("--update-freq", "0", "--update-freq must be >= 1"),
    ("--lr", "-1", "--lr must be a finite number > 0"),
    ("--lr", "nan", "--lr: cannot read 'nan'"),
    ("--warmup-updates", "-1", "--warmup-updates must be >= 0"),
    ("--label-smoothing", "1.5", "--label-smoothing must be in [0, 1)"),
    ("--label-smoothing", "inf", "--label-smoothing must be in [0, 1)"),
    ("--clip-norm", "-1", "--clip-norm must be a finite number >= 0"),
    ("--adam-betas", "0.9", "--adam-betas must be two numbers in [0, 1)"),
    ("--lr-shrink", "1.5", "--lr-shrink must be in (0, 1)"),
    ("--threads", "0", "--threads must be > 0"),
    ("--num-workers", "-1", "--num-workers must be >= 0"),
    ("--max-epoch", "-1", "--max-epoch must be >= 0"),
    ("--log-interval", "0", "--log-interval must be > 0"),
    ("--save-interval-updates", "-1", "--save-interval-updates must be >= 0"),
    ("--eval-bleu-beam", "0", "--eval-bleu-beam must be >= 1"),
    ("--encoder-embed-dim", "33", "--encoder-embed-dim 33 must be a multiple of --encoder-attention-heads 2"),
    ("--lr", "inf", "--lr"),
    ("--seed", "-1", "--seed"),
    ("--patience", "-5", "--patience"),
    ("--keep-last-epochs", "-3", "--keep-last-epochs"),
    ("--keep-interval-updates", "-2", "--keep-interval-updates"),
    ("--momentum", "-1", "--momentum"),
    ("--adam-eps", "inf", "--adam-eps"),
    ("--weight-decay", "inf", "--weight-decay"),
    ("--warmup-init-lr", "inf", "--warmup-init-lr"),
    ("--dropout", "1.5", "--dropout"),
    ("--attention-dropout", "-1", "--attention-dropout"),
    ("--encoder-layers", "0", "--encoder-layers"),
    ("--decoder-ffn-embed-dim", "0", "--decoder-ffn-embed-dim"),
    ("--max-source-positions", "0", "--max-source-positions"),
]

GENERATE = [
    ("--beam", "-1", "--beam must be >= 1"),
    ("--beam", "0", "--beam must be >= 1"),
    ("--nbest", "0", "--nbest must be between 1 and --beam"),
    ("--lenpen", "nan", "--lenpen must be a finite number"),
    ("--lenpen", "inf", "--lenpen must be a finite number"),
    ("--max-len-a", "-1", "--max-len-a must be a finite number >= 0"),
    ("--max-len-b", "-1", "--max-len-b must be >= 0"),
    ("--min-len", "-1", "--min-len must be >= 0"),
    ("--no-repeat-ngram-size", "-1", "--no-repeat-ngram-size must be >= 0"),
    ("--unkpen", "nan", "--unkpen must be a finite number"),
    ("--temperature", "0", "--temperature must be a finite number > 0"),
    ("--temperature", "nan", "--temperature must be a finite number > 0"),
    ("--seed", "-1", "--seed must be between 0 and 2**63 - 1"),
    ("--seed", str(2**64), "--seed must be between 0 and 2**63 - 1"),
    ("--max-tokens", "0", "--max-tokens must be > 0"),
    ("--batch-size", "0", "--batch-size must be >= 1"),
    ("--threads", "0", "--threads must be >= 1"),
    ("--chunk-size", "0", "--chunk-size must be >= 1"),
    ("--sampling-topk", "0", "--sampling-topk must be >= 1"),
]

PREPROCESS = [
    ("--vocab-size", "0", "--vocab-size 0 leaves no room"),
    ("--max-len", "0", "--max-len must be at least 1"),
    ("--max-len-ratio", "0", "--max-len-ratio must be positive"),
    ("--max-len-ratio", "nan", "--max-len-ratio must be positive"),
    ("--workers", "0", "--workers must be at least 1"),
    ("--character-coverage", "0", "--character-coverage must be in (0, 1]"),
    ("--character-coverage", "nan", "--character-coverage must be in (0, 1]"),
    ("--input-sentence-size", "0", "--input-sentence-size must be at least 1"),
    ("--seed", "-1", "--seed must be between 0 and 2**32 - 1"),
    ("--seed", str(2**32), "--seed must be between 0 and 2**32 - 1"),
]

SCORE = [
    ("--metrics", "bleu,fast", "--metrics 'bleu,fast': choose from"),
    ("--metrics", "", "--metrics '': choose from"),
    ("--tokenize", "nope", "--tokenize 'nope': choose from"),
]

VISUALIZE = [
    ("--beam", "0", "--beam must be at least 1"),
    ("--max-pieces", "1", "--max-pieces at least 2"),
    ("--max-sentences", "0", "--max-sentences and --beam must be at least 1"),
    ("--layers", "0", "--layers: '0' must be 1-based"),
    ("--heads", "0-2", "--heads: '0-2' must be 1-based"),
    ("--format", "bmp", "--format 'bmp' is not supported"),
    ("--dpi", "0", "--dpi must be between 1 and 1200"),
]


@pytest.fixture
def model_path(tiny_model) -> str:
    return tiny_model


def assert_flag_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err[-1500:]
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flag, value, message", TRAIN)
def test_train_bad_flag(flag, value, message, toy_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", str(toy_data_dir), "--save-dir", str(tmp_path / "ckpt"), *TINY, flag, value]
    assert_flag_error(*cli(monkeypatch, capsys, *args), message)


@pytest.mark.parametrize("flag, value, message", GENERATE)
def test_generate_bad_flag(flag, value, message, model_path, tmp_path, monkeypatch, capsys):
    (tmp_path / "in.txt").write_text("a small cat\n", encoding="utf-8")
    args = ["generate", "--path", model_path, "--input", str(tmp_path / "in.txt"), "--device", "cpu", flag, value]
    assert_flag_error(*cli(monkeypatch, capsys, *args), message)


def test_generate_non_number_is_a_usage_error_naming_the_flag(model_path, tmp_path, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "generate", "--path", model_path, "--input", "-", "--beam", "wide")
    assert code == 2 and out == "" and "Invalid value for '--beam'" in err


@pytest.mark.parametrize("flag, value, message", PREPROCESS)
def test_preprocess_bad_flag(flag, value, message, toy_raw_dir, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "bin"
    args = [
        "preprocess",
        "-s",
        "en",
        "-t",
        "fr",
        "--trainpref",
        str(toy_raw_dir / "valid"),
        "--destdir",
        str(dest),
        "--vocab-size",
        "60",
        flag,
        value,
    ]
    assert_flag_error(*cli(monkeypatch, capsys, *args), message)
    assert not dest.exists()


@pytest.mark.parametrize("flag, value, message", SCORE)
def test_score_bad_flag(flag, value, message, toy_raw_dir, monkeypatch, capsys):
    ref = str(toy_raw_dir / "test.fr")
    assert_flag_error(*cli(monkeypatch, capsys, "score", "--sys", ref, "--ref", ref, flag, value), message)


@pytest.mark.parametrize("flag, value, message", VISUALIZE)
def test_visualize_attn_bad_flag(flag, value, message, model_path, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "attn"
    args = [
        "visualize-attn",
        "--path",
        model_path,
        "--source",
        "a small cat",
        "--out",
        str(out_dir),
        "--device",
        "cpu",
        flag,
        value,
    ]
    assert_flag_error(*cli(monkeypatch, capsys, *args), message)
    assert not out_dir.exists() or not any(out_dir.iterdir())
