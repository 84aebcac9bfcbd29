"""Optimizers and learning-rate schedules.

A schedule is a pure function `(step, cfg, d_model, horizon) -> lr` of the update number
(1-based: the lr used for the step-th update), so the lr of any step can be checked by hand and
resume needs no scheduler state. The decaying schedules (cosine, polynomial_decay) end at
`horizon`: the run's --max-update (or --max-epoch's updates); under a wall-time budget the
Trainer passes `decay_horizon` instead, the updates the budget allows at the pace so far, so
that the lr reaches its end when time runs out. `reduce_lr_on_plateau` is the one schedule
driven by validation rather than steps: its shrink count lives in the Trainer's state
(`lr_scale`) and multiplies whatever the fixed schedule gives.
"""

from __future__ import annotations

import math

import torch

from nmt.config import OptimConfig
from nmt.registry import LR_SCHEDULERS, OPTIMIZERS, lookup, register


# ----------------------------------------------------------------------------- optimizers
def _make(cls, params: list, **kwargs) -> torch.optim.Optimizer:
    """The fused kernel (one pass over each tensor, CPU and CUDA alike; several times faster than
    the multi-tensor path on CPU), or foreach where this torch build has no fused kernel."""
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return cls(params, foreach=True, **kwargs)


@register(OPTIMIZERS, "adam")
def adam(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return _make(
        torch.optim.Adam,
        params,
        lr=cfg.lr,
        betas=tuple(cfg.adam_betas),
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
    )


@register(OPTIMIZERS, "adamw")
def adamw(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return _make(
        torch.optim.AdamW,
        params,
        lr=cfg.lr,
        betas=tuple(cfg.adam_betas),
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
    )


@register(OPTIMIZERS, "sgd")
def sgd(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return _make(torch.optim.SGD, params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_optimizer(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return lookup(OPTIMIZERS, cfg.optimizer, "optimizer")(params, cfg)


# ----------------------------------------------------------------------------- schedules
WARMUP_DEFAULTS = {"inverse_sqrt": 4000, "noam": 4000}  # the other schedules warm up only when asked


def warmup_updates(cfg: OptimConfig) -> int:
    """cfg.warmup_updates, or the schedule's own default when it is None."""
    if cfg.warmup_updates is not None:
        return cfg.warmup_updates
    return WARMUP_DEFAULTS.get(cfg.lr_scheduler, 0)


def _warmup(step: int, cfg: OptimConfig, peak: float) -> float:
    """Linear warmup from warmup_init_lr to `peak` over the warmup steps."""
    return cfg.warmup_init_lr + (peak - cfg.warmup_init_lr) * step / warmup_updates(cfg)


def _decay_fraction(step: int, cfg: OptimConfig, horizon: int) -> float:
    """How far a decaying schedule is from warmup's end (0) to `horizon` (1), capped at 1."""
    span = max(horizon - warmup_updates(cfg), 1)
    return min((step - warmup_updates(cfg)) / span, 1.0)


@register(LR_SCHEDULERS, "inverse_sqrt")
def inverse_sqrt(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """Linear warmup to cfg.lr, then lr * sqrt(warmup / step)."""
    if step < warmup_updates(cfg):
        return _warmup(step, cfg, cfg.lr)
    return cfg.lr * math.sqrt(max(warmup_updates(cfg), 1) / step)


@register(LR_SCHEDULERS, "noam")
def noam(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """Vaswani et al.: factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5); cfg.lr is the factor."""
    step = max(step, 1)
    warmup = max(warmup_updates(cfg), 1)
    return cfg.lr * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


@register(LR_SCHEDULERS, "cosine")
def cosine(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """Linear warmup to cfg.lr, then half a cosine down to min_lr at the horizon."""
    if step < warmup_updates(cfg):
        return _warmup(step, cfg, cfg.lr)
    t = _decay_fraction(step, cfg, horizon)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


@register(LR_SCHEDULERS, "polynomial_decay")
def polynomial_decay(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """Linear warmup to cfg.lr, then min_lr + (lr - min_lr)(1 - t)^power down to min_lr at the horizon
    (power 1: a straight line)."""
    if step < warmup_updates(cfg):
        return _warmup(step, cfg, cfg.lr)
    t = _decay_fraction(step, cfg, horizon)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1.0 - t) ** cfg.power


@register(LR_SCHEDULERS, "fixed")
def fixed(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """cfg.lr, after an optional linear warmup."""
    if step < warmup_updates(cfg):
        return _warmup(step, cfg, cfg.lr)
    return cfg.lr


@register(LR_SCHEDULERS, "reduce_lr_on_plateau")
def reduce_lr_on_plateau(step: int, cfg: OptimConfig, d_model: int, horizon: int) -> float:
    """Fixed lr (after warmup); the Trainer multiplies it by lr_shrink at each plateau."""
    return fixed(step, cfg, d_model, horizon)


def decay_horizon(max_update: int, done: int, seconds: float, budget_seconds: float) -> int:
    """Where a decaying schedule ends: max_update (0 = none) or, with a wall-time budget, the
    updates it allows at the pace so far (`done` updates in `seconds`), whichever is fewer.

    On a machine whose speed varies the estimate moves a little from update to update, but it
    closes in on the true count as the run goes on and equals it when time runs out. Before
    the first update (no pace yet) it is max_update.
    """
    if budget_seconds <= 0 or done <= 0 or seconds <= 0:
        return max_update
    by_time = max(done, round(done * budget_seconds / seconds))
    return min(max_update, by_time) if max_update > 0 else by_time


def lr_at(step: int, cfg: OptimConfig, d_model: int, lr_scale: float = 1.0, horizon: int = 0) -> float:
    """The lr of the step-th update (1-based), never below min_lr once warmup is over.

    horizon: the update where the decaying schedules end (see decay_horizon)."""
    lr = lookup(LR_SCHEDULERS, cfg.lr_scheduler, "lr scheduler")(step, cfg, d_model, horizon) * lr_scale
    return lr if step < warmup_updates(cfg) else max(lr, cfg.min_lr)


def plateau_update(best: float | None, value: float, bad_count: int, patience: int, maximize: bool) -> tuple[bool, int]:
    """One validation of reduce_lr_on_plateau: (shrink now?, new count of bad validations)."""
    improved = best is None or (value > best if maximize else value < best)
    if improved:
        return False, 0
    bad_count += 1
    if bad_count > patience:
        return True, 0
    return False, bad_count


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
