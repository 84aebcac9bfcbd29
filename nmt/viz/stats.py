"""Per-head attention statistics and rule-based head labels: pure numpy on arrays.

Shape legend: H heads, T queries (rows), S keys (columns).

Every function takes attention weights (H, T, S) (or one head (T, S)) and `valid`, a (T, S)
bool mask True where query i may see key j (real key, and j <= i for decoder self-attention).
Rows with no visible key (padding queries) and rows with exactly one visible key (the first
decoder position, whose weight is forced to 1) carry no information and are left out of every
statistic. Weights outside `valid` are ignored, never renormalized.

Statistics per head (means over the kept rows i, p = row i of the weights):

    entropy     -sum_j p_j log p_j / log(n_i), n_i = visible keys of row i: 0 = one key, 1 = uniform
    max_weight  max_j p_j
    distance    sum_j p_j |j - d_i|     with the diagonal d_i = i * S_n / T_n
    offset      sum_j p_j (j - d_i)     (< 0: looks back / left of the diagonal)
                T_n = real query rows, S_n = real key columns; d_i = i for self-attention
    eos         weight on the boundary key: EOS (last source key) for enc_self and cross,
                BOS (first decoder input) for dec_self, the usual "attention sink"
    self        p_i (weight on the query's own position; self-attention only)
    prev, next  p_{i-1}, p_{i+1} over the rows where that key is visible (self-attention only)
    diag_agree  share of rows whose argmax is floor(i * S_n / T_n + 0.5) (cross-attention only)

Statistics that do not apply are NaN.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np

KINDS = ("enc_self", "dec_self", "cross")
STAT_NAMES = ("entropy", "max_weight", "distance", "offset", "eos", "self", "prev", "next", "diag_agree")

# Label thresholds, checked in this order (the first rule that holds names the head):
SINK_MIN = 0.5  # eos >= 0.5                        -> "EOS sink" ("BOS sink" in dec_self)
POSITION_MIN = 0.5  # self / prev / next >= 0.5       -> "self" / "previous token" / "next token"
DIAGONAL_MIN = 0.5  # diag_agree >= 0.5 (cross)        -> "diagonal/monotone"
FOCUSED_MIN = 0.5  # max_weight >= 0.5                 -> "focused" (half the weight on one key)
BROAD_MIN = 0.75  # entropy >= 0.75                    -> "broad"
#                                                      otherwise "mixed"


def valid_mask(kind: str, q_len: int, k_len: int, shape: Optional[tuple[int, int]] = None) -> np.ndarray:
    """(T, S) bool: True where query i < q_len may see key j < k_len (and j <= i for dec_self).

    `shape` (T, S) pads the mask with False to a padded batch's size; default (q_len, k_len).
    """
    t, s = shape if shape is not None else (q_len, k_len)
    rows = np.arange(t)[:, None]
    cols = np.arange(s)[None, :]
    mask = (rows < q_len) & (cols < k_len)
    if kind == "dec_self":
        mask &= cols <= rows
    return mask


def sink_index(kind: str, k_len: int) -> int:
    """Key column of the boundary token: BOS (0) for dec_self, EOS (k_len - 1) otherwise."""
    return 0 if kind == "dec_self" else k_len - 1


def _nanmean_rows(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mean over kept rows: x (H, T), keep (T,) bool -> (H,); NaN when no row is kept."""
    if not keep.any():
        return np.full(x.shape[0], np.nan)
    return x[:, keep].mean(axis=1)


def head_stats(weights: np.ndarray, valid: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Statistics of every head: weights (H, T, S) or (T, S), valid (T, S) -> {name: (H,) float64}."""
    if kind not in KINDS:
        raise ValueError(f"unknown attention kind {kind!r}; valid: {', '.join(KINDS)}")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    valid = np.asarray(valid, dtype=bool)
    h, t, s = w.shape
    if valid.shape != (t, s):
        raise ValueError(f"valid mask {valid.shape} does not match weights {(t, s)}")
    p = np.where(valid[None], w, 0.0)  # (H, T, S)
    n = valid.sum(axis=1)  # (T,) visible keys per row
    keep = n > 1
    t_n = int((n > 0).sum())
    s_n = int(valid.any(axis=0).sum())
    i = np.arange(t, dtype=np.float64)
    j = np.arange(s, dtype=np.float64)
    self_attn = kind != "cross"
    diag = i if self_attn else i * s_n / max(t_n, 1)  # (T,)

    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    log_n = np.log(np.where(keep, n, 2)).astype(np.float64)  # (T,); dummy 2 avoids log(1) = 0
    entropy = -plogp.sum(axis=2) / log_n  # (H, T)
    dist = j[None, None, :] - diag[None, :, None]  # (1, T, S)

    out = {
        "entropy": _nanmean_rows(entropy, keep),
        "max_weight": _nanmean_rows(p.max(axis=2), keep),
        "distance": _nanmean_rows((p * np.abs(dist)).sum(axis=2), keep),
        "offset": _nanmean_rows((p * dist).sum(axis=2), keep),
    }
    sink = sink_index(kind, s_n) if s_n > 0 else 0
    out["eos"] = _nanmean_rows(p[:, :, sink], keep)

    nan = np.full(h, np.nan)
    if self_attn:
        idx = np.arange(t)
        out["self"] = _nanmean_rows(p[:, idx, np.minimum(idx, s - 1)], keep & (idx < s))
        prev_ok = keep & (idx >= 1) & valid[idx, np.clip(idx - 1, 0, s - 1)]
        out["prev"] = _nanmean_rows(p[:, idx, np.clip(idx - 1, 0, s - 1)], prev_ok)
        next_ok = keep & (idx + 1 < s) & valid[idx, np.clip(idx + 1, 0, s - 1)]
        out["next"] = _nanmean_rows(p[:, idx, np.clip(idx + 1, 0, s - 1)], next_ok)
        out["diag_agree"] = nan
    else:
        out["self"] = out["prev"] = out["next"] = nan
        target = np.minimum(np.floor(diag + 0.5), max(s_n - 1, 0))  # (T,) round half up
        hits = (p.argmax(axis=2) == target[None, :]).astype(np.float64)  # (H, T)
        out["diag_agree"] = _nanmean_rows(hits, keep)
    return {k: out[k] for k in STAT_NAMES}


def average_stats(per_sentence: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean of per-sentence head statistics (each {name: (H,)}), ignoring NaN -> {name: (H,)}."""
    if not per_sentence:
        raise ValueError("no statistics to average")
    out = {}
    for name in STAT_NAMES:
        stack = np.stack([s[name] for s in per_sentence])  # (N, H)
        seen = ~np.isnan(stack)
        total = np.where(seen, stack, 0.0).sum(axis=0)
        count = seen.sum(axis=0)
        out[name] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _at_least(value: float, threshold: float) -> bool:
    return not np.isnan(value) and value >= threshold


def label_head(stats: dict[str, float], kind: str) -> str:
    """A short name for one head's behaviour from its statistics (thresholds at the top of the module)."""
    if _at_least(stats["eos"], SINK_MIN):
        return "BOS sink" if kind == "dec_self" else "EOS sink"
    if kind != "cross":
        for name, label in (("self", "self"), ("prev", "previous token"), ("next", "next token")):
            if _at_least(stats[name], POSITION_MIN):
                return label
    elif _at_least(stats["diag_agree"], DIAGONAL_MIN):
        return "diagonal/monotone"
    if _at_least(stats["max_weight"], FOCUSED_MIN):
        return "focused"
    if _at_least(stats["entropy"], BROAD_MIN):
        return "broad"
    return "mixed"


def label_heads(stats: dict[str, np.ndarray], kind: str) -> list[str]:
    """Labels of every head: stats {name: (H,)} -> H labels."""
    h = len(stats["entropy"])
    return [label_head({k: float(v[i]) for k, v in stats.items()}, kind) for i in range(h)]


def summarize_labels(labels: Sequence[str]) -> str:
    """One line for a layer, most common first: '5 diagonal/monotone, 2 broad, 1 EOS sink'."""
    counts = Counter(labels)
    return ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def stat_rows(
    model: str,
    per_sentence: Iterable[dict[str, list[np.ndarray]]],
    selection: Sequence[tuple[str, list[int], list[int]]],
) -> tuple[list[dict], list[str]]:
    """Averaged statistics of one model over sentences, as table rows and one summary line per layer.

    per_sentence: for each sentence {kind: [(H, T, S) per layer]} (one unpadded sentence, so the
    valid mask is all keys, causal for dec_self); selection: [(kind, 0-based layers, 0-based heads)].
    Rows: {"model", "kind", "layer" (1-based), "head" (1-based), *STAT_NAMES, "label", "sentences"}.
    """
    per: dict[tuple[str, int], list[dict[str, np.ndarray]]] = {}
    count = 0
    for attn in per_sentence:
        count += 1
        for kind, layers, _ in selection:
            t, s = attn[kind][0].shape[1:]
            valid = valid_mask(kind, t, s)
            for layer in layers:
                per.setdefault((kind, layer), []).append(head_stats(attn[kind][layer], valid, kind))
    rows, lines = [], []
    for kind, layers, heads in selection:
        for layer in layers:
            stats = average_stats(per[(kind, layer)])
            labels = label_heads(stats, kind)
            lines.append(f"{model} {kind} L{layer + 1}: {summarize_labels([labels[h] for h in heads])}")
            for h in heads:
                row: dict = {"model": model, "kind": kind, "layer": layer + 1, "head": h + 1}
                row.update({k: float(v[h]) for k, v in stats.items()})
                row.update(label=labels[h], sentences=count)
                rows.append(row)
    return rows, lines
