"""Honest test doubles of the two monolingual model contracts (nmt.tasks.language_modeling and
nmt.tasks.masked_lm): tiny modules with the contract's signatures and shapes, for testing the tasks
without the real models."""

import torch


class TinyLM(torch.nn.Module):
    """transformer_lm's contract: model(tokens (B, T), features_only=False) -> logits (B, T, V) or
    features (B, T, D); output_weight (V, D) tied to the embedding. Position t sees only token t."""

    def __init__(self, vocab: int, dim: int = 8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.mix = torch.nn.Linear(dim, dim)

    @property
    def output_weight(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, tokens: torch.Tensor, features_only: bool = False) -> torch.Tensor:
        h = torch.tanh(self.mix(self.embed(tokens)))  # (B, T, D)
        return h if features_only else h @ self.output_weight.t()


class TinyMLM(torch.nn.Module):
    """transformer_mlm's contract: model(tokens (B, T), pad_mask (B, T), masked=None) -> logits (B, T, V),
    or (N, V) at the N True positions of `masked` in row-major order. Records what it was called with."""

    def __init__(self, vocab: int, dim: int = 8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.mix = torch.nn.Linear(dim, dim)
        self.calls: list[tuple] = []

    @property
    def output_weight(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, tokens: torch.Tensor, pad_mask: torch.Tensor, masked=None) -> torch.Tensor:
        self.calls.append((tokens, pad_mask, masked))
        h = torch.tanh(self.mix(self.embed(tokens)))  # (B, T, D)
        if masked is not None:
            h = h[masked]  # (N, D): the head runs only there
        return h @ self.output_weight.t()
