"""The translation task: parallel text, teacher-forced, scored on the target side.

A data directory written by `nmt preprocess` becomes:

- the training copies: the `train` split, then its copies with sampled segmentations
  (`--subword-samples`); epoch e trains on copy (e - 1) mod copies (`copy_of_epoch`);
- token-budget batches of sentence indices per copy, built once from its own lengths and cut
  and padded to few shapes (`plan_batches`, nmt.data.shapes: --max-tokens, --batch-size,
  --pad-to-multiple, --row-sizes);
- an epoch's batches for one rank: the copy's batches in an order drawn from (--seed, epoch)
  (`epoch_order`), then every world_size-th of them from the rank on, as many on every rank
  (`shard`). So they are a pure function of (data, the batching flags, seed, epoch, rank,
  world size), and a resumed run finds the same batches and skips those already consumed;
- the valid split, batched the same way, every world_size-th batch on each rank.

The criterion is --criterion (nmt.training.criterion) with --label-smoothing: the decoder reads
`tgt_in` and the criterion scores `tgt_out`. Validation reports loss, nll_loss and ppl, and bleu
with --eval-bleu.

Shape legend: B sentences, S source length, T target length, D decoder dim, V target vocabulary.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from nmt.config import TrainConfig
from nmt.data.dataset import (
    Batch,
    BatchDataset,
    PairDataset,
    copy_of_epoch,
    epoch_order,
    load_split,
    plan_batches,
    read_meta,
    shard,
    train_copies,
)
from nmt.data.shapes import policy_of
from nmt.data.tokenizer import load_tokenizers, read_blobs
from nmt.models import build_for_data
from nmt.registry import CRITERIA, TASKS, lookup, register
from nmt.tasks.checks import require_task_data
from nmt.training.dist import DistInfo
from nmt.training.scored_rows import loss_parts, scored_loss


@dataclass(frozen=True)
class TranslationLoss:
    """The task's criterion as the Trainer calls it: `loss(net, model, batch, autocast) -> (loss_sum, stats)`.

    `net` runs the forward pass (the model or its DDP / compile wrapper), `model` is the bare
    model, `autocast` a zero-argument callable giving the Trainer's autocast context. The
    decoder reads batch.tgt_in (B, T); `criterion` scores its logits (B, T, V) against
    batch.tgt_out (B, T). With `from_features` (the criterion's blockwise form, used under
    autocast) the model returns its features (B, T, D) instead and the criterion multiplies them
    by the output weight (V, D) a block of rows at a time in `dtype`, so the logits are never
    held in full (see nmt.training.criterion). With `scored_only` (models with `output_weight`)
    the output layer runs on the non-padding target positions alone (nmt.training.scored_rows).
    The criterion runs outside autocast either way.
    """

    criterion: Callable
    eps: float
    from_features: Optional[Callable] = None
    dtype: Optional[torch.dtype] = None
    scored_only: bool = False

    def __call__(
        self,
        net: torch.nn.Module,
        model: torch.nn.Module,
        batch: Batch,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> tuple[torch.Tensor, dict]:
        if not self.scored_only:
            with autocast():
                logits = net(batch.src, batch.src_pad_mask, batch.tgt_in)  # (B, T, V)
            return self.criterion(logits, batch.tgt_out, self.eps)
        with autocast():
            features = net(batch.src, batch.src_pad_mask, batch.tgt_in, features_only=True)  # (B, T, D)
        weight, target = model.output_weight, batch.tgt_out
        return scored_loss(features, weight, target, self.criterion, self.eps, autocast, self.from_features, self.dtype)


def epoch_plan(batches: list, epoch: int, seed: int, rank: int, world_size: int) -> list:
    """One rank's share of an epoch: `batches` in the order of (seed, epoch), every world_size-th
    from `rank` on, truncated so that every rank gets as many."""
    order = epoch_order(len(batches), epoch, seed)
    return shard([batches[i] for i in order], rank, world_size)


@register(TASKS, "translation")
class TranslationTask:
    """Parallel text of a data directory for one rank (see the module doc and nmt.tasks)."""

    metrics = ("loss", "nll_loss", "ppl", "bleu")

    def __init__(self, cfg: TrainConfig, info: DistInfo = DistInfo()):
        self.cfg = cfg
        self.info = info
        self.meta = read_meta(cfg.data)
        require_task_data(self.meta, "translation", cfg.data)
        self.blobs = read_blobs(cfg.data, self.meta)
        self.src_tok, self.tgt_tok = load_tokenizers(self.meta, self.blobs)
        self.train_sets: list[PairDataset] = train_copies(cfg.data, self.meta)  # the split, then sampled copies
        has_valid = "valid" in self.meta.get("splits", {})
        self.valid_data: Optional[PairDataset] = load_split(cfg.data, "valid", self.meta) if has_valid else None
        self.policy = policy_of(cfg)
        self.set_batches = [self._batches(d) for d in self.train_sets]
        self.valid_batches = [] if self.valid_data is None else self._batches(self.valid_data)

    def _batches(self, pairs: PairDataset) -> list[np.ndarray]:
        return plan_batches(pairs.src.sizes, pairs.tgt.sizes, self.policy)

    # ------------------------------------------------------------------ model and criterion
    def build_model(self, model_cfg) -> torch.nn.Module:
        """The model `model_cfg` describes, with this data's vocabulary sizes."""
        return build_for_data(model_cfg, self.meta)

    def loss(self, model: torch.nn.Module, amp_dtype: Optional[torch.dtype]) -> TranslationLoss:
        """--criterion for `model`, scoring only the non-padding positions when the model has an
        `output_weight` (the Transformer); under autocast (`amp_dtype`) its blockwise form unless
        --full-logits."""
        criterion = lookup(CRITERIA, self.cfg.criterion, "criterion")
        return TranslationLoss(**loss_parts(self.cfg, model, criterion, amp_dtype))

    # ------------------------------------------------------------------ training data
    def epoch_data(self, epoch: int) -> PairDataset:
        """The training copy epoch `epoch` (from 1) reads."""
        return self.train_sets[copy_of_epoch(epoch, len(self.train_sets))]

    def num_batches(self, epoch: int) -> int:
        """Batches of epoch `epoch` over all ranks, before sharding."""
        return len(self.set_batches[copy_of_epoch(epoch, len(self.set_batches))])

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches (sentence indices into `epoch_data(epoch)`) of epoch `epoch`, in order."""
        batches = self.set_batches[copy_of_epoch(epoch, len(self.set_batches))]
        return epoch_plan(batches, epoch, self.cfg.seed, self.info.rank, self.info.world_size)

    def train_dataset(self, epoch: int, batches: list[np.ndarray]) -> BatchDataset:
        """Item i: `batches[i]` of epoch `epoch` collated into a Batch."""
        return BatchDataset(self.epoch_data(epoch), batches, self.policy)

    def valid_dataset(self) -> Optional[BatchDataset]:
        """This rank's share of the valid split's batches; None when the data has no valid split."""
        if self.valid_data is None:
            return None
        return BatchDataset(self.valid_data, self.valid_batches[self.info.rank :: self.info.world_size], self.policy)
