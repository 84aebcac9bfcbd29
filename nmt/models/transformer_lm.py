"""Decoder-only Transformer language model (GPT-style) and its named architectures.

Shape legend: B batch, T length, D model dim, H heads, V vocab, Dh head dim (D / H).

The translation Transformer's decoder (nmt.models.transformer.TransformerDecoder) without
cross-attention: causal self-attention and feed-forward layers, post-norm or pre-norm with a
final layer norm, sinusoidal or learned positions, and the token embedding as the output
projection (tied). Position t sees positions <= t only.

Training (the language_modeling task): `forward(tokens)` with tokens (B, T) BOS-first (BOS +
pieces, or a block of the token stream) -> logits (B, T, V), position t predicting token t + 1;
`forward(tokens, features_only=True)` -> (B, T, D) and `output_weight` (V, D) for the blockwise loss.

Search (nmt.models.protocol): `encode` returns an empty memory {"out": (B, 0, D)} and `decode`
ignores memory and src_pad_mask; its state is TransformerLMState
    {"steps": int, "layers": [{"self_k", "self_v"} per layer]}
with every tensor (B, H, T_all, Dh), so beam search reorders it with `select_batch`.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from nmt.config import TransformerLMConfig
from nmt.errors import UserError
from nmt.models.layers import ACTIVATIONS, token_embedding
from nmt.models.protocol import AttentionMaps, TransformerLMMemory, TransformerLMState
from nmt.models.transformer import TransformerDecoder
from nmt.registry import ARCHS, MODELS, register


class TransformerLanguageModel(nn.Module):
    """A causal Transformer decoder with a tied output projection; the search protocol of `nmt.models`."""

    decodes_grouped = True  # decode never reads memory, so one row per sentence serves (protocol rule 4)
    sentence_state_keys: tuple[str, ...] = ()

    def __init__(self, cfg: TransformerLMConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        embed = token_embedding(vocab_size, cfg.decoder_embed_dim)
        self.decoder = TransformerDecoder(cfg, embed, tie_output=True, vocab_size=vocab_size, cross_attention=False)

    def forward(self, tokens: Tensor, features_only: bool = False) -> Tensor:
        """tokens (B, T) BOS-first -> logits (B, T, V), or with `features_only` the features (B, T, D)
        that `output_weight` projects to them. Right padding needs no mask: no earlier position sees it."""
        out, _, _ = self.decoder(tokens, None, None, None, False, project=not features_only)
        return out

    @property
    def output_weight(self) -> Tensor:
        """The bias-free output projection (V, D), the token embedding itself: logits = features @ output_weight^T."""
        return self.decoder.output_weight()

    def encode(
        self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False
    ) -> tuple[TransformerLMMemory, Optional[AttentionMaps]]:
        """-> ({"out": (B, 0, D)} empty, {} when need_attn else None): there is no encoder."""
        weight = self.decoder.embed_tokens.weight
        out = weight.new_zeros(src.size(0), 0, weight.size(1))  # (B, 0, D)
        return {"out": out}, ({} if need_attn else None)

    def decode(
        self,
        tgt_in: Tensor,
        memory: TransformerLMMemory,
        src_pad_mask: Tensor,
        state: Optional[TransformerLMState] = None,
        need_attn: bool = False,
    ) -> tuple[Tensor, TransformerLMState, Optional[AttentionMaps]]:
        """tgt_in (B, T): the whole prefix from BOS when state is None, else only the new positions.
        -> (logits (B, T, V), state, {"dec_self": [(B, H, T, T_all) per layer]} or None).
        memory and src_pad_mask are not read (the protocol passes them)."""
        return self.decoder(tgt_in, None, None, state, need_attn)

    def max_positions(self) -> tuple[int, int]:
        """(max_target_positions, max_target_positions): a prompt and its continuation share the positions."""
        return self.cfg.max_target_positions, self.cfg.max_target_positions


def check_config(cfg: TransformerLMConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
    """Raise UserError for settings that cannot build a language model."""
    if cfg.activation_fn not in ACTIVATIONS:
        raise UserError(f"--activation-fn {cfg.activation_fn!r} is not one of {sorted(ACTIVATIONS)}")
    if src_vocab_size != tgt_vocab_size:
        raise UserError(
            f"a language model needs one vocabulary (nmt preprocess --only-source); "
            f"got source {src_vocab_size} and target {tgt_vocab_size}"
        )


@register(MODELS, "transformer_lm")
def build(cfg: TransformerLMConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> nn.Module:
    """Build a TransformerLanguageModel for a monolingual vocabulary (both sizes N; UserError otherwise)."""
    check_config(cfg, src_vocab_size, tgt_vocab_size)
    return TransformerLanguageModel(cfg, tgt_vocab_size)


# ----------------------------------------------------------------------------- named architectures
@register(ARCHS, "transformer_lm_tiny")
def transformer_lm_tiny() -> TransformerLMConfig:
    """2 layers, D 128, FFN 512, 4 heads, pre-norm, GELU: a GPT-style model that trains on a laptop CPU."""
    return TransformerLMConfig(
        decoder_layers=2,
        decoder_embed_dim=128,
        decoder_ffn_embed_dim=512,
        decoder_attention_heads=4,
        activation_fn="gelu",
        normalize_before=True,
    )


@register(ARCHS, "transformer_lm")
def transformer_lm() -> TransformerLMConfig:
    """6 layers, D 512, FFN 2048, 8 heads, post-norm, sinusoidal positions (fairseq's transformer_lm)."""
    return TransformerLMConfig()


@register(ARCHS, "transformer_lm_gpt")
def transformer_lm_gpt() -> TransformerLMConfig:
    """12 layers, D 768, FFN 3072, 12 heads, pre-norm, GELU, 1024 learned positions (GPT-2 small)."""
    return TransformerLMConfig(
        decoder_layers=12,
        decoder_embed_dim=768,
        decoder_ffn_embed_dim=3072,
        decoder_attention_heads=12,
        attention_dropout=0.1,
        activation_fn="gelu",
        normalize_before=True,
        learned_pos=True,
        no_scale_embedding=True,
        max_target_positions=1024,
    )
