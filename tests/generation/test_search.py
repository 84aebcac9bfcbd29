"""Search: scripted fake models with hand-computed answers, a plain reference beam search, real models."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from nmt.config import GenerateConfig
from nmt.generation.beam import beam_search
from nmt.generation.decoding import BOS, EOS, PAD, UNK, banned_ngram_tokens
from nmt.generation.search import translate_batch
from nmt.models import arch_config, build_model

A, B, C, D = 4, 5, 6, 7  # ordinary target tokens of the fake models
DEFAULT = {EOS: 0.7, A: 0.1, B: 0.1}  # unscripted prefixes (the rest of the mass spread evenly)


def _dist(spec: dict[int, float], vocab: int) -> torch.Tensor:
    """Probabilities (V,) with the given entries and the remaining mass spread over the others."""
    rest = [v for v in range(vocab) if v not in spec]
    left = 1.0 - sum(spec.values())
    # Spread slightly unevenly (lower ids a little likelier): no two tokens tie, so no expected
    # output depends on how top-k orders equal scores, which PyTorch leaves unspecified.
    p = torch.zeros(vocab, dtype=torch.float64)
    if rest:
        weights = torch.tensor([1.0 - 0.01 * i for i in range(len(rest))], dtype=torch.float64)
        p[rest] = left * weights / weights.sum()
    for v, q in spec.items():
        p[v] = q
    return p


class ScriptedModel(nn.Module):
    """The protocol with per-prefix scripted next-token probabilities; the state is the prefix itself."""

    def __init__(self, script: dict[tuple, dict[int, float]], vocab: int = 8, max_target: int = 1024):
        super().__init__()
        self.script, self.vocab, self.max_target = script, vocab, max_target

    def encode(self, src, src_pad_mask, need_attn=False):
        return {"src": src}, None

    def decode(self, tgt_in, memory, src_pad_mask, state=None, need_attn=False):
        prefix = tgt_in if state is None else torch.cat([state["prefix"], tgt_in], dim=1)
        rows = [self.script.get(tuple(r[1:].tolist()), DEFAULT) for r in prefix]
        lp = torch.stack([_dist(spec, self.vocab).log() for spec in rows]).float()  # (N, V)
        logits = lp[:, None].expand(-1, tgt_in.size(1), -1)
        return logits, {"prefix": prefix}, None

    def max_positions(self):
        return 1024, self.max_target


class TableModel(nn.Module):
    """A random bigram-like model: logits = E[last token] + P[position] + K[first source token].

    Cross-attention is a fixed softmax over the real source positions (for need_attn)."""

    def __init__(self, vocab: int = 12, seed: int = 0, scale: float = 2.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("E", torch.randn(vocab, vocab, generator=g) * scale)
        self.register_buffer("P", torch.randn(64, vocab, generator=g) * scale)
        self.register_buffer("K", torch.randn(vocab, vocab, generator=g) * scale)
        self.vocab = vocab

    def encode(self, src, src_pad_mask, need_attn=False):
        return {"key": src[:, 0], "src": src.float()}, None

    def decode(self, tgt_in, memory, src_pad_mask, state=None, need_attn=False):
        start = 0 if state is None else state["steps"]
        positions = torch.arange(start, start + tgt_in.size(1))
        logits = self.E[tgt_in] + self.P[positions][None] + self.K[memory["key"]][:, None]  # (N, T, V)
        attn = None
        if need_attn:
            w = (memory["src"][:, None, None, :] * (positions[None, None, :, None] + 1.0)).sin()  # (N, 1, T, S)
            w = w.masked_fill(src_pad_mask[:, None, None, :], -math.inf).softmax(dim=-1)
            attn = {"cross": [w.expand(-1, 2, -1, -1)]}
        return logits, {"steps": start + tgt_in.size(1)}, attn

    def max_positions(self):
        return 1024, 64


def _src(rows: list[list[int]]):
    """Right-padded source batch (pieces + EOS) and its pad mask."""
    width = max(len(r) for r in rows) + 1
    src = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        src[i, : len(r) + 1] = torch.tensor(r + [EOS])
    return src, src == PAD


def _run(model, cfg, rows=None, search=translate_batch, need_attn=False):
    src, mask = _src(rows or [[A, B]])
    return search([model] if isinstance(model, nn.Module) else model, src, mask, cfg, need_attn=need_attn)


def _toks(hyps):
    return [h.tokens.tolist() for h in hyps]


# ----------------------------------------------------------------------------- scripted, hand-computed
SCRIPT_EOS = {(): {A: 0.5, B: 0.3, EOS: 0.2}, (A,): {EOS: 0.6, A: 0.3, B: 0.1}, (B,): {EOS: 0.9, A: 0.05, B: 0.05}}


def test_eos_finishes_and_nbest_is_ordered():
    cfg = GenerateConfig(beam=2, nbest=2, lenpen=0.0)
    hyps = _run(ScriptedModel(SCRIPT_EOS), cfg)[0]
    assert _toks(hyps) == [[A, EOS], [B, EOS]]
    assert hyps[0].score == pytest.approx(math.log(0.5 * 0.6), abs=1e-5)
    assert hyps[1].score == pytest.approx(math.log(0.3 * 0.9), abs=1e-5)
    assert torch.allclose(hyps[1].positional_scores, torch.tensor([math.log(0.3), math.log(0.9)]), atol=1e-6)
    # lenpen 1 divides by the length counting EOS
    hyps1 = _run(ScriptedModel(SCRIPT_EOS), dataclasses.replace(cfg, lenpen=1.0))[0]
    assert hyps1[0].score == pytest.approx(math.log(0.3) / 2, abs=1e-5)


def test_min_len_forbids_early_eos():
    cfg = GenerateConfig(beam=2, nbest=2, lenpen=0.0, min_len=2)
    hyps = _run(ScriptedModel(SCRIPT_EOS), cfg)[0]
    # step 1 without EOS: [A A] .15 and [A B] .05 survive; then the default gives EOS .7
    assert _toks(hyps) == [[A, A, EOS], [A, B, EOS]]
    assert hyps[0].score == pytest.approx(math.log(0.5 * 0.3 * 0.7), abs=1e-5)
    assert hyps[1].score == pytest.approx(math.log(0.5 * 0.1 * 0.7), abs=1e-5)


@pytest.mark.parametrize("how", ["max_len_b", "max_positions"])
def test_max_len_forces_eos_with_its_own_log_prob(how):
    script = {(): {A: 0.5, B: 0.3, EOS: 0.2}, (A,): {A: 0.9, EOS: 0.1}, (B,): {B: 0.9, EOS: 0.1}}
    if how == "max_len_b":
        model, cfg = ScriptedModel(script), GenerateConfig(beam=2, nbest=2, lenpen=0.0, max_len_b=1)
    else:  # 2 target positions: BOS + one token, so one token before EOS
        model, cfg = ScriptedModel(script, max_target=2), GenerateConfig(beam=2, nbest=2, lenpen=0.0)
    hyps = _run(model, cfg)[0]
    assert _toks(hyps) == [[A, EOS], [B, EOS]]
    assert [h.score for h in hyps] == pytest.approx([math.log(0.05), math.log(0.03)], abs=1e-5)
    greedy = _run(model, dataclasses.replace(cfg, beam=1, nbest=1))[0]
    assert _toks(greedy) == [[A, EOS]]


def test_max_len_a_scales_with_each_sentence_source_length():
    model = ScriptedModel({}, vocab=8)
    always_a = {(): {A: 0.9}}
    model.script = {p: {A: 0.9} for p in [(), (A,), (A, A), (A, A, A), (A, A, A, A)]} | always_a
    cfg = GenerateConfig(beam=2, max_len_a=1.0, max_len_b=-1)  # max_len = source length (incl. EOS) - 1
    hyps = _run(model, cfg, rows=[[A], [A, B, C]])
    assert [len(h[0].tokens) for h in hyps] == [2, 4]


SCRIPT_LENPEN = {
    (): {A: 0.6, B: 0.4},
    (A,): {EOS: 0.6, A: 0.4},
    (B,): {B: 0.825, EOS: 0.175},
    (B, B): {EOS: 0.999},
    (A, A): {EOS: 0.6, A: 0.4},
}


def test_length_penalty_changes_the_winner():
    short = _run(ScriptedModel(SCRIPT_LENPEN), GenerateConfig(beam=2, lenpen=0.0))[0][0]
    long = _run(ScriptedModel(SCRIPT_LENPEN), GenerateConfig(beam=2, lenpen=1.0))[0][0]
    assert short.tokens.tolist() == [A, EOS] and short.score == pytest.approx(math.log(0.36), abs=1e-5)
    assert long.tokens.tolist() == [B, B, EOS]
    assert long.score == pytest.approx(math.log(0.4 * 0.825 * 0.999) / 3, abs=1e-5)


def test_pad_and_bos_are_never_generated():
    script = {(): {PAD: 0.4, BOS: 0.3, A: 0.2, EOS: 0.05}, (A,): {PAD: 0.5, BOS: 0.4, EOS: 0.05}}
    for cfg in (GenerateConfig(beam=1), GenerateConfig(beam=3, nbest=3)):
        for h in _run(ScriptedModel(script), cfg)[0]:
            assert PAD not in h.tokens.tolist() and BOS not in h.tokens.tolist()
    assert _toks(_run(ScriptedModel(script), GenerateConfig(beam=1))[0]) == [[A, EOS]]


def test_no_repeat_ngram_blocks_repeats():
    # No EOS before the 4th token, so with beam 3 no short hypothesis fills the finished slots
    # before the repeated bigram is reached.
    script = {
        (): {A: 0.9, EOS: 0.0},
        (A,): {B: 0.9, EOS: 0.0},
        (A, B): {A: 0.9, EOS: 0.0},
        (A, B, A): {B: 0.8, C: 0.15, EOS: 0.04},
    }
    for beam in (1, 3):
        plain = _run(ScriptedModel(script), GenerateConfig(beam=beam))[0][0]
        blocked = _run(ScriptedModel(script), GenerateConfig(beam=beam, no_repeat_ngram_size=2))[0][0]
        assert plain.tokens.tolist() == [A, B, A, B, EOS]
        assert blocked.tokens.tolist() == [A, B, A, C, EOS]
    unigram = _run(ScriptedModel(script), GenerateConfig(beam=1, no_repeat_ngram_size=1))[0][0]
    assert unigram.tokens.tolist() == [A, B, EOS] or len(set(unigram.tokens.tolist())) == len(unigram.tokens)


def test_banned_ngram_tokens_exact():
    tokens = torch.tensor([[BOS, A, B, A, B, C, A]])  # next 3-gram starts with (C, A)? no; (A) for 2-grams
    banned2 = banned_ngram_tokens(tokens, 2, 8)[0].nonzero().squeeze(1).tolist()
    assert banned2 == [B]  # after A came B (twice): duplicates never cancel
    banned3 = banned_ngram_tokens(torch.tensor([[BOS, A, B, C, A, B]]), 3, 8)[0].nonzero().squeeze(1).tolist()
    assert banned3 == [C]


def test_unkpen_is_subtracted_from_unk():
    script = {(): {UNK: 0.5, A: 0.3}}
    assert _toks(_run(ScriptedModel(script), GenerateConfig(beam=1))[0]) == [[UNK, EOS]]
    hyp = _run(ScriptedModel(script), GenerateConfig(beam=2, unkpen=1.0))[0][0]
    assert hyp.tokens.tolist() == [A, EOS]
    hyp = _run(ScriptedModel(script), GenerateConfig(beam=2, unkpen=0.2, lenpen=0.0))[0][0]
    assert hyp.tokens.tolist() == [UNK, EOS]
    assert hyp.positional_scores[0].item() == pytest.approx(math.log(0.5) - 0.2, abs=1e-6)


# ----------------------------------------------------------------------------- reference beam search
def _ref_lprobs(lp: torch.Tensor, prefix: list[int], step: int, max_len: int, cfg: GenerateConfig) -> list[float]:
    out = lp.tolist()
    eos = out[EOS]
    out[PAD] = out[BOS] = -math.inf
    out[UNK] -= cfg.unkpen
    if step < cfg.min_len:
        out[EOS] = -math.inf
    n, seq = cfg.no_repeat_ngram_size, [BOS] + prefix
    if n:
        grams = {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}
        for g in grams:
            if n == 1 or tuple(seq[len(seq) - n + 1 :]) == g[:-1]:
                out[g[-1]] = -math.inf
    if step >= max_len:
        out = [-math.inf] * len(out)
        out[EOS] = eos
    return out


def _ref_beam(model, src_row: list[int], cfg: GenerateConfig) -> list[tuple[list[int], float]]:
    """Plain beam search with Python lists, re-running the whole prefix each step; stops by rules 1 and 3."""
    src, mask = _src([src_row])
    memory, _ = model.encode(src, mask)
    max_len = min(int(cfg.max_len_a * (len(src_row) + 1) + cfg.max_len_b), model.max_positions()[1] - 1)
    k, beams, finished = cfg.beam, [([], 0.0)], []
    for step in range(max_len + 1):
        cands = []
        for bi, (toks, cum) in enumerate(beams):
            logits, _, _ = model.decode(torch.tensor([[BOS] + toks]), memory, mask)
            lp = _ref_lprobs(torch.log_softmax(logits[0, -1].double(), -1), toks, step, max_len, cfg)
            cands += [(cum + lp[v], bi, v) for v in range(len(lp)) if lp[v] > -math.inf]
        cands = sorted(cands, key=lambda c: -c[0])[: 2 * k]
        for score, bi, v in cands[:k]:
            if v == EOS and len(finished) < k:
                finished.append((beams[bi][0] + [EOS], score / (step + 1) ** cfg.lenpen))
        if len(finished) >= k or step >= max_len:
            break
        beams = [(beams[bi][0] + [v], s) for s, bi, v in cands if v != EOS][:k]
    return sorted(finished, key=lambda f: -f[1])[: cfg.nbest]


OPTIONS = [
    dict(beam=3, nbest=3),
    dict(beam=4, nbest=2, lenpen=0.0),
    dict(beam=2, lenpen=2.0, min_len=3),
    dict(beam=5, nbest=5, lenpen=0.5, no_repeat_ngram_size=2, max_len_b=9),
    dict(beam=3, nbest=2, unkpen=1.5, max_len_a=1.5, max_len_b=2),
    dict(beam=3, nbest=3, unkpen=-0.5, lenpen=1.0, max_len_b=7),
    dict(beam=1, lenpen=1.0, no_repeat_ngram_size=3),
]


@pytest.mark.parametrize("opts", OPTIONS)
def test_beam_matches_plain_reference(opts):
    cfg = GenerateConfig(**opts)
    model = TableModel(seed=len(str(opts)))
    rows = [[A, B, C], [C], [D, A, B, C, D, A], [B, B]]
    hyps = _run(model, cfg, rows=rows, search=beam_search)
    for row, got in zip(rows, hyps, strict=True):
        want = _ref_beam(model, row, cfg)
        assert _toks(got) == [w[0] for w in want]
        assert [h.score for h in got] == pytest.approx([w[1] for w in want], abs=1e-4)


@pytest.mark.parametrize("opts", OPTIONS)
def test_greedy_equals_beam_one(opts):
    cfg = GenerateConfig(**{**opts, "beam": 1, "nbest": 1})
    model = TableModel(seed=3)
    rows = [[A, B, C], [C], [D, A, B, C, D, A], [B, B]]
    greedy = _run(model, cfg, rows=rows, need_attn=True)
    beam1 = _run(model, cfg, rows=rows, search=beam_search, need_attn=True)
    for g, b in zip(greedy, beam1, strict=True):
        assert _toks(g) == _toks(b)
        assert g[0].score == b[0].score
        assert torch.equal(g[0].positional_scores, b[0].positional_scores)
        assert torch.equal(g[0].attn, b[0].attn)


def test_attention_is_per_token_over_real_source():
    rows = [[A, B, C], [C]]
    for cfg in (GenerateConfig(beam=1), GenerateConfig(beam=3, nbest=2)):
        hyps = _run(TableModel(), cfg, rows=rows, need_attn=True)
        for row, hs in zip(rows, hyps, strict=True):
            for h in hs:
                assert h.attn.shape == (len(h.tokens), len(row) + 1)
                assert torch.allclose(h.attn.sum(dim=1), torch.ones(len(h.tokens)), atol=1e-5)
    assert _run(TableModel(), GenerateConfig(beam=2), need_attn=False)[0][0].attn is None


# ----------------------------------------------------------------------------- sampling and ensembles
def test_sampling_is_reproducible_and_topk1_is_greedy():
    model, rows = TableModel(seed=5, scale=0.5), [[A, B, C], [C], [D, A, B]]
    cfg = GenerateConfig(beam=4, nbest=4, sampling=True, seed=7, max_len_b=12)
    first, again = _run(model, cfg, rows=rows), _run(model, cfg, rows=rows)
    assert [_toks(h) for h in first] == [_toks(h) for h in again]
    other = _run(model, dataclasses.replace(cfg, seed=8), rows=rows)
    assert [_toks(h) for h in first] != [_toks(h) for h in other]
    for hs in first:
        assert [h.score for h in hs] == sorted([h.score for h in hs], reverse=True)
    greedy = _run(model, GenerateConfig(beam=1, max_len_b=12), rows=rows)
    top1 = _run(model, dataclasses.replace(cfg, beam=1, nbest=1, sampling_topk=1), rows=rows)
    assert [_toks(h) for h in top1] == [_toks(h) for h in greedy]
    assert [h[0].score for h in top1] == [h[0].score for h in greedy]


def test_sampling_topp_and_topk_restrict_the_support():
    script = {(): {A: 0.5, B: 0.3, C: 0.15, EOS: 0.01}}
    rows = [[A]] * 40
    for extra, allowed in (
        (dict(sampling_topk=2), {A, B}),
        (dict(sampling_topp=0.7), {A, B}),
        (dict(sampling_topp=0.4), {A}),
    ):
        cfg = GenerateConfig(beam=1, sampling=True, seed=3, min_len=1, max_len_b=1, **extra)
        firsts = {h[0].tokens[0].item() for h in _run(ScriptedModel(script), cfg, rows=rows)}
        assert firsts == allowed


def _tiny_transformer(seed: int = 0, **extra):
    torch.manual_seed(seed)
    sizes = (
        dict(
            encoder_layers="2",
            decoder_layers="2",
            encoder_embed_dim="32",
            decoder_embed_dim="32",
            encoder_ffn_embed_dim="64",
            decoder_ffn_embed_dim="64",
            encoder_attention_heads="4",
            decoder_attention_heads="4",
            dropout="0.0",
            max_target_positions="64",
        )
        | extra
    )
    return build_model(arch_config("transformer_tiny", sizes), 40, 40, True).eval()


SRC_ROWS = [[5, 9, 11, 30, 7], [12], [8, 8, 20, 33, 21, 17, 9, 6, 39], [25, 4, 16]]


def test_ensemble_of_a_model_with_itself_equals_the_model():
    model = _tiny_transformer()
    for cfg in (GenerateConfig(beam=1, max_len_b=8), GenerateConfig(beam=4, nbest=2, max_len_b=8)):
        alone = _run(model, cfg, rows=SRC_ROWS)
        twice = _run([model, model], cfg, rows=SRC_ROWS)
        for a, t in zip(alone, twice, strict=True):
            assert _toks(a) == _toks(t)
            assert [h.score for h in a] == pytest.approx([h.score for h in t], abs=1e-5)


def test_ensemble_averages_probabilities():
    m1, m2 = TableModel(seed=1), TableModel(seed=2)
    hyp = _run([m1, m2], GenerateConfig(beam=1, max_len_b=5), rows=[[A, B]])[0][0]
    src, mask = _src([[A, B]])
    tgt = torch.cat([torch.tensor([BOS]), hyp.tokens[:-1]])[None]
    lps = [torch.log_softmax(m.decode(tgt, m.encode(src, mask)[0], mask)[0][0], -1) for m in (m1, m2)]
    mixed = (lps[0].exp() + lps[1].exp()).div(2).log()  # (L, V)
    want = mixed.gather(1, hyp.tokens[:, None]).squeeze(1)
    assert torch.allclose(hyp.positional_scores, want, atol=1e-5)


# ----------------------------------------------------------------------------- a real transformer
def _teacher_forced(model, row, tokens):
    src, mask = _src([row])
    tgt_in = torch.cat([torch.tensor([BOS]), tokens[:-1]])[None]
    with torch.no_grad():
        lp = torch.log_softmax(model(src, mask, tgt_in)[0].float(), -1)  # (L, V)
    return lp.gather(1, tokens[:, None]).squeeze(1)


@pytest.mark.parametrize("lenpen", [0.0, 1.0, 0.6])
def test_beam_scores_equal_teacher_forced_rescoring(lenpen):
    model = _tiny_transformer(seed=1)
    cfg = GenerateConfig(beam=4, nbest=4, lenpen=lenpen, max_len_b=12, min_len=0)
    for row, hyps in zip(SRC_ROWS, _run(model, cfg, rows=SRC_ROWS), strict=True):
        assert len(hyps) == 4
        for h in hyps:
            pos = _teacher_forced(model, row, h.tokens)
            assert torch.allclose(h.positional_scores, pos, atol=1e-4)
            assert h.score == pytest.approx(pos.sum().item() / len(h.tokens) ** lenpen, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_batch_equals_one_by_one(beam):
    model = _tiny_transformer(seed=2)
    cfg = GenerateConfig(beam=beam, nbest=beam, max_len_a=1.2, max_len_b=4, lenpen=1.0)
    batched = _run(model, cfg, rows=SRC_ROWS)
    for row, got in zip(SRC_ROWS, batched, strict=True):
        alone = _run(model, cfg, rows=[row])[0]
        assert _toks(got) == _toks(alone)
        assert [h.score for h in got] == pytest.approx([h.score for h in alone], abs=1e-4)


@pytest.mark.parametrize("arch", ["transformer_tiny", "lstm_luong"])
def test_real_model_greedy_equals_beam_one_and_reference(arch):
    if arch == "transformer_tiny":
        model = _tiny_transformer(seed=3)
    else:
        torch.manual_seed(3)
        sizes = dict(
            encoder_embed_dim="16",
            encoder_hidden_size="24",
            decoder_embed_dim="16",
            decoder_hidden_size="24",
            dropout="0.0",
        )
        model = build_model(arch_config(arch, sizes), 40, 40, True).eval()
    cfg = GenerateConfig(beam=1, max_len_b=10)
    greedy = _run(model, cfg, rows=SRC_ROWS)
    beam1 = _run(model, cfg, rows=SRC_ROWS, search=beam_search)
    assert [_toks(h) for h in greedy] == [_toks(h) for h in beam1]
    cfg3 = GenerateConfig(beam=3, nbest=3, max_len_b=6, lenpen=1.0)
    for row, got in zip(SRC_ROWS[:2], _run(model, cfg3, rows=SRC_ROWS[:2]), strict=True):
        want = _ref_beam(model, row, cfg3)
        assert _toks(got) == [w[0] for w in want]
        assert [h.score for h in got] == pytest.approx([w[1] for w in want], abs=1e-4)
