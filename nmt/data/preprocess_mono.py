"""`nmt preprocess --only-source`: the text of one language -> a monolingual data directory.

What the language-model tasks (nmt.tasks.language_modeling, nmt.tasks.masked_lm) read: one
SentencePiece model trained on LANG whose vocabulary holds the piece `<mask>` (MASK_PIECE, right
after the four special ids), the splits `{split}.LANG.bin/.idx` (each sentence's pieces; readers
append EOS, as on the source side of parallel data), and a meta.json shaped like a parallel one
with LANG on both sides, `"joined_dictionary": true`, `"monolingual": true` and the tasks it
serves. Cleaning drops empty training lines and those longer than --max-len pieces. The caller
(nmt.data.preprocess) checks the inputs, trains the tokenizer and publishes the directory.
"""

from __future__ import annotations

import json
import os

from nmt.config import PreprocessConfig
from nmt.data.binarize import FORMAT_VERSION, binarize_text
from nmt.data.tokenizer import BOS, EOS, PAD, UNK
from nmt.errors import UserError

MASK_PIECE = "<mask>"
MONOLINGUAL_TASKS = ("language_modeling", "masked_lm")  # what meta.json's "tasks" lists for such a directory


def build_monolingual(cfg: PreprocessConfig, splits: list[tuple[str, str]], work: str, tok: dict) -> dict:
    """Write the binarized splits of language cfg.source_lang and meta.json into `work`, which already
    holds the tokenizer `tok` (meta's "tokenizer" entry plus 'objects' {lang: tokenizer}); returns the meta."""
    lang = cfg.source_lang
    tokenizer = tok.pop("objects")[lang]
    if tokenizer.piece_to_id(MASK_PIECE) == UNK:  # trained with it as a user-defined symbol: never happens
        raise UserError(f"the SentencePiece model has no {MASK_PIECE} piece")
    vocab_size = tokenizer.vocab_size
    dtype = "uint16" if vocab_size <= 1 << 16 else "int32"
    split_meta = {}
    for split, prefix in splits:
        stats = binarize_text(
            f"{prefix}.{lang}",
            os.path.join(work, f"{split}.{lang}"),
            lang,
            tokenizer,
            dtype,
            clean=split == "train",
            max_len=cfg.max_len,
            workers=cfg.workers,
            chunk_lines=cfg.chunk_lines,
        )
        if split == "train" and stats.kept == 0:
            why = ", ".join(f"{k}: {v}" for k, v in stats.dropped.items() if k != "ratio")
            raise UserError(
                f"the training set is empty after cleaning: all {stats.lines} lines were dropped ({why}); "
                "check the input or raise --max-len"
            )
        split_meta[split] = {
            "lines": stats.lines,
            "kept": stats.kept,
            "dropped": stats.dropped,
            "tokens": stats.tokens,
            "unknown": stats.unknown,
            "files": {lang: os.path.abspath(f"{prefix}.{lang}")},
        }
        if split != "train":
            split_meta[split]["flagged"] = stats.flagged
    meta = {
        "format_version": FORMAT_VERSION,
        "source_lang": lang,
        "target_lang": lang,
        "joined_dictionary": True,
        "vocab_size": {lang: vocab_size},
        "special_ids": {"pad": PAD, "unk": UNK, "bos": BOS, "eos": EOS},
        "tokenizer": {**tok, "user_defined_symbols": [MASK_PIECE]},
        "dtype": dtype,
        "cleaning": {"max_len": cfg.max_len},
        "splits": split_meta,
        "monolingual": True,
        "tasks": list(MONOLINGUAL_TASKS),
    }
    with open(os.path.join(work, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return meta
