from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from nmt.config import PreprocessConfig
from nmt.data.dataset import read_meta
from nmt.data.preprocess import preprocess
from nmt.data.tokenizer import (
    BOS,
    EOS,
    PAD,
    UNK,
    SentencePieceTokenizer,
    WordTokenizer,
    build_word_vocab,
    load_tokenizers,
    read_blobs,
    train_sentencepiece,
)
from nmt.errors import UserError


def _toy_tokenizers(data_dir: Path):
    meta = read_meta(str(data_dir))
    return load_tokenizers(meta, read_blobs(str(data_dir), meta))


def test_sentencepiece_round_trip(toy_data_dir: Path, toy_raw_dir: Path) -> None:
    src_tok, tgt_tok = _toy_tokenizers(toy_data_dir)
    assert src_tok is tgt_tok  # joined dictionary: one model
    assert src_tok.vocab_size == 300
    for lang in ("en", "fr"):
        for line in (toy_raw_dir / f"valid.{lang}").read_text(encoding="utf-8").splitlines():
            ids = src_tok.encode(line)
            assert ids and all(3 < i < 300 for i in ids)
            assert src_tok.decode(ids) == line


def test_decode_stops_at_eos_and_skips_specials(toy_data_dir: Path) -> None:
    tok, _ = _toy_tokenizers(toy_data_dir)
    ids = tok.encode("The red car sees my dog.")
    assert tok.decode([BOS] + ids + [EOS] + ids + [PAD]) == "The red car sees my dog."
    assert tok.decode([PAD, BOS] + ids[:2] + [PAD]) == tok.decode(ids[:2])
    assert tok.pieces([PAD, UNK, BOS, EOS]) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert "".join(tok.pieces(ids)).replace("▁", " ").strip() == "The red car sees my dog."
    assert UNK in tok.encode("ω")  # a character never seen in training


def test_vocab_size_errors(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("hello world\nthe cat sat\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"--vocab-size 1000 is too large .* use --vocab-size \d+ or less"):
        train_sentencepiece([str(text)], str(tmp_path / "m"), 1000)
    with pytest.raises(UserError, match=r"--vocab-size 8 is too small.* use --vocab-size \d+ or more"):
        train_sentencepiece([str(text)], str(tmp_path / "m"), 8)


def test_build_word_vocab_order_and_cap() -> None:
    counts = Counter({"b": 3, "a": 3, "c": 5, "d": 1, "<unk>": 7})
    words, kept = build_word_vocab(counts, 7)
    assert words == ["<pad>", "<unk>", "<s>", "</s>", "c", "a", "b"]  # frequency, ties by string
    assert kept == {"c": 5, "a": 3, "b": 3}


def test_word_tokenizer() -> None:
    tok = WordTokenizer(["<pad>", "<unk>", "<s>", "</s>", "le", "chat", "."])
    assert tok.vocab_size == 7
    assert tok.encode("le  chat noir .") == [4, 5, UNK, 6]
    assert tok.decode([BOS, 4, 5, 6, EOS, 4]) == "le chat ."
    assert tok.pieces([4, UNK, 99]) == ["le", "<unk>", "<unk>"]
    again = WordTokenizer.from_bytes(tok.to_bytes({"le": 2}))
    assert again.words == tok.words
    with pytest.raises(UserError):
        WordTokenizer(["le", "chat"])


def test_load_tokenizers_per_language(toy_raw_dir: Path, tmp_path: Path) -> None:
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(toy_raw_dir / "train"),
        destdir=str(tmp_path / "d"),
        vocab_size=150,
        joined_dictionary=False,
    )
    meta = preprocess(cfg, console=Console(quiet=True))
    assert meta["tokenizer"]["files"] == {"en": "spm.en.model", "fr": "spm.fr.model"}
    blobs = read_blobs(str(tmp_path / "d"), meta)
    assert sorted(blobs) == ["spm.en.model", "spm.fr.model"]
    src, tgt = load_tokenizers(meta, blobs)
    assert src is not tgt
    assert isinstance(src, SentencePieceTokenizer) and src.vocab_size == tgt.vocab_size == 150
    assert src.decode(src.encode("The cat.")) == "The cat."
    (tmp_path / "d" / "spm.fr.model").unlink()
    with pytest.raises(UserError, match="spm.fr.model"):
        read_blobs(str(tmp_path / "d"), meta)


def _normalized(line: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", line).split())


def test_real_corpus_round_trip(multi30k_dir: Path, tmp_path: Path) -> None:
    """SentencePiece on 500 real lines per side: decoding gives the line back, up to NFKC."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for split in ("train", "valid"):
        for lang in ("en", "de"):
            with open(multi30k_dir / f"{split}.{lang}", encoding="utf-8") as f:
                head = [next(f) for _ in range(500)]
            (raw / f"{split}.{lang}").write_text("".join(head), encoding="utf-8")
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="de",
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        destdir=str(tmp_path / "d"),
        vocab_size=1000,
        joined_dictionary=True,
    )
    preprocess(cfg, console=Console(quiet=True))
    tok, _ = _toy_tokenizers(tmp_path / "d")
    train_chars = set((raw / "train.en").read_text(encoding="utf-8") + (raw / "train.de").read_text(encoding="utf-8"))
    for lang in ("en", "de"):
        lines = (raw / f"valid.{lang}").read_text(encoding="utf-8").splitlines()
        exact = 0
        for line in lines:
            back = tok.decode(tok.encode(line))
            if line == _normalized(line) and set(line) <= train_chars:
                assert back == line  # nothing for SentencePiece to normalize or miss
            exact += back == line
            if set(line) <= train_chars:
                assert back == _normalized(line)
        assert exact >= 0.95 * len(lines)
