"""Transformer encoder-decoder (Vaswani et al. 2017) and its named architectures.

Shape legend: B batch, S source length, T target length, D model dim, H heads, V vocab.

Post-norm (the paper) by default, pre-norm with a final layer norm when `normalize_before`.
The model implements the protocol of `nmt.models` (nmt.models.protocol): memory {"out": (B, S, D)}
(TransformerMemory) and a decoder state that is a plain dict (TransformerState)
    {"steps": int, "layers": [{"self_k", "self_v", "cross_k", "cross_v"} per layer]}
with every tensor (B, H, L, Dh), so beam search reorders it with `select_batch`.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import TransformerConfig
from nmt.data.tokenizer import PAD
from nmt.errors import UserError
from nmt.models.layers import (
    LearnedPositions,
    MultiheadAttention,
    SinusoidalPositions,
    causal_attend_mask,
    dropout,
    padding_attend_mask,
)
from nmt.models.protocol import AttentionMaps, TransformerLayerState, TransformerMemory, TransformerState
from nmt.registry import ARCHS, MODELS, register

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _linear(d_in: int, d_out: int, bias: bool = True) -> nn.Linear:
    """nn.Linear with fairseq's init: xavier_uniform weight, zero bias."""
    layer = nn.Linear(d_in, d_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _embedding(vocab_size: int, dim: int) -> nn.Embedding:
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
        self.fc1, self.fc2 = _linear(dim, ffn_dim), _linear(ffn_dim, dim)
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

    def __init__(self, cfg: TransformerConfig) -> None:
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
    """Causal self-attention, cross-attention over the encoder output, feed-forward."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        D, H = cfg.decoder_embed_dim, cfg.decoder_attention_heads
        self.self_attn = MultiheadAttention(D, H, dropout=cfg.attention_dropout)
        self.self_attn_norm = nn.LayerNorm(D)
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
        memory: Tensor,
        src_attend: Tensor,
        self_attend: Optional[Tensor],
        causal: bool,
        cache: Optional[TransformerLayerState],
        need_attn: bool,
    ) -> tuple[Tensor, TransformerLayerState, Optional[Tensor], Optional[Tensor]]:
        """x (B, T, D) new positions; memory (B, S, D_enc); src_attend (B, 1, 1, S);
        self_attend (T, T_all) or None; cache: this layer's state entry or None.
        Returns (x (B, T, D), new cache entry, self weights (B, H, T, T_all), cross weights (B, H, T, S))."""
        self_kv = (cache["self_k"], cache["self_v"]) if cache is not None else None
        cross_kv = (cache["cross_k"], cache["cross_v"]) if cache is not None else None
        y, (sk, sv), w_self = self.self_attn(
            _norm_in(x, self.self_attn_norm, self.pre),
            cache=self_kv,
            attend=self_attend,
            causal=causal,
            need_weights=need_attn,
        )
        x = _norm_out(x, y, self.self_attn_norm, self.pre, self.dropout, self.training)
        y, (ck, cv), w_cross = self.cross_attn(
            _norm_in(x, self.cross_attn_norm, self.pre),
            memory=memory,
            cache=cross_kv,
            attend=src_attend,
            need_weights=need_attn,
        )
        x = _norm_out(x, y, self.cross_attn_norm, self.pre, self.dropout, self.training)
        y = self.ffn(_norm_in(x, self.ffn_norm, self.pre))
        x = _norm_out(x, y, self.ffn_norm, self.pre, self.dropout, self.training)
        return x, {"self_k": sk, "self_v": sv, "cross_k": ck, "cross_v": cv}, w_self, w_cross


def _positions(cfg: TransformerConfig, dim: int, max_positions: int) -> nn.Module:
    return LearnedPositions(dim, max_positions) if cfg.learned_pos else SinusoidalPositions(dim, max_positions)


class TransformerEncoder(nn.Module):
    """Token + position embeddings, N encoder layers, a final norm when pre-norm."""

    def __init__(self, cfg: TransformerConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__()
        D = cfg.encoder_embed_dim
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(D)
        self.positions = _positions(cfg, D, cfg.max_source_positions)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.final_norm = nn.LayerNorm(D) if cfg.normalize_before else None
        self.dropout = cfg.dropout

    def forward(self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False) -> tuple[Tensor, list[Tensor]]:
        """src (B, S) ids, src_pad_mask (B, S) True at padding -> (out (B, S, D), [weights (B, H, S, S)] or [])."""
        S = src.size(1)
        x = self.embed_tokens(src) * self.embed_scale + self.positions(S, 0, src.device)  # (B, S, D)
        x = dropout(x, self.dropout, self.training)
        attend = padding_attend_mask(src_pad_mask)  # (B, 1, 1, S), once for every layer
        weights = []
        for layer in self.layers:
            x, w = layer(x, attend, need_attn)
            if need_attn:
                weights.append(w)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, weights


class TransformerDecoder(nn.Module):
    """Token + position embeddings, N decoder layers, final norm when pre-norm, output projection to V."""

    def __init__(self, cfg: TransformerConfig, embed_tokens: nn.Embedding, tie_output: bool, vocab_size: int) -> None:
        """vocab_size: of the output layer; smaller than the embedding's only for a joined
        dictionary whose target side uses its first pieces (preprocess --trim-target-vocab)."""
        super().__init__()
        D = cfg.decoder_embed_dim
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(D)
        self.positions = _positions(cfg, D, cfg.max_target_positions)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.final_norm = nn.LayerNorm(D) if cfg.normalize_before else None
        self.dropout = cfg.dropout
        self.vocab_size = vocab_size
        if tie_output and vocab_size < embed_tokens.num_embeddings:
            self.output_projection = None  # the output layer is the embedding's first rows
        else:
            self.output_projection = nn.Linear(D, vocab_size, bias=False)
            if tie_output:
                self.output_projection.weight = embed_tokens.weight  # one Parameter, two uses
            else:
                nn.init.normal_(self.output_projection.weight, mean=0.0, std=D**-0.5)

    def output_weight(self) -> Tensor:
        """The bias-free output projection (V, D)."""
        if self.output_projection is None:
            return self.embed_tokens.weight[: self.vocab_size]
        return self.output_projection.weight

    def forward(
        self,
        tgt_in: Tensor,
        memory: Tensor,
        src_pad_mask: Tensor,
        state: Optional[TransformerState],
        need_attn: bool,
        project: bool = True,
    ) -> tuple[Tensor, TransformerState, Optional[AttentionMaps]]:
        """tgt_in (B, T) new positions (all of them when state is None); memory (B, S, D_enc).
        Returns (logits (B, T, V), or the features (B, T, D) before the projection when not
        `project`, state, attn or None)."""
        T = tgt_in.size(1)
        steps = state["steps"] if state is not None else 0
        x = self.embed_tokens(tgt_in) * self.embed_scale + self.positions(T, steps, tgt_in.device)  # (B, T, D)
        x = dropout(x, self.dropout, self.training)
        src_attend = padding_attend_mask(src_pad_mask)  # (B, 1, 1, S)
        # One new position sees everything cached: no mask. Otherwise causal, offset by the cache.
        self_attend = causal_attend_mask(T, steps, tgt_in.device) if T > 1 else None  # (T, steps + T)
        causal = T > 1 and steps == 0
        layers, w_self, w_cross = [], [], []
        for i, layer in enumerate(self.layers):
            cache = state["layers"][i] if state is not None else None
            x, entry, ws, wc = layer(x, memory, src_attend, self_attend, causal, cache, need_attn)
            layers.append(entry)
            w_self.append(ws)
            w_cross.append(wc)
        if self.final_norm is not None:
            x = self.final_norm(x)
        attn = {"dec_self": w_self, "cross": w_cross} if need_attn else None
        out = F.linear(x, self.output_weight()) if project else x
        return out, {"steps": steps + T, "layers": layers}, attn


class TransformerModel(nn.Module):
    """Encoder-decoder Transformer implementing the `nmt.models` protocol."""

    def __init__(
        self, cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool
    ) -> None:
        super().__init__()
        check_config(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)
        self.cfg = cfg
        src_embed = _embedding(src_vocab_size, cfg.encoder_embed_dim)
        tgt_embed = src_embed if cfg.share_all_embeddings else _embedding(tgt_vocab_size, cfg.decoder_embed_dim)
        tie_output = cfg.share_all_embeddings or cfg.share_decoder_input_output_embed
        self.encoder = TransformerEncoder(cfg, src_embed)
        self.decoder = TransformerDecoder(cfg, tgt_embed, tie_output, tgt_vocab_size)

    def forward(self, src: Tensor, src_pad_mask: Tensor, tgt_in: Tensor, features_only: bool = False) -> Tensor:
        """Teacher-forced pass: src (B, S), src_pad_mask (B, S), tgt_in (B, T) -> logits (B, T, V),
        or with `features_only` the decoder output (B, T, D) that `output_weight` projects to them."""
        memory, _ = self.encode(src, src_pad_mask)
        out, _, _ = self.decoder(tgt_in, memory["out"], src_pad_mask, None, False, project=not features_only)
        return out

    @property
    def output_weight(self) -> Tensor:
        """The bias-free output projection (V, D): logits = features @ output_weight^T."""
        return self.decoder.output_weight()

    def encode(
        self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False
    ) -> tuple[TransformerMemory, Optional[AttentionMaps]]:
        """-> ({"out": (B, S, D)}, {"enc_self": [(B, H, S, S) per layer]} when need_attn else None)."""
        out, weights = self.encoder(src, src_pad_mask, need_attn)
        return {"out": out}, ({"enc_self": weights} if need_attn else None)

    def decode(
        self,
        tgt_in: Tensor,
        memory: TransformerMemory,
        src_pad_mask: Tensor,
        state: Optional[TransformerState] = None,
        need_attn: bool = False,
    ) -> tuple[Tensor, TransformerState, Optional[AttentionMaps]]:
        """tgt_in (B, T): the whole prefix from BOS when state is None, else only the new positions.
        -> (logits (B, T, V), state, {"dec_self": [(B, H, T, T_all)], "cross": [(B, H, T, S)]} or None)."""
        return self.decoder(tgt_in, memory["out"], src_pad_mask, state, need_attn)

    def max_positions(self) -> tuple[int, int]:
        """(max source length, max decoder input length): max_source_positions, max_target_positions."""
        return self.cfg.max_source_positions, self.cfg.max_target_positions


def check_config(cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> None:
    """Raise UserError for settings that cannot build a model."""
    if cfg.activation_fn not in ACTIVATIONS:
        raise UserError(f"--activation-fn {cfg.activation_fn!r} is not one of {sorted(ACTIVATIONS)}")
    for side in ("encoder", "decoder"):
        dim, heads = getattr(cfg, f"{side}_embed_dim"), getattr(cfg, f"{side}_attention_heads")
        if heads < 1 or dim % heads:
            raise UserError(f"--{side}-embed-dim {dim} must be a multiple of --{side}-attention-heads {heads}")
    if cfg.share_all_embeddings:
        if not joined_dictionary:
            raise UserError("--share-all-embeddings needs data preprocessed with --joined-dictionary")
        if tgt_vocab_size > src_vocab_size:  # smaller: the target uses the first pieces only
            raise UserError(
                f"--share-all-embeddings needs the target vocabulary within the source one "
                f"(source {src_vocab_size}, target {tgt_vocab_size})"
            )
        if cfg.encoder_embed_dim != cfg.decoder_embed_dim:
            raise UserError(
                f"--share-all-embeddings needs --encoder-embed-dim ({cfg.encoder_embed_dim}) "
                f"== --decoder-embed-dim ({cfg.decoder_embed_dim})"
            )


@register(MODELS, "transformer")
def build(cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> nn.Module:
    """Build a TransformerModel (UserError for impossible settings)."""
    return TransformerModel(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)


# ----------------------------------------------------------------------------- named architectures
def _arch(layers: int, dim: int, ffn: int, heads: int, **extra) -> TransformerConfig:
    sizes = dict(
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_embed_dim=dim,
        decoder_embed_dim=dim,
        encoder_ffn_embed_dim=ffn,
        decoder_ffn_embed_dim=ffn,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
    )
    return TransformerConfig(**sizes, **extra)


@register(ARCHS, "transformer_tiny")
def transformer_tiny() -> TransformerConfig:
    """3+3 layers, D 256, FFN 1024, 4 heads: quick experiments and tests."""
    return _arch(3, 256, 1024, 4)


@register(ARCHS, "transformer_small")
def transformer_small() -> TransformerConfig:
    """4+4 layers, D 256, FFN 1024, 4 heads, dropout 0.3: Multi30k-size data (~30k pairs)."""
    return _arch(4, 256, 1024, 4, dropout=0.3)


@register(ARCHS, "transformer_multi30k")
def transformer_multi30k() -> TransformerConfig:
    """4+4 layers, D 128, FFN 256, 4 heads, dropout 0.3: ~2.3M parameters with shared 8k embeddings,
    the size of Wu et al. 2021's text-only Transformer-Tiny; recipes/multi30k.sh trains it."""
    return _arch(4, 128, 256, 4, dropout=0.3)


@register(ARCHS, "transformer_iwslt_de_en")
def transformer_iwslt_de_en() -> TransformerConfig:
    """6+6 layers, D 512, FFN 1024, 4 heads (fairseq's IWSLT'14 de-en recipe)."""
    return _arch(6, 512, 1024, 4)


@register(ARCHS, "transformer_base")
def transformer_base() -> TransformerConfig:
    """6+6 layers, D 512, FFN 2048, 8 heads (the 2017 paper's base model)."""
    return _arch(6, 512, 2048, 8)


@register(ARCHS, "transformer_big")
def transformer_big() -> TransformerConfig:
    """6+6 layers, D 1024, FFN 4096, 16 heads, dropout 0.3 (the paper's big model)."""
    return _arch(6, 1024, 4096, 16, dropout=0.3)
