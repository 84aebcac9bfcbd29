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
from nmt.errors import UserError
from nmt.models.layers import (
    ACTIVATIONS,
    DecoderLayer,
    DecoderSizes,
    EncoderLayer,
    EncoderSizes,
    LearnedPositions,
    SinusoidalPositions,
    causal_attend_mask,
    dropout,
    padding_attend_mask,
    token_embedding,
)
from nmt.models.length_chunks import encode_in_chunks
from nmt.models.protocol import AttentionMaps, TransformerLMState, TransformerMemory, TransformerState
from nmt.registry import ARCHS, MODELS, register


def _positions(cfg: EncoderSizes | DecoderSizes, dim: int, max_positions: int) -> nn.Module:
    return LearnedPositions(dim, max_positions) if cfg.learned_pos else SinusoidalPositions(dim, max_positions)


class TransformerEncoder(nn.Module):
    """Token + position embeddings (layer-normed with `embed_norm`), N encoder layers, a final norm when pre-norm.

    Also the masked LM's encoder (nmt.models.transformer_mlm), which turns `embed_norm` on as RoBERTa.
    """

    def __init__(self, cfg: EncoderSizes, embed_tokens: nn.Embedding, embed_norm: bool = False) -> None:
        super().__init__()
        D = cfg.encoder_embed_dim
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(D)
        self.positions = _positions(cfg, D, cfg.max_source_positions)
        self.embed_norm = nn.LayerNorm(D) if embed_norm else None
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.final_norm = nn.LayerNorm(D) if cfg.normalize_before else None
        self.dropout = cfg.dropout

    def forward(self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False) -> tuple[Tensor, list[Tensor]]:
        """src (B, S) ids, src_pad_mask (B, S) True at padding -> (out (B, S, D), [weights (B, H, S, S)] or []).

        At inference without attention maps, rows run in chunks of similar length
        (nmt.models.length_chunks): the same outputs at real positions; padding positions differ."""
        if not self.training and not need_attn and not torch.is_grad_enabled():
            return encode_in_chunks(lambda s, m: self._forward(s, m, False)[0], src, src_pad_mask), []
        return self._forward(src, src_pad_mask, need_attn)

    def _forward(self, src: Tensor, src_pad_mask: Tensor, need_attn: bool) -> tuple[Tensor, list[Tensor]]:
        S = src.size(1)
        x = self.embed_tokens(src) * self.embed_scale + self.positions(S, 0, src.device)  # (B, S, D)
        if self.embed_norm is not None:
            x = self.embed_norm(x)
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
    """Token + position embeddings, N decoder layers, final norm when pre-norm, output projection to V.

    Without cross-attention it is the language model (nmt.models.transformer_lm): memory is None.
    """

    def __init__(
        self,
        cfg: DecoderSizes,
        embed_tokens: nn.Embedding,
        tie_output: bool,
        vocab_size: int,
        cross_attention: bool = True,
    ) -> None:
        """vocab_size: of the output layer; smaller than the embedding's only for a joined
        dictionary whose target side uses its first pieces (preprocess --trim-target-vocab)."""
        super().__init__()
        D = cfg.decoder_embed_dim
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(D)
        self.positions = _positions(cfg, D, cfg.max_target_positions)
        self.layers = nn.ModuleList(DecoderLayer(cfg, cross_attention) for _ in range(cfg.decoder_layers))
        self.cross_attention = cross_attention
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
        memory: Optional[Tensor],
        src_pad_mask: Optional[Tensor],
        state: Optional[TransformerState | TransformerLMState],
        need_attn: bool,
        project: bool = True,
    ) -> tuple[Tensor, TransformerState | TransformerLMState, Optional[AttentionMaps]]:
        """tgt_in (B, T) new positions (all of them when state is None); memory (B, S, D_enc) and
        src_pad_mask (B, S), both None without cross-attention.
        Returns (logits (B, T, V), or the features (B, T, D) before the projection when not
        `project`, state, attn {"dec_self", "cross" with cross-attention} or None)."""
        T = tgt_in.size(1)
        steps = state["steps"] if state is not None else 0
        x = self.embed_tokens(tgt_in) * self.embed_scale + self.positions(T, steps, tgt_in.device)  # (B, T, D)
        x = dropout(x, self.dropout, self.training)
        src_attend = padding_attend_mask(src_pad_mask) if self.cross_attention else None  # (B, 1, 1, S)
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
        attn: Optional[AttentionMaps] = None
        if need_attn:
            attn = {"dec_self": w_self, "cross": w_cross} if self.cross_attention else {"dec_self": w_self}
        out = self.logits(x) if project else x
        return out, {"steps": steps + T, "layers": layers}, attn

    def logits(self, x: Tensor) -> Tensor:
        """Features (B, T, D) -> logits (B, T, V).

        The output layer is called as a module when it is one, so that a module put in its place
        (int8 decoding, nmt.models.quantize; oneDNN's product, nmt.models.onednn) computes the logits; its
        forward is F.linear(x, weight)."""
        if self.output_projection is None:
            return F.linear(x, self.output_weight())
        return self.output_projection(x)


class TransformerModel(nn.Module):
    """Encoder-decoder Transformer implementing the `nmt.models` protocol."""

    decodes_grouped = True  # memory may keep one row per sentence under beam search (protocol rule 4)
    sentence_state_keys = ("cross_k", "cross_v")

    def __init__(
        self, cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool
    ) -> None:
        super().__init__()
        check_config(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)
        self.cfg = cfg
        src_embed = token_embedding(src_vocab_size, cfg.encoder_embed_dim)
        tgt_embed = src_embed if cfg.share_all_embeddings else token_embedding(tgt_vocab_size, cfg.decoder_embed_dim)
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
