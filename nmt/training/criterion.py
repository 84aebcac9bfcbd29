"""Training criteria: (logits, target) -> (loss_sum, stats).

Stats are sums (loss, nll_loss, ntokens, nsentences) kept as tensors, so they can be
all-reduced by addition and normalized once at log time. The criterion never lives inside
the model.

Label smoothing follows the usual NMT formulation: the gold token keeps 1 - eps and eps is
spread uniformly over the other V - 1 tokens, so per token

    loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v),    eps_i = eps / (V - 1)

(eps_i is added to and removed from the gold token, which makes the sum come out right).
`nll` is the unsmoothed negative log-likelihood; perplexity is computed from it, never from
the smoothed loss.

The computation is fused into one autograd node: the forward pass is one log-softmax and two
row reductions, and the backward pass writes the gradient in one sweep instead of going
through gather, sum and log-softmax backward separately. On CPU that removes several passes
over the largest tensor of a training step (measured: 46 ms instead of 67 ms for forward +
backward of 3300 x 8000 logits).

Under autocast (bf16, fp16) the trainer goes one step further and hands the criterion the
decoder's features and the output projection instead of logits (`*_from_features`): the
logits are computed, reduced and differentiated a block of rows at a time, so the (N, V)
tensor, its float32 copy and its gradient never exist in full. Each block stays in cache,
the projection is recomputed in backward (one extra low-precision matrix product, cheap
next to the passes over memory it saves), and peak memory drops by about 3 x N x V x 4 bytes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nmt.data.tokenizer import PAD
from nmt.registry import CRITERIA, register


class _SmoothedCE(torch.autograd.Function):
    """Per-token label-smoothed cross entropy and nll from logits (N, V) and targets (N,).

    Returns (loss (N,), nll (N,)) in float32, zero at padding targets. Only `loss` carries a
    gradient; `nll` is reported, never differentiated. The forward pass is PyTorch's fused
    log-softmax kernel plus two row reductions; the log-probabilities are saved in place of
    the logits (same memory) and the backward pass writes the gradient in one sweep.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, eps: float, pad: int):
        lprobs = F.log_softmax(logits.float(), dim=-1)  # (N, V)
        vocab = lprobs.size(-1)
        nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N,)
        keep = target != pad
        loss = nll
        if eps > 0:
            eps_i = eps / (vocab - 1)
            loss = (1.0 - eps - eps_i) * nll - eps_i * lprobs.sum(-1)  # sum_v -log p_v, weighted
        loss = loss.masked_fill(~keep, 0.0)
        nll = nll.masked_fill(~keep, 0.0)
        ctx.save_for_backward(lprobs, target, keep)
        ctx.eps = eps
        ctx.logits_dtype = logits.dtype
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        lprobs, target, keep = ctx.saved_tensors
        eps = ctx.eps
        vocab = lprobs.size(-1)
        eps_i = eps / (vocab - 1) if eps > 0 else 0.0
        gold_w = 1.0 - eps - eps_i
        # d loss / d x_v = p_v * (gold_w + eps_i * V) - gold_w * [v == t] - eps_i
        scale = grad_loss.float() * keep  # (N,) zero at padding
        grad = torch.exp(lprobs)  # softmax, written once
        grad.mul_((scale * (gold_w + eps_i * vocab)).unsqueeze(-1))
        grad.scatter_add_(-1, target.unsqueeze(-1), (-gold_w * scale).unsqueeze(-1))
        if eps_i:
            grad.sub_((eps_i * scale).unsqueeze(-1))
        return grad.to(ctx.logits_dtype), None, None, None


# Rows per block of `_LinearSmoothedCE`: about 4M float32 logits (16 MB, which stays in cache;
# 256-512 rows at V = 8000 measured fastest on CPU). GPUs want far larger blocks.
BLOCK_ELEMENTS = {"cpu": 2**22}
BLOCK_ELEMENTS_DEFAULT = 2**26


class _LinearSmoothedCE(torch.autograd.Function):
    """`_SmoothedCE` of logits = features @ weight^T, computed `block` rows at a time.

    features (N, D), weight (V, D), target (N,) -> (loss (N,), nll (N,)) float32, zero at
    padding. The products run in `dtype` (the autocast dtype) with float32 reductions. Saved
    for backward: the inputs and the per-row log-partition lse (N,), nothing of size V.

    Backward per block: p = exp(logits - lse); the gradient of the logits is
    a * p - gold_w * scale * onehot(target) - eps_i * scale with a = scale * (gold_w + eps_i * V).
    Its last term is the same for every v, so its share of the products is a rank-1
    correction taken once outside the loop: - (eps_i * scale)_n * sum_v W_v for features and
    - sum_n (eps_i * scale)_n h_n for every row of the weight gradient.
    """

    @staticmethod
    def forward(ctx, features, weight, target, eps: float, pad: int, dtype: torch.dtype, block: int):
        N, V = features.size(0), weight.size(0)
        h, w = features.to(dtype), weight.to(dtype)
        nll = torch.empty(N, dtype=torch.float32, device=features.device)
        lse, smooth = torch.empty_like(nll), torch.zeros_like(nll)
        for a in range(0, N, block):
            b = min(a + block, N)
            logits = (h[a:b] @ w.t()).float()  # (C, V)
            lprobs = F.log_softmax(logits, dim=-1)
            nll[a:b] = -lprobs.gather(-1, target[a:b, None]).squeeze(-1)
            lse[a:b] = logits[:, 0] - lprobs[:, 0]
            if eps > 0:
                smooth[a:b] = -lprobs.sum(-1)
        eps_i = eps / (V - 1) if eps > 0 else 0.0
        keep = target != pad
        loss = ((1.0 - eps - eps_i) * nll + eps_i * smooth).masked_fill(~keep, 0.0)
        nll = nll.masked_fill(~keep, 0.0)
        ctx.save_for_backward(features, weight, target, lse, keep)
        ctx.eps, ctx.dtype, ctx.block = eps, dtype, block
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        features, weight, target, lse, keep = ctx.saved_tensors
        N, V = features.size(0), weight.size(0)
        eps, dtype, block = ctx.eps, ctx.dtype, ctx.block
        eps_i = eps / (V - 1) if eps > 0 else 0.0
        gold_w = 1.0 - eps - eps_i
        h, w = features.to(dtype), weight.to(dtype)
        scale = grad_loss.float() * keep  # (N,) zero at padding
        coef = (scale * (gold_w + eps_i * V)).unsqueeze(-1)  # (N, 1)
        gold = (-gold_w * scale).unsqueeze(-1)  # (N, 1)
        grad_h = torch.empty(N, h.size(1), dtype=torch.float32, device=h.device)
        grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device)
        for a in range(0, N, block):
            b = min(a + block, N)
            g = (h[a:b] @ w.t()).float().sub_(lse[a:b, None]).exp_().mul_(coef[a:b])  # a * p, (C, V)
            g.scatter_add_(-1, target[a:b, None], gold[a:b])
            g = g.to(dtype)
            grad_h[a:b] = g @ w
            grad_w += g.t() @ h[a:b]
        if eps_i:
            uniform = eps_i * scale  # (N,)
            grad_h -= uniform[:, None] * w.float().sum(0)
            grad_w -= (uniform @ features.float())[None, :]
        return grad_h.to(features.dtype), grad_w.to(weight.dtype), None, None, None, None, None


def token_losses_from_features(
    features: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, eps: float = 0.0, pad: int = PAD, dtype=None
):
    """Per-token (loss, nll) of logits = features @ weight^T, each (N,) float32, zero where target == pad.

    features (..., D), weight (V, D), target (...) long; `dtype` of the products (default: the
    autocast dtype when autocast is on, else that of features). Equal to `token_losses` of
    the full logits up to rounding; the (N, V) logits are never held at once.
    """
    device = features.device.type
    if dtype is None:
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else features.dtype
    block = max(1, BLOCK_ELEMENTS.get(device, BLOCK_ELEMENTS_DEFAULT) // weight.size(0))
    with torch.autocast(device, enabled=False):  # the products' dtype is chosen here, not by autocast
        return _LinearSmoothedCE.apply(
            features.reshape(-1, features.size(-1)), weight, target.reshape(-1), float(eps), pad, dtype, block
        )


def token_losses(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.0, pad: int = PAD):
    """Per-token (loss, nll), each (N,) float32, zero where target == pad.

    logits: (..., V) any float dtype; target: (...) long. Leading dims are flattened.
    """
    vocab = logits.size(-1)
    return _SmoothedCE.apply(logits.reshape(-1, vocab), target.reshape(-1), float(eps), pad)


def count_sentences(target: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Rows of target (B, T) with something to score: the sentences, not the padding rows of a batch
    (nmt.data.shapes). A flat target (N,) counts its scored positions."""
    scored = target != pad
    return (scored if scored.dim() == 1 else scored.flatten(1).any(-1)).sum()


def _stats(loss: torch.Tensor, nll: torch.Tensor, target: torch.Tensor, pad: int) -> dict:
    ntokens = (target != pad).sum()
    nsentences = count_sentences(target, pad)
    return {"loss": loss.detach(), "nll_loss": nll.detach(), "ntokens": ntokens, "nsentences": nsentences}


@register(CRITERIA, "label_smoothed_cross_entropy")
def label_smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.1, pad: int = PAD):
    """logits (B, T, V), target (B, T) -> (loss_sum scalar, stats of summed tensors)."""
    loss, nll = token_losses(logits, target, eps, pad)
    loss_sum, nll_sum = loss.sum(), nll.sum()
    return loss_sum, _stats(loss_sum, nll_sum, target, pad)


def label_smoothed_cross_entropy_from_features(features, weight, target, eps: float = 0.1, pad: int = PAD, dtype=None):
    """features (B, T, D), output weight (V, D), target (B, T) -> (loss_sum, stats), as from the logits;
    the products in `dtype` (see `token_losses_from_features`)."""
    loss, nll = token_losses_from_features(features, weight, target, eps, pad, dtype)
    loss_sum, nll_sum = loss.sum(), nll.sum()
    return loss_sum, _stats(loss_sum, nll_sum, target, pad)


def cross_entropy_from_features(features, weight, target, eps: float = 0.0, pad: int = PAD, dtype=None):
    """Plain cross entropy from features and the output weight (ignores eps)."""
    return label_smoothed_cross_entropy_from_features(features, weight, target, 0.0, pad, dtype)


@register(CRITERIA, "cross_entropy")
def cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.0, pad: int = PAD):
    """Plain cross entropy (ignores eps): (B, T, V), (B, T) -> (loss_sum, stats)."""
    return label_smoothed_cross_entropy(logits, target, 0.0, pad)


# The criteria that can also start from the features and the output weight (see the module doc).
FROM_FEATURES = {
    "label_smoothed_cross_entropy": label_smoothed_cross_entropy_from_features,
    "cross_entropy": cross_entropy_from_features,
}
