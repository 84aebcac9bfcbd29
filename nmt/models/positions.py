"""Position embeddings of the Transformer families: fixed sinusoids (fairseq's layout) or learned rows.

Shape legend: D model dim.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.errors import UserError


def sinusoidal_embedding(positions: Tensor, dim: int) -> Tensor:
    """positions (...,) integer -> (..., dim) float32, fairseq's layout [sin(p w_0..w_h-1), cos(p w_0..w_h-1)].

    w_i = 10000^(-i / (h - 1)) with h = dim // 2; an odd dim gets a zero last column.
    Computed directly for any positions, so nothing is cached and no length limit applies.
    """
    half = dim // 2
    step = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=positions.device) * -step)  # (h,)
    angles = positions.to(torch.float32)[..., None] * freqs  # (..., h)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (..., 2h)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal position embeddings; position i for the i-th token (tokens are right-padded)."""

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__()
        self.dim = dim
        self.max_positions = max_positions  # reported by the model; sinusoids themselves work for any length

    def forward(self, length: int, offset: int = 0, device: Optional[torch.device] = None) -> Tensor:
        """Embeddings of positions offset .. offset + length - 1: (length, D), broadcast over the batch."""
        return sinusoidal_embedding(torch.arange(offset, offset + length, device=device), self.dim)


class LearnedPositions(nn.Module):
    """Learned position embeddings for positions 0 .. max_positions - 1 (normal(0, D^-0.5) init, as fairseq)."""

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.weight = nn.Parameter(torch.empty(max_positions, dim))
        nn.init.normal_(self.weight, mean=0.0, std=dim**-0.5)

    def forward(self, length: int, offset: int = 0, device: Optional[torch.device] = None) -> Tensor:
        """Embeddings of positions offset .. offset + length - 1: (length, D); longer inputs are a UserError."""
        if offset + length > self.max_positions:
            raise UserError(
                f"sequence of {offset + length} tokens exceeds the model's {self.max_positions} learned positions"
            )
        return self.weight[offset : offset + length]
