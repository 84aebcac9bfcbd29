"""The LSTM family: protocol equalities, packing, source reversal, bridges, attention, tying, training."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nmt.config import LSTMConfig
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError
from nmt.models import arch_config, build_model, select_batch
from nmt.models.lstm_encoder import layer_map, reverse_index
from nmt.registry import ARCHS

LSTM_ARCHS = sorted(a for a in ARCHS if a.startswith("lstm"))
V = 24


def tiny(arch: str = "lstm_luong", **changes) -> torch.nn.Module:
    """A small eval-mode model of `arch` (hidden 16, or 32 where a concat bridge joins two directions)."""
    torch.manual_seed(0)
    cfg = arch_config(arch)
    hd = 32 if cfg.encoder_bidirectional and cfg.bridge == "concat" else 16
    sizes = dict(encoder_embed_dim=8, decoder_embed_dim=8, encoder_hidden_size=16, decoder_hidden_size=hd)
    cfg = dataclasses.replace(cfg, **{**sizes, **changes})
    return build_model(cfg, V, V, True).eval()


def batch():
    """Three sources of lengths 5, 2, 4 (EOS included) and targets of length 6."""
    src = torch.tensor([[5, 6, 7, 8, EOS], [9, EOS, PAD, PAD, PAD], [10, 11, 12, EOS, PAD]])
    tgt = torch.tensor([[BOS, 4, 5, 6, 7, 8], [BOS, 9, 10, 11, 4, 5], [BOS, 6, 6, 7, 7, 8]])
    return src, src.eq(PAD), tgt


def stepwise(model, src, mask, tgt):
    memory, _ = model.encode(src, mask)
    state, logits, weights = None, [], []
    for t in range(tgt.size(1)):
        out, state, attn = model.decode(tgt[:, t : t + 1], memory, mask, state, need_attn=True)
        logits.append(out)
        weights.append(attn.get("cross", [None])[0])
    return torch.cat(logits, 1), (None if weights[0] is None else torch.cat(weights, 2)), state


@pytest.mark.parametrize("arch", LSTM_ARCHS)
def test_incremental_decoding_equals_teacher_forcing(arch):
    model = tiny(arch)
    src, mask, tgt = batch()
    with torch.no_grad():
        full = model(src, mask, tgt)
        memory, _ = model.encode(src, mask)
        whole, _, attn = model.decode(tgt, memory, mask, need_attn=True)
        steps, weights, state = stepwise(model, src, mask, tgt)
    assert full.shape == (3, 6, V)
    torch.testing.assert_close(whole, full, rtol=0, atol=0)
    torch.testing.assert_close(steps, full, rtol=0, atol=1e-5)
    assert state["step"] == 6
    if weights is None:
        assert attn == {}
    else:
        torch.testing.assert_close(weights, attn["cross"][0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", LSTM_ARCHS)
def test_beam_reordering_of_the_state(arch):
    model = tiny(arch)
    src, mask, tgt = batch()
    order = torch.tensor([2, 0, 0])
    with torch.no_grad():
        memory, _ = model.encode(src, mask)
        _, state, _ = model.decode(tgt[:, :3], memory, mask)
        state = select_batch(state, order)
        after, _, _ = model.decode(tgt[order, 3:], select_batch(memory, order), mask[order], state)
        expected = model(src[order], mask[order], tgt[order])[:, 3:]
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", LSTM_ARCHS)
def test_padding_does_not_change_a_sentence(arch):
    model = tiny(arch)
    src, mask, tgt = batch()
    with torch.no_grad():
        batched = model(src, mask, tgt)
        alone = model(src[1:2, :2], mask[1:2, :2], tgt[1:2])
    torch.testing.assert_close(batched[1:2], alone, rtol=0, atol=1e-5)


def test_without_packing_padding_enters_the_recurrence():
    model = tiny("lstm_bahdanau", pack=False)
    src, mask, tgt = batch()
    with torch.no_grad():
        batched = model(src, mask, tgt)
        alone = model(src[1:2, :2], mask[1:2, :2], tgt[1:2])
    assert (batched[1:2] - alone).abs().max() > 1e-4


def test_reverse_index_reverses_only_real_tokens():
    src = torch.tensor([[5, 6, 7, EOS, PAD], [8, EOS, PAD, PAD, PAD], [4, 5, 6, 7, EOS], [5, 6, PAD, PAD, PAD]])
    index = reverse_index(src, src.eq(PAD))
    expected = torch.tensor([[7, 6, 5, EOS, PAD], [8, EOS, PAD, PAD, PAD], [7, 6, 5, 4, EOS], [6, 5, PAD, PAD, PAD]])
    assert torch.equal(src.gather(1, index), expected)
    assert torch.equal(src.gather(1, index).gather(1, index), src)  # its own inverse


def test_reverse_source_encodes_the_reversed_sentence_in_source_order():
    forward = tiny("lstm_luong")
    reverse = tiny("lstm_luong", reverse_source=True)
    src, mask, _ = batch()
    index = reverse_index(src, mask)
    with torch.no_grad():
        mem_rev = reverse.encoder(src, mask)
        mem_manual = forward.encoder(src.gather(1, index), mask)
    torch.testing.assert_close(mem_rev["h"], mem_manual["h"], rtol=0, atol=0)
    out = mem_manual["out"].gather(1, index.unsqueeze(-1).expand_as(mem_manual["out"]))
    torch.testing.assert_close(mem_rev["out"], out, rtol=0, atol=0)


def test_layer_map():
    assert layer_map(4, 2, "repeat") == [2, 3]
    assert layer_map(2, 2, "zero") == [0, 1]
    assert layer_map(1, 2, "repeat") == [0, 0]
    assert layer_map(1, 2, "zero") == [None, 0]
    assert layer_map(2, 4, "repeat") == [0, 0, 0, 1]


@pytest.mark.parametrize("bridge", ["concat", "average", "linear", "zero"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enc_layers", [1, 2, 4])
@pytest.mark.parametrize("bridge_layers", ["repeat", "zero"])
def test_bridges_and_layer_counts(bridge, bidirectional, enc_layers, bridge_layers):
    he = 16 * (2 if bidirectional else 1)
    hd = {"concat": he, "average": 16, "linear": 12, "zero": 12}[bridge]
    model = tiny(
        "lstm_luong",
        bridge=bridge,
        encoder_bidirectional=bidirectional,
        encoder_layers=enc_layers,
        decoder_layers=2,
        decoder_hidden_size=hd,
        bridge_layers=bridge_layers,
    ).train()
    src, mask, tgt = batch()
    memory = model.encoder(src, mask)
    assert memory["out"].shape == (3, 5, he) and memory["h"].shape == memory["c"].shape == (3, enc_layers, he)
    state = model.decoder.init_state(memory)
    assert state["h"].shape == state["c"].shape == (3, 2, hd)
    h = memory["h"]
    expected = {
        "concat": lambda j: h[:, j],
        "average": lambda j: h[:, j].view(3, -1, 16).mean(1),
        "linear": lambda j: model.decoder.bridge.h_proj(h[:, j]),
        "zero": lambda j: torch.zeros(3, hd),
    }[bridge]
    for i, j in enumerate(layer_map(enc_layers, 2, bridge_layers)):
        want = torch.zeros(3, hd) if j is None else expected(j)
        torch.testing.assert_close(state["h"][:, i], want, rtol=0, atol=1e-6)
    logits = model(src, mask, tgt)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bridge_size_mismatch_is_a_user_error():
    with pytest.raises(UserError, match="decoder-hidden-size 32"):
        tiny("lstm_seq2seq", encoder_bidirectional=True, decoder_hidden_size=16)
    with pytest.raises(UserError, match="decoder-hidden-size 16"):
        tiny("lstm_seq2seq", bridge="average", decoder_hidden_size=32)


@pytest.mark.parametrize("attention", ["dot", "general", "qkv", "additive", "multihead"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_attention_rows_sum_to_one_and_skip_padding(attention, input_feeding):
    model = tiny("lstm_luong", attention=attention, input_feeding=input_feeding, decoder_attention_heads=4)
    src, mask, tgt = batch()
    with torch.no_grad():
        memory, _ = model.encode(src, mask)
        _, _, attn = model.decode(tgt, memory, mask, need_attn=True)
        steps, weights, _ = stepwise(model, src, mask, tgt)
    (w,) = attn["cross"]
    heads = 4 if attention == "multihead" else 1
    assert w.shape == (3, heads, 6, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, heads, 6))
    assert w.masked_select(mask[:, None, None, :].expand_as(w)).eq(0).all()  # exactly zero on padding
    torch.testing.assert_close(weights, w, rtol=0, atol=1e-5)


def test_no_attention_returns_empty_attn():
    model = tiny("lstm_seq2seq")
    src, mask, tgt = batch()
    memory, enc_attn = model.encode(src, mask, need_attn=True)
    assert enc_attn == {}
    assert model.decode(tgt, memory, mask, need_attn=True)[2] == {}
    assert model.decode(tgt, memory, mask)[2] is None


def _embedding_like(model, shape):
    return [p for p in model.parameters() if p.shape == shape]


def test_decoder_input_output_tying():
    model = tiny("lstm_luong", share_decoder_input_output_embed=True, decoder_embed_dim=16)
    assert model.decoder.out is None and isinstance(model.decoder.out_proj, torch.nn.Identity)
    assert len(_embedding_like(model, (V, 16))) == 1  # one Parameter for input and output
    # Different sizes: a bias-free hidden -> embedding map before the tied output.
    model = tiny("lstm_luong", share_decoder_input_output_embed=True)
    assert model.decoder.out_proj.weight.shape == (8, 16) and model.decoder.out_proj.bias is None
    src, mask, tgt = batch()
    model(src, mask, tgt).sum().backward()
    assert model.decoder.embed.weight.grad[tgt.unique()].abs().sum(-1).gt(0).all()


def test_three_way_tying():
    model = tiny("lstm_bahdanau", share_all_embeddings=True)
    assert model.encoder.embed.weight is model.decoder.embed.weight
    assert len(_embedding_like(model, (V, 8))) == 1
    assert model.decoder.out is None
    with pytest.raises(UserError, match="joined dictionary"):
        build_model(dataclasses.replace(LSTMConfig(), share_all_embeddings=True), V, V, False)
    with pytest.raises(UserError, match="joined dictionary"):
        build_model(dataclasses.replace(LSTMConfig(), share_all_embeddings=True), V, V + 1, True)
    with pytest.raises(UserError, match="encoder_embed_dim"):
        build_model(LSTMConfig(share_all_embeddings=True, decoder_embed_dim=16), V, V, True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"attention": "luong"}, "unknown --attention"),
        ({"attention": "dot", "decoder_hidden_size": 32, "bridge": "linear"}, "attention dot"),
        ({"attention": "multihead", "decoder_attention_heads": 5}, "divisible"),
        ({"bridge": "sum"}, "unknown --bridge"),
        ({"attention": "none", "bridge": "zero"}, "never see the source"),
        ({"teacher_forcing_ratio": 1.5}, "teacher-forcing-ratio"),
    ],
)
def test_bad_flags_are_user_errors(changes, message):
    with pytest.raises(UserError, match=message):
        tiny("lstm_luong", **changes)


@pytest.mark.parametrize("arch", ["lstm_seq2seq", "lstm_luong"])
def test_teacher_forcing_ratio(arch):
    src, mask, tgt = batch()
    forced = tiny(arch, dropout=0.0, init_range=0.5).train()
    sampled = tiny(arch, dropout=0.0, init_range=0.5, teacher_forcing_ratio=0.0).train()  # same weights
    a, b = forced(src, mask, tgt), sampled(src, mask, tgt)
    # Ratio 0: after BOS every input is the model's own greedy prediction of the previous step.
    fed = torch.cat([tgt[:, :1], b.argmax(-1)[:, :-1]], 1)
    assert not torch.equal(fed, tgt)
    with torch.no_grad():
        torch.testing.assert_close(b, forced(src, mask, fed), rtol=0, atol=1e-5)
    assert (a - b).abs().max() > 1e-3
    b.sum().backward()  # the sampled path trains
    forced.eval(), sampled.eval()
    with torch.no_grad():
        torch.testing.assert_close(forced(src, mask, tgt), sampled(src, mask, tgt), rtol=0, atol=1e-6)
    half = tiny(arch, dropout=0.0, teacher_forcing_ratio=0.5).train()
    assert half(src, mask, tgt).shape == (3, 6, V)


def test_lstm_luong_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = tiny(
        "lstm_luong",
        dropout=0.0,
        encoder_hidden_size=32,
        decoder_hidden_size=32,
        encoder_embed_dim=16,
        decoder_embed_dim=16,
    ).train()
    g = torch.Generator().manual_seed(1)
    lens = [3, 4, 5, 6, 3, 4, 5, 6]
    src = torch.full((8, 7), PAD)
    tgt_out = torch.full((8, 7), PAD)
    for i, n in enumerate(lens):
        words = torch.randint(4, V, (n,), generator=g)
        src[i, : n + 1] = torch.cat([words, torch.tensor([EOS])])
        tgt_out[i, : n + 1] = torch.cat([words.flip(0), torch.tensor([EOS])])  # translate = reverse
    tgt_in = torch.cat([torch.full((8, 1), BOS), tgt_out[:, :-1]], 1).masked_fill(tgt_out.eq(PAD), PAD)
    mask = src.eq(PAD)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        logits = model(src, mask, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
