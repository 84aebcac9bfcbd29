"""The target side of the LSTM family: the decoder, its state, attention and output layer.

Shape legend: B batch, S source length, T target length, E embedding dim, H heads, V vocab,
Ld decoder layers, He encoder output size, Hd decoder hidden size, F feature size (Hd; Hd + He for
additive attention).

The decoder state (nmt.models.protocol.LSTMState) is a plain batch-first dict: h, c (B, Ld, Hd),
step, feed (B, F) with input feeding, and the attention keys/values k, v computed once from memory.
`forward` returns a new dict (unchanged tensors, such as k and v, are the same objects) and never
modifies a state tensor in place. The equations and the meaning of every option: nmt.models.lstm.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from nmt.config import LSTMConfig
from nmt.models.lstm_attention import build_attention
from nmt.models.lstm_encoder import Bridge, amp_cast, dropouts
from nmt.models.protocol import AttentionMaps, LSTMMemory, LSTMState


# ----------------------------------------------------------------------------- decoder
class LSTMDecoder(nn.Module):
    """Bridge, attention (--attention), an nn.LSTM run whole or step by step, output layer (tied or not)."""

    def __init__(self, cfg: LSTMConfig, embed: nn.Embedding, memory_size: int, vocab_size: int, tied: bool) -> None:
        super().__init__()
        _, _, drop_in, drop_out = dropouts(cfg)
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

    def init_state(self, memory: LSTMMemory) -> LSTMState:
        """The state before the first position: bridged (h, c), zero feed, attention keys and values."""
        h, c = self.bridge(memory["h"], memory["c"])
        state: LSTMState = {"h": h, "c": c, "step": 0}
        if self.feed_size:
            state["feed"] = h.new_zeros(h.size(0), self.feed_size)
        if self.attention is not None:
            state.update(self.attention.prepare(memory["out"]))
        return state

    def _luong(self, top: Tensor, state: LSTMState, src_pad_mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Top hidden states (B, T, Hd) -> features (B, T, F) and weights (B, H, T, S) or None."""
        if self.attention is None:
            return top, None
        context, weights = self.attention(top, state, src_pad_mask)
        return torch.tanh(self.combine(torch.cat([context, top], -1))), weights

    def forward(
        self,
        tgt_in: Tensor,
        memory: LSTMMemory,
        src_pad_mask: Tensor,
        state: Optional[LSTMState] = None,
        need_attn: bool = False,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[Tensor, LSTMState, Optional[AttentionMaps]]:
        """tgt_in (B, T): the whole prefix from BOS when state is None, else the new positions.

        -> (logits (B, T, V), new state, {"cross": [(B, H, T, S)]} ({} without attention) when need_attn
        else None). teacher_forcing_ratio < 1 (training only) feeds some positions the previous prediction.
        """
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
        self,
        tgt_in: Tensor,
        x: Tensor,
        state: LSTMState,
        hc: tuple[Tensor, Tensor],
        src_pad_mask: Tensor,
        ratio: float,
    ) -> tuple[Tensor, Optional[Tensor], dict]:
        """One position at a time (input feeding, additive attention, scheduled sampling).

        x (B, T, E) embedded tgt_in, hc (Ld, B, Hd) each -> (logits (B, T, V), weights (B, H, T, S) or
        None, the new state with the final (h, c) in nn.LSTM's layout under "hc")."""
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
