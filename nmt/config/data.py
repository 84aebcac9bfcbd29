"""Configs of the data commands: `nmt preprocess` and `nmt toy-data`, with their checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require, require_finite
from nmt.fileio import check_output

TOY_PAIRS = ("en-fr", "en-ko", "ko-en")  # the built-in corpora of `nmt toy-data` (nmt.data.toy_data)


@dataclass
class PreprocessConfig:
    """`nmt preprocess`: train SentencePiece and binarize parallel text (or, with `only_source`, the text
    of one language) into a data directory."""

    source_lang: str = opt(help="Source language suffix, e.g. en.")
    trainpref: str = opt(help="Training files prefix: PREFIX.SRC and PREFIX.TGT.")
    destdir: str = opt(help="Output data directory.")
    target_lang: Optional[str] = opt(None, "Target language suffix, e.g. de (required unless --only-source).")
    only_source: bool = opt(
        False,
        "Monolingual data for --task language_modeling and masked_lm: the PREFIX.SRC files only, one "
        "SentencePiece model with the symbol <mask>.",
    )
    validpref: Optional[str] = opt(None, "Validation files prefix.")
    testpref: list[str] = opt(help="Test prefixes, comma-separated (splits test, test1, ...).", factory=list)
    vocab_size: int = opt(8000, "Vocabulary size per language (the joint size with --joined-dictionary).")
    joined_dictionary: bool = opt(False, "One vocabulary for both languages.")
    trim_target_vocab: bool = opt(
        False,
        "With --joined-dictionary: number the pieces of the target training text first and give the model "
        "an output layer over those only.",
    )
    spm_model_type: str = opt("unigram", "SentencePiece model: unigram | bpe.")
    tokenizer: str = opt("sentencepiece", "sentencepiece, or none for text already tokenized (space-separated).")
    max_len: int = opt(256, "Drop training pairs with more tokens than this on either side.")
    max_len_ratio: float = opt(9.0, "Drop training pairs whose longer side is this many times the shorter.")
    workers: int = opt(1, "Processes encoding text chunks in parallel (the output does not depend on it).")
    chunk_lines: int = opt(
        4096, "Lines read and encoded at a time (per process): memory grows with this, not with the corpus."
    )
    force: bool = opt(False, "Replace an existing non-empty --destdir.")
    character_coverage: float = opt(1.0, "SentencePiece: share of characters kept (lower for large alphabets).")
    spm_train_sentences: int = opt(
        2_000_000,
        "SentencePiece learns from at most this many lines of each language's training text: a seeded sample "
        "of a larger corpus, every line of a smaller one.",
    )
    input_sentence_size: int = opt(
        1_000_000, "SentencePiece's own seeded sample of those lines (both languages together): at most this many."
    )
    seed: int = opt(1, "Seed of SentencePiece's training sample (and, plus k, of the k-th sampled copy).")
    subword_samples: int = opt(
        0, "Also write this many copies of train with sampled segmentations; training takes one per epoch."
    )
    subword_alpha: float = opt(
        0.3, "Sampling of those copies: unigram smoothing (smaller, more varied) or BPE-dropout rate."
    )


def check_preprocess(cfg: PreprocessConfig) -> None:
    """Every impossible `nmt preprocess` setting is a UserError naming the flag."""
    choices = {"spm_model_type": ("unigram", "bpe"), "tokenizer": ("sentencepiece", "none")}
    for key, valid in choices.items():
        flag = "--" + key.replace("_", "-")
        require(getattr(cfg, key) in valid, f"{flag} {getattr(cfg, key)!r} is not one of: {', '.join(valid)}")
    if cfg.only_source:
        _check_only_source(cfg)
    else:
        require(cfg.target_lang is not None, "--target-lang (-t) is required, or --only-source for one language")
        require(cfg.source_lang != cfg.target_lang, f"--source-lang and --target-lang are both {cfg.source_lang!r}")
    require(cfg.vocab_size > 4, f"--vocab-size {cfg.vocab_size} leaves no room beyond the 4 special symbols")
    for key in ("max_len", "workers", "chunk_lines", "spm_train_sentences", "input_sentence_size"):
        require(getattr(cfg, key) >= 1, f"--{key.replace('_', '-')} must be at least 1, got {getattr(cfg, key)}")
    # SentencePiece takes an unsigned 32-bit seed
    require(0 <= cfg.seed < 2**32, f"--seed must be between 0 and 2**32 - 1, got {cfg.seed}")
    require(cfg.max_len_ratio > 0, f"--max-len-ratio must be positive, got {cfg.max_len_ratio}")
    require(0 < cfg.character_coverage <= 1, f"--character-coverage must be in (0, 1], got {cfg.character_coverage}")
    require(cfg.subword_samples >= 0, f"--subword-samples must be 0 or more, got {cfg.subword_samples}")
    require(
        not cfg.subword_samples or cfg.tokenizer == "sentencepiece",
        "--subword-samples needs --tokenizer sentencepiece (pre-tokenized words have one segmentation)",
    )
    require(
        not cfg.trim_target_vocab or cfg.joined_dictionary,
        "--trim-target-vocab needs --joined-dictionary (a separate target vocabulary is the target's own)",
    )
    require(
        not cfg.subword_samples or 0 < cfg.subword_alpha <= 1,
        f"--subword-alpha must be in (0, 1], got {cfg.subword_alpha}",
    )
    require_finite(cfg)
    check_output(cfg.destdir, "--destdir", "dir")


def _check_only_source(cfg: PreprocessConfig) -> None:
    """--only-source refuses the flags that only make sense for a pair of languages."""
    require(
        cfg.target_lang is None,
        f"--only-source writes one language; drop --target-lang (-t) {cfg.target_lang!r} or --only-source",
    )
    require(cfg.tokenizer == "sentencepiece", "--only-source needs --tokenizer sentencepiece (for its <mask> piece)")
    ratio_default = PreprocessConfig.__dataclass_fields__["max_len_ratio"].default
    pair_only = {
        "--trim-target-vocab": cfg.trim_target_vocab,
        "--max-len-ratio": cfg.max_len_ratio != ratio_default,
    }
    for flag, given in pair_only.items():
        require(not given, f"{flag} does not apply to --only-source (one language)")
    require(
        cfg.subword_samples == 0,
        "--subword-samples is not available with --only-source (the language-model tasks read the train split only)",
    )


@dataclass
class ToyDataConfig:
    """`nmt toy-data`: a built-in corpus (English->French or English<->Korean), written from a template grammar."""

    out: str = opt(help="Output directory: train/valid/test files with the pair's language suffixes (.en, .fr).")
    pairs: int = opt(50000, "Sentence pairs in total (train + valid + test).")
    seed: int = opt(1, "Random seed; the same seed gives the same files.")
    valid: Optional[int] = opt(None, "Validation pairs (none: 1% of the pairs, at least a few hundred).")
    test: Optional[int] = opt(None, "Test pairs (none: as many as validation).")
    pair: str = opt("en-fr", "Language pair: en-fr, en-ko or ko-en (the same files as en-ko).")


def check_toy_data(cfg: ToyDataConfig) -> None:
    """Every impossible `nmt toy-data` setting is a UserError naming the flag."""
    require(cfg.pair in TOY_PAIRS, f"--pair {cfg.pair!r} is not one of: {', '.join(TOY_PAIRS)}")
