"""Continuing prompts: the forced prefix in every search (a recording model with hand-computed answers),
and a language model trained through `nmt train` continuing its training sentences through `nmt generate`."""

from __future__ import annotations

import io
import math

import pytest
import torch
from helpers import cli
from lmfixture import SENTENCES, lm_files, mlm_checkpoint
from torch import nn

from nmt import LanguageModel
from nmt.checkpoint import load_model
from nmt.config import GenerateConfig, InteractiveConfig
from nmt.generation.decoding import BOS, EOS, PAD
from nmt.generation.interactive import run as run_interactive
from nmt.generation.prompts import cut_prompt
from nmt.generation.search import translate_batch


class RecordingLM(nn.Module):
    """logits = E[token] + P[position] (a random table); records every (sentence, decoder sequence) it sees.

    memory holds each sentence's id (src[:, 0]), selected with the rows, so the record names the sentence."""

    def __init__(self, vocab: int = 12, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("E", torch.randn(vocab, vocab, generator=g) * 2)
        self.register_buffer("P", torch.randn(64, vocab, generator=g) * 2)
        self.seen: list[tuple[int, list[int]]] = []
        self.widths: list[int] = []

    def encode(self, src, src_pad_mask, need_attn=False):
        return {"sid": src[:, :1]}, None

    def decode(self, tgt_in, memory, src_pad_mask, state=None, need_attn=False):
        seq = tgt_in if state is None else torch.cat([state["seq"], tgt_in], dim=1)  # (N, T_all)
        self.widths.append(tgt_in.size(1))
        self.seen += list(zip(memory["sid"][:, 0].tolist(), seq.tolist()))
        positions = torch.arange(seq.size(1) - tgt_in.size(1), seq.size(1))
        return self.E[tgt_in] + self.P[positions][None], {"seq": seq}, None

    def max_positions(self):
        return 64, 64


PROMPTS = [[4, 5, 6], [7], [], [8, 9]]


def _batch(prompts: list[list[int]], first_id: int = 0):
    """src (B, 2): the sentence id and EOS; prefix (B, P) the prompts right-padded with PAD."""
    src = torch.tensor([[first_id + i + 4, EOS] for i in range(len(prompts))])
    prefix = torch.full((len(prompts), max(map(len, prompts))), PAD, dtype=torch.long)
    for i, p in enumerate(prompts):
        prefix[i, : len(p)] = torch.tensor(p, dtype=torch.long)
    return src, src.eq(PAD), prefix


def _search(model: nn.Module, prompts: list[list[int]], cfg: GenerateConfig, first_id: int = 0):
    src, mask, prefix = _batch(prompts, first_id)
    return translate_batch([model], src, mask, cfg, prefix=prefix)


def _greedy_by_hand(model: RecordingLM, prompt: list[int], cfg: GenerateConfig) -> tuple[list[int], list[float]]:
    """The continuation greedy search must give: argmax of log_softmax(E[last] + P[pos]) with PAD and BOS
    banned, EOS banned before min_len tokens, EOS forced after max_len_b tokens."""
    seq, out, lps = [BOS, *prompt], [], []
    while True:
        lp = torch.log_softmax(model.E[seq[-1]] + model.P[len(seq) - 1], dim=-1)
        eos_lp = float(lp[EOS])
        lp[PAD] = lp[BOS] = -math.inf
        if len(out) < cfg.min_len:
            lp[EOS] = -math.inf
        tok = EOS if len(out) == cfg.max_len_b else int(lp.argmax())
        lps.append(eos_lp if tok == EOS else float(lp[tok]))
        out.append(tok)
        seq.append(tok)
        if tok == EOS:
            return out, lps


@pytest.mark.parametrize(
    "cfg",
    [
        GenerateConfig(beam=1, max_len_b=6),
        GenerateConfig(beam=3, nbest=2, max_len_b=6),
        GenerateConfig(beam=2, nbest=2, sampling=True, sampling_topk=3, max_len_b=6),
    ],
    ids=["greedy", "beam", "sampling"],
)
def test_every_search_feeds_each_prompt_exactly_and_returns_the_continuation(cfg):
    model = RecordingLM()
    src, mask, prefix = _batch(PROMPTS)
    hyps = translate_batch([model], src, mask, cfg, prefix=prefix)
    seen = {(sid, tuple(seq)) for sid, seq in model.seen}
    if not cfg.sampling and cfg.beam == 1 or cfg.sampling:  # rows never interact: each one is its prompt's
        for sid, seq in seen:  # every decoder sequence of sentence i starts with BOS + its prompt
            prompt = PROMPTS[sid - 4]
            assert seq[0] == BOS and list(seq[1 : 1 + len(prompt)]) == prompt[: len(seq) - 1], (sid, seq)
    for i, h in enumerate(hyps):
        assert len(h) == cfg.nbest
        for hyp in h:  # the continuation only, decoded after the prompt: at most max_len_b tokens, then EOS
            assert (i + 4, (BOS, *PROMPTS[i], *hyp.tokens[:-1].tolist())) in seen
            assert hyp.tokens[-1] == EOS and len(hyp.tokens) <= cfg.max_len_b + 1
            assert len(hyp.positional_scores) == len(hyp.tokens)
            assert hyp.score == pytest.approx(float(hyp.positional_scores.sum()) / len(hyp.tokens), abs=1e-5)


def test_greedy_continuation_equals_the_hand_computed_one():
    model, cfg = RecordingLM(), GenerateConfig(beam=1, max_len_b=5, min_len=2)
    src, mask, prefix = _batch(PROMPTS)
    hyps = translate_batch([model], src, mask, cfg, prefix=prefix)
    for prompt, h in zip(PROMPTS, hyps):
        tokens, lps = _greedy_by_hand(model, prompt, cfg)
        assert h[0].tokens.tolist() == tokens
        assert h[0].positional_scores.tolist() == pytest.approx(lps, abs=1e-5)


def test_prompts_of_one_length_go_in_one_decode_call_and_the_shortest_common_part_otherwise():
    model = RecordingLM()
    _search(model, [[4, 5, 6], [7, 8, 9]], GenerateConfig(beam=1, max_len_b=4))
    assert model.widths[0] == 4 and set(model.widths[1:]) == {1}  # BOS + the whole prompt, then one token a step
    model = RecordingLM()
    _search(model, [[4, 5, 6], [7]], GenerateConfig(beam=1, max_len_b=4))
    assert model.widths[0] == 2 and set(model.widths[1:]) == {1}  # BOS + the one token both are forced to


@pytest.mark.parametrize("beam", [1, 3])
def test_a_prompt_gets_the_same_continuation_alone_and_among_prompts_of_other_lengths(beam):
    cfg = GenerateConfig(beam=beam, nbest=beam, max_len_b=7)
    together = _search(RecordingLM(), PROMPTS, cfg)
    for i, prompt in enumerate(PROMPTS):
        alone = _search(RecordingLM(), [prompt], cfg, first_id=i)[0]
        assert [h.tokens.tolist() for h in alone] == [h.tokens.tolist() for h in together[i]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in together[i]], abs=1e-5)


def test_translation_forced_to_the_start_of_its_own_output_continues_it_unchanged(tiny_model):
    loaded = load_model(tiny_model)
    src = torch.tensor([[10, 11, 12, EOS], [13, 14, EOS, PAD]])
    cfg = GenerateConfig(beam=1, max_len_b=8, min_len=6)
    free = translate_batch([loaded.model], src, src.eq(PAD), cfg)
    prefix = torch.stack([h[0].tokens[:2] for h in free])  # (2, 2) the first two tokens of each translation
    # --max-len-b and --min-len count the tokens after the prefix
    after = GenerateConfig(beam=1, max_len_b=6, min_len=4)
    forced = translate_batch([loaded.model], src, src.eq(PAD), after, prefix=prefix)
    for f, h in zip(forced, free):
        assert f[0].tokens.tolist() == h[0].tokens[2:].tolist()
        assert f[0].positional_scores.tolist() == pytest.approx(h[0].positional_scores[2:].tolist(), abs=1e-5)


def test_cut_prompt_keeps_the_last_pieces():
    assert cut_prompt([1, 2, 3], 5) == ([1, 2, 3], False)
    assert cut_prompt([4, 5, 6, 7], 2) == ([6, 7], True)
    assert cut_prompt([4], 0) == ([], True)


# ----------------------------------------------------------------------------- a trained language model
@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return lm_files(tmp_path_factory)


def _starts_and_rests(words: int = 3) -> tuple[list[str], list[str]]:
    split = [s.split() for s in SENTENCES]
    return [" ".join(w[:words]) for w in split], [" ".join(w[words:]) for w in split]


@pytest.mark.parametrize("beam", ["1", "4"])
def test_the_overfitted_model_continues_each_training_sentence_with_exactly_its_rest(
    beam, lm, tmp_path, monkeypatch, capsys
):
    starts, rests = _starts_and_rests()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(starts) + "\n", encoding="utf-8")
    args = ("generate", "--path", str(lm.checkpoint), "--input", str(prompts), "--beam", beam)
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert out.splitlines() == rests
    assert "continued 4 sentences" in err


def test_fairseq_format_shows_the_prompt_and_the_continuation(lm, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("my old cat\n", encoding="utf-8")
    args = ("generate", "--path", str(lm.checkpoint), "--input", str(prompts), "--format", "fairseq")
    code, out, _ = cli(monkeypatch, capsys, *args)
    lines = dict(line.split("\t", 1) for line in out.splitlines())
    assert code == 0 and lines["S-0"] == "my old cat"
    score, text = lines["D-0"].split("\t")
    assert text == "sleeps all day in the warm sun"
    hyp = LanguageModel.load(str(lm.checkpoint), device="cpu").generate("my old cat")[0]
    assert float(score) == hyp.score and len(lines["P-0"].split()) == len(hyp.pieces) + 1


def test_an_empty_prompt_continues_from_bos_alone(lm):
    model = LanguageModel.load(str(lm.checkpoint), device="cpu")
    cfg = GenerateConfig(beam=1)
    src = torch.tensor([[EOS]])
    free = translate_batch(model.models, src, src.eq(PAD), cfg)[0][0]  # no prefix: the model's own sentence start
    got = model.generate(["", "   "], beam=1)
    assert got[0][0].text == got[1][0].text == model.tok.decode(free.tokens.tolist()) != ""


def test_interactive_continues_each_line(lm):
    cfg = InteractiveConfig(generate=GenerateConfig(path=str(lm.checkpoint), beam=1, device="cpu"))
    out = io.StringIO()
    starts, rests = _starts_and_rests(4)
    run_interactive(cfg, stdin=[(s + "\n").encode() for s in starts], stdout=out)
    assert out.getvalue().splitlines() == rests


def test_a_prompt_longer_than_the_positions_keeps_its_last_pieces(lm, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(" ".join(SENTENCES * 30) + " the quick brown\n", encoding="utf-8")
    args = ("generate", "--path", str(lm.checkpoint), "--input", str(prompts), "--beam", "1", "--max-len-b", "3")
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0 and len(out.splitlines()) == 1
    assert "warning: 1 prompt(s) longer than the model's 1022 prompt pieces kept their last 1022" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--print-alignment", "--format", "fairseq"), "--print-alignment shows cross-attention"),
        (("DATA",), "is a language model: give prompts with --input"),
    ],
)
def test_what_a_language_model_cannot_do_is_refused_in_one_line(extra, message, lm, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("the quick\n", encoding="utf-8")
    extra = tuple(str(lm.data) if e == "DATA" else e for e in extra)
    source = () if extra[0] == str(lm.data) else ("--input", str(prompts))
    code, out, err = cli(monkeypatch, capsys, "generate", *extra, "--path", str(lm.checkpoint), *source)
    assert code == 2 and message in err and err.count("\n") == 1 and out == "", err


def test_a_masked_lm_checkpoint_is_refused_by_generate_in_one_line(lm, tmp_path, monkeypatch, capsys):
    path = mlm_checkpoint(lm, tmp_path / "mlm.pt")
    prompts = tmp_path / "p.txt"
    prompts.write_text("the quick\n", encoding="utf-8")
    code, out, err = cli(monkeypatch, capsys, "generate", "--path", str(path), "--input", str(prompts))
    assert code == 2 and err.count("\n") == 1 and out == "", err
    assert "is a masked language model (mlm_tiny)" in err and "nmt fill-mask" in err
