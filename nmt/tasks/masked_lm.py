"""The masked-LM task (BERT-style): an encoder alone fills in masked tokens.

A monolingual data directory (`nmt preprocess --only-source`) becomes one sample per sentence
(cut to --tokens-per-sample), masked as BERT (nmt.data.masking: --mask-prob of the tokens, or of
the words with --mask-whole-words, at least one; of those --mask-replace-prob become <mask>,
--mask-random-prob a random token, the rest unchanged). A sentence's masks are drawn from (--seed,
epoch, its index), so they change every epoch, are the same on a resumed run, and are the same
at every validation (epoch 0). Batches are ordered and sharded as translation's.

The model (family transformer_mlm) is called with the chosen positions, so that its output head
runs only there (as RoBERTa): `model(tokens, pad_mask, masked=masked)` -> logits (N, V) of the N
chosen positions in row-major order; --criterion with --label-smoothing scores them. The logits
are few (about --mask-prob of the tokens), so the full-logits form is used under autocast too.
ntokens of a batch is N. Validation reports loss, nll_loss and ppl.

Shape legend: B sentences, T their padded length, N chosen positions, V vocabulary.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from nmt.config import TrainConfig
from nmt.data.masking import MaskSpec, word_starts
from nmt.data.monolingual import MaskedDataset, TokenBatch
from nmt.data.preprocess_mono import MASK_PIECE
from nmt.data.shapes import policy_of
from nmt.data.tokenizer import PAD, UNK
from nmt.errors import UserError
from nmt.models import build_for_data
from nmt.registry import CRITERIA, TASKS, lookup, register
from nmt.tasks.checks import require_arch_for_task
from nmt.tasks.monolingual import MonolingualData, batches_of, rank_share
from nmt.tasks.translation import epoch_plan
from nmt.training.dist import DistInfo

VALID_EPOCH = 0  # the masks of every validation: training epochs count from 1


@dataclass(frozen=True)
class MaskedLoss:
    """The criterion as the Trainer calls it: `loss(net, model, batch, autocast) -> (loss_sum, stats)`.

    The model reads batch.tokens (B, T) with its pad_mask and returns the logits (N, V) of the
    positions where batch.target (B, T) is not PAD; `criterion` scores them against those N
    targets. nsentences counts the batch's sentences (not its padding rows).
    """

    criterion: Callable
    eps: float

    def __call__(
        self,
        net: torch.nn.Module,
        model: torch.nn.Module,
        batch: TokenBatch,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> tuple[torch.Tensor, dict]:
        masked = batch.target.ne(PAD)  # (B, T)
        with autocast():
            logits = net(batch.tokens, batch.pad_mask, masked=masked)  # (N, V)
        loss, stats = self.criterion(logits, batch.target[masked], self.eps)  # target (N,), row-major as logits
        nsentences = batch.ids.ge(0).sum()  # padding rows have id -1
        return loss, {**stats, "nsentences": nsentences}


@register(TASKS, "masked_lm")
class MaskedLMTask:
    """Masked sentences of a monolingual data directory for one rank (see the module doc and nmt.tasks)."""

    metrics = ("loss", "nll_loss", "ppl")

    def __init__(self, cfg: TrainConfig, info: DistInfo = DistInfo()):
        self.cfg = cfg
        self.info = info
        self.data = MonolingualData(cfg, info, "masked_lm")
        self.meta, self.blobs = self.data.meta, self.data.blobs
        mask_id = self.data.tok.piece_to_id(MASK_PIECE)
        if mask_id == UNK:
            raise UserError(f"{cfg.data} has no {MASK_PIECE} piece; rerun 'nmt preprocess --only-source'")
        lm = cfg.lm
        self.spec = MaskSpec(
            lm.mask_prob, lm.mask_replace_prob, lm.mask_random_prob, lm.mask_whole_words, mask_id, self.data.vocab_size
        )
        self.starts = word_starts(self.data.tok.pieces(range(self.data.vocab_size))) if lm.mask_whole_words else None
        self.train_batches = self._batches(self.data.train.sizes)
        self.valid_batches = [] if self.data.valid is None else self._batches(self.data.valid.sizes)

    def _batches(self, sizes: np.ndarray) -> list[np.ndarray]:
        return batches_of(np.minimum(sizes, self.cfg.lm.tokens_per_sample - 1) + 1, self.cfg)

    def _dataset(self, text, batches: list[np.ndarray], epoch: int) -> MaskedDataset:
        block = self.cfg.lm.tokens_per_sample
        return MaskedDataset(text, batches, block, self.spec, self.cfg.seed, epoch, self.starts, policy_of(self.cfg))

    # ------------------------------------------------------------------ model and criterion
    def build_model(self, model_cfg) -> torch.nn.Module:
        """The encoder-only model `model_cfg` describes, with this data's vocabulary size."""
        require_arch_for_task(model_cfg, "masked_lm", self.cfg.arch)
        return build_for_data(model_cfg, self.meta)

    def loss(self, model: torch.nn.Module, amp_dtype: Optional[torch.dtype]) -> MaskedLoss:
        """--criterion at the chosen positions (full logits: they are few; see the module doc)."""
        return MaskedLoss(lookup(CRITERIA, self.cfg.criterion, "criterion"), self.cfg.label_smoothing)

    # ------------------------------------------------------------------ data
    def num_batches(self, epoch: int) -> int:
        """Batches of an epoch over all ranks, before sharding (the same every epoch)."""
        return len(self.train_batches)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches (sentence indices) of epoch `epoch`, in order."""
        return epoch_plan(self.train_batches, epoch, self.cfg.seed, self.info.rank, self.info.world_size)

    def train_dataset(self, epoch: int, batches: list[np.ndarray]) -> MaskedDataset:
        """Item i: the sentences of `batches[i]`, masked for epoch `epoch`, as a TokenBatch."""
        return self._dataset(self.data.train, batches, epoch)

    def valid_dataset(self) -> Optional[MaskedDataset]:
        """This rank's share of the valid split's batches, with the masks of every validation."""
        if self.data.valid is None:
            return None
        return self._dataset(self.data.valid, rank_share(self.valid_batches, self.info), VALID_EPOCH)
