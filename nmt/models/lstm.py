"""LSTM encoder-decoder, family `lstm` (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

Every improvement is a flag of the one model (LSTMConfig), so ablations run from the command line.
This module registers the family and its named architectures and holds the model; the parts live in
nmt.models.lstm_encoder (encoder, bridge), nmt.models.lstm_decoder (decoder) and
nmt.models.lstm_attention (the attention variants). Typed memory and state: nmt.models.protocol.

Shape legend: B batch, S source length, T target length, E embedding dim, H heads, V vocab,
Le / Ld encoder / decoder layers, He encoder output size (encoder_hidden_size x directions),
Hd decoder hidden size, F decoder feature size (Hd; Hd + He for additive attention).

memory (LSTMMemory, from `encode`, batch-first):
    out   (B, S, He)   encoder outputs in source order (also with reverse_source); zero at padding when packed
    h, c  (B, Le, He)  final state of every encoder layer, directions concatenated [forward; backward]
decoder state (LSTMState; batch-first, so `select_batch` reorders beams):
    h, c  (B, Ld, Hd)  LSTM state after the last consumed position
    feed  (B, F)       previous output features (input feeding only; zeros before the first step)
    k, v               attention keys/values computed once from memory (attention only)
    step  int          target positions consumed so far

Bridge (encoder final states -> decoder initial states), per layer:
    concat   [forward; backward] as is: needs Hd == He (2 x encoder_hidden_size when bidirectional)
    average  mean of the directions: needs Hd == encoder_hidden_size
    linear   learned He -> Hd maps (one for h, one for c), any sizes
    zero     the decoder starts from zeros
Layers are aligned at the top: with Le >= Ld decoder layer i takes encoder layer Le - Ld + i (the top Ld);
with Le < Ld the top Le decoder layers take the encoder layers in order and the Ld - Le bottom ones take
encoder layer 0 (bridge_layers repeat) or start at zero (bridge_layers zero).

Decoder step t (x_t the target embedding):
    additive:            c_t = attn(s_{t-1});  h_t = LSTM([x_t; c_t; feed]);  features [h_t; c_t]
    dot/general/qkv/mha: h_t = LSTM([x_t; feed]);  c_t = attn(h_t);  features tanh(W_c [c_t; h_t])
    none:                h_t = LSTM([x_t; feed]);  features h_t
logits = W_out features (through a bias-free F -> E map first when the output is tied to an embedding
of another size). Without input feeding and additive attention the whole target runs through one
nn.LSTM call (cuDNN); otherwise a step loop. forward() in training mode with teacher_forcing_ratio < 1
feeds, at each position after BOS with probability 1 - ratio (one draw per position for the whole batch,
from torch's CPU generator), the greedy prediction of the previous position; eval mode always
teacher-forces. With attention none, `decode(need_attn=True)` returns attn {} (no kinds) and
`encode` always returns {} or None: there is no attention to show.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from nmt.config import LSTMConfig
from nmt.data.tokenizer import PAD
from nmt.errors import UserError
from nmt.models.lstm_decoder import LSTMDecoder
from nmt.models.lstm_encoder import LSTMEncoder, dropouts
from nmt.models.protocol import AttentionMaps, LSTMMemory, LSTMState
from nmt.registry import ARCHS, MODELS, register


# ----------------------------------------------------------------------------- model
class LSTMModel(nn.Module):
    """The `lstm` family behind the model protocol of nmt.models."""

    def __init__(self, cfg: LSTMConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> None:
        super().__init__()
        validate(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)
        self.cfg = cfg
        src_embed = nn.Embedding(src_vocab_size, cfg.encoder_embed_dim, padding_idx=PAD)
        tgt_embed = (
            src_embed
            if cfg.share_all_embeddings
            else nn.Embedding(tgt_vocab_size, cfg.decoder_embed_dim, padding_idx=PAD)
        )
        tied = cfg.share_decoder_input_output_embed or cfg.share_all_embeddings
        self.encoder = LSTMEncoder(cfg, src_embed)
        self.decoder = LSTMDecoder(cfg, tgt_embed, self.encoder.output_size, tgt_vocab_size, tied)
        if cfg.init_range > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -cfg.init_range, cfg.init_range)
        with torch.no_grad():
            src_embed.weight[PAD].zero_()
            tgt_embed.weight[PAD].zero_()

    def forward(self, src: Tensor, src_pad_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V); in training mode with teacher_forcing_ratio < 1 a random
        subset of positions (the same for the whole batch) gets the model's own greedy prediction."""
        memory, _ = self.encode(src, src_pad_mask)
        ratio = self.cfg.teacher_forcing_ratio if self.training else 1.0
        return self.decoder(tgt_in, memory, src_pad_mask, None, False, ratio)[0]

    def encode(
        self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False
    ) -> tuple[LSTMMemory, Optional[AttentionMaps]]:
        """src (B, S) -> (memory, {} when need_attn (no encoder attention) else None)."""
        return self.encoder(src, src_pad_mask), ({} if need_attn else None)

    def decode(
        self,
        tgt_in: Tensor,
        memory: LSTMMemory,
        src_pad_mask: Tensor,
        state: Optional[LSTMState] = None,
        need_attn: bool = False,
    ) -> tuple[Tensor, LSTMState, Optional[AttentionMaps]]:
        """tgt_in (B, T): the whole prefix from BOS when state is None, else only the new positions.
        -> (logits (B, T, V), state, {"cross": [(B, H, T, S)]} or {} (attention none) when need_attn else None)."""
        return self.decoder(tgt_in, memory, src_pad_mask, state, need_attn)

    def max_positions(self) -> tuple[int, int]:
        """(max source length, max decoder input length): max_source_positions, max_target_positions."""
        return self.cfg.max_source_positions, self.cfg.max_target_positions


def validate(cfg: LSTMConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool) -> None:
    """Flag combinations that cannot work raise UserError (the size checks live in Bridge and attention)."""
    for name in (
        "encoder_layers",
        "decoder_layers",
        "encoder_hidden_size",
        "decoder_hidden_size",
        "encoder_embed_dim",
        "decoder_embed_dim",
    ):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.teacher_forcing_ratio <= 1.0:
        raise UserError(f"--teacher-forcing-ratio must be in [0, 1], got {cfg.teacher_forcing_ratio}")
    if any(not 0.0 <= p < 1.0 for p in dropouts(cfg)):
        raise UserError(f"dropout probabilities must be in [0, 1), got {dropouts(cfg)}")
    if cfg.attention == "none" and cfg.bridge == "zero":
        raise UserError("--attention none with --bridge zero: the decoder would never see the source")
    if cfg.share_all_embeddings:
        if not joined_dictionary or tgt_vocab_size > src_vocab_size:
            raise UserError(
                "--share-all-embeddings needs a joined dictionary (preprocess --joined-dictionary) "
                f"and the target vocabulary within the source one (source {src_vocab_size}, target {tgt_vocab_size})"
            )
        if cfg.encoder_embed_dim != cfg.decoder_embed_dim:
            raise UserError(
                "--share-all-embeddings needs encoder_embed_dim == decoder_embed_dim "
                f"({cfg.encoder_embed_dim} != {cfg.decoder_embed_dim})"
            )


@register(MODELS, "lstm")
def build(cfg: LSTMConfig, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool = True) -> nn.Module:
    return LSTMModel(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)


# ----------------------------------------------------------------------------- named architectures
@register(ARCHS, "lstm_seq2seq")
def lstm_seq2seq() -> LSTMConfig:
    """Sutskever et al. 2014 style baseline: 2x512 LSTMs, 256-dim embeddings, no attention."""
    return LSTMConfig()


@register(ARCHS, "lstm_luong")
def lstm_luong() -> LSTMConfig:
    """Luong et al. 2015: general attention on h_t, attentional vector tanh(W_c[c;h]), input feeding."""
    return LSTMConfig(attention="general", input_feeding=True, dropout=0.2)


@register(ARCHS, "lstm_bahdanau")
def lstm_bahdanau() -> LSTMConfig:
    """Bahdanau et al. 2015: bidirectional 1-layer encoder, additive attention from s_{t-1}, learned bridge."""
    return LSTMConfig(
        encoder_hidden_size=256,
        encoder_layers=1,
        encoder_bidirectional=True,
        decoder_hidden_size=512,
        decoder_layers=1,
        attention="additive",
        bridge="linear",
    )


@register(ARCHS, "lstm_wiseman_iwslt_de_en")
def lstm_wiseman_iwslt_de_en() -> LSTMConfig:
    """fairseq's lstm_wiseman_iwslt_de_en: 1-layer 256 LSTMs, general attention, input feeding,
    dropout 0.1 only on the decoder outputs (none on embeddings or encoder outputs)."""
    return LSTMConfig(
        encoder_hidden_size=256,
        encoder_layers=1,
        decoder_hidden_size=256,
        decoder_layers=1,
        attention="general",
        input_feeding=True,
        dropout=0.1,
        encoder_dropout_in=0.0,
        encoder_dropout_out=0.0,
        decoder_dropout_in=0.0,
        decoder_dropout_out=0.1,
    )


@register(ARCHS, "lstm_mha")
def lstm_mha() -> LSTMConfig:
    """Multi-head (4) scaled dot-product attention on h_t, with input feeding."""
    return LSTMConfig(attention="multihead", decoder_attention_heads=4, input_feeding=True)
