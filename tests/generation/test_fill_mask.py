"""`nmt fill-mask`: a masked LM trained on a few sentences fills their words back in; <mask> is one
piece with or without spaces; specials are never offered; other checkpoints and bad input end in one line.

Shape legend: V vocabulary.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch
from helpers import cli
from mlmdata import trained_models

from nmt.checkpoint import load_model
from nmt.data.masking import NUM_SPECIAL
from nmt.data.tokenizer import EOS, PAD
from nmt.generation.fill_mask import encode_masked, fill_mask, mask_id


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    return trained_models(tmp_path_factory)


def _json(monkeypatch, capsys, path: str, *args) -> list[dict]:
    code, out, err = cli(monkeypatch, capsys, "fill-mask", "--path", path, "--format", "json", *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_the_masked_word_of_a_training_sentence_comes_first(models, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "fill-mask", "--path", models["mlm"], "the cat <mask> on the mat .")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "the cat <mask> on the mat ." and len(lines) == 2
    assert lines[1].startswith("  <mask> 1: sat 0.") and lines[1].count(" | ") == 4  # --topk 5
    [result] = _json(monkeypatch, capsys, models["mlm"], "--topk", "3", "the dog <mask> to the park .")
    assert result["text"] == "the dog <mask> to the park ." and len(result["masks"]) == 1
    fillers = result["masks"][0]
    assert [f["piece"] for f in fillers][0] == "▁ran" and fillers[0]["token"] == "ran" and len(fillers) == 3
    probs = [f["probability"] for f in fillers]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 and probs[0] > 0.5


def test_several_masks_are_filled_independently_in_one_pass(models, monkeypatch, capsys):
    texts = ["the cat <mask> <mask> the mat .", "<mask> friend reads a good <mask> ."]
    results = _json(monkeypatch, capsys, models["mlm"], "--topk", "2", *texts)
    assert [r["text"] for r in results] == texts
    assert [[m[0]["token"] for m in r["masks"]] for r in results] == [["sat", "on"], ["my", "book"]]


def test_mask_is_one_piece_with_or_without_spaces(models):
    tok = load_model(models["mlm"]).src_tok
    mask = mask_id(tok)
    assert mask == 4 and tok.pieces([mask]) == ["<mask>"]
    # SentencePiece cuts the user-defined symbol out of the text: the space before it becomes a lone "▁" ...
    assert tok.pieces(tok.encode("the cat <mask> on")) == ["▁the", "▁cat", "▁", "<mask>", "▁on"]
    # ... which fill-mask drops, as training replaced whole pieces ("▁sat") by <mask>
    want = ["▁the", "▁cat", "<mask>", "▁on"]
    for text in ("the cat <mask> on", "the cat<mask> on", "the cat  <mask>  on"):
        assert tok.pieces(encode_masked(tok, text, mask)) == want, text
    assert tok.pieces(encode_masked(tok, "<mask> cat", mask)) == ["<mask>", "▁cat"]
    assert tok.pieces(encode_masked(tok, "the <mask><mask>", mask)) == ["▁the", "<mask>", "<mask>"]
    assert tok.pieces(encode_masked(tok, "cat<mask>", mask)) == ["▁cat", "<mask>"]


def test_probabilities_are_the_models_and_specials_are_never_offered(models):
    loaded = load_model(models["mlm"])
    tok, model = loaded.src_tok, loaded.model
    text = "the cat <mask> on the mat ."
    [result] = fill_mask(model, tok, [text], topk=1000)
    fillers = result.masks[0]
    vocab = tok.vocab_size
    assert len(fillers) == vocab - NUM_SPECIAL - 1  # every piece but PAD, UNK, BOS, EOS and <mask>
    assert not {f.piece for f in fillers} & {"<pad>", "<unk>", "<s>", "</s>", "<mask>"}
    ids = torch.tensor([encode_masked(tok, text, 4) + [EOS]])  # (1, T)
    with torch.no_grad():
        probs = model(ids, ids.eq(PAD))[0, 2].softmax(-1)  # (V,) at the mask
    left_out = probs[:NUM_SPECIAL].sum() + probs[4]
    assert sum(f.probability for f in fillers) == pytest.approx(1 - float(left_out), abs=1e-5)
    assert fillers[0].probability == pytest.approx(float(probs.max()), abs=1e-6)
    # batching does not change a text's results
    alone = fill_mask(model, tok, [text], 3)[0]
    batched = fill_mask(model, tok, ["the dog <mask> to the park .", text], 3, batch_size=2)[1]
    assert [f.piece for f in batched.masks[0]] == [f.piece for f in alone.masks[0]]
    assert [f.probability for f in batched.masks[0]] == pytest.approx([f.probability for f in alone.masks[0]])


def test_input_file_and_stdin(models, tmp_path, monkeypatch, capsys):
    f = tmp_path / "in.txt"
    f.write_text("the cat <mask> on the mat .\nbirds <mask> in the tall tree .\n", encoding="utf-8")
    results = _json(monkeypatch, capsys, models["mlm"], "--input", str(f), "--topk", "1")
    assert [r["masks"][0][0]["token"] for r in results] == ["sat", "sing"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f.read_bytes())))
    assert _json(monkeypatch, capsys, models["mlm"], "--input", "-", "--topk", "1") == results


@pytest.mark.parametrize(
    "args, message",
    [
        (["the cat sat", "a <mask>"], "error: text 1 has no <mask>: 'the cat sat'"),
        (["--input", "IN"], "error: IN: line 2 has no <mask>: 'no mask here'"),
        (["a <mask>", "--input", "IN"], "error: give texts as arguments or --input FILE, not both"),
        ([], "error: give TEXT or --input"),
        (["a <mask>", "--topk", "0"], "error: --topk must be at least 1, got 0"),
        (["a <mask>", "--format", "xml"], "error: --format 'xml': valid: text, json"),
        (["--input", "MISSING"], "error: --input MISSING: No such file or directory"),
    ],
)
def test_bad_input_is_one_line(args, message, models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN").write_text("a <mask> .\nno mask here\n", encoding="utf-8")
    code, out, err = cli(monkeypatch, capsys, "fill-mask", "--path", models["mlm"], *args)
    assert (code, out, err) == (2, "", message + "\n")


def test_a_language_model_or_translation_checkpoint_is_refused(models, tiny_model, monkeypatch, capsys):
    for path, what in (
        (models["lm"], "language_modeling model (architecture transformer_lm_tiny)"),
        (tiny_model, "translation model (architecture transformer_tiny)"),
    ):
        code, out, err = cli(monkeypatch, capsys, "fill-mask", "--path", path, "a <mask>")
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err == f"error: {path} is a {what}; fill-mask needs a masked LM (--task masked_lm)\n"


def test_a_text_longer_than_the_model_is_refused(models, monkeypatch, capsys):
    text = "the cat <mask> on the mat ." + " the mat" * 300
    code, _, err = cli(monkeypatch, capsys, "fill-mask", "--path", models["mlm"], text)
    assert (
        code == 2 and err.startswith("error: text 1 has 607 pieces; the model takes at most ") and err.count("\n") == 1
    )
