"""The tokenizer(s) of a data directory, learned from the training split: SentencePiece or a word list.

SentencePiece models are trained on the training text of their language(s) (one joined model,
or one per language), at most --spm-train-sentences lines of each (nmt.data.spm_sample); a word
vocabulary keeps the most frequent words of the whole training text, counted chunk by chunk
(in --workers processes), so its memory grows with the number of distinct words only.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections import Counter

from sentencepiece import sentencepiece_model_pb2

from nmt.config import PreprocessConfig
from nmt.data.parallel import ordered_map
from nmt.data.preprocess_mono import MASK_PIECE
from nmt.data.rawtext import RawChunk, read_chunks, split_lines
from nmt.data.spm_sample import training_text
from nmt.data.tokenizer import SentencePieceTokenizer, WordTokenizer, build_word_vocab, train_sentencepiece


def langs_of(cfg: PreprocessConfig) -> tuple[str, ...]:
    """The languages whose files are read: the source only with --only-source, else source and target."""
    return (cfg.source_lang,) if cfg.only_source else (cfg.source_lang, cfg.target_lang)


def train_tokenizers(cfg: PreprocessConfig, work: str, train_lines: int) -> dict:
    """Train the tokenizer(s) into `work` from the training split of `train_lines` lines; returns
    meta's "tokenizer" entry plus 'objects' {lang: tokenizer}."""
    langs = langs_of(cfg)
    train = {lang: f"{cfg.trainpref}.{lang}" for lang in langs}
    groups = {"": langs} if cfg.joined_dictionary or cfg.only_source else {f".{lang}": (lang,) for lang in langs}
    if cfg.tokenizer == "sentencepiece":
        entry, objects = _train_sentencepiece(cfg, work, train, groups, train_lines)
    else:
        entry, objects = _word_vocabularies(cfg, work, train, groups)
    return {**entry, "objects": objects}


def _train_sentencepiece(cfg: PreprocessConfig, work: str, train: dict, groups: dict, lines: int) -> tuple:
    files, vocab_files, objects = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix=".spm-", dir=work) as tmp:  # the sample, if any, goes with it
        text = training_text(train, lines, cfg.spm_train_sentences, cfg.seed, tmp)
        for suffix, group in groups.items():
            prefix = os.path.join(work, f"spm{suffix}")
            train_sentencepiece(
                [text[lang] for lang in group],
                prefix,
                cfg.vocab_size,
                cfg.spm_model_type,
                cfg.character_coverage,
                cfg.input_sentence_size,
                cfg.seed,
                user_defined_symbols=(MASK_PIECE,) if cfg.only_source else (),
            )
            tok = SentencePieceTokenizer(_portable(prefix + ".model", [train[lang] for lang in group]))
            for lang in group:
                files[lang], vocab_files[lang], objects[lang] = f"spm{suffix}.model", f"spm{suffix}.vocab", tok
    entry = {
        "type": "sentencepiece",
        "model_type": cfg.spm_model_type,
        "character_coverage": cfg.character_coverage,
        "input_sentence_size": cfg.input_sentence_size,
        "seed": cfg.seed,
        "files": files,
        "vocab_files": vocab_files,
    }
    return entry, objects


def _portable(path: str, inputs: list[str]) -> bytes:
    """Rewrite the SentencePiece model at `path` so that the training spec it records names the model
    file alone, not the temporary work dir (a random name), and the training files as given, not a
    temporary sample of them; return its bytes. The same input then gives the same file."""
    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    proto.trainer_spec.model_prefix = os.path.basename(proto.trainer_spec.model_prefix)
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.extend(inputs)
    data = proto.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return data


def count_words(_: None, chunk: RawChunk) -> list[Counter]:
    """Word counts of each file's lines of `chunk` (tokens separated by whitespace)."""
    return [Counter(word for line in lines for word in line.split()) for lines in split_lines(chunk)]


def _word_vocabularies(cfg: PreprocessConfig, work: str, train: dict, groups: dict) -> tuple:
    langs = list(train)
    counts = {lang: Counter() for lang in langs}
    chunks = functools.partial(read_chunks, [train[lang] for lang in langs], cfg.chunk_lines)
    for chunk_counts in ordered_map(count_words, None, chunks, cfg.workers):
        for lang, c in zip(langs, chunk_counts):
            counts[lang].update(c)
    files, objects = {}, {}
    for suffix, group in groups.items():
        words, kept_counts = build_word_vocab(sum((counts[lang] for lang in group), Counter()), cfg.vocab_size)
        tok = WordTokenizer(words)
        name = f"dict{suffix}.txt"
        with open(os.path.join(work, name), "wb") as f:
            f.write(tok.to_bytes(kept_counts))
        for lang in group:
            files[lang], objects[lang] = name, tok
    return {"type": "word", "files": files}, objects
