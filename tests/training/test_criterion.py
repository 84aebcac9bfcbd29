"""Criterion values against hand computations and torch's own cross entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from nmt.data.tokenizer import PAD
from nmt.training import criterion
from nmt.training.criterion import (
    cross_entropy,
    label_smoothed_cross_entropy,
    label_smoothed_cross_entropy_from_features,
    token_losses,
    token_losses_from_features,
)


def test_eps_zero_equals_torch_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    target = torch.randint(4, 11, (3, 5))
    target[0, 3:] = PAD
    loss, stats = label_smoothed_cross_entropy(logits, target, eps=0.0)
    ref = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1), ignore_index=PAD, reduction="sum")
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.allclose(stats["nll_loss"], ref, atol=1e-5)
    assert stats["ntokens"].item() == 13 and stats["nsentences"].item() == 3
    assert torch.equal(cross_entropy(logits, target)[0], loss)


def test_smoothed_loss_matches_hand_computation():
    logits = torch.tensor([[[1.0, 2.0, 0.5, -1.0, 3.0]]])
    target = torch.tensor([[4]])
    eps, V = 0.1, 5
    logp = [x - math.log(sum(math.exp(y) for y in logits[0, 0].tolist())) for x in logits[0, 0].tolist()]
    # gold gets 1 - eps, every other token eps / (V - 1)
    expected = -(1 - eps) * logp[4] - sum(eps / (V - 1) * logp[v] for v in range(V) if v != 4)
    loss, stats = label_smoothed_cross_entropy(logits, target, eps=eps)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats["nll_loss"].item() == pytest.approx(-logp[4], rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_fused_gradient_equals_autograd_reference(eps):
    torch.manual_seed(1)
    logits = torch.randn(4, 7, 13, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 13, (4, 7))
    target[1, 5:] = PAD
    loss, _ = token_losses(logits, target, eps)
    weights = torch.rand(loss.shape, dtype=torch.float64)
    (loss * weights).sum().backward()
    fused = logits.grad.clone()

    logits.grad = None
    lp = F.log_softmax(logits, -1).reshape(-1, 13)
    t = target.reshape(-1)
    nll = -lp.gather(1, t[:, None]).squeeze(1)
    smooth = -lp.sum(-1)
    eps_i = eps / 12
    ref = ((1 - eps - eps_i) * nll + eps_i * smooth) * (t != PAD)
    (ref * weights.reshape(-1)).sum().backward()
    assert torch.allclose(fused, logits.grad, atol=1e-10)
    assert torch.allclose(loss.reshape(-1), ref.float(), atol=1e-5)


def test_padding_contributes_nothing():
    torch.manual_seed(2)
    logits = torch.randn(2, 4, 9, requires_grad=True)
    target = torch.full((2, 4), PAD)
    loss, stats = label_smoothed_cross_entropy(logits, target, eps=0.1)
    loss.backward()
    assert loss.item() == 0.0 and stats["ntokens"].item() == 0
    assert torch.count_nonzero(logits.grad) == 0


def test_bf16_logits_give_float32_losses():
    logits = torch.randn(2, 3, 8).bfloat16().requires_grad_()
    target = torch.randint(4, 8, (2, 3))
    loss, _ = label_smoothed_cross_entropy(logits, target, eps=0.1)
    loss.backward()
    assert loss.dtype == torch.float32 and logits.grad.dtype == torch.bfloat16


def _features_case(seed=3, n=(5, 9), d=16, v=37):
    torch.manual_seed(seed)
    features = torch.randn(*n, d, dtype=torch.float64)
    weight = torch.randn(v, d, dtype=torch.float64) * 0.5
    target = torch.randint(1, v, n)
    target[0, 4:] = PAD
    target[3, 1:] = PAD
    return features, weight, target


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("block_rows", [1, 7, 45, 1000])  # one row, a ragged last block, exact, a single block
def test_from_features_equals_the_logits_path_values_and_gradients(monkeypatch, eps, block_rows):
    features, weight, target = _features_case()
    monkeypatch.setitem(criterion.BLOCK_ELEMENTS, "cpu", block_rows * weight.size(0))
    grads = []
    for blockwise in (False, True):
        f, w = features.clone().requires_grad_(), weight.clone().requires_grad_()
        if blockwise:
            loss, nll = token_losses_from_features(f, w, target, eps)
        else:
            loss, nll = token_losses(f @ w.t(), target, eps)
        scale = torch.linspace(0.5, 2.0, loss.numel())  # an uneven upstream gradient
        (loss * scale).sum().backward()
        grads.append((loss, nll, f.grad, w.grad))
    for ref, got in zip(*grads):
        assert got.dtype == ref.dtype
        assert torch.allclose(got, ref, atol=1e-6), (got - ref).abs().max()
    assert torch.count_nonzero(grads[1][2][target == PAD]) == 0  # padding positions get no gradient


def test_from_features_under_bf16_autocast_matches_the_autocast_logits_path(monkeypatch):
    features, weight, target = (t.float() if t.is_floating_point() else t for t in _features_case(v=300))
    monkeypatch.setitem(criterion.BLOCK_ELEMENTS, "cpu", 8 * 300)
    out = []
    for blockwise in (False, True):
        f, w = features.clone().requires_grad_(), weight.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if blockwise:
                loss, stats = label_smoothed_cross_entropy_from_features(f, w, target, 0.1)
            else:
                loss, stats = label_smoothed_cross_entropy(f @ w.t(), target, 0.1)
        loss.backward()
        out.append((loss, stats["nll_loss"], f.grad, w.grad))
    (ref_loss, ref_nll, ref_f, ref_w), (loss, nll, gf, gw) = out
    assert loss.dtype == torch.float32 and gf.dtype == torch.float32 and gw.dtype == torch.float32
    # Both multiply in bf16 with float32 reductions: equal losses; gradients equal up to bf16 rounding.
    assert torch.allclose(loss, ref_loss, rtol=1e-5) and torch.allclose(nll, ref_nll, rtol=1e-5)
    for got, ref in ((gf, ref_f), (gw, ref_w)):
        assert (got - ref).abs().max() <= 2e-2 * ref.abs().max()
