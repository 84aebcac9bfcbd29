"""The protocol every model family implements: the contract search, trainer, generate and visualize rely on.

Shape legend: B batch, S source length, T target length, D model dim, H heads, V vocab,
Dh head dim (D / H), L layers.

Protocol (`EncoderDecoderModel`; both families; search, trainer, generate and visualize rely on nothing else):

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
tgt_out = pieces + EOS (ids in nmt.data.tokenizer). No cache lives on modules.

Memory and decoder state are plain dicts at run time; their keys and shapes per family are
declared below as TypedDicts (TransformerMemory / TransformerState, LSTMMemory / LSTMState,
TransformerLMMemory / TransformerLMState), which the families use in their annotations.

The decoder-only language model (family transformer_lm) implements the same encode / decode /
max_positions, so search can continue prompts with it: its memory holds an empty (B, 0, D)
"out" and decode ignores memory and src_pad_mask. Its training pass is `forward(tokens,
features_only=False)`: tokens (B, T) -> logits (B, T, V). The encoder-only masked LM (family
transformer_mlm) has no decoder: `forward(tokens, pad_mask, masked=None)` gives logits, and
`encode` returns TransformerMemory and {"enc_self": ...} like the Transformer's.

What search (nmt.generation.decoding.Ensemble) relies on:

  1. Batch-first: every tensor in memory and state, at any depth of nested dicts and lists, has
     the row (sentence or beam) as dim 0, so `select_batch(tree, index)` reorders, repeats or drops
     rows of all of them at once. Non-tensor leaves (the step counters) are the same for every row
     and pass through unchanged.
  2. A state is a value: `decode` returns a new dict and never modifies a tensor of the state (or
     of the memory) in place, so beams may share tensors after a reordering.
  3. Static tensors: a tensor that `decode` hands back unchanged (the same object) from the first
     call on, such as the cross-attention K/V computed once from memory, depends on the sentence
     only. The first call sees one row per sentence (all beams start from BOS), so search leaves
     such tensors alone when it reorders beams and only selects their rows when sentences are
     dropped. A family must therefore return a new tensor for anything that depends on the tokens.
  4. Grouped decoding (optional): a family whose class sets `decodes_grouped = True` accepts, after
     the first call, memory, src_pad_mask and the state tensors under the dict keys it names in
     `sentence_state_keys` (static ones) with one row per sentence, while tgt_in and the other state
     tensors have K rows per sentence (sentence-major: row n belongs to sentence n // K). Beam search
     then never copies the source side per beam. The Transformer families have it
     (nmt.models.layers.MultiheadAttention groups cross-attention); the LSTM does not.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, TypedDict, TypeVar, runtime_checkable

import torch
from torch import Tensor

# {kind: [weights per layer]}: "enc_self" (B, H, S, S), "dec_self" (B, H, T, T_all), "cross" (B, H, T, S)
AttentionMaps = dict[str, list[Tensor]]


# ----------------------------------------------------------------------------- Transformer
class TransformerMemory(TypedDict):
    """What the Transformer's `encode` returns."""

    out: Tensor  # (B, S, D) encoder output (after the final norm when pre-norm)


class TransformerLayerState(TypedDict):
    """The cached keys and values of one decoder layer."""

    self_k: Tensor  # (B, H, T_all, Dh) self-attention keys of every position decoded so far
    self_v: Tensor  # (B, H, T_all, Dh)
    cross_k: Tensor  # (B, H, S, Dh) cross-attention keys, computed once from memory (static)
    cross_v: Tensor  # (B, H, S, Dh)


class TransformerState(TypedDict):
    """The Transformer's decoder state."""

    steps: int  # target positions decoded so far (T_all); the next position's index
    layers: list[TransformerLayerState]  # one per decoder layer, bottom first


# ----------------------------------------------------------------------------- Transformer language model
class TransformerLMMemory(TypedDict):
    """What the language model's `encode` returns: nothing to attend to, kept batch-first."""

    out: Tensor  # (B, 0, D) empty: a decoder-only model has no encoder output


class TransformerLMLayerState(TypedDict):
    """The cached keys and values of one decoder-only layer."""

    self_k: Tensor  # (B, H, T_all, Dh) self-attention keys of every position decoded so far
    self_v: Tensor  # (B, H, T_all, Dh)


class TransformerLMState(TypedDict):
    """The language model's decoder state."""

    steps: int  # positions decoded so far (T_all); the next position's index
    layers: list[TransformerLMLayerState]  # one per layer, bottom first


# ----------------------------------------------------------------------------- LSTM
class LSTMMemory(TypedDict):
    """What the LSTM's `encode` returns (Le encoder layers, He = hidden size x directions)."""

    out: Tensor  # (B, S, He) encoder outputs in source order; zero at padding when packed
    h: Tensor  # (B, Le, He) final hidden state of every layer, directions concatenated
    c: Tensor  # (B, Le, He) final cell state of every layer


class _LSTMStateRequired(TypedDict):
    h: Tensor  # (B, Ld, Hd) decoder hidden state after the last consumed position
    c: Tensor  # (B, Ld, Hd) decoder cell state
    step: int  # target positions consumed so far


class LSTMState(_LSTMStateRequired, total=False):
    """The LSTM's decoder state: h, c and step always; feed with input feeding; k, v with attention.

    F is the decoder feature size (Hd; Hd + He for additive attention). Keys and values are
    computed once from memory (static) by the attention module's `prepare`.
    """

    feed: Tensor  # (B, F) previous output features (zeros before the first step)
    k: Tensor  # (B, H, S, dk) product attention; (B, S, A) additive attention
    v: Tensor  # (B, H, S, dv) product attention; (B, S, He) additive attention


# ----------------------------------------------------------------------------- the protocol
MemoryT = TypeVar("MemoryT")
StateT = TypeVar("StateT")


@runtime_checkable
class EncoderDecoderModel(Protocol[MemoryT, StateT]):
    """An encoder-decoder family, generic in its memory and decoder state types
    (EncoderDecoderModel[TransformerMemory, TransformerState], ...[LSTMMemory, LSTMState]).

    Structural: families do not inherit from it; `isinstance(model, EncoderDecoderModel)` checks
    that the four methods exist (not their signatures).
    """

    def forward(self, src: Tensor, src_pad_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits: src (B, S), src_pad_mask (B, S) True at padding, tgt_in (B, T) -> (B, T, V)."""
        ...

    def encode(
        self, src: Tensor, src_pad_mask: Tensor, need_attn: bool = False
    ) -> tuple[MemoryT, Optional[AttentionMaps]]:
        """src (B, S) -> (memory: batch-first tensors, attention maps or None).

        With need_attn the maps hold {"enc_self": [(B, H, S, S) per layer]}, or nothing for a family
        without encoder attention ({}); without, None.
        """
        ...

    def decode(
        self,
        tgt_in: Tensor,
        memory: MemoryT,
        src_pad_mask: Tensor,
        state: Optional[StateT] = None,
        need_attn: bool = False,
    ) -> tuple[Tensor, StateT, Optional[AttentionMaps]]:
        """tgt_in (B, T): the whole prefix from BOS when state is None, else only the new positions.

        -> (logits (B, T, V), the new state, {"dec_self": [(B, H, T, T_all)], "cross": [(B, H, T, S)]}
        with the kinds the family has when need_attn, else None).
        """
        ...

    def max_positions(self) -> tuple[int, int]:
        """(max source length S, EOS included; max decoder input length T, BOS included)."""
        ...


def select_batch(tree: Any, index: torch.Tensor) -> Any:
    """index_select dim 0 of every tensor in a nested dict/list/tuple; other leaves pass through."""
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, dict):
        return {k: select_batch(v, index) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(select_batch(v, index) for v in tree)
    return tree
