"""LSTM encoder-decoder, family `lstm` (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

Every improvement is a flag of the one model (LSTMConfig), so ablations run from the command line.

Shape legend: B batch, S source length, T target length, E embedding dim, H heads, V vocab,
Le / Ld encoder / decoder layers, He encoder output size (encoder_hidden_size x directions),
Hd decoder hidden size, F decoder feature size (Hd; Hd + He for additive attention).

memory (from `encode`, batch-first):
    out   (B, S, He)   encoder outputs in source order (also with reverse_source); zero at padding when packed
    h, c  (B, Le, He)  final state of every encoder layer, directions concatenated [forward; backward]
decoder state (batch-first, so `select_batch` reorders beams):
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

from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import LSTMConfig
from nmt.data.tokenizer import EOS, PAD
from nmt.errors import UserError
from nmt.models.lstm_attention import build_attention
from nmt.registry import ARCHS, MODELS, register

BRIDGES = ("concat", "average", "linear", "zero")


# ----------------------------------------------------------------------------- pure helpers
def reverse_index(src: Tensor, src_pad_mask: Tensor) -> Tensor:
    """Index (B, S) that reverses each row's real tokens, a final EOS and the padding staying in place.

    `src.gather(1, index)` is the reversed batch; the map is its own inverse, so the same gather
    puts encoder outputs back in source order.
    """
    b, s = src.shape
    lens = (~src_pad_mask).sum(1)  # (B,)
    last = src.gather(1, (lens - 1).clamp(min=0).unsqueeze(1)).squeeze(1)  # (B,)
    n = lens - (last.eq(EOS) & lens.gt(0)).long()  # tokens to reverse per row
    pos = torch.arange(s, device=src.device).expand(b, s)
    return torch.where(pos < n.unsqueeze(1), n.unsqueeze(1) - 1 - pos, pos)


def layer_map(enc_layers: int, dec_layers: int, mode: str) -> list[Optional[int]]:
    """Encoder layer that initializes each decoder layer (bottom first); None = zero state."""
    offset = enc_layers - dec_layers
    return [i + offset if i + offset >= 0 else (0 if mode == "repeat" else None) for i in range(dec_layers)]


def _dropouts(cfg: LSTMConfig) -> tuple[float, float, float, float]:
    pick = lambda v: cfg.dropout if v is None else v  # noqa: E731
    return (
        pick(cfg.encoder_dropout_in),
        pick(cfg.encoder_dropout_out),
        pick(cfg.decoder_dropout_in),
        pick(cfg.decoder_dropout_out),
    )


def amp_cast(*xs: Tensor) -> list[Tensor]:
    """Inputs of nn.LSTM in the autocast dtype under CPU autocast, where oneDNN rejects float32 inputs
    (CUDA autocast casts them itself); unchanged otherwise."""
    if xs[0].device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return [x.to(torch.get_autocast_dtype("cpu")) for x in xs]
    return list(xs)


def to_batch_first(state: Tensor, layers: int, directions: int) -> Tensor:
    """nn.LSTM's (layers*directions, B, H) -> (B, layers, directions*H), directions concatenated."""
    _, b, h = state.shape
    return state.view(layers, directions, b, h).permute(2, 0, 1, 3).reshape(b, layers, directions * h)


# ----------------------------------------------------------------------------- encoder
class LSTMEncoder(nn.Module):
    def __init__(self, cfg: LSTMConfig, embed: nn.Embedding) -> None:
        super().__init__()
        drop_in, drop_out, _, _ = _dropouts(cfg)
        self.embed, self.cfg = embed, cfg
        self.directions = 2 if cfg.encoder_bidirectional else 1
        self.lstm = nn.LSTM(
            cfg.encoder_embed_dim,
            cfg.encoder_hidden_size,
            cfg.encoder_layers,
            batch_first=True,
            dropout=drop_out if cfg.encoder_layers > 1 else 0.0,
            bidirectional=cfg.encoder_bidirectional,
        )
        self.dropout_in, self.dropout_out = nn.Dropout(drop_in), nn.Dropout(drop_out)
        self.output_size = cfg.encoder_hidden_size * self.directions

    def forward(self, src: Tensor, src_pad_mask: Tensor) -> dict[str, Tensor]:
        """src (B, S) -> memory {"out": (B, S, He), "h": (B, Le, He), "c": (B, Le, He)}."""
        b, s = src.shape
        if self.cfg.reverse_source:
            index = reverse_index(src, src_pad_mask)
            src = src.gather(1, index)
        (x,) = amp_cast(self.dropout_in(self.embed(src)))  # (B, S, E)
        if self.cfg.pack:
            # Lengths must live on the CPU for packing (one small copy per batch).
            lens = (~src_pad_mask).sum(1).clamp(min=1).cpu()
            packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
            out, (h, c) = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=s)  # (B, S, He), zeros at padding
        else:
            out, (h, c) = self.lstm(x)  # the ablation: padding runs through the recurrence
        if self.cfg.reverse_source:
            out = out.gather(1, index.unsqueeze(-1).expand_as(out))  # back to source order
        layers = self.cfg.encoder_layers
        return {
            "out": self.dropout_out(out),
            "h": to_batch_first(h, layers, self.directions),
            "c": to_batch_first(c, layers, self.directions),
        }


# ----------------------------------------------------------------------------- bridge
class Bridge(nn.Module):
    """Encoder final states (B, Le, He) -> decoder initial states (B, Ld, Hd); see the module docstring."""

    def __init__(self, cfg: LSTMConfig, memory_size: int) -> None:
        super().__init__()
        if cfg.bridge not in BRIDGES:
            raise UserError(f"unknown --bridge {cfg.bridge!r}; valid choices: {', '.join(BRIDGES)}")
        if cfg.bridge_layers not in ("repeat", "zero"):
            raise UserError(f"unknown --bridge-layers {cfg.bridge_layers!r}; valid choices: repeat, zero")
        hd, need = cfg.decoder_hidden_size, None
        if cfg.bridge == "concat" and hd != memory_size:
            need = memory_size
        if cfg.bridge == "average" and hd != cfg.encoder_hidden_size:
            need = cfg.encoder_hidden_size
        if need is not None:
            raise UserError(
                f"--bridge {cfg.bridge} gives decoder states of size {need} (encoder_hidden_size "
                f"{cfg.encoder_hidden_size}, bidirectional {cfg.encoder_bidirectional}) but decoder_hidden_size "
                f"is {hd}: set --decoder-hidden-size {need}, or use --bridge linear or zero"
            )
        self.kind, self.hidden = cfg.bridge, hd
        self.layers = layer_map(cfg.encoder_layers, cfg.decoder_layers, cfg.bridge_layers)
        if cfg.bridge == "linear":
            self.h_proj, self.c_proj = nn.Linear(memory_size, hd), nn.Linear(memory_size, hd)

    def _map(self, x: Tensor, proj: Optional[nn.Module]) -> Tensor:  # (B, He) -> (B, Hd)
        if self.kind == "average":
            return x.view(x.size(0), -1, self.hidden).mean(1)  # (B, directions, H) -> (B, H)
        return proj(x) if self.kind == "linear" else x

    def forward(self, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        zeros = h.new_zeros(h.size(0), self.hidden)
        out = []
        for x, proj in ((h, getattr(self, "h_proj", None)), (c, getattr(self, "c_proj", None))):
            if self.kind == "zero":
                out.append(zeros.unsqueeze(1).expand(-1, len(self.layers), -1).contiguous())
                continue
            out.append(torch.stack([zeros if j is None else self._map(x[:, j], proj) for j in self.layers], 1))
        return out[0], out[1]  # (B, Ld, Hd) each


# ----------------------------------------------------------------------------- decoder
class LSTMDecoder(nn.Module):
    def __init__(self, cfg: LSTMConfig, embed: nn.Embedding, memory_size: int, vocab_size: int, tied: bool) -> None:
        super().__init__()
        _, _, drop_in, drop_out = _dropouts(cfg)
        self.cfg, self.embed = cfg, embed
        hd = cfg.decoder_hidden_size
        self.bridge = Bridge(cfg, memory_size)
        self.attention = build_attention(cfg.attention, hd, memory_size, cfg.decoder_attention_heads)
        self.additive = cfg.attention == "additive"
        if self.attention is not None and not self.additive:
            self.combine = nn.Linear(self.attention.context_size + hd, hd, bias=False)  # W_c of Luong et al.
        self.feature_size = hd + memory_size if self.additive else hd
        self.feed_size = self.feature_size if cfg.input_feeding else 0
        in_size = cfg.decoder_embed_dim + (memory_size if self.additive else 0) + self.feed_size
        self.lstm = nn.LSTM(
            in_size, hd, cfg.decoder_layers, batch_first=True, dropout=drop_out if cfg.decoder_layers > 1 else 0.0
        )
        self.dropout_in, self.dropout_out = nn.Dropout(drop_in), nn.Dropout(drop_out)
        e = cfg.decoder_embed_dim
        self.out_proj = (
            nn.Linear(self.feature_size, e, bias=False) if tied and self.feature_size != e else nn.Identity()
        )
        self.out = None if tied else nn.Linear(self.feature_size, vocab_size)
        self.vocab_size = vocab_size  # tied: the embedding's first rows (all but with preprocess --trim-target-vocab)

    def output(self, features: Tensor) -> Tensor:
        """Features (B, T, F) -> logits (B, T, V)."""
        if self.out is None:
            return nn.functional.linear(
                self.out_proj(features), self.embed.weight[: self.vocab_size]
            )  # tied, bias-free
        return self.out(features)

    def init_state(self, memory: dict[str, Tensor]) -> dict[str, Any]:
        h, c = self.bridge(memory["h"], memory["c"])
        state: dict[str, Any] = {"h": h, "c": c, "step": 0}
        if self.feed_size:
            state["feed"] = h.new_zeros(h.size(0), self.feed_size)
        if self.attention is not None:
            state.update(self.attention.prepare(memory["out"]))
        return state

    def _luong(self, top: Tensor, state: dict, src_pad_mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Top hidden states (B, T, Hd) -> features (B, T, F) and weights (B, H, T, S) or None."""
        if self.attention is None:
            return top, None
        context, weights = self.attention(top, state, src_pad_mask)
        return torch.tanh(self.combine(torch.cat([context, top], -1))), weights

    def forward(
        self,
        tgt_in: Tensor,
        memory: dict[str, Tensor],
        src_pad_mask: Tensor,
        state: Optional[dict] = None,
        need_attn: bool = False,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[Tensor, dict, Optional[dict]]:
        if state is None:
            state = self.init_state(memory)
        h = state["h"].transpose(0, 1).contiguous()  # (Ld, B, Hd), nn.LSTM's layout
        c = state["c"].transpose(0, 1).contiguous()
        x = self.dropout_in(self.embed(tgt_in))  # (B, T, E)
        if not self.additive and not self.feed_size and teacher_forcing_ratio >= 1.0:
            x, h, c = amp_cast(x, h, c)
            top, (h, c) = self.lstm(x, (h, c))  # (B, T, Hd): the whole target in one call
            features, weights = self._luong(top, state, src_pad_mask)
            logits = self.output(self.dropout_out(features))
            new = dict(state)
        else:
            logits, weights, new = self._loop(tgt_in, x, state, (h, c), src_pad_mask, teacher_forcing_ratio)
            h, c = new.pop("hc")
        new.update(h=h.transpose(0, 1), c=c.transpose(0, 1), step=state["step"] + tgt_in.size(1))
        attn = None
        if need_attn:
            attn = {} if weights is None else {"cross": [weights]}
        return logits, new, attn

    def _cell(self, x: Tensor, hc: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One position through every layer with the nn.LSTM's own weights: x (B, In), h/c (Ld, B, Hd).

        Fused cell kernels, because a one-position nn.LSTM call costs several times more.
        """
        hs, cs = [], []
        for i, weights in enumerate(self.lstm.all_weights):  # [w_ih, w_hh, b_ih, b_hh] per layer
            if i > 0:
                x = nn.functional.dropout(x, self.lstm.dropout, self.training)  # as nn.LSTM between layers
            x, c = torch.lstm_cell(x, (hc[0][i], hc[1][i]), *weights)
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))

    def _loop(
        self, tgt_in: Tensor, x: Tensor, state: dict, hc: tuple[Tensor, Tensor], src_pad_mask: Tensor, ratio: float
    ):
        """One position at a time (input feeding, additive attention, scheduled sampling)."""
        t_len = tgt_in.size(1)
        # Positions fed the model's own previous prediction instead of the gold token (never the first).
        sampled = (torch.rand(t_len) >= ratio).tolist() if ratio < 1.0 else [False] * t_len
        feed = state.get("feed")
        feats, weights, logits = [], [], []
        for t in range(t_len):
            xt = x[:, t : t + 1]  # (B, 1, E)
            if t > 0 and sampled[t]:
                xt = self.dropout_in(self.embed(logits[-1].argmax(-1)))
            parts = [xt]
            if self.additive:
                context, w = self.attention(hc[0][-1].unsqueeze(1), state, src_pad_mask)  # query s_{t-1}
                parts.append(context)
            if feed is not None:
                parts.append(feed.unsqueeze(1))
            top, hc = self._cell(torch.cat(parts, -1).squeeze(1), hc)
            top = top.unsqueeze(1)  # (B, 1, Hd)
            if self.additive:
                f = torch.cat([top, context], -1)
            else:
                f, w = self._luong(top, state, src_pad_mask)
            f = self.dropout_out(f)  # (B, 1, F)
            if feed is not None:
                feed = f.squeeze(1)
            feats.append(f)
            weights.append(w)
            if ratio < 1.0:
                logits.append(self.output(f))  # needed now to pick the next input
        out = torch.cat(logits, 1) if logits else self.output(torch.cat(feats, 1))
        new = dict(state, hc=hc)
        if feed is not None:
            new["feed"] = feed
        return out, None if weights[0] is None else torch.cat(weights, 2), new


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

    def encode(self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False) -> tuple[dict, Optional[dict]]:
        return self.encoder(src, src_pad_mask), ({} if need_attn else None)

    def decode(
        self, tgt_in: Tensor, memory: dict, src_pad_mask: Tensor, state: Optional[dict] = None, need_attn: bool = False
    ):
        return self.decoder(tgt_in, memory, src_pad_mask, state, need_attn)

    def max_positions(self) -> tuple[int, int]:
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
    if any(not 0.0 <= p < 1.0 for p in _dropouts(cfg)):
        raise UserError(f"dropout probabilities must be in [0, 1), got {_dropouts(cfg)}")
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
