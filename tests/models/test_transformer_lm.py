"""The decoder-only language model (family transformer_lm): causality, incremental decoding equal to
the full forward, beam-style reordering of its state, tied weights, parameter counts, CLI listing.

Shape legend: B batch, T length, V vocab, H heads, D model dim.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers import cli, shrink

import nmt.models as M
from nmt.data.tokenizer import BOS, PAD
from nmt.errors import UserError
from nmt.models import layers as L
from nmt.registry import ARCHS

V = 37
ATOL = 1e-5
LM_ARCHS = sorted(a for a in ARCHS if ARCHS[a]().family == "transformer_lm")
CASES = [(a, {}) for a in LM_ARCHS] + [
    ("transformer_lm", {"learned_pos": True, "normalize_before": True}),
    ("transformer_lm_gpt", {"learned_pos": False, "normalize_before": False, "activation_fn": "relu"}),
]
IDS = [a + "".join(f"-{k}" for k in o) for a, o in CASES]


def small_lm(arch: str, overrides: dict | None = None, vocab: int = V):
    torch.manual_seed(0)
    cfg = dataclasses.replace(shrink(ARCHS[arch]()), **(overrides or {}))
    return M.build_model(cfg, vocab, vocab, True).eval()


def tokens(B: int = 3, T: int = 9, seed: int = 1) -> torch.Tensor:
    """(B, T) BOS + random piece ids >= 4."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.full((B, 1), BOS), torch.randint(4, V, (B, T - 1), generator=g)], dim=1)


@pytest.fixture(params=CASES, ids=IDS)
def lm(request):
    arch, overrides = request.param
    return small_lm(arch, overrides)


def decode_steps(model, x, state=None, start=0, need_attn=False):
    """Decode x[:, start:] one position at a time from `state`; -> (logits (B, T', V), state, [attn per step])."""
    outs, maps = [], []
    for t in range(start, x.size(1)):
        logits, state, attn = model.decode(x[:, t : t + 1], None, None, state, need_attn)
        outs.append(logits)
        maps.append(attn)
    return torch.cat(outs, dim=1), state, maps


# ----------------------------------------------------------------------------- causality
@pytest.mark.parametrize("T", [9, L.SHORT_KEYS + 6])  # the explicit attention path and SDPA's causal kernel
def test_changing_a_token_never_changes_earlier_outputs(lm, T):
    x = tokens(T=T)
    with torch.no_grad():
        base = lm(x)
        for t in (1, 4, T - 1):
            changed = x.clone()
            changed[:, t] = (changed[:, t] - 4 + 7) % (V - 4) + 4  # another piece id at position t
            out = lm(changed)
            assert torch.equal(out[:, :t], base[:, :t])  # exactly: nothing of position t reaches t' < t
            assert not torch.allclose(out[:, t], base[:, t])  # and position t itself does see it


def test_right_padding_needs_no_mask(lm):
    """A block right-padded with PAD gives its real positions the outputs of the unpadded block
    (up to rounding: other lengths are other matrix shapes)."""
    x = tokens(B=2, T=6)
    padded = torch.cat([x, torch.full((2, 3), PAD)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(lm(padded)[:, :6], lm(x), atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- incremental decoding
@pytest.mark.parametrize("need_attn", [False, True])
def test_incremental_decode_equals_full_forward(lm, need_attn):
    x = tokens()
    with torch.no_grad():
        full = lm(x)
        memory, enc_attn = lm.encode(x, x.eq(PAD), need_attn=need_attn)
        whole, state, attn = lm.decode(x, memory, x.eq(PAD), None, need_attn)
        steps, state_steps, step_maps = decode_steps(lm, x, need_attn=need_attn)
        head, s = lm.decode(x[:, :4], memory, None)[:2]
        chunked = torch.cat([head, lm.decode(x[:, 4:], memory, None, s)[0]], dim=1)
    assert full.shape == (3, 9, V)
    torch.testing.assert_close(whole, full, atol=0, rtol=0)
    torch.testing.assert_close(steps, full, atol=ATOL, rtol=0)
    torch.testing.assert_close(chunked, full, atol=ATOL, rtol=0)
    assert state["steps"] == state_steps["steps"] == 9
    assert memory["out"].shape == (3, 0, lm.cfg.decoder_embed_dim)
    if not need_attn:
        assert enc_attn is None and attn is None and step_maps[0] is None
        return
    assert enc_attn == {} and set(attn) == {"dec_self"} and len(attn["dec_self"]) == lm.cfg.decoder_layers
    H = lm.cfg.decoder_attention_heads
    for layer, w in enumerate(attn["dec_self"]):
        assert w.shape == (3, H, 9, 9)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 9), atol=ATOL, rtol=0)
        assert torch.all(w.masked_select(~L.causal_attend_mask(9).expand_as(w)) == 0)  # no future
        for t, maps in enumerate(step_maps):  # step t's map is row t of the full map
            assert maps["dec_self"][layer].shape == (3, H, 1, t + 1)
            torch.testing.assert_close(maps["dec_self"][layer][:, :, 0], w[:, :, t, : t + 1], atol=ATOL, rtol=0)


def test_select_batch_reorders_the_state(lm):
    """Beam-style: reorder and duplicate rows after 4 steps, then continue = the reordered full forward."""
    x = tokens()
    order = torch.tensor([2, 0, 0, 1])
    with torch.no_grad():
        full = lm(x)
        memory, _ = lm.encode(x, x.eq(PAD))
        _, state, _ = decode_steps(lm, x[:, :4])
        state, memory = M.select_batch(state, order), M.select_batch(memory, order)
        rest, state, _ = decode_steps(lm, x[order], state, start=4)
    assert memory["out"].shape[0] == 4 and state["layers"][0]["self_k"].shape[0] == 4
    torch.testing.assert_close(rest, full[order, 4:], atol=ATOL, rtol=0)


def test_decode_leaves_the_state_unchanged(lm):
    x = tokens()
    with torch.no_grad():
        _, state, _ = lm.decode(x[:, :5], None, None)
        before = [t.clone() for layer in state["layers"] for t in layer.values()]
        lm.decode(x[:, 5:6], None, None, state)
    assert all(torch.equal(a, b) for a, b in zip(before, [t for layer in state["layers"] for t in layer.values()]))


# ----------------------------------------------------------------------------- weights
def test_output_projection_is_the_token_embedding(lm):
    w = lm.decoder.embed_tokens.weight
    assert lm.output_weight is w and lm.decoder.output_projection.weight is w
    assert sum(1 for p in lm.parameters() if p.dim() == 2 and p.shape[0] == V) == 1  # one (V, D) matrix
    x = tokens()
    with torch.no_grad():
        features = lm(x, features_only=True)
        assert features.shape == (3, 9, lm.cfg.decoder_embed_dim)
        torch.testing.assert_close(F.linear(features, lm.output_weight), lm(x), atol=0, rtol=0)
    assert torch.all(w[PAD] == 0)


def test_bf16_autocast_backward(lm):
    x = tokens()
    lm.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lm(x)
    loss = F.cross_entropy(logits.float()[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in lm.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def lm_params(cfg, V: int) -> int:
    """Hand count: tied embedding, learned positions if any, per layer fused QKV + out + FFN + 2 norms."""
    D, F_ = cfg.decoder_embed_dim, cfg.decoder_ffn_embed_dim
    layer = (D * 3 * D + 3 * D) + (D * D + D) + (D * F_ + F_ + F_ * D + D) + 2 * 2 * D
    final = 2 * D if cfg.normalize_before else 0
    pos = cfg.max_target_positions * D if cfg.learned_pos else 0
    return V * D + pos + cfg.decoder_layers * layer + final


@pytest.mark.parametrize("arch", LM_ARCHS)
def test_parameter_count(arch):
    cfg = ARCHS[arch]()
    with torch.device("meta"):
        model = M.build_model(cfg, 8000, 8000, True)
    assert sum(p.numel() for p in model.parameters()) == lm_params(cfg, 8000)


def test_gpt_is_gpt2_small():
    """transformer_lm_gpt with GPT-2's 50257 pieces has GPT-2 small's 124,439,808 parameters."""
    cfg = ARCHS["transformer_lm_gpt"]()
    assert (cfg.decoder_layers, cfg.decoder_embed_dim, cfg.decoder_ffn_embed_dim, cfg.decoder_attention_heads) == (
        12,
        768,
        3072,
        12,
    )
    assert cfg.normalize_before and cfg.learned_pos and cfg.activation_fn == "gelu" and cfg.max_target_positions == 1024
    with torch.device("meta"):
        model = M.build_model(cfg, 50257, 50257, True)
    assert sum(p.numel() for p in model.parameters()) == 124_439_808


def test_transformer_lm_is_fairseqs_base():
    cfg = ARCHS["transformer_lm"]()
    assert (cfg.decoder_layers, cfg.decoder_embed_dim, cfg.decoder_ffn_embed_dim, cfg.decoder_attention_heads) == (
        6,
        512,
        2048,
        8,
    )
    assert not cfg.normalize_before and not cfg.learned_pos


def test_build_for_monolingual_meta():
    meta = {"source_lang": "en", "target_lang": "en", "vocab_size": {"en": 50}, "joined_dictionary": True}
    model = M.build_for_data(shrink(ARCHS["transformer_lm_tiny"]()), meta)
    assert model.output_weight.shape == (50, 16) and model.max_positions() == (1024, 1024)


def test_config_errors():
    with pytest.raises(UserError, match="one vocabulary"):
        M.build_model(shrink(ARCHS["transformer_lm_tiny"]()), 40, 41, False)
    with pytest.raises(UserError, match="activation"):
        small_lm("transformer_lm_tiny", {"activation_fn": "tanh"})
    with pytest.raises(UserError, match="multiple of --decoder-attention-heads"):
        M.arch_config("transformer_lm_tiny", {"decoder_attention_heads": "3"})
    with pytest.raises(UserError, match="--attention-dropout must be in"):
        M.arch_config("transformer_lm_gpt", {"attention_dropout": "1.5"})
    with pytest.raises(UserError, match="--max-target-positions must be >= 2"):
        M.arch_config("transformer_lm", {"max_target_positions": "1"})
    gpt = small_lm("transformer_lm_gpt", {"max_target_positions": 8})
    with torch.no_grad():
        gpt(tokens(T=8))
        with pytest.raises(UserError, match="learned positions"):
            gpt(tokens(T=9))


# ----------------------------------------------------------------------------- command line
def test_cli_lists_the_archs_and_their_flags(monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "list-archs")
    assert code == 0
    for arch in (*LM_ARCHS, "mlm_tiny", "mlm_base"):
        assert arch in out
    code, out, _ = cli(monkeypatch, capsys, "train", "--arch", "transformer_lm_tiny", "--help")
    assert code == 0 and "family transformer_lm" in out
    model_part = out.split("model (transformer_lm_tiny")[1].split("architectures")[0]
    for flag in ("--decoder-layers", "--decoder-embed-dim", "--normalize-before", "--max-target-positions"):
        assert flag in model_part
    assert "--encoder-layers" not in model_part and "--share-all-embeddings" not in model_part
    code, out, _ = cli(monkeypatch, capsys, "train", "--arch", "mlm_tiny", "--help")
    model_part = out.split("model (mlm_tiny")[1].split("architectures")[0]
    assert code == 0 and "--layernorm-embedding" in model_part and "--decoder-layers" not in model_part
