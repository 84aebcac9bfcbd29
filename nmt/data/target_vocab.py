"""Trim the output layer of a joined dictionary to the pieces the target side uses.

A joined dictionary (one SentencePiece model or word list for both languages) lets source and
target share one embedding matrix, but the decoder then scores every piece of both languages at
every step, though many occur only on the source side: with 8,000 joint pieces for en-fr the
French training text uses about 5,500. `nmt preprocess --trim-target-vocab` renumbers the joint
dictionary so that the K pieces of the target training text (the sampled segmentations too)
come first, then the rest; the encoder keeps all V pieces, the decoder's output layer covers the
first K only (with shared embeddings: their first K rows).

Renumbering changes ids, never segmentations: SentencePiece picks pieces by their scores, which
move with them. Every binarized array is rewritten through the same old -> new id map; on the
evaluation splits a target piece outside the first K (one the training text never produced, so
the model could not have learned it) becomes UNK, counted with the unknowns.
"""

from __future__ import annotations

import os

import numpy as np
from sentencepiece import sentencepiece_model_pb2

from nmt.data.tokenizer import SPECIAL_PIECES, UNK

BLOCK = 1 << 22  # tokens per read: memory stays constant in the corpus size


def _blocks(path: str, dtype: str):
    """The tokens of a `.bin` file, BLOCK at a time (plain reads: the pages a memory map touches
    would stay resident while it is open)."""
    with open(path, "rb") as f:
        while True:
            block = np.fromfile(f, dtype=dtype, count=BLOCK)
            if not len(block):
                return
            yield block


def used_ids(paths: list[str], dtype: str, vocab_size: int) -> np.ndarray:
    """(V,) bool: which ids occur in any of the `.bin` files (the special ids always count)."""
    used = np.zeros(vocab_size, dtype=bool)
    used[: len(SPECIAL_PIECES)] = True
    for path in paths:
        for block in _blocks(path, dtype):
            used[np.unique(block)] = True
    return used


def renumbering(used: np.ndarray) -> tuple[np.ndarray, int]:
    """(new_of_old (V,) int64, K): used ids first, then the others, each in their old order.

    The special ids 0..3 are used, so they keep their numbers.
    """
    old_of_new = np.concatenate([np.flatnonzero(used), np.flatnonzero(~used)])
    new_of_old = np.empty_like(old_of_new)
    new_of_old[old_of_new] = np.arange(len(old_of_new))
    return new_of_old, int(used.sum())


def remap_file(path: str, dtype: str, new_of_old: np.ndarray, limit: int | None = None) -> int:
    """Rewrite a `.bin` file in place through `new_of_old`; with `limit`, new ids >= limit become
    UNK. Returns how many tokens became UNK."""
    n_unk = 0
    with open(path + ".renumbered", "wb") as f:
        for block in _blocks(path, dtype):
            out = new_of_old[block]
            if limit is not None:
                outside = out >= limit
                n_unk += int(outside.sum())
                out[outside] = UNK
            f.write(out.astype(dtype).tobytes())
    os.replace(path + ".renumbered", path)
    return n_unk


def reorder_sentencepiece(model: bytes, new_of_old: np.ndarray) -> bytes:
    """A serialized SentencePiece model with its pieces (and their scores and types) renumbered."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    pieces = [sentencepiece_model_pb2.ModelProto.SentencePiece() for _ in proto.pieces]
    for old, piece in enumerate(proto.pieces):
        pieces[int(new_of_old[old])].CopyFrom(piece)
    del proto.pieces[:]
    proto.pieces.extend(pieces)
    return proto.SerializeToString()


def reorder_lines(text: bytes, new_of_old: np.ndarray) -> bytes:
    """A vocabulary file with one line per id (spm.vocab, dict.txt) renumbered the same way."""
    lines = text.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = [""] * len(lines)
    for old, line in enumerate(lines):
        out[int(new_of_old[old])] = line
    return "".join(line + "\n" for line in out).encode("utf-8")
