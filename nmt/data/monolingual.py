"""Monolingual data (`nmt preprocess --only-source`): language-model blocks and masked-LM samples.

Shape legend: B samples in a batch, T tokens per sample (padded), L tokens of one sample.

The stream of a split is its sentences one after another, each its pieces + EOS. Sentence i
occupies stream positions [so[i], so[i+1]) with so = `stream_offsets(sizes)`.

Language modeling (fairseq's TokenBlockDataset): a block is a run [start, end) of the stream, at
most N = --tokens-per-sample tokens long, whose tokens are the targets. By --sample-break-mode:

- none: the stream cut every N tokens, across sentence boundaries (the last block shorter);
- eos: one block per sentence; a sentence longer than N in consecutive blocks of N;
- complete: whole sentences packed in order into blocks of at most N tokens; a sentence longer
  than N forms blocks of its own, cut as in eos.

The blocks tile the stream, so every token is the target of exactly one block per epoch. A
block's input is its targets shifted right by one, with first token BOS when the block begins
the stream (none) or a sentence (eos, complete), and otherwise the stream token just before the
block (the end of the previous block). Position t of a block is thus predicted from exactly the
tokens before it in the stream, back to the block's start (and from the token just before it).

Masked LM: one sample per sentence, its pieces cut to N - 1 and EOS, masked by
nmt.data.masking with a generator seeded from (seed, epoch, sentence index).

Batches of either are built from the samples' lengths with nmt.data.dataset.plan_batches, cut
and padded to few shapes (nmt.data.shapes), and ordered and sharded as translation's
(nmt.tasks); a batch is a `TokenBatch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nmt.data.dataset import TokenArray
from nmt.data.masking import MaskSpec, mask_tokens, sample_generator
from nmt.data.shapes import OFF, ShapePolicy
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError


def load_text(data_dir: str, split: str, meta: dict) -> TokenArray:
    """The memory-mapped `split` of a monolingual data directory (pieces only; readers add EOS)."""
    if split not in meta["splits"]:
        raise UserError(f"{data_dir} has no split {split!r}; available: {', '.join(meta['splits'])}")
    return TokenArray.open(os.path.join(data_dir, f"{split}.{meta['source_lang']}"), meta.get("dtype", "int32"))


def stream_offsets(sizes: np.ndarray) -> np.ndarray:
    """(n+1,) int64: where each sentence (pieces + EOS) starts in the stream, then the stream's length."""
    out = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(np.asarray(sizes, dtype=np.int64) + 1, out=out[1:])
    return out


def lm_blocks(sizes: np.ndarray, block: int, mode: str) -> np.ndarray:
    """(K, 3) int64 rows (start, end, bos) of the language-model blocks of sentences of `sizes`
    pieces (see the module doc); bos is 1 when the block's input starts with BOS."""
    so = stream_offsets(sizes)
    lens, total = np.diff(so), int(so[-1])
    if mode == "none":
        start = np.arange(0, total, block, dtype=np.int64)
        return np.stack([start, np.minimum(start + block, total), start == 0], 1).astype(np.int64)
    if mode == "eos":
        count = -(-lens // block)  # (n,) blocks per sentence
        sent = np.repeat(np.arange(len(lens)), count)
        k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)  # block within its sentence
        start = so[sent] + k * block
        return np.stack([start, np.minimum(start + block, so[sent + 1]), k == 0], 1).astype(np.int64)
    if mode != "complete":
        raise UserError(f"--sample-break-mode {mode!r} is not one of: none, eos, complete")
    rows: list[tuple[int, int, int]] = []
    first = filled = 0  # the open block: its first stream position and its length so far
    # Sequential by nature (each cut depends on the previous one), as batch_by_tokens.
    for s, n in zip(so[:-1].tolist(), lens.tolist()):
        if filled and (n > block or filled + n > block):
            rows.append((first, first + filled, 1))
            filled = 0
        if n > block:
            rows += [(s + k, min(s + k + block, s + n), int(k == 0)) for k in range(0, n, block)]
            continue
        if not filled:
            first = s
        filled += n
    if filled:
        rows.append((first, first + filled, 1))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def stream_tokens(arr: TokenArray, so: np.ndarray, start: int, end: int) -> np.ndarray:
    """(end - start,) int64: the stream's tokens at positions [start, end) (`so` = stream_offsets)."""
    pos = np.arange(start, end, dtype=np.int64)
    sent = np.searchsorted(so, pos, side="right") - 1  # the sentence of each position
    j = pos - so[sent]  # position within the sentence; its size is the EOS
    out = np.full(len(pos), EOS, dtype=np.int64)
    piece = j < arr.sizes[sent]
    out[piece] = arr.tokens[arr.offsets[sent[piece]] + j[piece]]
    return out


def lm_sample(arr: TokenArray, so: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input (L,), target (L,)) of one block row (start, end, bos)."""
    start, end, bos = (int(x) for x in row)
    if bos:
        target = stream_tokens(arr, so, start, end)
        return np.concatenate([[BOS], target[:-1]]), target
    seq = stream_tokens(arr, so, start - 1, end)
    return seq[:-1], seq[1:]


def sentence_sample(arr: TokenArray, i: int, block: int) -> np.ndarray:
    """(L,) int64: sentence i's pieces cut to block - 1, and EOS."""
    return np.append(arr[i][: block - 1].astype(np.int64), EOS)


@dataclass
class TokenBatch:
    """One batch of a monolingual task, right-padded with PAD.

    tokens (B, T): the model's input (language model: BOS-first blocks; masked LM: masked sentences
    + EOS); target (B, T): the gold token where scored, PAD elsewhere; ntokens: scored positions;
    ids (B,): block or sentence indices. Padding rows (nmt.data.shapes) follow the samples: input
    BOS (language model) or EOS (masked LM) alone, targets PAD, id -1.
    """

    tokens: torch.Tensor
    target: torch.Tensor
    ntokens: int
    ids: torch.Tensor

    @property
    def pad_mask(self) -> torch.Tensor:
        """(B, T) bool, True at padding."""
        return self.tokens.eq(PAD)

    def _map(self, fn) -> "TokenBatch":
        return TokenBatch(fn(self.tokens), fn(self.target), self.ntokens, fn(self.ids))

    def to(self, device, non_blocking: bool = False) -> "TokenBatch":
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "TokenBatch":
        """Called by DataLoader(pin_memory=True)."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return self.tokens.size(0)


def pad_batch(
    samples: list[tuple[np.ndarray, np.ndarray]], ids, policy: ShapePolicy = OFF, start: int = BOS
) -> TokenBatch:
    """TokenBatch of (input (L,), target (L,)) pairs, right-padded to the (B, T) of `policy` (off: to
    the longest, one row each); padding rows are an empty sample, input `start` alone, targets PAD, id -1."""
    lens = np.fromiter((len(x) for x, _ in samples), dtype=np.int64, count=len(samples))
    rows, width, _ = policy.shape(lens, None)
    tokens = np.full((rows, width), PAD, dtype=np.int64)
    target = np.full_like(tokens, PAD)
    for b, (x, y) in enumerate(samples):
        tokens[b, : len(x)], target[b, : len(y)] = x, y
    tokens[len(samples) :, 0] = start
    ids = np.r_[np.asarray(ids, dtype=np.int64), np.full(rows - len(samples), -1, dtype=np.int64)]
    return TokenBatch(
        torch.from_numpy(tokens), torch.from_numpy(target), int((target != PAD).sum()), torch.from_numpy(ids)
    )


class BlockDataset(torch.utils.data.Dataset):
    """Language modeling: item i is the batch of blocks `batches[i]` (indices into `blocks`)."""

    def __init__(
        self, text: TokenArray, blocks: np.ndarray, batches: list[np.ndarray], policy: ShapePolicy = OFF
    ) -> None:
        self.text, self.blocks, self.batches, self.policy = text, blocks, batches, policy
        self.so = stream_offsets(text.sizes)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> TokenBatch:
        idx = self.batches[i]
        return pad_batch([lm_sample(self.text, self.so, self.blocks[k]) for k in idx], idx, self.policy, BOS)


class MaskedDataset(torch.utils.data.Dataset):
    """Masked LM: item i is the batch of sentences `batches[i]`, masked for (seed, epoch)."""

    def __init__(
        self,
        text: TokenArray,
        batches: list[np.ndarray],
        block: int,
        spec: MaskSpec,
        seed: int,
        epoch: int,
        starts: Optional[torch.Tensor] = None,
        policy: ShapePolicy = OFF,
    ) -> None:
        self.text, self.batches, self.block, self.spec = text, batches, block, spec
        self.seed, self.epoch, self.starts, self.policy = seed, epoch, starts, policy

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> TokenBatch:
        samples = []
        for k in self.batches[i].tolist():
            tokens = torch.from_numpy(sentence_sample(self.text, k, self.block))
            inp, target = mask_tokens(tokens, sample_generator(self.seed, self.epoch, k), self.spec, self.starts)
            samples.append((inp.numpy(), target.numpy()))
        return pad_batch(samples, self.batches[i], self.policy, EOS)  # a padding row: an empty sentence
