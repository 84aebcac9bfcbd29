"""The output layer through oneDNN (nmt.models.onednn, `nmt generate --onednn`): the same logits and
translations as torch's product, the model's parameters untouched, torch's product wherever oneDNN's
does not apply (autograd, autocast, other families), and the switch."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from helpers import cli, shrink
from torch import nn

import nmt.models as M
from nmt.config import GenerateConfig
from nmt.data.tokenizer import PAD
from nmt.generation.generate import decoding_models
from nmt.generation.search import translate_batch
from nmt.models.onednn import OneDNNOutputLayer, onednn_available, onednn_output_layer
from nmt.registry import ARCHS

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN linear")

SRC_V, TGT_V = 40, 30
TYINGS = {  # name -> (overrides, joined dictionary, target vocabulary)
    "untied": ({}, False, TGT_V),
    "decoder tied": ({"share_decoder_input_output_embed": True}, False, TGT_V),
    "all tied, trimmed target": ({"share_all_embeddings": True}, True, TGT_V),  # the embedding's first rows
    "all tied": ({"share_all_embeddings": True}, True, SRC_V),
}


def model_for(tying: str, arch: str = "transformer_tiny") -> nn.Module:
    overrides, joined, tgt_v = TYINGS[tying]
    torch.manual_seed(0)
    cfg = dataclasses.replace(shrink(ARCHS[arch]()), **overrides)
    return M.build_model(cfg, SRC_V, tgt_v, joined).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    src = torch.randint(4, TGT_V, (6, 7))
    src[3:, 5:] = PAD
    return src, src.eq(PAD)


def step_logits(model: nn.Module) -> torch.Tensor:
    """Logits (B, 4, V) of four teacher-forced decoder positions, under inference mode."""
    src, mask = batch()
    with torch.inference_mode():
        memory, _ = model.encode(src, mask)
        return model.decode(src[:, :4], memory, mask)[0]


def ran_onednn(fn) -> bool:
    """Whether calling fn() ran oneDNN's linear operator (seen by the profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return any("_linear_pointwise" in e.name for e in prof.events())


@pytest.mark.parametrize("tying", list(TYINGS))
def test_same_logits_and_parameters_for_every_tying(tying):
    model = model_for(tying)
    before = step_logits(model)
    params = {name: p for name, p in model.named_parameters()}
    keys = list(model.state_dict())
    assert onednn_output_layer(model) is model
    assert isinstance(model.decoder.output_projection, OneDNNOutputLayer)
    assert ran_onednn(lambda: step_logits(model))
    torch.testing.assert_close(step_logits(model), before, atol=1e-6, rtol=1e-6)
    after = dict(model.named_parameters())
    assert after.keys() == params.keys() and all(after[n] is params[n] for n in params)  # the same Parameters
    assert list(model.state_dict()) == keys
    # the weight is the decoder's own, not a copy: a change to the parameter shows in the logits
    with torch.no_grad():
        model.decoder.embed_tokens.weight.mul_(2) if "tied" in tying else model.decoder.output_weight().mul_(2)
    assert not torch.allclose(step_logits(model), before)


def test_same_translations_greedy_and_beam():
    model = model_for("all tied, trimmed target")
    src, mask = batch()
    for beam in (1, 4):
        cfg = GenerateConfig(beam=beam, nbest=beam, max_len_b=12)
        plain = translate_batch([model], src, mask, cfg)
        fast = translate_batch([onednn_output_layer(model)], src, mask, cfg)
        for a, b in zip(plain, fast):
            assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
            torch.testing.assert_close(torch.tensor([h.score for h in a]), torch.tensor([h.score for h in b]))


@pytest.mark.parametrize("tying", list(TYINGS))
def test_int8_after_onednn_still_quantizes_the_output_layer(tying):
    from nmt.models.quantize import quantize_int8

    model = quantize_int8(onednn_output_layer(model_for(tying)))
    assert type(model.decoder.output_projection).__name__ == "Linear"  # torch.ao's dynamic int8 Linear
    assert model.decoder.output_projection.weight().dtype == torch.qint8


def test_autograd_and_autocast_take_torchs_product():
    plain, model = model_for("decoder tied"), onednn_output_layer(model_for("decoder tied"))
    src, mask = batch()
    grads = []
    for m in (plain, model):  # with autograd: F.linear, which has a backward
        memory, _ = m.encode(src, mask)
        m.decode(src[:, :4], memory, mask)[0].square().sum().backward()
        grads.append(m.decoder.embed_tokens.weight.grad)
    assert torch.equal(grads[0], grads[1])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts F.linear's inputs
        a, b = (m.decode(src[:, :4], m.encode(src, mask)[0], mask)[0] for m in (plain, model))
    assert a.dtype == b.dtype == torch.bfloat16 and torch.equal(a, b)


def test_other_families_and_the_switch():
    lstm = M.build_model(shrink(ARCHS["lstm_luong"]()), SRC_V, TGT_V, False).eval()
    out = lstm.decoder.out
    assert onednn_output_layer(lstm) is lstm and lstm.decoder.out is out
    loaded = [type("Loaded", (), {"model": model_for("untied")})()]
    (plain,) = decoding_models(loaded, "none", onednn=False)
    assert type(plain.decoder.output_projection) is nn.Linear
    (fast,) = decoding_models(loaded, "none")
    assert isinstance(fast.decoder.output_projection, OneDNNOutputLayer)
    assert GenerateConfig().onednn


@pytest.mark.parametrize("command", ["generate", "interactive"])
def test_the_switch_reaches_the_models(monkeypatch, capsys, command):
    """`--no-onednn` keeps torch's product, the default takes oneDNN's (seen where the models are made)."""
    seen = []
    monkeypatch.setattr(f"nmt.generation.{command}.decoding_models", lambda loaded, q, o: seen.append(o) or 1 / 0)
    monkeypatch.setattr(f"nmt.generation.{command}.load_models", lambda *a: [])
    monkeypatch.setattr(f"nmt.generation.{command}.generation_kind", lambda *a: "translation")
    source = ["--input", "-"] if command == "generate" else []
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    for flags in ([], ["--no-onednn"], ["--onednn"]):
        with pytest.raises(ZeroDivisionError):
            cli(monkeypatch, capsys, command, "--path", "x.pt", *source, *flags)
    assert seen == [True, False, True]
