"""Encoder-only Transformer masked language model (BERT/RoBERTa-style) and its named architectures.

Shape legend: B batch, T length, D model dim, H heads, V vocab, N masked positions.

The translation Transformer's encoder (nmt.models.transformer.TransformerEncoder: bidirectional
self-attention over pieces + EOS, padding masked) with RoBERTa's embedding layer norm
(`--layernorm-embedding`) and output head: dense D -> D, GELU, layer norm, then the token
embedding as the projection to V (tied) plus an output bias.

Training (the masked_lm task): `forward(tokens, pad_mask, masked)` with tokens (B, T) where some
pieces were replaced by `<mask>` or random ids, pad_mask (B, T) True at padding, masked (B, T)
True at the positions to predict -> logits (N, V) of those positions only, in row-major order
(the head runs only there); masked None -> logits (B, T, V).
`encode` returns TransformerMemory {"out": (B, T, D)} and the encoder's attention maps.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import TransformerMLMConfig
from nmt.errors import UserError
from nmt.models.layers import ACTIVATIONS, token_embedding, xavier_linear
from nmt.models.protocol import AttentionMaps, TransformerMemory
from nmt.models.transformer import TransformerEncoder
from nmt.registry import ARCHS, MODELS, register


class MaskedLMHead(nn.Module):
    """RoBERTa's LM head: (..., D) -> dense, GELU, layer norm -> (..., D) @ weight^T + bias -> (..., V)."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = xavier_linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        """x (..., D), weight (V, D) the tied projection -> logits (..., V)."""
        return F.linear(self.norm(F.gelu(self.dense(x))), weight, self.bias)


class TransformerMaskedLM(nn.Module):
    """A bidirectional Transformer encoder with a masked-LM head tied to the token embedding."""

    def __init__(self, cfg: TransformerMLMConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        embed = token_embedding(vocab_size, cfg.encoder_embed_dim)
        self.encoder = TransformerEncoder(cfg, embed, embed_norm=cfg.layernorm_embedding)
        self.head = MaskedLMHead(cfg.encoder_embed_dim, vocab_size)

    def forward(self, tokens: Tensor, pad_mask: Tensor, masked: Optional[Tensor] = None) -> Tensor:
        """tokens (B, T), pad_mask (B, T) True at padding, masked (B, T) bool or None
        -> logits (N, V) of the N masked positions in row-major order, or (B, T, V) when masked is None."""
        x, _ = self.encoder(tokens, pad_mask)  # (B, T, D)
        if masked is not None:
            x = x[masked]  # (N, D): the head's dense layer and the V-wide projection run only here
        return self.head(x, self.output_weight)

    @property
    def output_weight(self) -> Tensor:
        """The projection to the vocabulary (V, D), the token embedding itself (the head adds a bias)."""
        return self.encoder.embed_tokens.weight

    def encode(
        self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False
    ) -> tuple[TransformerMemory, Optional[AttentionMaps]]:
        """-> ({"out": (B, T, D)}, {"enc_self": [(B, H, T, T) per layer]} when need_attn else None)."""
        out, weights = self.encoder(src, src_pad_mask, need_attn)
        return {"out": out}, ({"enc_self": weights} if need_attn else None)

    def max_positions(self) -> tuple[int, int]:
        """(max_source_positions, max_source_positions): there is no decoder; positions are predicted in place."""
        return self.cfg.max_source_positions, self.cfg.max_source_positions


def check_config(cfg: TransformerMLMConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
    """Raise UserError for settings that cannot build a masked LM."""
    if cfg.activation_fn not in ACTIVATIONS:
        raise UserError(f"--activation-fn {cfg.activation_fn!r} is not one of {sorted(ACTIVATIONS)}")
    if src_vocab_size != tgt_vocab_size:
        raise UserError(
            f"a masked language model needs one vocabulary (nmt preprocess --only-source); "
            f"got source {src_vocab_size} and target {tgt_vocab_size}"
        )


@register(MODELS, "transformer_mlm")
def build(cfg: TransformerMLMConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> nn.Module:
    """Build a TransformerMaskedLM for a monolingual vocabulary (both sizes N; UserError otherwise)."""
    check_config(cfg, src_vocab_size, tgt_vocab_size)
    return TransformerMaskedLM(cfg, src_vocab_size)


# ----------------------------------------------------------------------------- named architectures
@register(ARCHS, "mlm_tiny")
def mlm_tiny() -> TransformerMLMConfig:
    """2 layers, D 128, FFN 512, 4 heads, otherwise mlm_base: a BERT-style model that trains on a laptop CPU."""
    return TransformerMLMConfig(
        encoder_layers=2, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=4
    )


@register(ARCHS, "mlm_base")
def mlm_base() -> TransformerMLMConfig:
    """12 layers, D 768, FFN 3072, 12 heads, post-norm, GELU, 512 learned positions (RoBERTa-base)."""
    return TransformerMLMConfig()
