"""The training lines SentencePiece learns from: all of a small corpus, a seeded sample of a large one.

SentencePiece holds every sentence it trains on in memory (and a suffix array over their
characters), so `nmt preprocess` gives it at most --spm-train-sentences lines of each language.
A training split of at most that many lines is given as it is. A larger one is sampled: a
uniform random subset of that many line numbers, drawn from --seed and the same for both sides
of a pair, whose lines (bytes as they are, in file order) are written to files SentencePiece
reads instead. The corpus is read once, a block at a time, so memory does not grow with it.

`chosen_lines` draws the subset block by block: the number of chosen lines in a block follows
the hypergeometric law (how many of the lines still to choose fall among this block's lines,
out of all lines left), and which ones is a uniform choice within the block. That is exactly a
uniform draw of k of n lines, needs no table of the whole corpus, and depends on (n, k, seed)
only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Iterator, Sequence

import numpy as np

from nmt.data.rawtext import open_input

SELECT_BLOCK = 1 << 16  # lines per block of the draw; part of what the sample is, so a constant


def chosen_lines(n: int, k: int, seed: int) -> Iterator[np.ndarray]:
    """For each block of SELECT_BLOCK consecutive lines out of `n`, the sorted positions within the
    block of the lines of a uniform random subset of min(k, n) lines, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    left = min(k, n)
    for start in range(0, n, SELECT_BLOCK):
        size = min(SELECT_BLOCK, n - start)
        rest = n - start - size
        m = int(rng.hypergeometric(size, rest, left)) if left and rest else left
        yield np.sort(rng.choice(size, m, replace=False))
        left -= m


def write_sample(paths: Sequence[str], out_paths: Sequence[str], n: int, k: int, seed: int) -> None:
    """Write the lines `chosen_lines(n, k, seed)` of each file of `paths` (all of `n` lines) to the
    file of `out_paths` at the same position, each ending with a newline."""
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(open_input(p)) for p in paths]
        sinks = [stack.enter_context(open(p, "wb")) for p in out_paths]
        for picked in chosen_lines(n, k, seed):
            for source, sink in zip(sources, sinks):
                block = list(itertools.islice(source, SELECT_BLOCK))
                lines = [block[i] for i in picked.tolist()]
                sink.write(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))


def training_text(paths: dict[str, str], lines: int, limit: int, seed: int, work: str) -> dict[str, str]:
    """{lang: the file SentencePiece trains on} for the training files `paths` ({lang: path}, each of
    `lines` lines): the files themselves when lines <= `limit`, else samples of `limit` lines
    written into the directory `work` (the caller removes them)."""
    if lines <= limit:
        return dict(paths)
    out = {lang: os.path.join(work, f"spm-train.{lang}") for lang in paths}
    write_sample(list(paths.values()), list(out.values()), lines, limit, seed)
    return out
