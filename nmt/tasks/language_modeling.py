"""The language-modeling task (GPT-style): a decoder alone predicts each next token.

A monolingual data directory (`nmt preprocess --only-source`) becomes blocks of the token stream
(nmt.data.monolingual: --tokens-per-sample, --sample-break-mode), each epoch's batches of blocks
ordered by (--seed, epoch) and sharded as translation's. The model (family transformer_lm) reads
the BOS-first input (B, T) and --criterion with --label-smoothing scores every non-PAD target;
under autocast the blockwise form of the criterion is used when the model has `output_weight`
(as in translation), so the (B, T, V) logits are never held at once. Validation reports loss,
nll_loss and ppl.

Shape legend: B blocks, T block length, D model dim, V vocabulary.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from nmt.config import TrainConfig
from nmt.data.monolingual import BlockDataset, TokenBatch, lm_blocks
from nmt.data.shapes import policy_of
from nmt.models import build_for_data
from nmt.registry import CRITERIA, TASKS, lookup, register
from nmt.tasks.checks import require_arch_for_task
from nmt.tasks.monolingual import MonolingualData, batches_of, rank_share
from nmt.tasks.translation import epoch_plan
from nmt.training.dist import DistInfo
from nmt.training.scored_rows import loss_parts, scored_loss


@dataclass(frozen=True)
class LMLoss:
    """The criterion as the Trainer calls it: `loss(net, model, batch, autocast) -> (loss_sum, stats)`.

    The model reads batch.tokens (B, T); `criterion` scores its logits (B, T, V) against
    batch.target (B, T). With `from_features` the model returns features (B, T, D) and the
    criterion multiplies them by model.output_weight (V, D) a block of rows at a time in `dtype`
    (see nmt.tasks.translation.TranslationLoss). With `scored_only` the output layer runs on the
    non-padding targets alone (nmt.training.scored_rows). The criterion runs outside autocast.
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
        batch: TokenBatch,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> tuple[torch.Tensor, dict]:
        if not self.scored_only:
            with autocast():
                logits = net(batch.tokens)  # (B, T, V)
            return self.criterion(logits, batch.target, self.eps)
        with autocast():
            features = net(batch.tokens, features_only=True)  # (B, T, D)
        weight, target = model.output_weight, batch.target
        return scored_loss(features, weight, target, self.criterion, self.eps, autocast, self.from_features, self.dtype)


@register(TASKS, "language_modeling")
class LanguageModelingTask:
    """Blocks of a monolingual data directory for one rank (see the module doc and nmt.tasks)."""

    metrics = ("loss", "nll_loss", "ppl")

    def __init__(self, cfg: TrainConfig, info: DistInfo = DistInfo()):
        self.cfg = cfg
        self.info = info
        self.data = MonolingualData(cfg, info, "language_modeling")
        self.meta, self.blobs = self.data.meta, self.data.blobs
        n, mode = cfg.lm.tokens_per_sample, cfg.lm.sample_break_mode
        self.train_blocks = lm_blocks(self.data.train.sizes, n, mode)  # (K, 3) start, end, bos
        self.train_batches = batches_of(self.train_blocks[:, 1] - self.train_blocks[:, 0], cfg)
        self.valid_blocks: Optional[np.ndarray] = None
        self.valid_batches: list[np.ndarray] = []
        if self.data.valid is not None:
            self.valid_blocks = lm_blocks(self.data.valid.sizes, n, mode)
            self.valid_batches = batches_of(self.valid_blocks[:, 1] - self.valid_blocks[:, 0], cfg)

    # ------------------------------------------------------------------ model and criterion
    def build_model(self, model_cfg) -> torch.nn.Module:
        """The decoder-only model `model_cfg` describes, with this data's vocabulary size."""
        require_arch_for_task(model_cfg, "language_modeling", self.cfg.arch)
        return build_for_data(model_cfg, self.meta)

    def loss(self, model: torch.nn.Module, amp_dtype: Optional[torch.dtype]) -> LMLoss:
        """--criterion for `model`, scoring only the non-padding targets when the model has an
        `output_weight`; under autocast its blockwise form unless --full-logits."""
        criterion = lookup(CRITERIA, self.cfg.criterion, "criterion")
        return LMLoss(**loss_parts(self.cfg, model, criterion, amp_dtype))

    # ------------------------------------------------------------------ data
    def num_batches(self, epoch: int) -> int:
        """Batches of an epoch over all ranks, before sharding (the same every epoch)."""
        return len(self.train_batches)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches (block indices) of epoch `epoch`, in order."""
        return epoch_plan(self.train_batches, epoch, self.cfg.seed, self.info.rank, self.info.world_size)

    def train_dataset(self, epoch: int, batches: list[np.ndarray]) -> BlockDataset:
        """Item i: the blocks of `batches[i]` as a TokenBatch."""
        return BlockDataset(self.data.train, self.train_blocks, batches, policy_of(self.cfg))

    def valid_dataset(self) -> Optional[BlockDataset]:
        """This rank's share of the valid split's batches; None when the data has no valid split."""
        if self.data.valid is None:
            return None
        return BlockDataset(
            self.data.valid, self.valid_blocks, rank_share(self.valid_batches, self.info), policy_of(self.cfg)
        )
