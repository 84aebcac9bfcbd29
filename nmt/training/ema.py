"""Exponential moving average (EMA) of the weights, for translating with smoothed weights.

After every optimizer update u the average moves towards the trained weights:

    ema <- decay * ema + (1 - decay) * weights        (u > start_update)
    ema <- weights                                     (u <= start_update)

so it is a weighted mean of the recent weights in which the weights of k updates ago count
decay**k: decay 0.999 averages over the last ~1000 updates (their mean age is
decay / (1 - decay)). Averaging the last epoch checkpoints does the same with equal weights
over a few points; the EMA sees every update. Until `start_update` (e.g. the end of the lr
warmup) the average simply follows the weights, so the far-off early weights never enter it.

The average is a second copy of the model (fp32, no gradients) that validation, `--eval-bleu`
and the saved checkpoints use; the trained weights themselves are saved beside it for resume.
"""

from __future__ import annotations

import copy

import torch


def ema_weight(num_updates: int, decay: float, start_update: int) -> float:
    """The share of the trained weights in the average after update `num_updates` (1 = copy)."""
    return 1.0 if num_updates <= start_update else 1.0 - decay


def make_average(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of `model` in eval mode that holds the average."""
    average = copy.deepcopy(model)
    average.eval()
    for p in average.parameters():
        p.requires_grad_(False)
    return average


@torch.no_grad()
def update_average(average: torch.nn.Module, model: torch.nn.Module, weight: float) -> None:
    """average <- average + weight * (model - average), over parameters; buffers are copied.

    Both models have the same structure (`average` is a `make_average` copy of `model`).
    """
    avg_params = list(average.parameters())
    params = [p.detach() for p in model.parameters()]
    if weight >= 1.0:
        torch._foreach_copy_(avg_params, params)
    else:
        torch._foreach_lerp_(avg_params, params, weight)
    for b_avg, b in zip(average.buffers(), model.buffers()):  # e.g. sinusoidal positions: not averaged
        b_avg.copy_(b)
