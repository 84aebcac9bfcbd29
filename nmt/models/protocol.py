"""The protocol every model family implements: the contract search, trainer, generate and visualize rely on.

Shape legend: B batch, S source length, T target length, D model dim, H heads, V vocab.

Protocol (both families; search, trainer, generate and visualize rely on nothing else):

    forward(src, src_pad_mask, tgt_in) -> logits                       (B, T, V)
        teacher-forced training pass (what DDP wraps).
    encode(src, src_pad_mask, need_attn=False) -> (memory, attn)
        memory: dict[str, Tensor], every tensor batch-first (dim 0 = B);
        attn: None, or {"enc_self": [(B, H, S, S) per layer]} when need_attn.
    decode(tgt_in, memory, src_pad_mask, state=None, need_attn=False) -> (logits, state, attn)
        state=None: tgt_in (B, T) is the whole prefix from BOS.
        state given: tgt_in holds only the positions after those already in `state`
        (usually (B, 1)); the result equals decoding the whole prefix at once.
        state: dict[str, Tensor | list | int], every tensor batch-first, so beam search
        reorders it with `select_batch(state, order)` and never needs the family.
        attn: None, or {"dec_self": [(B, H, T, T_all) per layer], "cross": [(B, H, T, S) per layer]}
        when need_attn (families without self-attention leave that kind out).
    max_positions() -> (max source tokens, max target tokens)

Optional (the Transformer has it; the trainer checks for it): `forward(..., features_only=True)`
returns the decoder output (B, T, D) and `output_weight` (V, D) the bias-free projection to
the logits, so that the loss can be computed without holding all (B, T, V) logits at once.

`src_pad_mask` is True at padding. Tokens: src = pieces + EOS, tgt_in = BOS + pieces,
tgt_out = pieces + EOS (ids in nmt.data.tokenizer). No cache lives on modules, and no state tensor
is ever modified in place (search shares unchanged state tensors between beams).
"""

from __future__ import annotations

from typing import Any

import torch


def select_batch(tree: Any, index: torch.Tensor) -> Any:
    """index_select dim 0 of every tensor in a nested dict/list/tuple; other leaves pass through."""
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, dict):
        return {k: select_batch(v, index) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(select_batch(v, index) for v in tree)
    return tree
