"""The source side of the LSTM family: encoder, bridge to the decoder's initial state, shared helpers.

Shape legend: B batch, S source length, E embedding dim, Le / Ld encoder / decoder layers,
He encoder output size (encoder_hidden_size x directions), Hd decoder hidden size.

The encoder returns the memory of the model protocol (nmt.models.protocol.LSTMMemory): outputs
(B, S, He) in source order and the final (h, c) of every layer (B, Le, He). The Bridge maps those
final states to the decoder's initial (h, c) (B, Ld, Hd); the decoder owns it (its weights are
`decoder.bridge.*`). The equations and the meaning of every option: nmt.models.lstm.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import LSTMConfig
from nmt.data.tokenizer import EOS
from nmt.errors import UserError
from nmt.models.protocol import LSTMMemory

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


def dropouts(cfg: LSTMConfig) -> tuple[float, float, float, float]:
    """(encoder in, encoder out, decoder in, decoder out) dropout probabilities: each its own flag, else --dropout."""
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
    """Embeddings (of the reversed source with reverse_source), then a multi-layer, optionally
    bidirectional nn.LSTM over the packed batch (unpacked: padding runs through the recurrence)."""

    def __init__(self, cfg: LSTMConfig, embed: nn.Embedding) -> None:
        super().__init__()
        drop_in, drop_out, _, _ = dropouts(cfg)
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

    def forward(self, src: Tensor, src_pad_mask: Tensor) -> LSTMMemory:
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
    """Encoder final states (B, Le, He) -> decoder initial states (B, Ld, Hd); see nmt.models.lstm."""

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
