"""The typed model protocol: every registered architecture with a decoder satisfies it, memory and
decoder state have exactly the keys their TypedDicts declare, tensors are batch-first, a state is
never modified. The encoder-only masked LM has `encode` and `max_positions` only.

Shape legend: B batch, S source length, T target length.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
from helpers import shrink

import nmt.models as M
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.models.lstm import LSTMModel
from nmt.models.protocol import (
    EncoderDecoderModel,
    LSTMMemory,
    LSTMState,
    TransformerLayerState,
    TransformerLMLayerState,
    TransformerLMMemory,
    TransformerLMState,
    TransformerMemory,
    TransformerState,
)
from nmt.models.transformer import TransformerModel
from nmt.models.transformer_lm import TransformerLanguageModel
from nmt.models.transformer_mlm import TransformerMaskedLM
from nmt.registry import ARCHS

V = 30
# family -> (model class, memory type, decoder state type); a new family declares its own here
FAMILIES = {
    "transformer": (TransformerModel, TransformerMemory, TransformerState),
    "lstm": (LSTMModel, LSTMMemory, LSTMState),
    "transformer_lm": (TransformerLanguageModel, TransformerLMMemory, TransformerLMState),
}
# encoder-only families: family -> (model class, memory type)
ENCODER_ONLY = {"transformer_mlm": (TransformerMaskedLM, TransformerMemory)}
LAYER_STATES = {"transformer": TransformerLayerState, "transformer_lm": TransformerLMLayerState}


def keys(typed_dict: type) -> tuple[frozenset, frozenset]:
    """(required keys, every key) of a TypedDict."""
    return typed_dict.__required_keys__, typed_dict.__required_keys__ | typed_dict.__optional_keys__


def expected_state_keys(cfg) -> set[str]:
    """The keys a model of this config puts in its decoder state."""
    if cfg.family in LAYER_STATES:
        return set(keys(FAMILIES[cfg.family][2])[1])
    optional = ({"feed"} if cfg.input_feeding else set()) | ({"k", "v"} if cfg.attention != "none" else set())
    return set(keys(LSTMState)[0]) | optional


def leaves(tree) -> list:
    """Every leaf of a nested dict/list (tensors and the step counters)."""
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in leaves(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in leaves(v)]
    return [tree]


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two sources of lengths 5 and 2 (EOS included, right-padded) and decoder inputs of length 4."""
    src = torch.tensor([[5, 6, 7, 8, EOS], [9, EOS, PAD, PAD, PAD]])  # (B, S)
    tgt_in = torch.tensor([[BOS, 4, 5, 6], [BOS, 9, 10, 11]])  # (B, T)
    return src, src.eq(PAD), tgt_in


def test_families_are_known():
    """Every registered family has its memory and state types in the table above."""
    assert {ARCHS[a]().family for a in ARCHS} <= set(FAMILIES) | set(ENCODER_ONLY)


@pytest.mark.parametrize("arch", [a for a in sorted(ARCHS) if ARCHS[a]().family in FAMILIES])
def test_every_arch_satisfies_the_protocol(arch):
    cfg = shrink(ARCHS[arch]())
    torch.manual_seed(0)
    model = M.build_model(cfg, V, V, True).eval()
    model_class, memory_type, state_type = FAMILIES[cfg.family]
    assert isinstance(model, EncoderDecoderModel) and isinstance(model, model_class)
    src, pad, tgt_in = batch()
    b = src.size(0)
    with torch.no_grad():
        memory, _ = model.encode(src, pad)
        assert type(memory) is dict and set(memory) == set(keys(memory_type)[1])
        assert all(t.size(0) == b for t in memory.values())

        _, state, _ = model.decode(tgt_in[:, :3], memory, pad)
        before = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves(state)]
        _, state2, _ = model.decode(tgt_in[:, 3:], memory, pad, state)
    for s in (state, state2):
        assert type(s) is dict and set(s) == expected_state_keys(cfg)
        if cfg.family in LAYER_STATES:
            assert len(s["layers"]) == cfg.decoder_layers
            assert all(set(layer) == set(keys(LAYER_STATES[cfg.family])[1]) for layer in s["layers"])
        for x in leaves(s):  # tensors batch-first; the step counter is a plain int
            assert (isinstance(x, torch.Tensor) and x.size(0) == b) or type(x) is int
    step = "steps" if cfg.family in LAYER_STATES else "step"
    assert (state[step], state2[step]) == (3, 4)  # positions consumed
    # a state is a value: decoding on from it left every tensor of it as it was
    for old, x in zip(before, leaves(state)):
        assert torch.equal(old, x) if isinstance(x, torch.Tensor) else old == x


@pytest.mark.parametrize("variant", [{"input_feeding": True}, {"attention": "additive", "bridge": "linear"}])
def test_lstm_optional_state_keys(variant):
    """feed only with input feeding, k and v only with attention."""
    cfg = dataclasses.replace(shrink(ARCHS["lstm_seq2seq"]()), **variant)
    model = M.build_model(cfg, V, V, True).eval()
    src, pad, tgt_in = batch()
    with torch.no_grad():
        _, state, _ = model.decode(tgt_in, model.encode(src, pad)[0], pad)
    assert set(state) == expected_state_keys(cfg) and set(state) <= set(keys(LSTMState)[1])


def test_other_modules_do_not_satisfy_it():
    assert not isinstance(torch.nn.Linear(2, 2), EncoderDecoderModel)
    assert not isinstance(torch.nn.LSTM(2, 2), EncoderDecoderModel)


@pytest.mark.parametrize("arch", [a for a in sorted(ARCHS) if ARCHS[a]().family in ENCODER_ONLY])
def test_encoder_only_archs_encode(arch):
    """The masked LM: TransformerMemory from `encode`, batch-first; no decoder, so not the search protocol."""
    cfg = shrink(ARCHS[arch]())
    model = M.build_model(cfg, V, V, True).eval()
    model_class, memory_type = ENCODER_ONLY[cfg.family]
    assert isinstance(model, model_class) and not isinstance(model, EncoderDecoderModel)
    src, pad, _ = batch()
    with torch.no_grad():
        memory, attn = model.encode(src, pad)
    assert type(memory) is dict and set(memory) == set(keys(memory_type)[1]) and attn is None
    assert memory["out"].shape == (2, 5, cfg.encoder_embed_dim)
    hints = typing.get_type_hints(model_class.encode)
    assert typing.get_args(hints["return"])[0] is memory_type


@pytest.mark.parametrize("model_class", [TransformerModel, LSTMModel, TransformerLanguageModel])
def test_annotations_resolve(model_class):
    """The families' protocol methods are annotated with the typed memory and state (names resolve)."""
    _, memory_type, state_type = [f for f in FAMILIES.values() if f[0] is model_class][0]
    encode = typing.get_type_hints(model_class.encode)
    decode = typing.get_type_hints(model_class.decode)
    assert typing.get_args(encode["return"])[0] is memory_type
    assert decode["memory"] is memory_type and typing.get_args(decode["return"])[1] is state_type
    assert typing.get_args(decode["state"]) == (state_type, type(None))
