"""The output layer on the scored rows: which rows, and the same loss and gradients as the full logits."""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from nmt.data.tokenizer import PAD
from nmt.training.criterion import label_smoothed_cross_entropy, label_smoothed_cross_entropy_from_features
from nmt.training.scored_rows import scored_loss, scored_rows

P = PAD


def test_scored_rows_lists_the_scored_positions_in_order_then_padding_up_to_the_multiple():
    target = torch.tensor([[5, 6, P], [7, P, P], [P, P, P]])
    assert scored_rows(target, multiple=1).tolist() == [0, 1, 3]
    assert scored_rows(target, multiple=2).tolist() == [0, 1, 3, 2]
    assert scored_rows(target, multiple=4).tolist() == [0, 1, 3, 2]
    assert scored_rows(target, multiple=5).tolist() == [0, 1, 3, 2, 4]
    assert scored_rows(target, multiple=64).tolist() == [0, 1, 3, 2, 4, 5, 6, 7, 8]  # never more than all
    assert scored_rows(torch.full((2, 3), P), multiple=4).tolist() == []


def test_scored_rows_come_in_multiples_of_64_by_default():
    target = torch.randint(4, 20, (9, 40))
    target[:, 30:] = P
    target[8] = P  # a padding row (nmt.data.shapes)
    rows = scored_rows(target)
    assert rows.numel() == 256 and rows[:240].tolist() == target.reshape(-1).ne(P).nonzero().squeeze(1).tolist()
    assert target.reshape(-1)[rows[240:]].eq(P).all()


@pytest.mark.parametrize("blockwise", [False, True])
def test_scored_loss_equals_the_criterion_of_the_full_logits_with_the_same_gradients(blockwise):
    torch.manual_seed(0)
    features = torch.randn(4, 7, 6, requires_grad=True)
    weight = torch.randn(30, 6, requires_grad=True)
    target = torch.randint(4, 30, (4, 7))
    target[0, 5:] = P
    target[1, 2:] = P
    target[3] = P  # a padding row
    want, want_stats = label_smoothed_cross_entropy(F.linear(features, weight), target, 0.1)
    want.backward()
    want_grads = features.grad.clone(), weight.grad.clone()
    features.grad = weight.grad = None

    from_features = label_smoothed_cross_entropy_from_features if blockwise else None
    loss, stats = scored_loss(
        features,
        weight,
        target,
        label_smoothed_cross_entropy,
        0.1,
        contextlib.nullcontext,
        from_features,
        torch.float32,
    )
    loss.backward()
    assert torch.allclose(loss, want, rtol=1e-6)
    assert torch.allclose(stats["nll_loss"], want_stats["nll_loss"], rtol=1e-6)
    assert int(stats["ntokens"]) == int(want_stats["ntokens"]) == 14
    assert int(stats["nsentences"]) == int(want_stats["nsentences"]) == 3
    assert torch.allclose(features.grad, want_grads[0], atol=1e-6) and torch.allclose(
        weight.grad, want_grads[1], atol=1e-6
    )
    assert features.grad[3].abs().max() == 0  # the padding row gets no gradient
