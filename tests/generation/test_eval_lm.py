"""`nmt eval-lm`: the loss and perplexity computed by hand, every token scored once, context that helps,
and the inputs it refuses."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from helpers import cli
from lmfixture import lm_files

from nmt.checkpoint import load_model
from nmt.config import EvalLMConfig
from nmt.data.dataset import read_meta
from nmt.data.monolingual import load_text
from nmt.data.tokenizer import BOS, EOS
from nmt.generation.eval_lm import context_blocks, run


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return lm_files(tmp_path_factory)


def _eval(monkeypatch, capsys, lm, *flags) -> dict:
    code, out, err = cli(monkeypatch, capsys, "eval-lm", str(lm.data), "--path", str(lm.checkpoint), "--json", *flags)
    assert code == 0, err
    return json.loads(out)


def _stream(lm, split: str) -> list[int]:
    """The split's token stream: each sentence's pieces and EOS."""
    text = load_text(str(lm.data), split, read_meta(str(lm.data)))
    return [t for i in range(len(text)) for t in [*text[i].tolist(), EOS]]


@pytest.mark.parametrize("n, c", [(1000, 0), (7, 0), (7, 5)])
def test_the_loss_is_the_mean_negative_log_softmax_at_the_targets_computed_by_hand(n, c, lm, monkeypatch, capsys):
    stream = _stream(lm, "valid")
    model = load_model(str(lm.checkpoint)).model
    shifted = [BOS, *stream[:-1]]  # the input of every stream position
    nll = 0.0
    for s in range(0, len(stream), n):
        e, first = min(s + n, len(stream)), max(s - c, 0)
        with torch.no_grad():
            logits = model(torch.tensor([shifted[first:e]]))[0]  # (T, V)
        lprobs = torch.log_softmax(logits.double(), dim=-1)
        nll -= sum(float(lprobs[p - first, stream[p]]) for p in range(s, e))  # context positions not scored
    got = _eval(
        monkeypatch, capsys, lm, "--gen-subset", "valid", "--tokens-per-sample", str(n), "--context-window", str(c)
    )
    assert got["tokens"] == len(stream)
    assert got["loss_nats"] == pytest.approx(nll / len(stream), rel=1e-5)
    assert got["loss_bits"] == pytest.approx(got["loss_nats"] / math.log(2), rel=1e-12)
    assert got["perplexity"] == pytest.approx(math.exp(nll / len(stream)), rel=1e-5)
    assert got["perplexity"] == pytest.approx(2 ** got["loss_bits"], rel=1e-9)


@pytest.mark.parametrize("n, c", [(1, 0), (3, 2), (5, 0), (5, 12), (40, 3)])
def test_blocks_tile_the_stream_so_every_token_is_scored_exactly_once(n, c):
    sizes = np.array([4, 1, 9, 3])
    rows = context_blocks(sizes, n, c)  # (input start, block start, block end, bos)
    scored = np.concatenate([np.arange(s, e) for _, s, e, _ in rows])
    assert scored.tolist() == list(range(int((sizes + 1).sum())))
    assert all(first == max(s - c, 0) and bos == (first == 0) and e - s <= n for first, s, e, bos in rows)


def test_context_lowers_the_loss_of_the_trained_model_and_changes_no_count(lm, monkeypatch, capsys):
    runs = [
        _eval(monkeypatch, capsys, lm, "--gen-subset", "valid", "--tokens-per-sample", "8", "--context-window", c)
        for c in ("0", "8", "16")
    ]
    assert runs[0]["loss_nats"] > runs[1]["loss_nats"] >= runs[2]["loss_nats"]
    assert {r["tokens"] for r in runs} == {len(_stream(lm, "valid"))}


def test_text_report_says_nats_bits_and_perplexity(lm, monkeypatch, capsys):
    args = ("eval-lm", str(lm.data), "--path", str(lm.checkpoint), "--gen-subset", "valid", "--context-window", "4")
    code, out, _ = cli(monkeypatch, capsys, *args)
    score, _ = run(EvalLMConfig(data=str(lm.data), path=str(lm.checkpoint), gen_subset="valid", context_window=4))
    assert code == 0
    assert out.splitlines() == [
        # the default block is the training run's --tokens-per-sample (64), less the context
        f"valid: {score.tokens} tokens in blocks of 60 with 4 tokens of context",
        f"loss {score.loss:.4f} nats/token ({score.bits:.4f} bits), perplexity {score.perplexity:.2f}",
    ]


def test_default_block_is_the_trained_one_or_the_positions_when_the_checkpoint_does_not_say(lm, tmp_path):
    cfg = EvalLMConfig(data=str(lm.data), path=str(lm.checkpoint), gen_subset="valid")
    default, info = run(cfg)
    assert info["tokens_per_sample"] == 64
    assert default == run(dataclasses.replace(cfg, tokens_per_sample=64))[0]
    payload = torch.load(lm.checkpoint, map_location="cpu", weights_only=False)
    del payload["train_state"]
    bare = tmp_path / "bare.pt"
    torch.save(payload, bare)
    assert run(dataclasses.replace(cfg, path=str(bare)))[1]["tokens_per_sample"] == 1024


@pytest.mark.parametrize(
    "case, message",
    [
        ("translation checkpoint", "is a translation model (transformer_tiny); eval-lm scores a language model"),
        ("parallel data", "holds parallel data for translation; eval-lm scores a monolingual data dir"),
        ("too long", "--tokens-per-sample 1000 + --context-window 100 must be between 1 and the model's 1024"),
        ("ensemble", "--path: eval-lm scores one checkpoint, not an ensemble"),
        ("no split", "has no split 'test2'"),
    ],
)
def test_what_eval_lm_refuses_is_one_line_and_exit_2(case, message, lm, tiny_model, toy_data_dir, monkeypatch, capsys):
    data, path, extra = str(lm.data), str(lm.checkpoint), []
    if case == "translation checkpoint":
        path = tiny_model
    elif case == "parallel data":
        data = str(toy_data_dir)
    elif case == "too long":
        extra = ["--tokens-per-sample", "1000", "--context-window", "100"]
    elif case == "ensemble":
        path = f"{path}:{path}"
    else:
        extra = ["--gen-subset", "test2"]
    code, out, err = cli(monkeypatch, capsys, "eval-lm", data, "--path", path, *extra)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
