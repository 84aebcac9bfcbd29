"""The shape policy of batches (nmt.data.shapes): padded lengths and rows, the budget, few shapes,
and padded batches holding exactly the sentences of unpadded ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.data.dataset import PairDataset, TokenArray, batch_by_tokens, collate, plan_batches
from nmt.data.monolingual import pad_batch
from nmt.data.shapes import OFF, ShapePolicy
from nmt.data.tokenizer import BOS, EOS, PAD


def test_lengths_pad_to_the_next_multiple_within_the_budget():
    p = ShapePolicy(max_tokens=100, multiple=8)
    assert p.padded_length(1) == 8 and p.padded_length(8) == 8 and p.padded_length(9) == 16
    assert p.padded_length(0) == 0  # no target side
    assert p.padded_length(97) == 100  # never above --max-tokens
    assert p.padded_length(np.array([3, 17, 24])).tolist() == [8, 24, 24]
    assert OFF.padded_length(13) == 13 and ShapePolicy(100, multiple=1).padded_length(13) == 13


def test_rows_pad_to_one_of_few_counts_within_the_budget():
    p = ShapePolicy(max_tokens=4096, multiple=8, row_sizes=4)
    assert p.row_cap(16) == 256 and p.row_cap(24) == 170
    assert [p.padded_rows(n, 16) for n in (1, 64, 65, 128, 200, 256)] == [64, 64, 128, 128, 256, 256]
    assert {p.padded_rows(n, 24) for n in range(1, 171)} == {43, 85, 128, 170}  # R/4, 2R/4, ... rounded up
    capped = ShapePolicy(max_tokens=4096, max_rows=10, multiple=8, row_sizes=4)
    assert capped.row_cap(16) == 10 and {capped.padded_rows(n, 16) for n in range(1, 11)} == {3, 5, 8, 10}
    assert ShapePolicy(4096, multiple=1).padded_rows(7, 16) == 7  # off: one row per sentence


def _corpus(n: int, seed: int, longest: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Piece counts (no EOS) of n random pairs: mostly short, a few long, targets near their sources."""
    rng = np.random.default_rng(seed)
    src = np.minimum(rng.gamma(4.0, 3.5, n).astype(np.int64) + 1, longest)
    tgt = np.clip(src + rng.integers(-4, 5, n), 1, longest)
    return src, tgt


@pytest.mark.parametrize("max_rows", [None, 50])
def test_every_sentence_once_and_every_padded_shape_within_the_budget(max_rows):
    src, tgt = _corpus(3000, seed=1)
    policy = ShapePolicy(max_tokens=1024, max_rows=max_rows)
    batches = plan_batches(src, tgt, policy)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(src)))
    for b in batches:
        rows, s, t = policy.shape(src[b] + 1, tgt[b] + 1)
        assert len(b) <= rows and rows * max(s, t) <= 1024 and s % 8 == 0 and t % 8 == 0
        assert max_rows is None or rows <= max_rows
    assert [x.tolist() for x in plan_batches(src, tgt, policy)] == [x.tolist() for x in batches]  # deterministic


def test_the_policy_off_is_batch_by_tokens():
    src, tgt = _corpus(2000, seed=2)
    off = plan_batches(src, tgt, ShapePolicy(max_tokens=1024, multiple=1))
    assert [b.tolist() for b in off] == [b.tolist() for b in batch_by_tokens(src, tgt, 1024)]
    assert [len(b) for b in off] == [OFF.shape(src[b] + 1, tgt[b] + 1)[0] for b in off]


def test_distinct_shapes_stay_on_a_small_grid_whatever_the_corpus():
    """Two corpora (as two segmentations of one) give few shapes, all on the grid the policy fixes:
    lengths in steps of 8 up to the longest, and `row_sizes` row counts for each padded length."""
    policy = ShapePolicy(max_tokens=4096, multiple=8, row_sizes=4)
    union_on, union_off = set(), set()
    for seed in (3, 4):
        src, tgt = _corpus(30000, seed)
        union_on |= {policy.shape(src[b] + 1, tgt[b] + 1) for b in plan_batches(src, tgt, policy)}
        union_off |= {OFF.shape(src[b] + 1, tgt[b] + 1) for b in batch_by_tokens(src, tgt, 4096)}
    lengths = range(8, 64 + 1, 8)  # 61 tokens with EOS pad to 64
    grid = {
        (policy.padded_rows(n, max(s, t)), s, t)
        for s in lengths
        for t in lengths
        for n in range(1, policy.row_cap(max(s, t)) + 1)
    }
    assert union_on <= grid and len(grid) <= 4 * len(lengths) ** 2
    assert len(union_on) <= 60 and len(union_off) > 3 * len(union_on), (len(union_on), len(union_off))


def _pairs() -> PairDataset:
    src = [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14, 15, 16, 17], [18, 19]]
    tgt = [[20, 21], [22, 23, 24], [25], [26, 27, 28, 29, 30, 31, 32, 33, 34, 35]]
    return PairDataset(TokenArray.from_sequences(src), TokenArray.from_sequences(tgt))


def test_a_padded_batch_holds_the_sentences_of_the_unpadded_one():
    pairs = _pairs()
    policy = ShapePolicy(max_tokens=128, multiple=8, row_sizes=4)  # length 16: R = 8 rows, 3 pad to 4
    idx = [2, 0, 3]
    plain, padded = collate(pairs, idx), collate(pairs, idx, policy)
    n, S, T = 3, plain.src.size(1), plain.tgt_out.size(1)
    assert padded.src.shape == padded.tgt_in.shape == padded.tgt_out.shape == (4, 16)
    assert len(padded) == 4 and padded.ntokens == plain.ntokens
    for name in ("src", "tgt_in", "tgt_out"):
        a, b = getattr(plain, name), getattr(padded, name)
        assert torch.equal(b[:n, : a.size(1)], a) and b[:n, a.size(1) :].eq(PAD).all(), name
    assert padded.src_lens[:n].tolist() == plain.src_lens.tolist() and padded.ids.tolist() == [2, 0, 3, -1]
    # The padding row: an empty sentence whose targets are all PAD.
    assert padded.src[n].tolist() == [EOS] + [PAD] * 15 and padded.src_lens[n] == 1
    assert padded.tgt_in[n].tolist() == [BOS] + [PAD] * 15 and padded.tgt_out[n].eq(PAD).all()
    assert (S, T) == (10, 11)


def test_language_model_samples_pad_the_same_way():
    samples = [(np.array([BOS, 5, 6]), np.array([5, 6, EOS])), (np.array([BOS, 7]), np.array([7, EOS]))]
    plain = pad_batch(samples, [4, 9])
    policy = ShapePolicy(max_tokens=64, multiple=8, row_sizes=4)  # length 8: R = 8 rows
    padded = pad_batch(samples, [4, 9], policy, start=BOS)
    assert plain.tokens.shape == (2, 3) and padded.tokens.shape == (2, 8)  # 2 rows is R/4
    padded3 = pad_batch(samples + [samples[0]], [4, 9, 4], policy, start=EOS)  # 3 rows pad to 2R/4
    assert padded3.tokens.shape == (4, 8) and padded3.ids.tolist() == [4, 9, 4, -1]
    assert padded3.tokens[3].tolist() == [EOS] + [PAD] * 7 and padded3.target[3].eq(PAD).all()
    assert torch.equal(padded.tokens[:, :3], plain.tokens) and padded.ntokens == plain.ntokens == 5
