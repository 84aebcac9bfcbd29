"""Encode parallel (or monolingual) text into flat token arrays, chunk by chunk, with cleaning statistics.

A split of one language is two files: `{split}.{lang}.bin`, every sentence's piece ids one after
another (uint16 or int32), and `{split}.{lang}.idx`, n+1 int64 offsets into it. Both are written
while the text streams through, so memory stays constant in the corpus size; chunks are encoded
by a pool of processes when asked, and results are consumed in input order.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import sentencepiece as spm

from nmt.data.tokenizer import UNK, AnyTokenizer, SentencePieceTokenizer

FORMAT_VERSION = 1  # of a data directory (meta.json + .bin/.idx); readers refuse newer ones
CHUNK_LINES = 4096
DROP_REASONS = ("empty", "too_long", "ratio")


@dataclass
class Encoded:
    """One chunk of encoded lines of one language: lengths (n,) int64 and the flat ids."""

    lens: np.ndarray
    flat: np.ndarray

    @classmethod
    def of(cls, ids: list[list[int]]) -> "Encoded":
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lens.sum()))
        return cls(lens, flat)

    def select(self, keep: np.ndarray) -> "Encoded":
        """Only the sentences where `keep` (n,) bool is True."""
        return Encoded(self.lens[keep], self.flat[np.repeat(keep, self.lens)])


def clean_mask(
    src_lens: np.ndarray, tgt_lens: np.ndarray, max_len: int, max_len_ratio: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Which pairs survive cleaning, and how many fail for each reason.

    A pair is dropped when a side is empty, else when a side has more than `max_len` pieces,
    else when the longer side is more than `max_len_ratio` times the shorter one. Each dropped
    pair counts under the first reason that applies.
    """
    empty = (src_lens == 0) | (tgt_lens == 0)
    too_long = ~empty & ((src_lens > max_len) | (tgt_lens > max_len))
    longer, shorter = np.maximum(src_lens, tgt_lens), np.maximum(np.minimum(src_lens, tgt_lens), 1)
    ratio = ~empty & ~too_long & (longer > max_len_ratio * shorter)
    keep = ~(empty | too_long | ratio)
    return keep, {"empty": int(empty.sum()), "too_long": int(too_long.sum()), "ratio": int(ratio.sum())}


class TokenWriter:
    """Appends sentences to `{prefix}.bin` and their offsets to `{prefix}.idx` as they come."""

    def __init__(self, prefix: str, dtype: str) -> None:
        self.dtype = np.dtype(dtype)
        self.bin = open(prefix + ".bin", "wb")
        self.idx = open(prefix + ".idx", "wb")
        self.total = 0
        self.idx.write(np.zeros(1, dtype=np.int64).tobytes())

    def add(self, enc: Encoded) -> None:
        self.bin.write(enc.flat.astype(self.dtype).tobytes())
        offsets = self.total + np.cumsum(enc.lens, dtype=np.int64)
        self.idx.write(offsets.tobytes())
        if len(offsets):
            self.total = int(offsets[-1])

    def close(self) -> None:
        self.bin.close()
        self.idx.close()


def read_pairs(src_path: str, tgt_path: str, chunk_lines: int = CHUNK_LINES) -> Iterator[tuple]:
    """Chunks (src_lines, tgt_lines) of stripped lines; lines end at '\\n' only.

    Both files must have the same number of lines (checked before binarizing).
    """
    with open(src_path, encoding="utf-8", newline="\n") as fs, open(tgt_path, encoding="utf-8", newline="\n") as ft:
        while True:
            src = [line.strip() for line in itertools.islice(fs, chunk_lines)]
            tgt = [line.strip() for line in itertools.islice(ft, chunk_lines)]
            if not src and not tgt:
                return
            yield src, tgt


def read_lines(path: str, chunk_lines: int = CHUNK_LINES) -> Iterator[tuple[list[str], list[str]]]:
    """Chunks (lines, []) of one file's stripped lines: a pair chunk with no target side, so that
    `encode_stream` encodes monolingual text with the same (parallel) machinery."""
    with open(path, encoding="utf-8", newline="\n") as f:
        while True:
            lines = [line.strip() for line in itertools.islice(f, chunk_lines)]
            if not lines:
                return
            yield lines, []


def encode_pairs(src_tok: AnyTokenizer, tgt_tok: AnyTokenizer, chunk: tuple) -> tuple[Encoded, Encoded]:
    """Encode one chunk of (source lines, target lines)."""
    src, tgt = chunk
    return Encoded.of(src_tok.encode_batch(src)), Encoded.of(tgt_tok.encode_batch(tgt))


# A pool worker's own tokenizers, set once by its initializer so chunks carry only text.
_worker_tokenizers: tuple = ()


def _worker_init(src_tok: AnyTokenizer, tgt_tok: AnyTokenizer) -> None:
    global _worker_tokenizers
    _worker_tokenizers = (src_tok, tgt_tok)


def _worker_encode(chunk: tuple) -> tuple[Encoded, Encoded]:
    return encode_pairs(*_worker_tokenizers, chunk)


def encode_stream(
    src_tok: AnyTokenizer, tgt_tok: AnyTokenizer, chunks: Iterable[tuple], workers: int = 1
) -> Iterator[tuple[Encoded, Encoded]]:
    """Encoded chunks in input order; `workers` > 1 encodes in that many processes.

    At most 2 * workers chunks are in flight, so a large corpus never piles up in memory.
    """
    if workers <= 1:
        for chunk in chunks:
            yield encode_pairs(src_tok, tgt_tok, chunk)
        return
    with mp.get_context().Pool(workers, initializer=_worker_init, initargs=(src_tok, tgt_tok)) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_worker_encode, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@dataclass
class SplitStats:
    """What happened to one split: per-language token and unknown counts, cleaning counts."""

    lines: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    flagged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))  # eval splits
    tokens: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)

    def count(self, lang: str, enc: Encoded) -> None:
        self.tokens[lang] = self.tokens.get(lang, 0) + int(enc.lens.sum())
        self.unknown[lang] = self.unknown.get(lang, 0) + int(np.count_nonzero(enc.flat == UNK))


def binarize_split(
    src_path: str,
    tgt_path: str,
    out_prefix: Callable[[str], str],
    langs: tuple[str, str],
    tokenizers: tuple[AnyTokenizer, AnyTokenizer],
    dtype: str,
    clean: bool,
    max_len: int,
    max_len_ratio: float,
    workers: int = 1,
) -> SplitStats:
    """Encode a split into `{out_prefix(lang)}.bin/.idx`; drop dirty pairs when `clean`.

    Evaluation splits (`clean` False) keep every line; the pairs cleaning would have dropped
    are counted in `flagged` instead.
    """
    stats = SplitStats()
    src_lang, tgt_lang = langs
    writers = {lang: TokenWriter(out_prefix(lang), dtype) for lang in langs}
    try:
        for src, tgt in encode_stream(*tokenizers, read_pairs(src_path, tgt_path), workers):
            stats.lines += len(src.lens)
            keep, reasons = clean_mask(src.lens, tgt.lens, max_len, max_len_ratio)
            if clean:
                src, tgt = src.select(keep), tgt.select(keep)
            counts = stats.dropped if clean else stats.flagged
            for k, v in reasons.items():
                counts[k] += v
            for lang, enc in ((src_lang, src), (tgt_lang, tgt)):
                writers[lang].add(enc)
                stats.count(lang, enc)
            stats.kept += len(src.lens)
    finally:
        for w in writers.values():
            w.close()
    return stats


def binarize_text(
    path: str,
    out_prefix: str,
    lang: str,
    tokenizer: AnyTokenizer,
    dtype: str,
    clean: bool,
    max_len: int,
    workers: int = 1,
) -> SplitStats:
    """Encode one language's split (monolingual data) into `{out_prefix}.bin/.idx`.

    With `clean`, empty lines and lines of more than `max_len` pieces are dropped (a pair's length
    ratio does not apply); evaluation splits keep every line and count those in `flagged`.
    """
    stats = SplitStats()
    writer = TokenWriter(out_prefix, dtype)
    try:
        for enc, _ in encode_stream(tokenizer, tokenizer, read_lines(path), workers):
            stats.lines += len(enc.lens)
            keep, reasons = clean_mask(enc.lens, enc.lens, max_len, math.inf)
            if clean:
                enc = enc.select(keep)
            counts = stats.dropped if clean else stats.flagged
            for k, v in reasons.items():
                counts[k] += v
            writer.add(enc)
            stats.count(lang, enc)
            stats.kept += len(enc.lens)
    finally:
        writer.close()
    return stats


def _read_split(prefix: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The flat ids and the n+1 offsets of `{prefix}.bin/.idx` (written by TokenWriter)."""
    return np.fromfile(prefix + ".bin", dtype=dtype).astype(np.int64), np.fromfile(prefix + ".idx", dtype=np.int64)


def sample_split(
    prefix: Callable[[str], str],
    out_prefix: Callable[[str], str],
    langs: tuple[str, str],
    tokenizers: tuple[SentencePieceTokenizer, SentencePieceTokenizer],
    dtype: str,
    alpha: float,
    seed: int,
    max_len: int,
    chunk_lines: int = CHUNK_LINES,
) -> SplitStats:
    """A copy of the binarized split at `prefix(lang)` in which every sentence is segmented anew
    by sampling (`encode_sampled`): the same sentences in the same order, other pieces.

    Each sentence is decoded to text and encoded again with sampling. A side holding an
    unknown piece keeps its original segmentation (its text would not decode back to itself),
    and so does a pair whose sampled side would exceed `max_len` pieces: the copy passes the
    same cleaning as the split it copies.
    """
    spm.set_random_generator_seed(seed)
    stats = SplitStats()
    split = {lang: _read_split(prefix(lang), dtype) for lang in langs}
    n = len(split[langs[0]][1]) - 1
    writers = {lang: TokenWriter(out_prefix(lang), dtype) for lang in langs}
    try:
        for start in range(0, n, chunk_lines):
            rows = range(start, min(start + chunk_lines, n))
            original = {lang: [flat[off[i] : off[i + 1]].tolist() for i in rows] for lang, (flat, off) in split.items()}
            sampled = {
                lang: tok.encode_sampled([tok.decode(ids) for ids in original[lang]], alpha)
                for lang, tok in zip(langs, tokenizers)
            }
            for i in range(len(rows)):
                for lang in langs:  # text with unknown characters would not decode back to itself
                    if UNK in original[lang][i]:
                        sampled[lang][i] = original[lang][i]
                if max(len(sampled[lang][i]) for lang in langs) > max_len:
                    for lang in langs:
                        sampled[lang][i] = original[lang][i]
            for lang in langs:
                enc = Encoded.of(sampled[lang])
                writers[lang].add(enc)
                stats.count(lang, enc)
            stats.lines += len(rows)
            stats.kept += len(rows)
    finally:
        for w in writers.values():
            w.close()
    return stats
