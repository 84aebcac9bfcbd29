"""The output layer on the scored positions only.

For a small model the output layer (features @ W^T, W the (V, D) output weight) is the largest
matrix product of a training step, and with few batch shapes (nmt.data.shapes) a fifth of the
target positions of Multi30k batches are padding. The loss wrappers of the translation and
language-modeling tasks therefore take the decoder's features (B, T, D), keep the rows whose
target is not padding, and project only those. The loss sums are those of the full logits: a
padding target scores zero either way.

The kept count is rounded up to a multiple of `ROW_MULTIPLE` with padding positions (scored
zero), so that the output layer's products see few distinct row counts: each distinct shape is
a generated oneDNN kernel, the memory cost nmt.data.shapes bounds. Counting the rows reads one
number back from the device, so on a GPU each step waits once for its forward pass there (not
yet measured on a GPU).

Shape legend: B rows, T target length, D model dim, V vocabulary, N kept rows.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from nmt.data.tokenizer import PAD
from nmt.training.criterion import FROM_FEATURES, count_sentences

# Kept rows come in multiples of 64: at most 64 distinct row counts for a 4,096-token budget,
# and under 2% extra rows on Multi30k's ~2,000 target tokens a batch.
ROW_MULTIPLE = 64


def scored_rows(target: torch.Tensor, pad: int = PAD, multiple: int = ROW_MULTIPLE) -> torch.Tensor:
    """Flat indices (N,) of the positions of `target` (any shape) that are not `pad`, in order,
    then as many padding positions as round N up to a multiple of `multiple` (at most all)."""
    flat = target.reshape(-1)
    padding = flat.eq(pad)
    kept = int(flat.numel() - padding.sum())
    rounded = min(-(-kept // multiple) * multiple, flat.numel())
    # a stable sort on "is padding" lists the scored positions first, each group in order
    return torch.sort(padding.to(torch.uint8), stable=True).indices[:rounded]


def loss_parts(cfg, model: torch.nn.Module, criterion: Callable, amp_dtype: Optional[torch.dtype]) -> dict:
    """The fields of a task's loss (TranslationLoss, LMLoss) for `model` under `cfg` (a TrainConfig):
    scored rows only when the model has an `output_weight`, and then, under autocast (`amp_dtype`),
    the criterion's blockwise form unless --full-logits."""
    scored_only = hasattr(model, "output_weight")
    from_features = None
    if amp_dtype is not None and not cfg.full_logits and scored_only:
        from_features = FROM_FEATURES.get(cfg.criterion)
    return dict(
        criterion=criterion,
        eps=cfg.label_smoothing,
        from_features=from_features,
        dtype=amp_dtype,
        scored_only=scored_only,
    )


def scored_loss(
    features: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    criterion: Callable,
    eps: float,
    autocast: Callable[[], contextlib.AbstractContextManager],
    from_features: Optional[Callable] = None,
    dtype: Optional[torch.dtype] = None,
) -> tuple[torch.Tensor, dict]:
    """(loss_sum, stats) of logits = features @ weight^T against target, computed on the scored rows.

    features (B, T, D), weight (V, D), target (B, T). With `from_features` (the criterion's
    blockwise form) the rows go to it with `dtype`; otherwise the logits (N, V) are computed under
    `autocast` and scored by `criterion`. stats["nsentences"] counts the rows of target with a
    scored position, as the criterion does on the full logits.
    """
    rows = scored_rows(target)
    h = features.reshape(-1, features.size(-1)).index_select(0, rows)  # (N, D)
    kept = target.reshape(-1).index_select(0, rows)  # (N,)
    if from_features is not None:
        loss, stats = from_features(h, weight, kept, eps, dtype=dtype)
    else:
        with autocast():
            logits = F.linear(h, weight)  # (N, V)
        loss, stats = criterion(logits, kept, eps)
    return loss, {**stats, "nsentences": count_sentences(target)}
