"""Attention variants of the LSTM decoder (`--attention`).

Shape legend: B batch, S source length, T target length, H heads, Dq query size (decoder
hidden size), He encoder output size, C context size.

    dot        score = h_t . m_j                                   (Luong et al. 2015; needs Dq == He)
    general    score = h_t . W_a m_j                               (Luong et al. 2015)
    qkv        score = (W_q h_t) . (W_k m_j) / sqrt(Dq), value W_v m_j
    multihead  qkv split into H heads, per-head weights, contexts concatenated
    additive   score = v . tanh(W_q s_{t-1} + W_k m_j)             (Bahdanau et al. 2015)

Every module offers the same two calls, so the decoder knows nothing about the variant:

    prepare(memory_out (B,S,He)) -> {"k": (B,H,S,dk) or (B,S,A), "v": (B,H,S,dv) or (B,S,He)}
        computed once per sentence; batch-first, so it lives in the decoder state.
    forward(query (B,T,Dq), cache, src_pad_mask (B,S)) -> (context (B,T,C), weights (B,H,T,S))
        cache is the decoder state (nmt.models.protocol.LSTMState), of which only k and v are read;
        weights are exactly zero at padding and every row sums to 1.

Which query is passed (h_t after the LSTM step, or s_{t-1} before it) is the decoder's business.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from nmt.errors import UserError
from nmt.models.protocol import LSTMState

ATTENTIONS = ("none", "dot", "general", "qkv", "additive", "multihead")


def masked_softmax(scores: Tensor, src_pad_mask: Tensor) -> Tensor:
    """Softmax over S of scores (B,H,T,S) in float32, with weight exactly 0 where src_pad_mask (B,S)."""
    scores = scores.float().masked_fill(src_pad_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1)


class ProductAttention(nn.Module):
    """dot / general / qkv / multihead: scaled (or not) dot products of projected queries and keys."""

    def __init__(self, kind: str, query_size: int, memory_size: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        if kind == "dot":
            if query_size != memory_size:
                raise UserError(
                    f"--attention dot needs decoder_hidden_size ({query_size}) == encoder output size "
                    f"({memory_size}, hidden x directions); use --attention general to map between them"
                )
            self.q_proj, self.k_proj, self.v_proj = nn.Identity(), nn.Identity(), nn.Identity()
            self.scale, self.context_size = 1.0, memory_size
        elif kind == "general":
            # W_a on the keys, computed once per sentence; values are the encoder outputs themselves.
            self.q_proj, self.v_proj = nn.Identity(), nn.Identity()
            self.k_proj = nn.Linear(memory_size, query_size, bias=False)
            self.scale, self.context_size = 1.0, memory_size
        elif kind in ("qkv", "multihead"):
            if query_size % heads:
                raise UserError(
                    f"decoder_hidden_size ({query_size}) must be divisible by decoder_attention_heads ({heads})"
                )
            self.q_proj = nn.Linear(query_size, query_size, bias=False)
            self.k_proj = nn.Linear(memory_size, query_size, bias=False)
            self.v_proj = nn.Linear(memory_size, query_size, bias=False)
            self.scale, self.context_size = 1.0 / math.sqrt(query_size // heads), query_size
        else:
            raise ValueError(kind)

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (B, H, n, d/H)

    def prepare(self, memory_out: Tensor) -> dict[str, Tensor]:
        return {"k": self._split(self.k_proj(memory_out)), "v": self._split(self.v_proj(memory_out))}

    def forward(self, query: Tensor, cache: LSTMState, src_pad_mask: Tensor) -> tuple[Tensor, Tensor]:
        k, v = cache["k"], cache["v"]  # (B, H, S, dk), (B, H, S, dv)
        q = self._split(self.q_proj(query))  # (B, H, T, dk)
        weights = masked_softmax(q @ k.transpose(-1, -2) * self.scale, src_pad_mask)  # (B, H, T, S)
        context = weights.to(v.dtype) @ v  # (B, H, T, dv)
        b, h, t, dv = context.shape
        return context.transpose(1, 2).reshape(b, t, h * dv), weights  # (B, T, C)


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2015: score_j = v . tanh(W_q q + W_k m_j); context = sum_j a_j m_j."""

    def __init__(self, query_size: int, memory_size: int, attn_size: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(query_size, attn_size)
        self.k_proj = nn.Linear(memory_size, attn_size, bias=False)
        self.score = nn.Linear(attn_size, 1, bias=False)
        self.context_size = memory_size

    def prepare(self, memory_out: Tensor) -> dict[str, Tensor]:
        return {"k": self.k_proj(memory_out), "v": memory_out}  # (B, S, A), (B, S, He)

    def forward(self, query: Tensor, cache: LSTMState, src_pad_mask: Tensor) -> tuple[Tensor, Tensor]:
        k, v = cache["k"], cache["v"]
        energy = torch.tanh(self.q_proj(query).unsqueeze(2) + k.unsqueeze(1))  # (B, T, S, A)
        weights = masked_softmax(self.score(energy).squeeze(-1).unsqueeze(1), src_pad_mask)  # (B, 1, T, S)
        context = weights.squeeze(1).to(v.dtype) @ v  # (B, T, He)
        return context, weights


def build_attention(kind: str, query_size: int, memory_size: int, heads: int) -> Optional[nn.Module]:
    """The attention module for `--attention kind` (None for `none`); bad choices raise UserError."""
    if kind not in ATTENTIONS:
        raise UserError(f"unknown --attention {kind!r}; valid choices: {', '.join(ATTENTIONS)}")
    if kind == "none":
        return None
    if kind == "additive":
        return AdditiveAttention(query_size, memory_size, query_size)
    if heads < 1:
        raise UserError(f"--decoder-attention-heads must be >= 1, got {heads}")
    return ProductAttention(kind, query_size, memory_size, heads if kind == "multihead" else 1)
