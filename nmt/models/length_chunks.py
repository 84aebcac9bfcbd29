"""Encoding a padded batch in chunks of similar length, so that inference does not compute on padding.

A generation batch holds sentences of many lengths padded to the longest: on the toy test set a
batch of 290 sentences averages 17 pieces and is padded to 27, so a third of the encoder's work
is spent on padding. At inference the encoder may instead run on row chunks of similar length,
each trimmed to its own longest sentence; the outputs at real positions are the same (every
position only attends to its own sentence's real tokens); padding positions, which nothing reads,
hold what their chunk computed there, or zeros past the chunk's longest sentence.

Chunks stay large enough for efficient matrix products (`MIN_TOKENS` padded tokens) and are
cut where padding would pass `SLACK` of a chunk's real tokens.

Shape legend: B rows, S padded length, D model dim.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

MIN_TOKENS = 1024  # a chunk's rows x length: below this the products lose more than padding costs
SLACK = 0.10  # padding allowed within a chunk, as a fraction of its real tokens


def real_ends(pad_mask: Tensor) -> Tensor:
    """(B, S) bool, True at padding -> (B,) long: one past each row's last real position."""
    positions = torch.arange(1, pad_mask.size(1) + 1, device=pad_mask.device)  # (S,)
    return (positions * ~pad_mask).amax(dim=1) if pad_mask.size(1) else pad_mask.new_zeros(pad_mask.size(0))


def plan_chunks(ends: list[int], min_tokens: int = MIN_TOKENS, slack: float = SLACK) -> list[list[int]]:
    """Row indices of each chunk: rows sorted by length (stable), cut greedily where adding the
    next row would leave more than `slack` padding in a chunk that already has `min_tokens`."""
    order = sorted(range(len(ends)), key=lambda i: ends[i])
    chunks: list[list[int]] = []
    rows: list[int] = []
    real = 0
    for i in order:
        longest = ends[i]  # sorted: the new row is the chunk's longest
        if (
            rows
            and len(rows) * ends[rows[-1]] >= min_tokens
            and (len(rows) + 1) * longest > (1 + slack) * (real + longest)
        ):
            chunks.append(rows)
            rows, real = [], 0
        rows.append(i)
        real += longest
    if rows:
        chunks.append(rows)
    return chunks


def encode_in_chunks(run: Callable[[Tensor, Tensor], Tensor], src: Tensor, pad_mask: Tensor) -> Tensor:
    """run(src (b, s), pad_mask (b, s)) -> (b, s, D) on each chunk; the results in a (B, S, D)
    tensor in the original row order, zeros past each chunk's length. One chunk: run as is."""
    ends = real_ends(pad_mask)
    chunks = plan_chunks(ends.tolist())
    if len(chunks) <= 1:
        return run(src, pad_mask)
    out = None
    for rows in chunks:
        index = torch.tensor(rows, device=src.device)
        s = int(ends[index].max())
        y = run(src.index_select(0, index)[:, :s], pad_mask.index_select(0, index)[:, :s])  # (b, s, D)
        if out is None:
            out = y.new_zeros(src.size(0), src.size(1), y.size(-1))
        out[index, :s] = y
    return out
