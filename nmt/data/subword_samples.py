"""Copies of the binarized training split with sampled segmentations (`nmt preprocess --subword-samples`).

Copy k holds the same sentences in the same order, each segmented anew by sampling
(`SentencePieceTokenizer.encode_sampled`): its ids are decoded to text and encoded again. A side
holding an unknown piece keeps its original segmentation (its text would not decode back to
itself), and so does a pair whose sampled side would exceed `max_len` pieces: the copy passes
the same cleaning as the split it copies.

SentencePiece draws its samples from a generator it seeds from `spm.set_random_generator_seed`
afresh for every batch it encodes. So the split is read in blocks of SAMPLE_BLOCK sentences,
each block encoded as one batch under its own seed (`block_seed`), and a copy depends only on
the split and the seed: not on the number of worker processes, nor on how the text was chunked.
The split is read from disk a block at a time, so memory does not grow with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import sentencepiece as spm

from nmt.data.binarize import Encoded, SplitStats, TokenWriter, read_encoded
from nmt.data.parallel import ordered_map
from nmt.data.tokenizer import UNK, SentencePieceTokenizer

SAMPLE_BLOCK = 4096  # sentences under one seed; part of what a copy is, so a constant, not a setting
SEED_STRIDE = 0x9E3779B1  # an odd constant near 2**32 / golden ratio: block seeds far apart


def block_seed(seed: int, block: int) -> int:
    """SentencePiece's seed for block `block` (from 0) of a copy drawn with `seed`: the seed itself
    for the first block, the others spread over the 32-bit seeds SentencePiece takes."""
    return (seed + block * SEED_STRIDE) % 2**32


@dataclass(frozen=True)
class Resampling:
    """What every block of one copy is sampled with (sent once to each worker process)."""

    tokenizers: tuple[SentencePieceTokenizer, ...]
    alpha: float
    seed: int
    max_len: int


def resample_block(how: Resampling, item: tuple[int, tuple[Encoded, ...]]) -> tuple[Encoded, ...]:
    """Block `item[0]` of the split, one Encoded per language (`item[1]`), with sampled segmentations."""
    block, sides = item
    spm.set_random_generator_seed(block_seed(how.seed, block))
    original = [[ids.tolist() for ids in np.split(enc.flat, np.cumsum(enc.lens)[:-1])] for enc in sides]
    sampled = [
        tok.encode_sampled([tok.decode(ids) for ids in orig], how.alpha) for tok, orig in zip(how.tokenizers, original)
    ]
    for i in range(len(original[0])):
        for side in range(len(sides)):  # text with unknown characters would not decode back to itself
            if UNK in original[side][i]:
                sampled[side][i] = original[side][i]
        if max(len(s[i]) for s in sampled) > how.max_len:
            for side in range(len(sides)):
                sampled[side][i] = original[side][i]
    return tuple(Encoded.of(s) for s in sampled)


def split_blocks(
    prefixes: tuple[str, ...], dtype: str, share: tuple[int, int] = (0, 1)
) -> Iterator[tuple[int, tuple[Encoded, ...]]]:
    """(block number, one Encoded per language) of the binarized split at `prefixes`, SAMPLE_BLOCK
    sentences at a time, read from disk as they are needed. Every block is read whatever the
    `share` of a worker (nmt.data.parallel): reading stored ids costs little next to sampling."""
    return enumerate(zip(*(read_encoded(prefix, dtype, SAMPLE_BLOCK) for prefix in prefixes)))


def sample_split(
    prefix: Callable[[str], str],
    out_prefix: Callable[[str], str],
    langs: tuple[str, str],
    tokenizers: tuple[SentencePieceTokenizer, SentencePieceTokenizer],
    dtype: str,
    alpha: float,
    seed: int,
    max_len: int,
    workers: int = 1,
) -> SplitStats:
    """Write a copy of the binarized split at `prefix(lang)` to `out_prefix(lang)`, every sentence
    segmented anew by sampling (see the module doc); `workers` processes sample the blocks."""
    stats = SplitStats()
    how = Resampling(tuple(tokenizers), alpha, seed, max_len)
    blocks = functools.partial(split_blocks, tuple(prefix(lang) for lang in langs), dtype)
    writers = {lang: TokenWriter(out_prefix(lang), dtype) for lang in langs}
    try:
        for sides in ordered_map(resample_block, how, blocks, workers):
            for lang, enc in zip(langs, sides):
                writers[lang].add(enc)
                stats.count(lang, enc)
            stats.lines += len(sides[0].lens)
            stats.kept += len(sides[0].lens)
    finally:
        for w in writers.values():
            w.close()
    return stats
