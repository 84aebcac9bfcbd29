"""Inference paths that save work without changing results: length-chunked encoding, grouped
cross-attention under beam search."""

from __future__ import annotations

import pytest
import torch

from nmt.config import GenerateConfig
from nmt.data.tokenizer import EOS, PAD
from nmt.generation.beam import beam_search
from nmt.models import arch_config, build_model
from nmt.models.layers import MultiheadAttention, padding_attend_mask
from nmt.models.length_chunks import encode_in_chunks, plan_chunks, real_ends

SIZES = dict(encoder_layers="2", decoder_layers="2", encoder_embed_dim="32", decoder_embed_dim="32")
SIZES |= dict(encoder_ffn_embed_dim="64", decoder_ffn_embed_dim="64", dropout="0.0")


def _model(seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(arch_config("transformer_tiny", SIZES | extra), 40, 40, True).eval()


def _batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded source rows of the given lengths (EOS last), in the given order."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, : n - 1] = torch.randint(4, 40, (n - 1,), generator=g)
        src[i, n - 1] = EOS
    return src, src.eq(PAD)


def test_plan_chunks_covers_every_row_once_and_bounds_padding():
    g = torch.Generator().manual_seed(1)
    ends = torch.randint(1, 60, (500,), generator=g).tolist()
    chunks = plan_chunks(ends, min_tokens=256, slack=0.1)
    assert sorted(i for c in chunks for i in c) == list(range(500))
    assert len(chunks) > 1
    for a, b in zip(chunks, chunks[1:]):  # sorted by length across chunks
        assert max(ends[i] for i in a) <= min(ends[i] for i in b)
    for c in chunks:
        lens = [ends[i] for i in c]
        assert lens == sorted(lens)
        for j in range(1, len(c)):  # a row joined a chunk that was still small, or kept it within the slack
            small = j * lens[j - 1] < 256
            assert small or (j + 1) * lens[j] <= 1.1 * sum(lens[: j + 1])
    for a, b in zip(chunks, chunks[1:]):  # and a chunk was closed only when the next row broke both
        n, longest = len(a), ends[b[0]]
        assert n * ends[a[-1]] >= 256 and (n + 1) * longest > 1.1 * (sum(ends[i] for i in a) + longest)


def test_plan_chunks_keeps_small_batches_whole():
    assert plan_chunks([3, 30, 5, 12], min_tokens=1024) == [[0, 2, 3, 1]]
    assert plan_chunks([], min_tokens=1) == []


def test_real_ends_with_inner_padding():
    mask = torch.tensor([[False, False, True, True], [False, True, False, True], [True, True, True, True]])
    assert real_ends(mask).tolist() == [2, 3, 0]


@pytest.mark.parametrize("pre_norm", [False, True])
def test_chunked_encoder_equals_one_batch_at_real_positions(pre_norm):
    model = _model(normalize_before=str(pre_norm))
    lengths = [int(n) for n in torch.randint(2, 40, (120,), generator=torch.Generator().manual_seed(2))]
    src, mask = _batch(lengths)
    assert len(plan_chunks(real_ends(mask).tolist())) > 1  # the batch is large and ragged enough to chunk
    with torch.no_grad():
        whole, _ = model.encoder._forward(src, mask, False)
        chunked = encode_in_chunks(lambda s, m: model.encoder._forward(s, m, False)[0], src, mask)
        via_model = model.encode(src, mask)[0]["out"]  # inference takes the chunked path
    real = ~mask
    torch.testing.assert_close(chunked[real], whole[real], rtol=1e-5, atol=1e-5)
    first = plan_chunks(real_ends(mask).tolist())[0]  # the shortest rows: zeros past their chunk's length
    assert torch.equal(
        chunked[first, max(lengths[i] for i in first) :],
        torch.zeros_like(chunked[first, max(lengths[i] for i in first) :]),
    )
    assert torch.equal(via_model, chunked)


def test_training_and_attention_maps_use_the_whole_batch():
    model = _model()
    src, mask = _batch([int(n) for n in torch.randint(2, 40, (120,)).tolist()])
    whole, _ = model.encoder._forward(src, mask, False)
    with torch.no_grad():
        out, maps = model.encode(src, mask, need_attn=True)
    torch.testing.assert_close(out["out"], whole, rtol=0, atol=0)  # padding positions included
    assert len(maps["enc_self"]) == 2


@pytest.mark.parametrize("need_weights", [False, True])
def test_grouped_cross_attention_equals_per_row_keys(need_weights):
    torch.manual_seed(3)
    mha = MultiheadAttention(32, 4, kdim=24, self_attention=False).eval()
    memory = torch.randn(3, 7, 24)
    attend = padding_attend_mask(torch.tensor([[False] * 7, [False] * 4 + [True] * 3, [False] * 2 + [True] * 5]))
    x = torch.randn(3 * 5, 2, 32)  # 5 rows (beams) per sentence, 2 query positions
    k, v = mha.project_kv(memory)
    expand = torch.arange(3).repeat_interleave(5)
    with torch.no_grad():
        out_g, kv_g, w_g = mha(x, cache=(k, v), attend=attend, need_weights=need_weights)
        out_e, _, w_e = mha(x, cache=(k[expand], v[expand]), attend=attend[expand], need_weights=need_weights)
    torch.testing.assert_close(out_g, out_e, rtol=1e-5, atol=1e-6)
    assert kv_g[0] is k and kv_g[1] is v  # the per-sentence keys are handed back, not copied
    if need_weights:
        torch.testing.assert_close(w_g, w_e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("need_attn", [False, True])
@pytest.mark.parametrize("beam", [2, 5])
def test_beam_search_grouped_equals_expanded(beam, need_attn):
    model = _model(seed=4)
    src, mask = _batch([int(n) for n in torch.randint(2, 12, (9,), generator=torch.Generator().manual_seed(5))])
    cfg = GenerateConfig(beam=beam, nbest=beam, max_len_a=0, max_len_b=12)
    grouped = beam_search([model], src, mask, cfg, need_attn=need_attn)
    model.decodes_grouped = False  # the instance attribute hides the family's: memory copied per beam
    expanded = beam_search([model], src, mask, cfg, need_attn=need_attn)
    for hs_g, hs_e in zip(grouped, expanded):
        assert [h.tokens.tolist() for h in hs_g] == [h.tokens.tolist() for h in hs_e]
        for h_g, h_e in zip(hs_g, hs_e):
            assert h_g.score == pytest.approx(h_e.score, abs=1e-5)
            if need_attn:
                torch.testing.assert_close(h_g.attn, h_e.attn, rtol=1e-5, atol=1e-6)
