"""Architecture tests: every registered translation arch runs through the same protocol checks
(the language-model families have their own files: test_transformer_lm.py, test_transformer_mlm.py).

Shape legend: B batch, S source length, T target length, V vocab, H heads.
Only the protocol of `nmt.models` is used, except where a test names the transformer family.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers import shrink

import nmt.models as M
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError
from nmt.models import layers as L
from nmt.registry import ARCHS

SRC_V, TGT_V = 41, 37  # different sizes catch source/target mix-ups
ATOL = 1e-5


def small_model(arch: str, overrides: dict | None = None, src_v: int = SRC_V, tgt_v: int = TGT_V, joined=False):
    torch.manual_seed(0)
    cfg = dataclasses.replace(shrink(ARCHS[arch]()), **(overrides or {}))
    return M.build_model(cfg, src_v, tgt_v, joined).eval()


def pad_batch(seqs: list[list[int]]) -> torch.Tensor:
    """Right-pad id lists with PAD into (B, L)."""
    out = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


def make_batch(src_lens=(7, 4, 9), tgt_lens=(5, 8, 3), seed=1):
    """src = pieces + EOS, tgt_in = BOS + pieces, both right-padded; random piece ids >= 4."""
    g = torch.Generator().manual_seed(seed)
    src = [torch.randint(4, SRC_V, (n - 1,), generator=g).tolist() + [EOS] for n in src_lens]
    tgt = [[BOS] + torch.randint(4, TGT_V, (n - 1,), generator=g).tolist() for n in tgt_lens]
    src_t = pad_batch(src)
    return src_t, src_t.eq(PAD), pad_batch(tgt)


TRANSLATION_ARCHS = [a for a in sorted(ARCHS) if "translation" in ARCHS[a]().tasks]
CASES = [(a, {}) for a in TRANSLATION_ARCHS]
CASES += [
    ("transformer_tiny", {"normalize_before": True}),
    ("transformer_tiny", {"learned_pos": True}),
    ("transformer_tiny", {"activation_fn": "gelu", "no_scale_embedding": True}),
]
IDS = [a + "".join(f"-{k}" for k in o) for a, o in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def model(request):
    arch, overrides = request.param
    return small_model(arch, overrides)


def incremental(model, tgt_in, memory, pad_mask, chunks):
    """Decode tgt_in in pieces of the given sizes, carrying the state; -> (logits (B, T, V), state)."""
    state, outs, t = None, [], 0
    for n in chunks:
        logits, state, _ = model.decode(tgt_in[:, t : t + n], memory, pad_mask, state)
        outs.append(logits)
        t += n
    return torch.cat(outs, dim=1), state


# ----------------------------------------------------------------------------- protocol invariances
def test_incremental_equals_full(model):
    src, pm, tgt = make_batch()
    with torch.no_grad():
        memory, _ = model.encode(src, pm)
        full, _, _ = model.decode(tgt, memory, pm)
        steps, _ = incremental(model, tgt, memory, pm, [1] * tgt.size(1))
        chunked, _ = incremental(model, tgt, memory, pm, [3, 2, 1, 2])
    assert full.shape == (3, tgt.size(1), TGT_V)
    torch.testing.assert_close(steps, full, atol=ATOL, rtol=0)
    torch.testing.assert_close(chunked, full, atol=ATOL, rtol=0)


def test_incremental_after_reorder(model):
    src, pm, tgt = make_batch()
    order = torch.tensor([2, 0, 0, 1])  # beam-style: reorder and duplicate
    with torch.no_grad():
        memory, _ = model.encode(src, pm)
        full, _, _ = model.decode(tgt, memory, pm)
        _, state = incremental(model, tgt, memory, pm, [1, 1, 1])
        state, memory, pm2, tgt2 = (M.select_batch(x, order) for x in (state, memory, pm, tgt))
        rest, _ = incremental_from(model, tgt2, memory, pm2, state, start=3)
    torch.testing.assert_close(rest, full[order, 3:], atol=ATOL, rtol=0)


def incremental_from(model, tgt_in, memory, pad_mask, state, start):
    outs = []
    for t in range(start, tgt_in.size(1)):
        logits, state, _ = model.decode(tgt_in[:, t : t + 1], memory, pad_mask, state)
        outs.append(logits)
    return torch.cat(outs, dim=1), state


def test_causality(model):
    src, pm, tgt = make_batch()
    t = 3
    changed = tgt.clone()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 5) % (TGT_V - 4) + 4
    with torch.no_grad():
        a = model(src, pm, tgt)
        b = model(src, pm, changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], atol=ATOL, rtol=0)
    assert not torch.equal(a[:, t + 1 :], b[:, t + 1 :])  # the inputs do matter


def test_padding_invariance(model):
    src_lens, tgt_lens = (7, 4, 9), (5, 8, 3)
    src, pm, tgt = make_batch(src_lens, tgt_lens)
    with torch.no_grad():
        memory, _ = model.encode(src, pm)
        logits, _, _ = model.decode(tgt, memory, pm)
        for i, (s, t) in enumerate(zip(src_lens, tgt_lens)):
            mem1, _ = model.encode(src[i : i + 1, :s], pm[i : i + 1, :s])
            log1, _, _ = model.decode(tgt[i : i + 1, :t], mem1, pm[i : i + 1, :s])
            if "out" in memory:
                torch.testing.assert_close(mem1["out"][0], memory["out"][i, :s], atol=ATOL, rtol=0)
            torch.testing.assert_close(log1[0], logits[i, :t], atol=ATOL, rtol=0)


def test_no_attention_to_padding(model):
    src, pm, tgt = make_batch()
    with torch.no_grad():
        memory, enc_attn = model.encode(src, pm, need_attn=True)
        _, _, attn = model.decode(tgt, memory, pm, need_attn=True)
    B, S, T = src.size(0), src.size(1), tgt.size(1)
    assert attn is not None  # families without attention return an empty dict
    for w in attn.get("cross", []):
        assert w.dim() == 4 and w.shape[0] == B and w.shape[2:] == (T, S)
        assert torch.all(w.masked_select(pm[:, None, None, :].expand_as(w)) == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=ATOL, rtol=0)
    future = ~L.causal_attend_mask(T)  # (T, T) True above the diagonal
    for w in attn.get("dec_self", []):
        assert w.shape[0] == B and w.shape[2:] == (T, T)
        assert torch.all(w.masked_select(future.expand_as(w)) == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=ATOL, rtol=0)
    for w in (enc_attn or {}).get("enc_self", []):
        assert w.shape[0] == B and w.shape[2:] == (S, S)
        assert torch.all(w.masked_select(pm[:, None, None, :].expand_as(w)) == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=ATOL, rtol=0)


def test_explicit_attention_equals_fast_path(model):
    src, pm, tgt = make_batch()
    with torch.no_grad():
        mem_fast, none = model.encode(src, pm)
        mem_slow, enc_attn = model.encode(src, pm, need_attn=True)
        fast, _, no_attn = model.decode(tgt, mem_fast, pm)
        slow, _, attn = model.decode(tgt, mem_slow, pm, need_attn=True)
        step_fast, s1 = model.decode(tgt[:, :3], mem_fast, pm)[:2]
        step_slow, s2 = model.decode(tgt[:, :3], mem_fast, pm, need_attn=True)[:2]
        nxt_fast = model.decode(tgt[:, 3:5], mem_fast, pm, s1)[0]
        nxt_slow, _, nxt_attn = model.decode(tgt[:, 3:5], mem_fast, pm, s2, need_attn=True)
    assert none is None and no_attn is None and enc_attn is not None and attn is not None
    for k in mem_fast:
        torch.testing.assert_close(mem_slow[k], mem_fast[k], atol=ATOL, rtol=0)
    torch.testing.assert_close(slow, fast, atol=ATOL, rtol=0)
    torch.testing.assert_close(nxt_slow, nxt_fast, atol=ATOL, rtol=0)
    for w in nxt_attn.get("cross", []):
        assert w.shape[0] == 3 and w.shape[2:] == (2, src.size(1))
    for w in nxt_attn.get("dec_self", []):
        assert w.shape[2:] == (2, 5)
        assert torch.all(w[:, :, 0, 4] == 0)  # position 3 cannot see position 4


def test_forward_equals_encode_decode(model):
    src, pm, tgt = make_batch()
    with torch.no_grad():
        memory, _ = model.encode(src, pm)
        logits, _, _ = model.decode(tgt, memory, pm)
        torch.testing.assert_close(model(src, pm, tgt), logits, atol=0, rtol=0)
    s, t = model.max_positions()
    assert isinstance(s, int) and isinstance(t, int) and s > 0 and t > 0


def test_bf16_autocast_backward(model):
    src, pm, tgt = make_batch()
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, pm, tgt)
    gold = torch.roll(tgt, -1, dims=1)
    loss = F.cross_entropy(logits.float().reshape(-1, TGT_V), gold.reshape(-1), ignore_index=PAD)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


# ----------------------------------------------------------------------------- embeddings sharing
def _matrices_with_rows(model, rows: int) -> int:
    """Distinct 2-D parameters with `rows` rows (embeddings / output projections of that vocab)."""
    return sum(1 for p in model.parameters() if p.dim() == 2 and p.shape[0] == rows)


@pytest.mark.parametrize("arch", [a for a in sorted(ARCHS) if hasattr(ARCHS[a](), "share_all_embeddings")])
def test_share_all_embeddings(arch):
    V = 43
    shared = small_model(arch, {"share_all_embeddings": True}, V, V, joined=True)
    separate = small_model(arch, {}, V, V, joined=True)
    assert _matrices_with_rows(shared, V) == 1
    assert _matrices_with_rows(separate, V) == 3
    src, pm, tgt = make_batch()
    assert torch.isfinite(shared(src, pm, tgt)).all()
    with pytest.raises(UserError, match="joined"):
        small_model(arch, {"share_all_embeddings": True}, V, V, joined=False)
    with pytest.raises(UserError, match="vocab"):
        small_model(arch, {"share_all_embeddings": True}, V, V + 1, joined=True)


@pytest.mark.parametrize("arch", [a for a in sorted(ARCHS) if hasattr(ARCHS[a](), "share_decoder_input_output_embed")])
def test_share_decoder_input_output(arch):
    tied = small_model(arch, {"share_decoder_input_output_embed": True})
    assert _matrices_with_rows(tied, TGT_V) == 1 and _matrices_with_rows(tied, SRC_V) == 1


def test_transformer_ties_one_parameter():
    m = small_model("transformer_tiny", {"share_all_embeddings": True}, 43, 43, joined=True)
    w = m.encoder.embed_tokens.weight
    assert m.decoder.embed_tokens.weight is w and m.decoder.output_projection.weight is w
    with pytest.raises(UserError, match="embed-dim"):
        small_model("transformer_tiny", {"share_all_embeddings": True, "decoder_embed_dim": 32}, 43, 43, joined=True)


# ----------------------------------------------------------------------------- full-size configs
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_full_size_arch_builds(arch):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = M.build_model(ARCHS[arch](), 8000, 8000, True)
    assert sum(p.numel() for p in model.parameters()) > 8000 * 16


def transformer_params(cfg, V: int) -> int:
    """Hand count for a joined vocab of V words (sinusoidal positions unless learned_pos)."""

    def attn(d, kdim):  # q (d->d) + k, v (kdim->d) + out (d->d), with biases
        return (d * d + d) + 2 * (kdim * d + d) + (d * d + d)

    def ffn(d, f):
        return d * f + f + f * d + d

    def ln(d):  # layer norm: weight + bias
        return 2 * d

    de, dd = cfg.encoder_embed_dim, cfg.decoder_embed_dim
    enc = cfg.encoder_layers * (attn(de, de) + ffn(de, cfg.encoder_ffn_embed_dim) + 2 * ln(de))
    dec = cfg.decoder_layers * (attn(dd, dd) + attn(dd, de) + ffn(dd, cfg.decoder_ffn_embed_dim) + 3 * ln(dd))
    final = (ln(de) + ln(dd)) if cfg.normalize_before else 0
    if cfg.share_all_embeddings:
        emb = V * de
    elif cfg.share_decoder_input_output_embed:
        emb = V * de + V * dd
    else:
        emb = V * de + 2 * V * dd
    pos = cfg.max_source_positions * de + cfg.max_target_positions * dd if cfg.learned_pos else 0
    return enc + dec + final + emb + pos


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"share_all_embeddings": True},
        {"share_decoder_input_output_embed": True},
        {"normalize_before": True, "learned_pos": True},
    ],
)
def test_transformer_base_parameter_count(overrides):
    cfg = dataclasses.replace(ARCHS["transformer_base"](), **overrides)
    with torch.device("meta"):
        model = M.build_model(cfg, 32000, 32000, True)
    assert sum(p.numel() for p in model.parameters()) == transformer_params(cfg, 32000)


def test_transformer_base_is_the_paper_size():
    cfg = dataclasses.replace(ARCHS["transformer_base"](), share_all_embeddings=True)
    with torch.device("meta"):
        model = M.build_model(cfg, 32000, 32000, True)
    assert 60_000_000 < sum(p.numel() for p in model.parameters()) < 62_000_000  # ~61M with shared 32k vocab


# ----------------------------------------------------------------------------- layers
def test_masks_and_positions():
    pm = torch.tensor([[False, False, True], [True, True, True]])
    attend = L.padding_attend_mask(pm)
    assert attend.shape == (2, 1, 1, 3)
    assert attend[0, 0, 0].tolist() == [True, True, False]
    assert attend[1].all()  # an all-padding row attends everywhere instead of producing NaN
    assert L.causal_attend_mask(2, offset=1).tolist() == [[True, True, False], [True, True, True]]
    add = L.additive_mask(L.causal_attend_mask(2))
    assert add.tolist() == [[0.0, float("-inf")], [0.0, 0.0]]
    pe = L.sinusoidal_embedding(torch.arange(3), 6)
    assert pe.shape == (3, 6)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 0, 0, 1, 1, 1]))
    torch.testing.assert_close(pe[2, 0], torch.sin(torch.tensor(2.0)))
    torch.testing.assert_close(pe[1, 2], torch.sin(torch.tensor(1e-4)))  # w_(h-1) = 1/10000
    pos = L.SinusoidalPositions(6, 4)
    torch.testing.assert_close(pos(2, offset=1), pe[1:])


def test_attention_all_masked_row_is_finite():
    q = torch.randn(1, 2, 3, 4)
    k = v = torch.randn(1, 2, 5, 4)
    attend = torch.zeros(1, 1, 3, 5, dtype=torch.bool)
    attend[:, :, :2, :3] = True  # the last query row sees nothing
    out, w = L.attention(q, k, v, attend, need_weights=True)
    assert torch.isfinite(out).all() and torch.all(w[:, :, 2] == 0)
    assert torch.all(w[:, :, :2, 3:] == 0)
    fast, _ = L.attention(q, k, v, attend)
    torch.testing.assert_close(fast[:, :, :2], out[:, :, :2], atol=ATOL, rtol=0)


@pytest.mark.parametrize("keys", [L.SHORT_KEYS, L.SHORT_KEYS + 1])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_sdpa_and_explicit_paths_agree(keys, causal):
    """On CPU, keys up to SHORT_KEYS take the explicit path, longer ones SDPA: same values and gradients."""
    torch.manual_seed(0)
    q = torch.randn(3, 2, keys, 8, requires_grad=True)
    k = torch.randn(3, 2, keys, 8, requires_grad=True)
    v = torch.randn(3, 2, keys, 8, requires_grad=True)
    if causal:
        attend = L.causal_attend_mask(keys)
    else:
        attend = (torch.arange(keys) < torch.tensor([keys, 5, 1])[:, None])[:, None, None, :]  # padded batch
    by_weights, w = L.attention(q, k, v, attend, causal, need_weights=True)
    weights_grads = torch.autograd.grad(by_weights.square().sum(), (q, k, v))
    fast, none = L.attention(q, k, v, attend, causal)
    fast_grads = torch.autograd.grad(fast.square().sum(), (q, k, v))
    assert none is None and torch.allclose(w.sum(-1), torch.ones(()))
    torch.testing.assert_close(fast, by_weights, atol=1e-5, rtol=1e-4)
    for a, b in zip(fast_grads, weights_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("keys", [1, 7, L.SMALL_PRODUCT // 8 - 1])
def test_attention_of_a_decoding_step_over_few_keys(monkeypatch, keys):
    """Without autograd one query over few keys takes elementwise products (no matrix product), with
    the explicit path's output; masked keys get no weight and a row with nothing to attend gives 0."""
    torch.manual_seed(0)
    q, k, v = torch.randn(4, 2, 1, 8), torch.randn(4, 2, keys, 8), torch.randn(4, 2, keys, 8)
    attend = (torch.arange(keys) < torch.tensor([keys, 1, keys, 0])[:, None])[:, None, None, :]
    explicit, w = L.attention(q, k, v, attend, need_weights=True)
    every_key, _ = L.attention(q, k, v)
    matmuls = []
    matmul = torch.matmul
    monkeypatch.setattr(L.torch, "matmul", lambda *a: matmuls.append(1) or matmul(*a))
    with torch.inference_mode():
        fast, none = L.attention(q, k, v, attend)
        causal, _ = L.attention(q, k, v, L.causal_attend_mask(1, keys - 1), causal=keys == 1)
    assert matmuls == [] and none is None
    torch.testing.assert_close(fast, explicit, atol=1e-6, rtol=0)
    assert torch.all(fast[3] == 0) and torch.all(w[3] == 0)  # nothing to attend
    torch.testing.assert_close(causal, every_key, atol=1e-6, rtol=0)  # the last position sees every key
    L.attention(q, k, v, attend)  # with autograd: the explicit path
    long_keys = torch.randn(4, 2, L.SMALL_PRODUCT // 8, 8)
    with torch.inference_mode():
        L.attention(q, long_keys, long_keys)  # a product of 400 elements: matrix products again
    assert len(matmuls) == 4


def test_learned_positions_limit():
    pos = L.LearnedPositions(4, 3)
    assert pos(2, offset=1).shape == (2, 4)
    with pytest.raises(UserError, match="positions"):
        pos(2, offset=2)


def test_transformer_init_and_config_errors():
    m = small_model("transformer_tiny")
    for emb in (m.encoder.embed_tokens, m.decoder.embed_tokens):
        assert torch.all(emb.weight[PAD] == 0)
    big = M.build_model(ARCHS["transformer_tiny"](), 8000, 8000, True)
    std = big.encoder.embed_tokens.weight[PAD + 1 :].std().item()
    assert abs(std - 256**-0.5) < 0.05 * 256**-0.5  # normal(0, D^-0.5)
    with pytest.raises(UserError, match="multiple"):
        small_model("transformer_tiny", {"encoder_attention_heads": 3})
    with pytest.raises(UserError, match="activation"):
        small_model("transformer_tiny", {"activation_fn": "tanh"})


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_dropout_rate_scale_and_seed(p):
    """Dropout drops a fraction p, scales the rest by 1/(1-p), keeps E[x]."""
    x = torch.ones(400, 1000)
    torch.manual_seed(3)
    a = L.dropout(x, p, training=True)
    torch.manual_seed(3)
    b = L.dropout(x, p, training=True)
    assert torch.equal(a, b)  # the global generator alone decides the mask
    p_used = p
    kept = a != 0
    assert abs(1 - kept.float().mean().item() - p_used) < 3e-3  # 4e5 draws: 5 sigma < 3e-3
    assert torch.allclose(a[kept], torch.full_like(a[kept], 1 / (1 - p_used)))
    assert abs(a.mean().item() - 1.0) < 5e-3
    assert torch.equal(L.dropout(x, p, training=False), x)


def test_dropout_gradient_is_the_mask():
    x = torch.randn(50, 40, requires_grad=True)
    torch.manual_seed(0)
    y = L.dropout(x, 0.25, training=True)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.where(y != 0, torch.full_like(x, 1 / 0.75), torch.zeros_like(x)), atol=1e-6)
