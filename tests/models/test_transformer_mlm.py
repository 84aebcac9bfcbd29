"""The encoder-only masked LM (family transformer_mlm): logits of the masked positions only, padding
invariance, bidirectional attention, the tied RoBERTa head, parameter counts.

Shape legend: B batch, T length, V vocab, H heads, D model dim, N masked positions.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers import shrink

import nmt.models as M
from nmt.data.tokenizer import EOS, PAD
from nmt.errors import UserError
from nmt.registry import ARCHS

V = 37
ATOL = 1e-5
MLM_ARCHS = sorted(a for a in ARCHS if ARCHS[a]().family == "transformer_mlm")
CASES = [(a, {}) for a in MLM_ARCHS] + [
    ("mlm_tiny", {"normalize_before": True, "learned_pos": False, "layernorm_embedding": False}),
    ("mlm_tiny", {"no_scale_embedding": False, "activation_fn": "relu"}),
]
IDS = [a + "".join(f"-{k}" for k in o) for a, o in CASES]
LENS = (7, 4, 9)


def small_mlm(arch: str, overrides: dict | None = None, vocab: int = V):
    torch.manual_seed(0)
    cfg = dataclasses.replace(shrink(ARCHS[arch]()), **(overrides or {}))
    return M.build_model(cfg, vocab, vocab, True).eval()


def sentences(lens=LENS, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (B, T) pieces + EOS right-padded with PAD, pad_mask (B, T) True at padding)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lens), max(lens)), PAD)
    for i, n in enumerate(lens):
        x[i, : n - 1] = torch.randint(4, V, (n - 1,), generator=g)
        x[i, n - 1] = EOS
    return x, x.eq(PAD)


@pytest.fixture(params=CASES, ids=IDS)
def mlm(request):
    arch, overrides = request.param
    return small_mlm(arch, overrides)


def test_masked_logits_are_the_rows_of_the_full_logits(mlm):
    x, pad = sentences()
    masked = torch.zeros_like(pad)
    masked[0, [1, 5]] = True
    masked[1, 0] = True
    masked[2, [2, 3, 8]] = True
    with torch.no_grad():
        full = mlm(x, pad)
        rows = mlm(x, pad, masked)
        none = mlm(x, pad, torch.zeros_like(pad))
    assert full.shape == (3, 9, V) and rows.shape == (6, V) and none.shape == (0, V)
    expected = torch.stack([full[0, 1], full[0, 5], full[1, 0], full[2, 2], full[2, 3], full[2, 8]])  # row-major
    torch.testing.assert_close(rows, expected, atol=ATOL, rtol=0)


def test_padding_does_not_change_real_positions(mlm):
    x, pad = sentences()
    with torch.no_grad():
        batch = mlm(x, pad)
        for i, n in enumerate(LENS):  # each sentence alone, unpadded
            alone = mlm(x[i : i + 1, :n], pad[i : i + 1, :n])
            torch.testing.assert_close(alone[0], batch[i, :n], atol=ATOL, rtol=0)
        other = x.masked_fill(pad, 5)  # whatever sits under the padding mask is never read
        assert torch.equal(mlm(other, pad)[~pad], batch[~pad])


def test_attention_is_bidirectional(mlm):
    """Unlike the LM, changing a late token changes the outputs at earlier positions."""
    x, pad = sentences()
    changed = x.clone()
    changed[2, 6] = (changed[2, 6] - 4 + 7) % (V - 4) + 4
    with torch.no_grad():
        a, b = mlm(x, pad), mlm(changed, pad)
    assert not torch.allclose(a[2, :6], b[2, :6])
    assert torch.equal(a[:2], b[:2])  # the other sentences are untouched


def test_encode_and_attention_maps(mlm):
    x, pad = sentences()
    with torch.no_grad():
        memory, none = mlm.encode(x, pad)
        memory2, attn = mlm.encode(x, pad, need_attn=True)
    D, H = mlm.cfg.encoder_embed_dim, mlm.cfg.encoder_attention_heads
    assert none is None and set(memory) == {"out"} and memory["out"].shape == (3, 9, D)
    torch.testing.assert_close(memory2["out"], memory["out"], atol=ATOL, rtol=0)
    assert set(attn) == {"enc_self"} and len(attn["enc_self"]) == mlm.cfg.encoder_layers
    for w in attn["enc_self"]:
        assert w.shape == (3, H, 9, 9)
        assert torch.all(w.masked_select(pad[:, None, None, :].expand_as(w)) == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 9), atol=ATOL, rtol=0)
    assert mlm.max_positions() == (mlm.cfg.max_source_positions,) * 2


def test_head_is_tied_roberta(mlm):
    """logits = LN(GELU(dense(encoder out))) @ E^T + bias, with E the token embedding itself."""
    E = mlm.encoder.embed_tokens.weight
    assert mlm.output_weight is E
    assert sum(1 for p in mlm.parameters() if p.dim() == 2 and p.shape[0] == V) == 1  # one (V, D) matrix
    assert mlm.head.bias.shape == (V,)
    with torch.no_grad():
        mlm.head.bias.copy_(torch.linspace(-1, 1, V))
        x, pad = sentences()
        h = mlm.encode(x, pad)[0]["out"]
        expected = F.linear(mlm.head.norm(F.gelu(mlm.head.dense(h))), E) + mlm.head.bias
        torch.testing.assert_close(mlm(x, pad), expected, atol=ATOL, rtol=0)
    assert ("encoder.embed_norm.weight" in mlm.state_dict()) == mlm.cfg.layernorm_embedding


def test_bf16_autocast_backward(mlm):
    x, pad = sentences()
    masked = (torch.arange(9) % 3 == 1).expand(3, 9) & ~pad
    mlm.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = mlm(x, pad, masked)
    loss = F.cross_entropy(logits.float(), x[masked])
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in mlm.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def mlm_params(cfg, V: int) -> int:
    """Hand count: tied embedding, positions, embedding norm, layers, final norm if pre-norm, head."""
    D, F_ = cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim
    layer = (D * 3 * D + 3 * D) + (D * D + D) + (D * F_ + F_ + F_ * D + D) + 2 * 2 * D
    pos = cfg.max_source_positions * D if cfg.learned_pos else 0
    norms = 2 * D * (int(cfg.layernorm_embedding) + int(cfg.normalize_before))
    head = (D * D + D) + 2 * D + V
    return V * D + pos + norms + cfg.encoder_layers * layer + head


@pytest.mark.parametrize("arch", MLM_ARCHS)
def test_parameter_count(arch):
    cfg = ARCHS[arch]()
    with torch.device("meta"):
        model = M.build_model(cfg, 8000, 8000, True)
    assert sum(p.numel() for p in model.parameters()) == mlm_params(cfg, 8000)


def test_mlm_base_is_roberta_base():
    """With RoBERTa's 50265 pieces: 124,695,129 parameters, roberta-base's masked-LM model (124,697,433)
    less its two unused position rows and its one token-type row (3 x 768)."""
    cfg = ARCHS["mlm_base"]()
    sizes = (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads)
    assert sizes == (12, 768, 3072, 12) and cfg.max_source_positions == 512
    assert cfg.learned_pos and cfg.activation_fn == "gelu" and cfg.layernorm_embedding and not cfg.normalize_before
    with torch.device("meta"):
        model = M.build_model(cfg, 50265, 50265, True)
    assert sum(p.numel() for p in model.parameters()) == 124_697_433 - 3 * 768


def test_build_for_monolingual_meta_and_errors():
    meta = {"source_lang": "de", "target_lang": "de", "vocab_size": {"de": 50}, "joined_dictionary": True}
    model = M.build_for_data(shrink(ARCHS["mlm_tiny"]()), meta)
    assert model.output_weight.shape == (50, 16)
    with pytest.raises(UserError, match="one vocabulary"):
        M.build_model(shrink(ARCHS["mlm_tiny"]()), 40, 41, False)
    with pytest.raises(UserError, match="activation"):
        small_mlm("mlm_tiny", {"activation_fn": "tanh"})
    with pytest.raises(UserError, match="multiple of --encoder-attention-heads"):
        M.arch_config("mlm_base", {"encoder_embed_dim": "100"})
    with pytest.raises(UserError, match="--encoder-layers must be >= 1"):
        M.arch_config("mlm_tiny", {"encoder_layers": "0"})
    with pytest.raises(UserError, match="learned positions"):
        small_mlm("mlm_tiny", {"max_source_positions": 8})(*sentences())
