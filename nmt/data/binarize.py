"""Encode parallel (or monolingual) text into flat token arrays, chunk by chunk, with cleaning statistics.

A split of one language is two files: `{split}.{lang}.bin`, every sentence's piece ids one after
another (uint16 or int32), and `{split}.{lang}.idx`, n+1 int64 offsets into it. Both are written
while the text streams through (nmt.data.rawtext reads it in chunks of lines), so memory stays
constant in the corpus size; chunks are encoded by worker processes when asked
(nmt.data.parallel), and results are consumed in input order, so the files do not depend on the
number of processes or the chunk size.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from nmt.data.parallel import ordered_map
from nmt.data.rawtext import CHUNK_LINES, RawChunk, read_chunks, split_lines
from nmt.data.tokenizer import UNK, AnyTokenizer

FORMAT_VERSION = 1  # of a data directory (meta.json + .bin/.idx); readers refuse newer ones
DROP_REASONS = ("empty", "too_long", "ratio")


@dataclass
class Encoded:
    """One chunk of encoded lines of one language: lengths (n,) int64 and the flat ids."""

    lens: np.ndarray
    flat: np.ndarray

    @classmethod
    def of(cls, ids: list[list[int]], dtype: str = "int64") -> "Encoded":
        """The id lists `ids`, their ids stored as `dtype`."""
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(lens.sum()))
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
        self.bin.write(enc.flat.astype(self.dtype, copy=False).tobytes())
        offsets = self.total + np.cumsum(enc.lens, dtype=np.int64)
        self.idx.write(offsets.tobytes())
        if len(offsets):
            self.total = int(offsets[-1])

    def close(self) -> None:
        self.bin.close()
        self.idx.close()


def read_encoded(prefix: str, dtype: str, size: int) -> Iterator[Encoded]:
    """The sentences of `{prefix}.bin/.idx` (written by TokenWriter), `size` at a time, as int64 ids.

    Plain reads, not a memory map: the pages a map has touched count as the process's resident
    memory until it is closed, so reading a whole split through one would grow with the split.
    """
    with open(prefix + ".idx", "rb") as idx, open(prefix + ".bin", "rb") as data:
        last = np.fromfile(idx, dtype=np.int64, count=1)  # offset 0
        while True:
            offsets = np.fromfile(idx, dtype=np.int64, count=size)
            if not len(offsets):
                return
            bounds = np.concatenate([last, offsets])
            flat = np.fromfile(data, dtype=dtype, count=int(bounds[-1] - bounds[0]))
            yield Encoded(np.diff(bounds), flat.astype(np.int64))
            last = offsets[-1:]


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

    def add(self, other: "SplitStats") -> None:
        """Add the counts of `other` (a chunk of the same split) to these."""
        self.lines += other.lines
        self.kept += other.kept
        for mine, theirs in ((self.dropped, other.dropped), (self.flagged, other.flagged)):
            for k, v in theirs.items():
                mine[k] += v
        for mine, theirs in ((self.tokens, other.tokens), (self.unknown, other.unknown)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v


@dataclass(frozen=True)
class EncodeJob:
    """How every chunk of one split is encoded and cleaned (sent once to each worker process).

    One tokenizer and language per file of the chunk. `clean` drops the lines that fail cleaning
    (`clean_mask`; one language has no length ratio: `max_len_ratio` inf); otherwise they are kept
    and counted as flagged.
    """

    tokenizers: tuple[AnyTokenizer, ...]
    langs: tuple[str, ...]
    dtype: str
    clean: bool
    max_len: int
    max_len_ratio: float


def encode_chunk(job: EncodeJob, chunk: RawChunk) -> tuple[tuple[Encoded, ...], SplitStats]:
    """The lines of `chunk` decoded, stripped, encoded and cleaned, one Encoded per file (ids stored
    as job.dtype, ready to write), and the chunk's counts. Runs in a worker process: the process
    that writes only writes."""
    encoded = [Encoded.of(tok.encode_batch(lines), job.dtype) for tok, lines in zip(job.tokenizers, split_lines(chunk))]
    keep, reasons = clean_mask(encoded[0].lens, encoded[-1].lens, job.max_len, job.max_len_ratio)
    stats = SplitStats(lines=chunk.count)
    if job.clean:
        encoded = [enc.select(keep) for enc in encoded]
    (stats.dropped if job.clean else stats.flagged).update(reasons)
    for lang, enc in zip(job.langs, encoded):
        stats.count(lang, enc)
    stats.kept = len(encoded[0].lens)
    return tuple(encoded), stats


def binarize(
    paths: tuple[str, ...], out_prefix: Callable[[str], str], job: EncodeJob, workers: int, chunk_lines: int
) -> SplitStats:
    """Encode the files `paths` (one per language of `job`) into `{out_prefix(lang)}.bin/.idx`, reading
    `chunk_lines` lines at a time, encoding in `workers` processes; returns the split's counts."""
    stats = SplitStats()
    writers = [TokenWriter(out_prefix(lang), job.dtype) for lang in job.langs]
    chunks = functools.partial(read_chunks, paths, chunk_lines)
    try:
        for encoded, counts in ordered_map(encode_chunk, job, chunks, workers):
            for writer, enc in zip(writers, encoded):
                writer.add(enc)
            stats.add(counts)
    finally:
        for w in writers:
            w.close()
    return stats


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
    chunk_lines: int = CHUNK_LINES,
) -> SplitStats:
    """Encode a split into `{out_prefix(lang)}.bin/.idx`; drop dirty pairs when `clean`.

    Evaluation splits (`clean` False) keep every line; the pairs cleaning would have dropped
    are counted in `flagged` instead. The text is read `chunk_lines` lines at a time and encoded
    in `workers` processes.
    """
    job = EncodeJob(tuple(tokenizers), tuple(langs), dtype, clean, max_len, max_len_ratio)
    return binarize((src_path, tgt_path), out_prefix, job, workers, chunk_lines)


def binarize_text(
    path: str,
    out_prefix: str,
    lang: str,
    tokenizer: AnyTokenizer,
    dtype: str,
    clean: bool,
    max_len: int,
    workers: int = 1,
    chunk_lines: int = CHUNK_LINES,
) -> SplitStats:
    """Encode one language's split (monolingual data) into `{out_prefix}.bin/.idx`.

    With `clean`, empty lines and lines of more than `max_len` pieces are dropped (a pair's length
    ratio does not apply); evaluation splits keep every line and count those in `flagged`.
    """
    job = EncodeJob((tokenizer,), (lang,), dtype, clean, max_len, math.inf)
    return binarize((path,), lambda _: out_prefix, job, workers, chunk_lines)
