"""`nmt preprocess --only-source`: the monolingual data directory the language-model tasks read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from monodata import MONO_VOCAB, make_mono_dir
from test_preprocess import GOOD, run_cli, snapshot

from nmt.config import PreprocessConfig, check_preprocess
from nmt.data.dataset import TokenArray, read_meta
from nmt.data.preprocess_mono import MASK_PIECE
from nmt.data.tokenizer import SentencePieceTokenizer, load_tokenizers, read_blobs
from nmt.errors import UserError


@pytest.fixture(scope="module")
def mono_dir(toy_raw_dir: Path, tmp_path_factory) -> Path:
    return make_mono_dir(toy_raw_dir, tmp_path_factory.mktemp("mono") / "data-bin")


def test_meta_follows_the_monolingual_contract(mono_dir: Path) -> None:
    meta = json.loads((mono_dir / "meta.json").read_text())
    assert (meta["source_lang"], meta["target_lang"], meta["joined_dictionary"]) == ("en", "en", True)
    assert meta["vocab_size"] == {"en": MONO_VOCAB}
    assert meta["monolingual"] is True and meta["tasks"] == ["language_modeling", "masked_lm"]
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert meta["tokenizer"]["files"] == {"en": "spm.model"}
    assert meta["tokenizer"]["user_defined_symbols"] == [MASK_PIECE]
    assert meta["cleaning"] == {"max_len": 256}
    assert {s: v["lines"] for s, v in meta["splits"].items()} == {"train": 1600, "valid": 200}
    assert sorted(p.name for p in mono_dir.iterdir()) == [
        "meta.json",
        "spm.model",
        "spm.vocab",
        "train.en.bin",
        "train.en.idx",
        "valid.en.bin",
        "valid.en.idx",
    ]


def test_splits_hold_the_encoded_lines_and_mask_is_one_piece(mono_dir: Path, toy_raw_dir: Path) -> None:
    meta = read_meta(str(mono_dir))
    tok, tgt_tok = load_tokenizers(meta, read_blobs(str(mono_dir), meta))
    assert tok is tgt_tok and isinstance(tok, SentencePieceTokenizer)
    assert tok.piece_to_id(MASK_PIECE) == 4  # the first id after the specials
    assert tok.encode(f"a {MASK_PIECE} b")[1:-1] in ([4], [tok.piece_to_id("▁"), 4])
    lines = (toy_raw_dir / "valid.en").read_text(encoding="utf-8").splitlines()
    text = TokenArray.open(str(mono_dir / "valid.en"), meta["dtype"])
    assert len(text) == 200 and [text[i].tolist() for i in range(200)] == [tok.encode(x) for x in lines]
    assert meta["splits"]["valid"]["tokens"] == {"en": int(text.sizes.sum())}


def test_the_same_input_gives_byte_identical_output(toy_raw_dir: Path, mono_dir: Path, tmp_path: Path) -> None:
    again = make_mono_dir(toy_raw_dir, tmp_path / "again")
    a = {p.name: p.read_bytes() for p in mono_dir.iterdir()}
    b = {p.name: p.read_bytes() for p in again.iterdir()}
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_translation_dirs_list_their_task(toy_data_dir: Path) -> None:
    meta = read_meta(str(toy_data_dir))
    assert meta["tasks"] == ["translation"] and "monolingual" not in meta


def test_training_lines_are_cleaned_without_a_ratio(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.en").write_text("\n".join([*GOOD, "", " ".join(["ab"] * 100)]) + "\n")
    (raw / "valid.en").write_text("\n".join(["", *GOOD[:2]]) + "\n")
    meta = make_mono_dir(raw, tmp_path / "d", vocab_size=36, max_len=60)  # GOOD lines: < 30 pieces
    train, valid = meta / "train.en.idx", meta / "valid.en.idx"
    m = read_meta(str(meta))
    assert m["splits"]["train"]["dropped"] == {"empty": 1, "too_long": 1, "ratio": 0}
    assert m["splits"]["train"]["kept"] == 4 and np.fromfile(train, dtype=np.int64).shape == (5,)
    assert m["splits"]["valid"]["flagged"]["empty"] == 1 and np.fromfile(valid, dtype=np.int64).shape == (4,)


BASE = ["preprocess", "-s", "en", "--vocab-size", "30"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["-t", "fr", "--only-source"],
            "--only-source writes one language; drop --target-lang (-t) 'fr' or --only-source",
        ),
        ([], "--target-lang (-t) is required, or --only-source for one language"),
        (["--only-source", "--max-len-ratio", "3"], "--max-len-ratio does not apply to --only-source (one language)"),
        (["--only-source", "--trim-target-vocab", "--joined-dictionary"], "--trim-target-vocab does not apply"),
        (["--only-source", "--tokenizer", "none"], "--only-source needs --tokenizer sentencepiece"),
        (["--only-source", "--subword-samples", "2"], "--subword-samples is not available with --only-source"),
    ],
)
def test_impossible_flag_combinations_are_one_line(extra, message, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "train.en").write_text("\n".join(GOOD) + "\n")
    before = snapshot(tmp_path)
    args = BASE + extra + ["--trainpref", str(tmp_path / "train"), "--destdir", str(tmp_path / "out")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert snapshot(tmp_path) == before


def test_the_check_alone_accepts_a_plain_only_source_config() -> None:
    check_preprocess(PreprocessConfig(source_lang="en", only_source=True, trainpref="t", destdir="d"))
    with pytest.raises(UserError):
        check_preprocess(PreprocessConfig(source_lang="en", trainpref="t", destdir="d"))


def test_only_source_through_the_cli(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "train.en").write_text("\n".join(GOOD) + "\n")
    args = BASE + ["--only-source", "--trainpref", str(tmp_path / "train"), "--destdir", str(tmp_path / "out")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert "empty/long" in err and "tokens en" in err
    assert read_meta(str(tmp_path / "out"))["tasks"] == ["language_modeling", "masked_lm"]


def test_an_empty_training_file_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "train.en").write_text("\n \n")
    args = BASE + ["--only-source", "--trainpref", str(tmp_path / "train"), "--destdir", str(tmp_path / "out")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 2 and err == f"error: the training set is empty: every line of {tmp_path / 'train.en'} is blank\n"
    assert not (tmp_path / "out").exists()
