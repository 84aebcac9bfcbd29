"""The shape policy of training batches: few distinct (rows, source length, target length).

Shape legend: B rows of a batch (its sentences, then padding rows), S source length, T target
length, both with EOS/BOS; data without targets has T = 0.

CPU matrix kernels (oneDNN, under bf16 autocast) are generated and cached per matrix shape, and
every distinct batch shape implies a few dozen of them. Batches padded only to their longest
sentence come in almost as many shapes as there are batches (Multi30k en-de: 125 in 133, and
new ones with every resampled segmentation), so the cache, and the process, keep growing, and
kernels evicted from it are generated again. Under a `ShapePolicy`:

- a length L is padded up to `padded_length(L)`, the next multiple of `multiple` (never above
  the token budget), source and target separately;
- the batcher (nmt.data.dataset.plan_batches) sorts sentences by padded lengths first, so a
  batch stays inside one (padded T, padded S) bucket until the bucket runs out, and cuts it at
  R = `row_cap` rows, the most of that padded length the budget (and `max_rows`) allows;
- a batch with fewer sentences (where a bucket ends) is padded with padding rows up to the next
  of R/q, 2R/q, ..., R (rounded up; q = `row_sizes`), so it too has one of few shapes.

So the shapes of any corpus lie on a fixed grid: padded lengths in steps of `multiple`, and q
row counts for each. Padded shapes keep the budget: B x max(S, T) <= max_tokens.

A padding row is an empty sample (the source EOS alone, the target input BOS alone) whose
targets are all PAD: the loss ignores it, and it still has one real key to attend to, so no
softmax in any model runs over nothing (that would be NaN, and NaN times a zero gradient is NaN).

`multiple` 1 turns the policy off: each batch is as long as its longest sentence on each side
and has one row per sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class ShapePolicy:
    """How batches are cut and padded: the token budget and the shape settings (see the module doc).

    max_tokens: padded tokens per batch on each side; max_rows: cap on sentences per batch (None:
    none); multiple: lengths are padded to a multiple of it (1: off); row_sizes: the q above.
    """

    max_tokens: int
    max_rows: Optional[int] = None
    multiple: int = 8
    row_sizes: int = 4

    @property
    def enabled(self) -> bool:
        return self.multiple > 1

    def padded_length(self, length):
        """Length(s), int or int array with EOS/BOS, padded to the next multiple and capped at max_tokens
        (no sentence is longer than that); 0 (no target side) stays 0. Off: the length itself."""
        if not self.enabled:
            return length
        return np.minimum(-(-np.asarray(length) // self.multiple) * self.multiple, self.max_tokens)

    def row_cap(self, length: int) -> int:
        """R: the most rows of padded `length` (the longer side) that max_tokens and max_rows allow."""
        cap = self.max_tokens // max(int(length), 1)
        return min(cap, self.max_rows) if self.max_rows else cap

    def padded_rows(self, n: int, length: int) -> int:
        """Rows of a batch of n <= R sentences of padded `length`: the next of R/q, 2R/q, ..., R, rounded
        up (off: n)."""
        if not self.enabled:
            return n
        cap, q = self.row_cap(length), self.row_sizes
        k = -(-n * q // cap)  # the smallest k with k R / q >= n
        return -(-k * cap // q)

    def shape(self, src_lens: np.ndarray, tgt_lens: Optional[np.ndarray]) -> tuple[int, int, int]:
        """(B, S, T) of the batch of sentences of these lengths (EOS/BOS included); T = 0 without targets."""
        s = int(self.padded_length(int(np.max(src_lens, initial=0))))
        t = 0 if tgt_lens is None else int(self.padded_length(int(np.max(tgt_lens, initial=0))))
        return self.padded_rows(len(src_lens), max(s, t)), s, t


OFF = ShapePolicy(max_tokens=2**62, multiple=1)  # each batch as long as its longest sentence, no padding rows


def policy_of(cfg) -> ShapePolicy:
    """The ShapePolicy of a TrainConfig: --max-tokens, --batch-size, --pad-to-multiple, --row-sizes."""
    return ShapePolicy(cfg.max_tokens, cfg.batch_size, cfg.pad_to_multiple, cfg.row_sizes)
