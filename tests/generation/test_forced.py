"""Forced decoding: hand-computed sums, padding, and search's own scores given back on real models."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import shrink

from nmt.config import GenerateConfig
from nmt.generation.decoding import BOS, EOS, PAD
from nmt.generation.forced import forced_lprobs, sequence_scores
from nmt.generation.search import translate_batch
from nmt.models import build_model
from nmt.registry import ARCHS

SRC_ROWS = [[5, 9, 11, 30, 7], [12], [8, 8, 20, 33, 21, 17, 9, 6, 39]]
VOCAB = 40


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)  # (B, L)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def _model(arch: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(shrink(ARCHS[arch]()), VOCAB, VOCAB, True).eval()


def _targets(hyps: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hypothesis tokens (ending with EOS) -> tgt_in (BOS + pieces), tgt_out (pieces + EOS), padded."""
    tgt_out = _pad(hyps)
    tgt_in = _pad([[BOS] + h[:-1] for h in hyps])
    return tgt_in, tgt_out


def test_sequence_scores_by_hand():
    lprobs = torch.tensor([[-1.0, -2.0, -0.5], [-3.0, -1.0, 0.0]])  # (B=2, T=3)
    tgt_out = torch.tensor([[7, 9, EOS], [8, EOS, PAD]])
    total, normed = sequence_scores(lprobs, tgt_out, lenpen=1.0)
    assert total.tolist() == [-3.5, -4.0]
    assert normed.tolist() == [-3.5 / 3, -2.0]
    _, sqrt_normed = sequence_scores(lprobs, tgt_out, lenpen=0.5)
    assert sqrt_normed.tolist() == pytest.approx([-3.5 / math.sqrt(3), -4.0 / math.sqrt(2)], abs=1e-12)
    _, unnormed = sequence_scores(lprobs, tgt_out, lenpen=0.0)
    assert unnormed.tolist() == [-3.5, -4.0]


def test_padding_scores_zero_and_changes_nothing():
    model = _model("transformer_tiny", 0)
    src = _pad([SRC_ROWS[0] + [EOS], SRC_ROWS[1] + [EOS]])
    tgt_in, tgt_out = _targets([[4, 6, 8, EOS], [5, EOS]])
    both = forced_lprobs([model], src, src.eq(PAD), tgt_in, tgt_out)  # (2, 4)
    assert both[1, 2:].tolist() == [0.0, 0.0] and bool((both[0] < 0).all()) and bool((both[1, :2] < 0).all())
    alone_src = torch.tensor([SRC_ROWS[1] + [EOS]])
    alone = forced_lprobs([model], alone_src, alone_src.eq(PAD), tgt_in[1:, :2], tgt_out[1:, :2])
    assert torch.allclose(alone[0], both[1, :2], atol=1e-5)


@pytest.mark.parametrize("arch", ["transformer_tiny", "lstm_luong"])
@pytest.mark.parametrize("n_models", [1, 2])
def test_scoring_search_hypotheses_gives_back_their_scores(arch, n_models):
    """Every hypothesis of a beam search, forced through the same model(s), gets its positional scores."""
    models = [_model(arch, seed) for seed in range(n_models)]
    src = _pad([r + [EOS] for r in SRC_ROWS])
    cfg = GenerateConfig(beam=3, nbest=3, max_len_b=8, lenpen=0.7)
    results = translate_batch(models, src, src.eq(PAD), cfg)
    rows, hyps = [], []
    for b, nbest in enumerate(results):
        assert len(nbest) == 3
        rows += [b] * len(nbest)
        hyps += nbest
    tgt_in, tgt_out = _targets([h.tokens.tolist() for h in hyps])
    batch_src = src[rows]  # (N, S): the source row of each hypothesis
    lprobs = forced_lprobs(models, batch_src, batch_src.eq(PAD), tgt_in, tgt_out)
    total, normed = sequence_scores(lprobs, tgt_out, cfg.lenpen)
    for i, h in enumerate(hyps):
        n = len(h.tokens)
        assert torch.allclose(lprobs[i, :n], h.positional_scores, atol=1e-5), i
        assert float(total[i]) == pytest.approx(float(h.positional_scores.double().sum()), abs=1e-4)
        assert float(normed[i]) == pytest.approx(h.score, abs=1e-4)
