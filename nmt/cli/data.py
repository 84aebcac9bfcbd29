"""`nmt preprocess` and `nmt toy-data`."""

from __future__ import annotations

import sys
from typing import Optional

from nmt.cli.app import app, option
from nmt.config import PreprocessConfig, ToyDataConfig
from nmt.data.preprocess import preprocess as run_preprocess
from nmt.data.toy_data import write_toy_data

P = PreprocessConfig


@app.command()
def preprocess(
    source_lang: str = option(P, "source_lang", "--source-lang", "-s"),
    target_lang: Optional[str] = option(P, "target_lang", "--target-lang", "-t"),
    only_source: bool = option(P, "only_source"),
    trainpref: str = option(P, "trainpref"),
    destdir: str = option(P, "destdir"),
    validpref: Optional[str] = option(P, "validpref"),
    testpref: str = option(P, "testpref", default=""),
    vocab_size: int = option(P, "vocab_size"),
    joined_dictionary: bool = option(P, "joined_dictionary"),
    trim_target_vocab: bool = option(P, "trim_target_vocab"),
    spm_model_type: str = option(P, "spm_model_type"),
    tokenizer: str = option(P, "tokenizer"),
    max_len: int = option(P, "max_len"),
    max_len_ratio: float = option(P, "max_len_ratio"),
    workers: int = option(P, "workers"),
    chunk_lines: int = option(P, "chunk_lines"),
    character_coverage: float = option(P, "character_coverage"),
    spm_train_sentences: int = option(P, "spm_train_sentences"),
    input_sentence_size: int = option(P, "input_sentence_size"),
    seed: int = option(P, "seed"),
    subword_samples: int = option(P, "subword_samples"),
    subword_alpha: float = option(P, "subword_alpha"),
    force: bool = option(P, "force"),
) -> None:
    """Train SentencePiece and binarize parallel text into a data directory.

    With --only-source: the text of one language, for --task language_modeling and masked_lm.
    """
    values = dict(locals())
    values["testpref"] = [p for p in testpref.split(",") if p]
    run_preprocess(PreprocessConfig(**values))


@app.command("toy-data")
def toy_data(
    out: str = option(ToyDataConfig, "out"),
    pairs: int = option(ToyDataConfig, "pairs"),
    seed: int = option(ToyDataConfig, "seed"),
    valid: Optional[int] = option(ToyDataConfig, "valid"),
    test: Optional[int] = option(ToyDataConfig, "test"),
    pair: str = option(ToyDataConfig, "pair"),
) -> None:
    """Write a built-in toy corpus: English->French, or English<->Korean (works offline)."""
    cfg = ToyDataConfig(out=out, pairs=pairs, seed=seed, valid=valid, test=test, pair=pair)
    sizes = write_toy_data(cfg)
    print(" ".join(f"{k}={v}" for k, v in sizes.items()), file=sys.stderr)
