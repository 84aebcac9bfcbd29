"""The Python API of language models: `LanguageModel` gives what `nmt generate` and `nmt eval-lm` give,
and each class refuses the checkpoints of the others with a pointer to the right one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import cli
from lmfixture import SENTENCES, lm_files, mlm_checkpoint

from nmt import LanguageModel, Translator
from nmt.config import VisualizeConfig
from nmt.errors import UserError
from nmt.viz import attention as V


@pytest.fixture(scope="module")
def lm_paths(tmp_path_factory):
    return lm_files(tmp_path_factory)


@pytest.fixture(scope="module")
def lm(lm_paths):
    return LanguageModel.load(str(lm_paths.checkpoint), device="cpu")


PROMPTS = ["the quick brown", "", "a small red boat sails", "my"]


@pytest.mark.parametrize("flags", [{"beam": 1}, {"beam": 3, "nbest": 2, "lenpen": 0.5}])
def test_generate_equals_the_cli(flags, lm, lm_paths, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    base = ("generate", "--path", str(lm_paths.checkpoint), "--input", str(prompts), *args)
    code, out, err = cli(monkeypatch, capsys, *base, "--format", "fairseq")
    assert code == 0, err
    got = lm.generate(PROMPTS, **flags)
    h_lines = [line.split("\t") for line in out.splitlines() if line.startswith("H-")]
    d_lines = [line.split("\t")[2] for line in out.splitlines() if line.startswith("D-")]
    flat = [c for per_prompt in got for c in per_prompt]
    assert [c.text for c in flat] == d_lines
    assert [c.score for c in flat] == [float(h[1]) for h in h_lines]
    assert [" ".join(c.pieces) for c in flat] == [h[2] for h in h_lines]
    code, out, _ = cli(monkeypatch, capsys, *base)
    assert out.splitlines() == [c.text for c in flat]


def test_one_prompt_gives_its_list_and_continues_a_training_sentence(lm):
    best = lm.generate("two tall trees", beam=1)[0]
    assert best.text == "stand near the quiet river bank"
    assert len(best.positional_scores) == len(best.pieces) + 1


def test_score_equals_eval_lm_on_a_split_of_that_one_sentence(lm, lm_paths, monkeypatch, capsys):
    # the test split holds SENTENCES[0] alone: its stream is that sentence's pieces and EOS, read from BOS
    args = ("eval-lm", str(lm_paths.data), "--path", str(lm_paths.checkpoint), "--json")
    code, out, _ = cli(monkeypatch, capsys, *args)
    assert code == 0
    cli_score = json.loads(out)
    scored = lm.score(SENTENCES[0])
    assert scored.tokens == cli_score["tokens"] == len(scored.pieces) + 1
    assert scored.loss == pytest.approx(cli_score["loss_nats"], rel=1e-6)
    assert scored.bits == pytest.approx(cli_score["loss_bits"], rel=1e-6)
    assert scored.perplexity == pytest.approx(cli_score["perplexity"], rel=1e-6)
    assert scored.logprob == pytest.approx(-scored.loss * scored.tokens, rel=1e-12)


def test_perplexity_is_exp_of_the_mean_loss_over_every_token_of_the_texts(lm):
    texts = [SENTENCES[1], "the cat sees a boat", SENTENCES[3]]
    scored = lm.score(texts, max_tokens=40)  # several batches, returned in input order
    assert [s.text for s in scored] == texts
    assert [s.logprob for s in scored] == pytest.approx([lm.score(t).logprob for t in texts], rel=1e-6)
    total = sum(s.tokens for s in scored)
    assert lm.perplexity(texts) == pytest.approx(math.exp(-sum(s.logprob for s in scored) / total), rel=1e-9)
    assert lm.perplexity(SENTENCES[1]) == pytest.approx(scored[0].perplexity, rel=1e-9)
    assert lm.perplexity(SENTENCES[1]) < lm.perplexity("the cat sees a boat")  # it knows its training text


def test_attention_is_visualize_attn_capture_and_causal(lm, lm_paths, tmp_path):
    attn = lm.attention(SENTENCES[2])
    assert list(attn.weights) == ["dec_self"] and attn.label == "checkpoint_best"
    w = attn.weights["dec_self"][0]  # (H, T, T): BOS + pieces
    assert w.shape[0] == 2 and w.shape[1] == w.shape[2] == len(lm.score(SENTENCES[2]).pieces) + 1
    assert np.allclose(w.sum(axis=-1), 1, atol=1e-5)
    assert np.all(np.triu(w, k=1) == 0)  # no position attends to a later one
    cfg = VisualizeConfig(path=str(lm_paths.checkpoint), source=SENTENCES[2], out=str(tmp_path), dpi=30, device="cpu")
    assert json.dumps(attn.stats()) == json.dumps(V.run(cfg).rows)
    with pytest.raises(UserError, match="attention: text must be a str"):
        lm.attention([SENTENCES[2]])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda lm: lm.generate([]), "prompts is empty"),
        (lambda lm: lm.generate("x", bogus=1), "unknown option 'bogus'"),
        (lambda lm: lm.generate("x", beam="5"), "option beam='5': expected int"),
        (lambda lm: lm.score("x", beam=2), "unknown option 'beam'; valid: max_tokens, batch_size"),
        (lambda lm: lm.score(" ".join(["x"] * 2000)), "the model takes at most 1023"),
    ],
)
def test_mistakes_are_one_line_user_errors(call, message, lm):
    with pytest.raises(UserError, match=message):
        call(lm)


def test_each_class_refuses_the_others_checkpoints(lm_paths, tiny_model, tmp_path):
    with pytest.raises(UserError, match="is a language model: load it with nmt.LanguageModel"):
        Translator.load(str(lm_paths.checkpoint), device="cpu")
    with pytest.raises(UserError, match="is a translation model: load it with nmt.Translator"):
        LanguageModel.load(tiny_model, device="cpu")
    mlm = str(mlm_checkpoint(lm_paths, tmp_path / "mlm.pt"))
    for cls in (Translator, LanguageModel):
        with pytest.raises(UserError, match=r"masked language model \(mlm_tiny\).*nmt.MaskFiller"):
            cls.load(mlm, device="cpu")
