"""Attention capture: the explicit path equals the fast path, weights are masked, sentence shapes.

Shape legend: B batch, H heads, S source length, T target length.
"""

from __future__ import annotations

import pytest
import torch
from helpers import shrink

import nmt.models as M
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.registry import ARCHS
from nmt.viz import capture as C


def pad_batch(seqs: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)  # (B, L)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


@pytest.mark.parametrize("arch", [a for a in sorted(ARCHS) if "translation" in ARCHS[a]().tasks])
def test_capture_is_the_fast_path_and_masks(arch):
    torch.manual_seed(0)
    model = M.build_model(shrink(ARCHS[arch]()), 30, 30, True).eval()
    src_lens, tgt_lens = (6, 3), (4, 7)
    src = pad_batch([list(range(4, 4 + n - 1)) + [EOS] for n in src_lens])  # (B, S) right-padded
    tgt_in = pad_batch([[BOS] + list(range(5, 5 + n - 1)) for n in tgt_lens])  # (B, T)
    pad = src.eq(PAD)
    attn = C.capture_batch(model, src, pad, tgt_in)
    with torch.inference_mode():
        memory, _ = model.encode(src, pad)
        fast, _, _ = model.decode(tgt_in, memory, pad)
        memory2, _ = model.encode(src, pad, need_attn=True)
        slow, _, _ = model.decode(tgt_in, memory2, pad, need_attn=True)
    torch.testing.assert_close(slow, fast, atol=1e-5, rtol=1e-4)
    if ARCHS[arch]().family == "lstm" and ARCHS[arch]().attention == "none":
        assert attn == {}
        return
    assert "cross" in attn and set(attn) <= {"enc_self", "dec_self", "cross"}
    for kind, layers in attn.items():
        for w in layers:
            assert w.dim() == 4 and w.shape[0] == 2  # (B, H, T, S)
            for b in range(2):
                q = src_lens[b] if kind == "enc_self" else tgt_lens[b]
                k = tgt_lens[b] if kind == "dec_self" else src_lens[b]
                real = w[b, :, :q]  # (H, q, S) rows of real queries
                torch.testing.assert_close(real.sum(-1), torch.ones_like(real.sum(-1)), atol=1e-5, rtol=0)
                if real.size(-1) > k:  # padding keys get exactly zero
                    assert real[:, :, k:].abs().max() == 0
                if kind == "dec_self":
                    future = torch.triu(torch.ones(q, w.shape[-1], dtype=torch.bool), diagonal=1)
                    assert real[:, future].abs().max() == 0


def test_capture_sentence_shapes():
    """One sentence of S pieces and T pieces: enc_self (S+1, S+1), dec_self (T+1, T+1), cross (T+1, S+1)."""
    torch.manual_seed(0)
    model = M.build_model(shrink(ARCHS["transformer_tiny"]()), 30, 30, True).eval()
    attn = C.capture_sentence(model, [5, 6, 7], [8, 9, 10, 11])
    assert sorted(attn) == ["cross", "dec_self", "enc_self"]
    assert [w.shape for w in attn["enc_self"]] == [(2, 4, 4)] * 2
    assert [w.shape for w in attn["dec_self"]] == [(2, 5, 5)] * 2
    assert [w.shape for w in attn["cross"]] == [(2, 5, 4)] * 2
