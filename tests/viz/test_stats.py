"""Per-head statistics and labels on hand-made attention matrices (exact expected values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nmt.viz import stats as A


def stats1(weights: np.ndarray, kind: str, valid: np.ndarray | None = None) -> dict[str, float]:
    """Statistics of a single head (T, S) as plain floats."""
    t, s = weights.shape
    if valid is None:
        valid = A.valid_mask(kind, t, s)
    return {k: float(v[0]) for k, v in A.head_stats(weights, valid, kind).items()}


def test_valid_mask_causal_and_padding():
    m = A.valid_mask("dec_self", 3, 3, shape=(4, 4))
    expected = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    assert (m == expected).all()
    assert A.valid_mask("cross", 2, 3).all()
    assert A.sink_index("dec_self", 5) == 0 and A.sink_index("cross", 5) == 4


def test_uniform_self_attention():
    s = stats1(np.full((4, 4), 0.25), "enc_self")
    assert s["entropy"] == pytest.approx(1.0)
    assert s["max_weight"] == pytest.approx(0.25)
    # mean |j - i| over a uniform row: (1.5 + 1 + 1 + 1.5) / 4
    assert s["distance"] == pytest.approx(1.25)
    assert s["offset"] == pytest.approx(0.0)
    assert s["eos"] == s["self"] == s["prev"] == s["next"] == pytest.approx(0.25)
    assert math.isnan(s["diag_agree"])
    assert A.label_head(s, "enc_self") == "broad"


def test_identity_is_self():
    s = stats1(np.eye(5), "enc_self")
    assert s["entropy"] == pytest.approx(0.0)
    assert s["max_weight"] == 1.0 and s["self"] == 1.0
    assert s["distance"] == 0.0 and s["prev"] == 0.0 and s["next"] == 0.0
    assert s["eos"] == pytest.approx(0.2)
    assert A.label_head(s, "enc_self") == "self"


def test_previous_token_in_decoder_self_attention():
    # row 0 sees only BOS (forced, left out); rows 1..4 put all weight on i - 1
    w = np.zeros((5, 5))
    w[0, 0] = 1.0
    for i in range(1, 5):
        w[i, i - 1] = 1.0
    s = stats1(w, "dec_self")
    assert s["prev"] == 1.0 and s["self"] == 0.0
    assert math.isnan(s["next"])  # the next key is never visible under the causal mask
    assert s["distance"] == 1.0 and s["offset"] == -1.0
    assert s["eos"] == pytest.approx(0.25)  # only row 1 looks at BOS
    assert A.label_head(s, "dec_self") == "previous token"


def test_next_token_in_encoder():
    w = np.zeros((6, 6))
    for i in range(5):
        w[i, i + 1] = 1.0
    w[5, 5] = 1.0
    s = stats1(w, "enc_self")
    assert s["next"] == 1.0  # rows 0..4 (row 5 has no next key)
    assert s["offset"] == pytest.approx(5 / 6)
    assert s["eos"] == pytest.approx(2 / 6)
    assert A.label_head(s, "enc_self") == "next token"


def test_eos_sink_cross_attention():
    w = np.zeros((3, 4))
    w[:, 3] = 0.7
    w[:, 0] = 0.3
    s = stats1(w, "cross")
    assert s["eos"] == pytest.approx(0.7) and s["max_weight"] == pytest.approx(0.7)
    assert math.isnan(s["self"]) and math.isnan(s["prev"])
    assert A.label_head(s, "cross") == "EOS sink"


def test_bos_sink_in_decoder_uniform_is_broad():
    # uniform causal rows: BOS share = mean(1/2, 1/3, 1/4) over rows 1..3, entropy exactly 1
    w = np.tril(np.ones((4, 4)))
    w /= w.sum(axis=1, keepdims=True)
    s = stats1(w, "dec_self")
    assert s["entropy"] == pytest.approx(1.0)
    assert s["eos"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    assert A.label_head(s, "dec_self") == "broad"
    w2 = np.zeros((4, 4))
    w2[:, 0] = 1.0
    assert A.label_head(stats1(w2, "dec_self"), "dec_self") == "BOS sink"


def test_monotone_diagonal_cross_attention():
    # T=3 target rows over S=6 source keys: the diagonal is j = round(2 i) = 0, 2, 4
    t, s_len = 3, 6
    w = np.zeros((t, s_len))
    for i, j in enumerate((0, 2, 4)):
        w[i, j] = 1.0
    s = stats1(w, "cross")
    assert s["diag_agree"] == 1.0
    assert s["distance"] == 0.0 and s["offset"] == 0.0
    assert A.label_head(s, "cross") == "diagonal/monotone"
    # shifted one key to the right: no row on the diagonal, offset +1
    shifted = np.roll(w, 1, axis=1)
    s2 = stats1(shifted, "cross")
    assert s2["diag_agree"] == 0.0 and s2["offset"] == 1.0
    assert A.label_head(s2, "cross") == "focused"


def test_round_half_up_and_clamped_diagonal():
    # T=4, S=2: d_i = i/2 -> targets floor(0.5 + 0.5)=1 for i=1, and i=3 -> 1.5 -> 2 clamped to 1
    w = np.zeros((4, 2))
    w[:, 1] = 1.0
    s = stats1(w, "cross", valid=A.valid_mask("cross", 4, 2))
    # argmax is 1 everywhere; targets are 0, 1, 1, 1
    assert s["diag_agree"] == pytest.approx(0.75)


def test_padding_is_ignored_and_batch_of_heads():
    # two heads on a 3x3 sentence padded to 4x5; garbage in the padding changes nothing
    real = np.stack([np.eye(3), np.full((3, 3), 1 / 3)])  # (H, T, S)
    padded = np.full((2, 4, 5), 9.0)
    padded[:, :3, :3] = real
    valid = A.valid_mask("enc_self", 3, 3, shape=(4, 5))
    got = A.head_stats(padded, valid, "enc_self")
    ref = A.head_stats(real, A.valid_mask("enc_self", 3, 3), "enc_self")
    for name in A.STAT_NAMES:
        np.testing.assert_allclose(got[name], ref[name])
    assert A.label_heads(got, "enc_self") == ["self", "broad"]


def test_focused_and_mixed():
    w = np.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.6, 0.2]])
    # each row peaks on a key that is neither the diagonal target nor EOS: shift peaks left of diagonal
    w = w[:, [1, 2, 3, 0]]  # peaks at j = 3, 0, 1  (targets round(4 i / 3) = 0, 1, 3)
    s = stats1(w, "cross")
    assert s["max_weight"] == pytest.approx(0.6)
    assert s["diag_agree"] == 0.0
    assert A.label_head(s, "cross") == "focused"
    # two peaks off the diagonal (targets 0 and 4 of 8 keys), nothing on EOS
    mixed = np.zeros((2, 8))
    mixed[0, [1, 2, 5]] = [0.46, 0.44, 0.1]
    mixed[1, [1, 2, 0]] = [0.46, 0.44, 0.1]
    sm = stats1(mixed, "cross")
    assert sm["diag_agree"] == 0.0 and sm["eos"] == 0.0
    assert sm["entropy"] < A.BROAD_MIN and sm["max_weight"] < A.FOCUSED_MIN
    assert A.label_head(sm, "cross") == "mixed"


def test_average_stats_ignores_nan():
    a = {k: np.array([1.0, np.nan]) for k in A.STAT_NAMES}
    b = {k: np.array([3.0, 2.0]) for k in A.STAT_NAMES}
    avg = A.average_stats([a, b])
    np.testing.assert_allclose(avg["entropy"], [2.0, 2.0])
    c = {k: np.array([np.nan]) for k in A.STAT_NAMES}
    assert np.isnan(A.average_stats([c, c])["self"][0])


def test_summarize_labels():
    labels = ["broad", "EOS sink", "diagonal/monotone", "broad", "broad", "diagonal/monotone"]
    assert A.summarize_labels(labels) == "3 broad, 2 diagonal/monotone, 1 EOS sink"


def test_rejects_unknown_kind_and_bad_mask():
    with pytest.raises(ValueError):
        A.head_stats(np.eye(2), np.ones((2, 2), bool), "other")
    with pytest.raises(ValueError):
        A.head_stats(np.eye(2), np.ones((3, 2), bool), "cross")
