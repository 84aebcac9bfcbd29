"""Transformer building blocks: masks, multi-head attention, and the
encoder and decoder layers every Transformer family (translation, language model, masked LM) stacks.

Shape legend: B batch, S key length, T query length, D model dim, H heads, Dh = D / H.

Masks. The project's `*_pad_mask` is True at padding; attention wants the opposite. Each
forward converts its masks once, with the helpers here, into the form SDPA takes: bool,
True = attend, broadcastable to (B, H, T, S). `additive_mask` gives the float form
(0 / -inf) for code that adds masks to scores. Every layer then reuses the converted mask.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import TransformerConfig, TransformerLMConfig, TransformerMLMConfig
from nmt.data.tokenizer import PAD
from nmt.errors import UserError
from nmt.models.positions import LearnedPositions, SinusoidalPositions, sinusoidal_embedding  # noqa: F401 (re-exported)

KV = tuple[Tensor, Tensor]  # (keys, values), each (B, H, S, Dh)


# ----------------------------------------------------------------------------- masks
def padding_attend_mask(pad_mask: Tensor) -> Tensor:
    """(B, S) bool, True at padding -> (B, 1, 1, S) bool, True = attend.

    A row that is all padding would leave softmax with only -inf scores (NaN); such a row
    attends to every position instead, so its output is finite (and never used).
    """
    attend = ~pad_mask
    attend = attend | ~attend.any(dim=-1, keepdim=True)
    return attend[:, None, None, :]  # (B, 1, 1, S)


def causal_attend_mask(length: int, offset: int = 0, device: Optional[torch.device] = None) -> Tensor:
    """(T, offset + T) bool, True = attend: query i sits at position offset + i and sees keys 0..offset + i.

    offset is the number of positions already decoded (held in a cache); offset 0 gives the
    usual lower-triangular mask.
    """
    query_pos = torch.arange(offset, offset + length, device=device)[:, None]  # (T, 1)
    key_pos = torch.arange(offset + length, device=device)[None, :]  # (1, T_all)
    return key_pos <= query_pos


def additive_mask(attend: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """bool mask (True = attend) -> float mask of the same shape: 0 where attended, -inf elsewhere."""
    return torch.zeros(attend.shape, dtype=dtype, device=attend.device).masked_fill(~attend, float("-inf"))


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout, any shape: zero each element with probability p, scale the rest by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    return F.dropout(x, p=p, training=True)


# ----------------------------------------------------------------------------- attention
# On CPU, SDPA's fused kernel works in blocks sized for long sequences; for sentence-length keys
# the two plain matrix products are 2-3x faster forward + backward (benchmarks/attention_speed.py).
SHORT_KEYS = 64
# A decoding step's single query per row over a few keys: torch's bmm computes products whose
# contraction x columns is below this many elements in scalar loops, so without autograd such
# attention is faster as elementwise products and sums (benchmarks/decode_vs_ct2.py).
SMALL_PRODUCT = 400


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attend: Optional[Tensor] = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[Tensor, Optional[Tensor]]:
    """Scaled dot-product attention over heads.

    q (B, H, T, Dh), k and v (B, H, S, Dh); attend: bool broadcastable to (B, H, T, S), True = attend.
    causal=True says `attend` is exactly the square causal mask, so the fast path may use SDPA's
    is_causal kernel instead of reading the mask.
    Returns (out (B, H, T, Dh), weights (B, H, T, S) when need_weights, else None). Weights come
    from the explicit path softmax(q k^T / sqrt(Dh)) (before dropout), which is also the faster
    one on CPU for keys up to SHORT_KEYS long; otherwise SDPA computes the output, and a decoding
    step's single query over a few keys uses elementwise products (SMALL_PRODUCT). Masked
    positions get exactly zero weight; a row with nothing to attend gets all-zero weights.
    """
    if not need_weights and dropout_p == 0.0 and _single_query_few_keys(q, k):
        return _attend_elementwise(q, k, v, attend), None
    if not need_weights and not (q.device.type == "cpu" and k.size(-2) <= SHORT_KEYS):
        if causal:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=dropout_p)
        return out, None
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.size(-1) ** -0.5)  # (B, H, T, S)
    if attend is not None:
        scores = scores.masked_fill(~attend, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1)
    if attend is not None:
        weights = weights.masked_fill(~attend, 0.0)  # all-masked rows: NaN -> 0
    weights = weights.to(q.dtype)
    probs = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return torch.matmul(probs, v), (weights if need_weights else None)


def _single_query_few_keys(q: Tensor, k: Tensor) -> bool:
    """One query per row, on CPU without autograd, over keys whose products fall below SMALL_PRODUCT."""
    small = q.size(-2) == 1 and k.size(-2) * q.size(-1) < SMALL_PRODUCT
    return small and q.device.type == "cpu" and not torch.is_grad_enabled()


def _attend_elementwise(q: Tensor, k: Tensor, v: Tensor, attend: Optional[Tensor]) -> Tensor:
    """`attention`'s output for q (B, H, 1, Dh) over k, v (B, H, S, Dh) with elementwise products and
    sums instead of matrix products (see SMALL_PRODUCT); attend as in `attention`. -> (B, H, 1, Dh)."""
    scores = (q * k).sum(dim=-1, keepdim=True).mul_(q.size(-1) ** -0.5)  # (B, H, S, 1): keys along dim 2
    keep = attend.transpose(-1, -2) if attend is not None else None  # (..., S, 1)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    if keep is not None:
        weights = weights.masked_fill(~keep, 0.0)  # a row with nothing to attend: NaN -> 0
    return (weights * v).sum(dim=-2, keepdim=True)


class MultiheadAttention(nn.Module):
    """Multi-head attention with a fused projection and an explicit K/V cache passed in and out.

    Self-attention projects queries, keys and values with one (D -> 3D) matrix; cross-attention
    projects queries with (D -> D) and keys/values with one (kdim -> 2D) matrix, kdim being the
    encoder's dim. Nothing is stored on the module between calls: the caller keeps the returned
    (k, v) and passes it back as `cache` (see `forward`).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        kdim: Optional[int] = None,
        dropout: float = 0.0,
        self_attention: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise UserError(f"embedding dim {embed_dim} is not divisible by {num_heads} attention heads")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout = dropout
        self.self_attention = self_attention
        if self_attention:
            self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)
        else:
            self.q_proj = nn.Linear(embed_dim, embed_dim)
            self.kv_proj = nn.Linear(kdim or embed_dim, 2 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """fairseq's init: xavier_uniform per q/k/v block (gain 1/sqrt 2 for self-attention), out_proj bias 0."""
        gain = 1 / math.sqrt(2)
        if self.self_attention:
            for block in self.qkv_proj.weight.data.chunk(3, dim=0):
                nn.init.xavier_uniform_(block, gain=gain)
        else:  # fairseq uses gain 1 when key and query dims may differ
            nn.init.xavier_uniform_(self.q_proj.weight)
            for block in self.kv_proj.weight.data.chunk(2, dim=0):
                nn.init.xavier_uniform_(block)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, n: int) -> tuple[Tensor, ...]:
        """(B, L, n * D) -> n tensors (B, H, L, Dh), views of x (no copy)."""
        B, L, _ = x.shape
        return x.view(B, L, n, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)  # n x (B, H, L, Dh)

    def project_kv(self, memory: Tensor) -> KV:
        """Cross-attention keys and values of memory (B, S, kdim): two (B, H, S, Dh), computed once per sentence.

        Made contiguous once here: as views of the projection every decoding step's products would copy them."""
        k, v = self._heads(self.kv_proj(memory), 2)
        return k.contiguous(), v.contiguous()

    def forward(
        self,
        x: Tensor,
        memory: Optional[Tensor] = None,
        cache: Optional[KV] = None,
        attend: Optional[Tensor] = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, KV, Optional[Tensor]]:
        """Attend from x (B, T, D).

        Self-attention: keys/values come from x, appended after `cache` (the K/V of the
        positions already decoded) when given. Cross-attention: keys/values are `cache` when
        given, else projected from memory (B, S, kdim).
        attend: bool mask broadcastable to (B, H, T, S_all), True = attend; causal: see `attention`.
        Cross-attention also takes `cache` (and then `attend`) with fewer rows than x, a divisor
        of B: grouped, as beam search passes each sentence's keys once for its beams (`_grouped`).
        Returns (out (B, T, D), (k, v) each (B, H, S_all, Dh) to pass back as `cache`,
        weights (B, H, T, S_all) when need_weights else None).
        """
        B, T, D = x.shape
        if self.self_attention:
            q, k, v = self._heads(self.qkv_proj(x), 3)
            if cache is not None:
                k = torch.cat([cache[0], k], dim=2)  # (B, H, S_prev + T, Dh)
                v = torch.cat([cache[1], v], dim=2)
        else:
            (q,) = self._heads(self.q_proj(x), 1)
            k, v = cache if cache is not None else self.project_kv(memory)
        dropout_p = self.dropout if self.training else 0.0
        if k.size(0) != B:  # grouped cross-attention: x holds G rows per row of k and v
            return self._grouped(q, k, v, attend, need_weights)
        out, weights = attention(q, k, v, attend, causal, dropout_p, need_weights)
        out = out.transpose(1, 2).reshape(B, T, D)  # (B, T, H, Dh) -> (B, T, D)
        return self.out_proj(out), (k, v), weights

    def _grouped(
        self, q: Tensor, k: Tensor, v: Tensor, attend: Optional[Tensor], need_weights: bool
    ) -> tuple[Tensor, KV, Optional[Tensor]]:
        """Cross-attention of N = Bk * G query rows over Bk rows of keys and values, query row n
        attending with key row n // G (the G beams of a sentence share its source): q (N, H, T, Dh),
        k and v (Bk, H, S, Dh), attend (Bk, 1, 1, S). One product per sentence and head for all of
        its G * T queries, and the keys and values are never copied per beam. Inference only.
        Returns what `forward` returns, out (N, T, D) and weights (N, H, T, S), row-major as q."""
        N, H, T, Dh = q.shape
        Bk = k.size(0)
        G = N // Bk
        qg = q.view(Bk, G, H, T, Dh).transpose(1, 2).reshape(Bk, H, G * T, Dh)
        out, weights = attention(qg, k, v, attend, False, 0.0, need_weights)  # (Bk, H, G*T, Dh)
        out = out.view(Bk, H, G, T, Dh).permute(0, 2, 3, 1, 4).reshape(N, T, H * Dh)  # (N, T, D)
        if weights is not None:
            weights = weights.view(Bk, H, G, T, -1).transpose(1, 2).reshape(N, H, T, -1)
        return self.out_proj(out), (k, v), weights


# ----------------------------------------------------------------------------- Transformer layers
# The layers read their sizes from a config by field name: TransformerConfig, and the decoder-only
# (TransformerLMConfig: decoder_* fields) and encoder-only (TransformerMLMConfig: encoder_* fields)
# configs that share those names, so every Transformer family builds the same layers.
EncoderSizes = Union[TransformerConfig, TransformerMLMConfig]
DecoderSizes = Union[TransformerConfig, TransformerLMConfig]

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def xavier_linear(d_in: int, d_out: int, bias: bool = True) -> nn.Linear:
    """nn.Linear with fairseq's init: xavier_uniform weight, zero bias."""
    layer = nn.Linear(d_in, d_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def token_embedding(vocab_size: int, dim: int) -> nn.Embedding:
    """Token embedding, normal(0, D^-0.5) with the PAD row zero (as fairseq)."""
    emb = nn.Embedding(vocab_size, dim, padding_idx=PAD)
    nn.init.normal_(emb.weight, mean=0.0, std=dim**-0.5)
    with torch.no_grad():
        emb.weight[PAD].zero_()
    return emb


class FeedForward(nn.Module):
    """Position-wise feed-forward block: fc2(dropout(act(fc1 x))). (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, ffn_dim: int, activation: str, activation_dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = xavier_linear(dim, ffn_dim), xavier_linear(ffn_dim, dim)
        self.activation = ACTIVATIONS[activation]
        self.activation_dropout = activation_dropout

    def forward(self, x: Tensor) -> Tensor:
        x = self.activation(self.fc1(x))
        if self.activation_dropout > 0:
            x = dropout(x, self.activation_dropout, self.training)
        return self.fc2(x)


def _norm_in(x: Tensor, norm: nn.LayerNorm, pre: bool) -> Tensor:
    """Input of a sublayer: norm(x) for pre-norm, x for post-norm."""
    return norm(x) if pre else x


def _norm_out(residual: Tensor, y: Tensor, norm: nn.LayerNorm, pre: bool, p: float, training: bool) -> Tensor:
    """Output of a sublayer: residual + dropout(y), then norm for post-norm."""
    y = residual + dropout(y, p, training)
    return y if pre else norm(y)


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward, each wrapped in dropout, a residual and a layer norm."""

    def __init__(self, cfg: EncoderSizes) -> None:
        super().__init__()
        D = cfg.encoder_embed_dim
        self.self_attn = MultiheadAttention(D, cfg.encoder_attention_heads, dropout=cfg.attention_dropout)
        self.self_attn_norm = nn.LayerNorm(D)
        self.ffn = FeedForward(D, cfg.encoder_ffn_embed_dim, cfg.activation_fn, cfg.activation_dropout)
        self.ffn_norm = nn.LayerNorm(D)
        self.pre, self.dropout = cfg.normalize_before, cfg.dropout

    def forward(self, x: Tensor, attend: Tensor, need_attn: bool) -> tuple[Tensor, Optional[Tensor]]:
        """x (B, S, D); attend (B, 1, 1, S) True = attend -> (x (B, S, D), weights (B, H, S, S) or None)."""
        y, _, w = self.self_attn(_norm_in(x, self.self_attn_norm, self.pre), attend=attend, need_weights=need_attn)
        x = _norm_out(x, y, self.self_attn_norm, self.pre, self.dropout, self.training)
        y = self.ffn(_norm_in(x, self.ffn_norm, self.pre))
        return _norm_out(x, y, self.ffn_norm, self.pre, self.dropout, self.training), w


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder output (unless decoder-only), feed-forward."""

    def __init__(self, cfg: DecoderSizes, cross_attention: bool = True) -> None:
        """cross_attention False: a decoder-only layer (language model); cfg then needs no encoder sizes."""
        super().__init__()
        D, H = cfg.decoder_embed_dim, cfg.decoder_attention_heads
        self.self_attn = MultiheadAttention(D, H, dropout=cfg.attention_dropout)
        self.self_attn_norm = nn.LayerNorm(D)
        self.cross_attn: Optional[MultiheadAttention] = None
        if cross_attention:
            self.cross_attn = MultiheadAttention(
                D, H, kdim=cfg.encoder_embed_dim, dropout=cfg.attention_dropout, self_attention=False
            )
            self.cross_attn_norm = nn.LayerNorm(D)
        self.ffn = FeedForward(D, cfg.decoder_ffn_embed_dim, cfg.activation_fn, cfg.activation_dropout)
        self.ffn_norm = nn.LayerNorm(D)
        self.pre, self.dropout = cfg.normalize_before, cfg.dropout

    def forward(
        self,
        x: Tensor,
        memory: Optional[Tensor],
        src_attend: Optional[Tensor],
        self_attend: Optional[Tensor],
        causal: bool,
        cache: Optional[dict[str, Tensor]],
        need_attn: bool,
    ) -> tuple[Tensor, dict[str, Tensor], Optional[Tensor], Optional[Tensor]]:
        """x (B, T, D) new positions; memory (B, S, D_enc) and src_attend (B, 1, 1, S), None when decoder-only;
        self_attend (T, T_all) or None; cache: this layer's state entry or None.
        Returns (x (B, T, D), new cache entry {"self_k", "self_v"} plus {"cross_k", "cross_v"} with
        cross-attention (TransformerLayerState / TransformerLMLayerState), self weights (B, H, T, T_all),
        cross weights (B, H, T, S) or None)."""
        self_kv = (cache["self_k"], cache["self_v"]) if cache is not None else None
        y, (sk, sv), w_self = self.self_attn(
            _norm_in(x, self.self_attn_norm, self.pre),
            cache=self_kv,
            attend=self_attend,
            causal=causal,
            need_weights=need_attn,
        )
        x = _norm_out(x, y, self.self_attn_norm, self.pre, self.dropout, self.training)
        entry, w_cross = {"self_k": sk, "self_v": sv}, None
        if self.cross_attn is not None:
            cross_kv = (cache["cross_k"], cache["cross_v"]) if cache is not None else None
            y, (ck, cv), w_cross = self.cross_attn(
                _norm_in(x, self.cross_attn_norm, self.pre),
                memory=memory,
                cache=cross_kv,
                attend=src_attend,
                need_weights=need_attn,
            )
            x = _norm_out(x, y, self.cross_attn_norm, self.pre, self.dropout, self.training)
            entry.update(cross_k=ck, cross_v=cv)
        y = self.ffn(_norm_in(x, self.ffn_norm, self.pre))
        x = _norm_out(x, y, self.ffn_norm, self.pre, self.dropout, self.training)
        return x, entry, w_self, w_cross
