"""Datasets over a preprocessed data directory, token-budget batching, sharding and collation.

Shape legend: B sentences in a batch, S source length, T target length (both with EOS/BOS).

A split is read through np.memmap (`{split}.{lang}.bin` tokens + `.idx` int64 offsets), so a
corpus of any size costs only its page cache. Batches are lists of sentence indices, built once
from the lengths (`plan_batches`, to few shapes by nmt.data.shapes), reordered per epoch
(`epoch_order`), divided among ranks (`shard`) and turned into padded tensors (`collate`, to the
policy's shape) inside DataLoader workers (`BatchDataset`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from nmt.data.binarize import FORMAT_VERSION
from nmt.data.shapes import OFF, ShapePolicy
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError

META_KEYS = ("format_version", "source_lang", "target_lang", "joined_dictionary", "vocab_size", "tokenizer", "splits")


def read_meta(data_dir: str) -> dict:
    """The meta.json of a data directory written by `nmt preprocess` (UserError when unusable)."""
    if not os.path.isdir(data_dir):
        raise UserError(f"data directory {data_dir} does not exist")
    path = os.path.join(data_dir, "meta.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{data_dir} is not a data directory written by 'nmt preprocess' (no meta.json)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable or not valid JSON: {e}") from None
    missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; rerun 'nmt preprocess'")
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{data_dir} has data format {version!r}, newer than this nmt reads ({FORMAT_VERSION}); upgrade nmt"
        )
    return meta


class TokenArray:
    """Sentences of one language of one split: flat token ids + int64 offsets (n+1).

    Opened from disk the arrays are memory-mapped; pickling (DataLoader workers) sends the paths,
    not the data. `from_sequences` builds one in memory, e.g. for text given on the command line.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, paths: Optional[tuple[str, str, str]] = None):
        self.tokens = tokens
        self.offsets = offsets
        self.sizes: np.ndarray = np.asarray(np.diff(offsets))  # (n,) pieces per sentence, no EOS
        self._paths = paths

    @classmethod
    def open(cls, prefix: str, dtype: str) -> "TokenArray":
        """Memory-map `{prefix}.bin` (dtype) and `{prefix}.idx` (int64 offsets)."""
        bin_path, idx_path = prefix + ".bin", prefix + ".idx"
        for p in (bin_path, idx_path):
            if not os.path.isfile(p):
                raise UserError(f"{p} is missing; rerun 'nmt preprocess'")
        offsets = np.memmap(idx_path, dtype=np.int64, mode="r")
        n_tokens = os.path.getsize(bin_path) // np.dtype(dtype).itemsize
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != n_tokens:
            raise UserError(f"{idx_path} does not match {bin_path}; rerun 'nmt preprocess'")
        # np.memmap cannot map an empty file: a split of empty sentences gets an empty array.
        tokens = np.memmap(bin_path, dtype=dtype, mode="r") if n_tokens else np.zeros(0, dtype=dtype)
        return cls(tokens, offsets, (prefix, dtype, "memmap"))

    @classmethod
    def from_sequences(cls, seqs: Sequence[Sequence[int]], dtype: str = "int32") -> "TokenArray":
        """An in-memory TokenArray of the given id sequences (pieces only, no EOS)."""
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        tokens = np.fromiter((t for s in seqs for t in s), dtype=dtype, count=int(offsets[-1]))
        return cls(tokens, offsets)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        """Piece ids of sentence `i` (no EOS)."""
        return np.asarray(self.tokens[self.offsets[i] : self.offsets[i + 1]])

    def __getstate__(self) -> dict:
        if self._paths:
            return {"paths": self._paths}
        return {"tokens": np.asarray(self.tokens), "offsets": np.asarray(self.offsets)}

    def __setstate__(self, state: dict) -> None:
        if "paths" in state:
            prefix, dtype, _ = state["paths"]
            self.__dict__.update(TokenArray.open(prefix, dtype).__dict__)
        else:
            self.__init__(state["tokens"], state["offsets"])


@dataclass
class PairDataset:
    """Aligned source and (optional) target sentences of one split."""

    src: TokenArray
    tgt: Optional[TokenArray] = None

    def __post_init__(self) -> None:
        if self.tgt is not None and len(self.tgt) != len(self.src):
            raise UserError(f"source has {len(self.src)} sentences but target has {len(self.tgt)}")

    def __len__(self) -> int:
        return len(self.src)


def load_split(data_dir: str, split: str, meta: Optional[dict] = None) -> PairDataset:
    """The memory-mapped `split` ("train", "valid", "test", "test1", ...) of a data directory."""
    meta = meta if meta is not None else read_meta(data_dir)
    if split not in meta["splits"]:
        raise UserError(f"{data_dir} has no split {split!r}; available: {', '.join(meta['splits'])}")
    dtype = meta.get("dtype", "int32")
    src = TokenArray.open(os.path.join(data_dir, f"{split}.{meta['source_lang']}"), dtype)
    tgt_prefix = os.path.join(data_dir, f"{split}.{meta['target_lang']}")
    tgt = TokenArray.open(tgt_prefix, dtype) if os.path.exists(tgt_prefix + ".bin") else None
    return PairDataset(src, tgt)


def train_copies(data_dir: str, meta: dict) -> list[PairDataset]:
    """The training split followed by its copies with sampled segmentations (`nmt preprocess
    --subword-samples`); epoch e trains on entry (e - 1) mod len, see `copy_of_epoch`."""
    count = meta["splits"]["train"].get("sampled_copies", {}).get("count", 0)
    return [load_split(data_dir, "train", meta)] + [
        load_split(data_dir, f"train.sample{k}", meta) for k in range(1, count + 1)
    ]


def copy_of_epoch(epoch: int, copies: int) -> int:
    """Which of `copies` training copies epoch `epoch` (from 1) uses: each in turn, the original first."""
    return (epoch - 1) % copies


def with_ends(src_sizes: np.ndarray, tgt_sizes: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int64 source and target lengths with EOS/BOS from piece counts; targets all 0 without them."""
    src = np.asarray(src_sizes, dtype=np.int64) + 1  # + EOS
    tgt = np.asarray(tgt_sizes, dtype=np.int64) + 1 if tgt_sizes is not None else np.zeros_like(src)  # + BOS/EOS
    return src, tgt


def require_fits(src: np.ndarray, tgt: np.ndarray, max_tokens: int) -> None:
    """UserError naming the first sentence whose length (EOS/BOS included) alone exceeds max_tokens."""
    if max_tokens < 1:
        raise UserError(f"--max-tokens must be positive, got {max_tokens}")
    over = np.flatnonzero(np.maximum(src, tgt) > max_tokens)
    if len(over):
        i = int(over[0])
        raise UserError(
            f"sentence {i} needs {src[i]} source / {tgt[i]} target tokens with EOS, more than --max-tokens "
            f"{max_tokens} ({len(over)} such sentences); raise --max-tokens or preprocess with a lower --max-len"
        )


def plan_batches(src_sizes: np.ndarray, tgt_sizes: Optional[np.ndarray], policy: ShapePolicy) -> list[np.ndarray]:
    """Length-bucketed batches of sentence indices; each batch's padded shape fits the token budget.

    Lengths (+1 for EOS/BOS) are padded by `policy` (nmt.data.shapes; off: left as they are).
    Sentences are sorted by (padded target length, padded source length, target length, source
    length, index) and cut greedily so that n_sentences * the longest padded length <=
    policy.max_tokens on both sides, and n_sentences <= policy.max_rows when given. Every index
    appears in exactly one batch; the result is deterministic. A sentence longer than max_tokens
    on its own raises UserError naming it.
    """
    src, tgt = with_ends(src_sizes, tgt_sizes)
    require_fits(src, tgt, policy.max_tokens)
    sp, tp = policy.padded_length(src), policy.padded_length(tgt)  # (n,) each
    # Target length first: the decoder, output projection and loss are most of a step's work,
    # so their padding costs more than the encoder's (without targets this sorts by source).
    # Sorting by padded lengths first keeps a batch inside one (target, source) bucket until the
    # bucket runs out, so that the batches of a bucket share its shape.
    order = np.lexsort((np.arange(len(src)), src, tgt, sp, tp))
    max_tokens, max_rows = policy.max_tokens, policy.max_rows or len(src)
    bounds = [0]
    n = longest = 0
    # One pass over the lengths as Python ints: the cut points depend on each other, so this
    # loop is inherently sequential; it costs about a second per million sentences.
    for s, t in zip(sp[order].tolist(), tp[order].tolist()):
        widest = max(longest, s, t)
        if n and (n == max_rows or (n + 1) * widest > max_tokens):
            bounds.append(bounds[-1] + n)
            n, widest = 0, max(s, t)
        n, longest = n + 1, widest
    if n:
        bounds.append(bounds[-1] + n)
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def batch_by_tokens(
    src_sizes: np.ndarray,
    tgt_sizes: Optional[np.ndarray],
    max_tokens: int,
    batch_size: Optional[int] = None,
) -> list[np.ndarray]:
    """`plan_batches` with the shape policy off: each batch as long as its longest sentence."""
    return plan_batches(src_sizes, tgt_sizes, ShapePolicy(max_tokens, batch_size, multiple=1))


def epoch_order(num_batches: int, epoch: int, seed: int) -> np.ndarray:
    """A permutation of range(num_batches), a pure function of (epoch, seed)."""
    return np.random.default_rng([seed, epoch]).permutation(num_batches)


def shard(batches: list, rank: int, world_size: int) -> list:
    """batches[rank::world_size], truncated so every rank gets the same number of batches."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    per_rank = len(batches) // world_size
    return batches[rank::world_size][:per_rank]


def updates_per_epoch(num_batches: int, update_freq: int, world_size: int) -> int:
    """Optimizer updates in one epoch: each rank's share of the batches (`shard`) in groups of
    update_freq, a last shorter group included."""
    return -(-(num_batches // world_size) // update_freq)


@dataclass
class Batch:
    """Padded tensors of one batch (batch-first, PAD right-padding).

    src (B, S): pieces + EOS; src_lens (B,): non-pad source tokens; tgt_in (B, T): BOS + pieces;
    tgt_out (B, T): pieces + EOS; ntokens: non-pad target tokens; ids (B,): sentence indices.
    Target fields are None for source-only data. Rows after the sentences may be padding rows
    (nmt.data.shapes): source EOS alone, target input BOS alone, targets all PAD, id -1.
    """

    src: torch.Tensor
    src_lens: torch.Tensor
    tgt_in: Optional[torch.Tensor]
    tgt_out: Optional[torch.Tensor]
    ntokens: int
    ids: torch.Tensor

    @property
    def src_pad_mask(self) -> torch.Tensor:
        """(B, S) bool, True at padding."""
        return self.src.eq(PAD)

    def _map(self, fn) -> "Batch":
        opt = lambda t: None if t is None else fn(t)  # noqa: E731
        return Batch(fn(self.src), fn(self.src_lens), opt(self.tgt_in), opt(self.tgt_out), self.ntokens, fn(self.ids))

    def to(self, device, non_blocking: bool = False) -> "Batch":
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "Batch":
        """Called by DataLoader(pin_memory=True)."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return self.src.size(0)


def _pad(arr: TokenArray, idx: np.ndarray, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, width) int64 pieces + EOS of the sentences `idx`, right-padded, then rows - len(idx)
    padding rows holding EOS alone (an empty sentence); and the sentences' lengths (len(idx),)."""
    lens = arr.sizes[idx]  # (n,)
    starts = arr.offsets[idx]  # (n,)
    out = np.full((rows, width), PAD, dtype=np.int64)
    total = int(lens.sum())
    row = np.repeat(np.arange(len(idx)), lens)  # (total,) batch row of every token
    first = np.cumsum(lens) - lens  # (n,) position of each sentence's first token in the flat run
    col = np.arange(total) - np.repeat(first, lens)  # (total,) position within its sentence
    flat = np.repeat(starts - first, lens) + np.arange(total)  # (total,) index into arr.tokens
    out[row, col] = arr.tokens[flat]
    out[np.arange(rows), np.r_[lens, np.zeros(rows - len(idx), dtype=lens.dtype)]] = EOS
    return out, lens


def collate(pairs: PairDataset, indices, policy: ShapePolicy = OFF) -> Batch:
    """Padded Batch of the sentences `indices` of `pairs`, in the given order.

    With the policy off (the default) the batch has one row per sentence and is as long as its
    longest sentence on each side; with it, the (B, S, T) of `policy.shape`: padding rows after
    the sentences (source EOS, target input BOS, targets PAD, id -1) and lengths padded with PAD.
    """
    idx = np.asarray(indices, dtype=np.int64)
    n = len(idx)
    src_lens = pairs.src.sizes[idx] + 1  # (n,) with EOS
    tgt_lens = None if pairs.tgt is None else pairs.tgt.sizes[idx] + 1
    rows, S, T = policy.shape(src_lens, tgt_lens)
    src, _ = _pad(pairs.src, idx, rows, S)
    tgt_in = tgt_out = None
    ntokens = 0
    if pairs.tgt is not None:
        tgt_out, _ = _pad(pairs.tgt, idx, rows, T)  # (B, T)
        tgt_in = np.empty_like(tgt_out)  # (B, T): BOS + tgt_out shifted right, its EOS made PAD
        tgt_in[:, 0] = BOS
        tgt_in[:, 1:] = tgt_out[:, :-1]
        tgt_in[tgt_in == EOS] = PAD  # EOS never occurs among pieces, only as the appended end
        tgt_out[n:] = PAD  # padding rows: nothing to score
        ntokens = int(tgt_lens.sum())
        tgt_in, tgt_out = torch.from_numpy(tgt_in), torch.from_numpy(tgt_out)
    return Batch(
        src=torch.from_numpy(src),
        src_lens=torch.from_numpy(np.r_[src_lens, np.ones(rows - n, dtype=np.int64)]),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        ntokens=ntokens,
        ids=torch.from_numpy(np.r_[idx, np.full(rows - n, -1, dtype=np.int64)]),
    )


class BatchDataset(torch.utils.data.Dataset):
    """Item i = collate(pairs, batches[i], policy); use DataLoader(ds, batch_size=None, num_workers=...)."""

    def __init__(self, pairs: PairDataset, batches: list[np.ndarray], policy: ShapePolicy = OFF) -> None:
        self.pairs = pairs
        self.batches = batches
        self.policy = policy

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return collate(self.pairs, self.batches[i], self.policy)
