"""The Python API (nmt.Translator) against the commands it shares its code with: generate, visualize-attn."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_TRAIN, cli

import nmt
from nmt import Attention, Scored, Translation, Translator, plot_attention
from nmt.config import VisualizeConfig
from nmt.errors import UserError
from nmt.flags import parse_train_args
from nmt.training.loop import train
from nmt.viz import attention as V
from nmt.viz.capture import capture_sentence


def train_tiny(data_dir: Path, save_dir: Path, seed: int = 1, updates: int = 150) -> str:
    """A 1-layer Transformer trained a few updates on the toy corpus; the path of its best checkpoint."""
    flags = [str(data_dir), "--save-dir", str(save_dir), *TINY_TRAIN, "--max-update", str(updates)]
    cfg, overrides = parse_train_args(flags + ["--lr", "5e-3", "--warmup-updates", "10", "--seed", str(seed)])
    assert train(cfg, overrides) == 0
    return str(save_dir / "checkpoint_best.pt")


@pytest.fixture(scope="module")
def ckpts(toy_data_dir, tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("api")
    return {"a": train_tiny(toy_data_dir, d / "a", seed=1), "b": train_tiny(toy_data_dir, d / "b", seed=2)}


@pytest.fixture(scope="module")
def lines(toy_raw_dir) -> list[str]:
    return (toy_raw_dir / "test.en").read_text(encoding="utf-8").split("\n")[:6] + ["", "The red car sees a dog."]


def parse_fairseq(text: str) -> dict[int, list[tuple[float, list[str], str, list[str]]]]:
    """{sentence: [(H score, H pieces, D text, P scores as printed)]} of `nmt generate --format fairseq`."""
    out: dict[int, list] = {}
    hyp: list = []
    for line in text.splitlines():
        tag, _, rest = line.partition("\t")
        kind, i = tag.split("-")[0], int(tag.split("-")[1])
        out.setdefault(i, [])
        if kind == "H":
            score, pieces = rest.split("\t")
            hyp = [float(score), pieces.split(" ") if pieces else []]
        elif kind == "D":
            hyp.append(rest.split("\t", 1)[1])
        elif kind == "P":
            out[i].append((*hyp, rest.split(" ")))
    return out


def flags(options: dict) -> list[str]:
    out = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    return out


# ----------------------------------------------------------------------------- translate
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"beam": 4, "nbest": 3, "lenpen": 0.6, "max_len_b": 12},
        {"beam": 1, "no_repeat_ngram_size": 2},
        {"sampling": True, "beam": 3, "nbest": 2, "sampling_topk": 8, "seed": 7, "temperature": 1.5},
    ],
)
@pytest.mark.parametrize("ensemble", [False, True])
def test_translate_equals_generate_cli(ckpts, lines, tmp_path, monkeypatch, capsys, options, ensemble):
    path = f"{ckpts['a']}:{ckpts['b']}" if ensemble else ckpts["a"]
    src = tmp_path / "in.en"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["generate", "--path", path, "--input", str(src), "--format", "fairseq", "--device", "cpu"]
    code, out, _ = cli(monkeypatch, capsys, *args, *flags(options))
    assert code == 0
    expected = parse_fairseq(out)
    tr = Translator.load([ckpts["a"], ckpts["b"]] if ensemble else path, device="cpu")
    got = tr.translate(lines, **options)
    assert len(got) == len(lines) == len(expected)
    # a blank line: no hypothesis from the API; the fairseq lines hold the empty translation, score 0
    assert got[6] == [] and [(h[0], h[2]) for h in expected[6]] == [(0.0, "")]
    for i, hyps in enumerate(got):
        if i == 6:
            continue
        assert len(hyps) == len(expected[i]) == options.get("nbest", 1)
        for h, (score, pieces, text, pos) in zip(hyps, expected[i]):
            assert isinstance(h, Translation)
            assert (h.score, h.pieces, h.text) == (score, pieces, text)  # the very same float
            assert [f"{p:.4f}" for p in h.positional_scores] == pos


def test_a_single_sentence_gives_its_hypotheses(ckpts, lines):
    tr = Translator.load(ckpts["a"], device="cpu")
    one = tr.translate(lines[0], beam=3, nbest=2)
    assert one == tr.translate([lines[0]], beam=3, nbest=2, batch_size=None, lenpen=1)[0] and len(one) == 2
    assert one[0].score >= one[1].score
    assert one[0].score == pytest.approx(sum(one[0].positional_scores) / len(one[0].positional_scores), abs=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda tr: tr.translate([]), "sentences is empty"),
        (lambda tr: tr.translate(["ok", 3]), "sentences[1] is a int"),
        (lambda tr: tr.translate(None), "give a str or a list of str"),
        (lambda tr: tr.translate("x", beam=0), "--beam must be >= 1, got 0"),
        (lambda tr: tr.translate("x", beam=2, nbest=3), "--nbest must be between 1 and --beam (2)"),
        (lambda tr: tr.translate("x", bean=4), "unknown option 'bean'"),
        (lambda tr: tr.translate("x", beam="5"), "option beam='5': expected int, like the default 5"),
        (lambda tr: tr.translate("x", sampling=1), "option sampling=1: expected bool, like the default False"),
        (lambda tr: tr.translate("x", nbest=True), "option nbest=True: expected int"),
        (lambda tr: tr.translate("x", batch_size=2.5), "option batch_size=2.5: expected int, like the default None"),
        (lambda tr: tr.score("a", "b", lenpen="1"), "option lenpen='1': expected float, like the default 1.0"),
        (lambda tr: tr.translate("x", output="out.txt"), "unknown option 'output'"),
        (lambda tr: tr.translate("x", amp="fp16"), "amp='fp16' needs a CUDA device"),
        (lambda tr: tr.score(["a", "b"], ["c"]), "sources and targets differ in length: 2 and 1"),
        (lambda tr: tr.score("a", ["c"]), "sources and targets differ in length"),
        (lambda tr: tr.score("a", "b", beam=2), "unknown option 'beam'; valid: lenpen, max_tokens, batch_size"),
        (lambda tr: tr.score("a " * 2000, "b"), "sources[0] has"),
        (lambda tr: tr.attention("a", beam=0), "--beam must be at least 1"),
        (lambda tr: tr.attention("a", lenpen=1.0), "unknown option 'lenpen'; valid: beam"),
        (lambda tr: tr.attention(["a"]), "source (and target, when given) must be a str"),
    ],
)
def test_bad_input_is_a_user_error_naming_it(ckpts, call, message):
    with pytest.raises(UserError) as e:
        call(Translator.load(ckpts["a"], device="cpu"))
    assert message in str(e.value)


def test_load_errors(ckpts, tmp_path):
    with pytest.raises(UserError, match="names no checkpoint"):
        Translator.load([])
    with pytest.raises(UserError, match="--device 'tpu'"):
        Translator.load(ckpts["a"], device="tpu")
    with pytest.raises(UserError, match="missing.pt"):
        Translator.load(tmp_path / "missing.pt", device="cpu")


# ----------------------------------------------------------------------------- score
def test_score_gives_back_the_search_score_of_its_own_hypotheses(ckpts, lines):
    tr = Translator.load(f"{ckpts['a']}:{ckpts['b']}", device="cpu")
    sources = [s for s in lines if s]
    hyps = tr.translate(sources, beam=4, nbest=2, lenpen=0.6)
    pairs = [(s, h) for s, nbest in zip(sources, hyps) for h in nbest]
    scored = tr.score([s for s, _ in pairs], [h.text for _, h in pairs], lenpen=0.6, max_tokens=40)
    same = [(h, sc) for (_, h), sc in zip(pairs, scored) if sc.pieces == h.pieces]  # text re-encodes the same
    assert len(same) >= len(pairs) // 2
    for h, sc in same:
        assert isinstance(sc, Scored) and len(sc.positional_scores) == len(h.pieces) + 1
        assert sc.positional_scores == pytest.approx(h.positional_scores, abs=1e-5)
        assert sc.logprob == pytest.approx(sum(h.positional_scores), abs=1e-4)
        assert sc.score == pytest.approx(h.score, abs=1e-5)
        assert sc.score == pytest.approx(sc.logprob / (len(h.pieces) + 1) ** 0.6, abs=1e-9)
    # Batches of a few sentences (max_tokens 40) or one at a time: the same numbers.
    alone = tr.score(pairs[1][0], pairs[1][1].text, lenpen=0.6)
    assert alone.logprob == pytest.approx(scored[1].logprob, abs=1e-5) and alone.target == pairs[1][1].text


def test_score_prefers_the_models_translation_to_a_scrambled_one(ckpts, lines):
    tr = Translator.load(ckpts["a"], device="cpu")
    best = tr.translate(lines[0], beam=5)[0]
    words = best.text.split()
    scrambled = " ".join(reversed(words)) + " " + " ".join(words)
    good, bad = tr.score([lines[0], lines[0]], [best.text, scrambled])
    assert good.logprob > bad.logprob and good.score > bad.score
    assert math.isfinite(bad.logprob)


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("target", [None, "le chat rouge voit un chien ."])
def test_attention_equals_visualize_attn(ckpts, tmp_path, target):
    source = "The red car sees a dog."
    tr = Translator.load(ckpts["a"], device="cpu")
    attn = tr.attention(source, target, beam=3)
    cfg = VisualizeConfig(
        path=ckpts["a"], source=source, target=target, beam=3, out=str(tmp_path), dpi=30, device="cpu"
    )
    result = V.run(cfg)
    sentence = result.sentence
    assert isinstance(attn, Attention)
    assert (attn.source, attn.target, attn.target_origin) == (sentence.src_text, sentence.tgt_text, sentence.tgt_origin)
    loaded = tr.loaded[0]
    assert attn.src_pieces == loaded.src_tok.pieces(sentence.src + [3])
    assert attn.tgt_pieces == loaded.tgt_tok.pieces(sentence.tgt + [3])
    assert attn.tgt_in_pieces == loaded.tgt_tok.pieces([2] + sentence.tgt)
    captured = capture_sentence(loaded.model, sentence.src, sentence.tgt, "cpu")
    assert list(attn.weights) == list(captured) == ["enc_self", "dec_self", "cross"]
    for kind, layers in captured.items():
        assert all(np.array_equal(a, b) for a, b in zip(attn.weights[kind], layers, strict=True)), kind
    rows = attn.stats()
    assert len(rows) == len(result.rows) == 3 * 2  # kinds x heads of the one layer
    for mine, theirs in zip(rows, result.rows, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            same = value == theirs[key] or (isinstance(value, float) and math.isnan(value) and math.isnan(theirs[key]))
            assert same, (key, value, theirs[key])


def test_plot_draws_the_files_visualize_attn_writes(ckpts, tmp_path):
    """One code path: the API's figure, rendered as the command renders, is byte for byte its file."""
    source, target = "The red car sees a dog.", "le chat voit un chien ."
    cfg = VisualizeConfig(path=ckpts["a"], source=source, target=target, out=str(tmp_path), dpi=30, device="cpu")
    V.run(cfg)
    attn = Translator.load(ckpts["a"], device="cpu").attention(source, target)
    for kind in ("enc_self", "dec_self", "cross"):
        for head, suffix in ((None, ""), ("mean", "_mean")):
            buf = io.BytesIO()
            plot_attention(attn, kind, 1, head).savefig(buf, format="png", dpi=30, pil_kwargs={"compress_level": 1})
            assert buf.getvalue() == (tmp_path / f"{kind}_L1{suffix}.png").read_bytes(), (kind, head)


def test_attention_of_an_ensemble_is_its_first_models(ckpts):
    both = Translator.load([ckpts["b"], ckpts["a"]], device="cpu").attention("A dog runs.", "un chien court .")
    first = Translator.load(ckpts["b"], device="cpu").attention("A dog runs.", "un chien court .")
    assert both.label == first.label == "checkpoint_best"
    assert all(
        torch.equal(torch.from_numpy(a), torch.from_numpy(b))
        for a, b in zip(both.weights["cross"], first.weights["cross"])
    )


# ----------------------------------------------------------------------------- the notebook
NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(ckpts, monkeypatch):
    """docs/notebooks/quickstart.ipynb, executed in a Jupyter kernel on a checkpoint trained here."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    manager = pytest.importorskip("jupyter_client.manager")
    root = str(Path(nmt.__file__).resolve().parents[1])  # the kernel imports this checkout's nmt
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("NMT_CHECKPOINT", ckpts["a"])
    try:
        km, kc = manager.start_new_kernel(kernel_name="python3", startup_timeout=60)
    except Exception as e:  # no kernel spec, no ipykernel, no sockets: nothing of this project to test
        pytest.skip(f"no Jupyter kernel can start here: {e.__class__.__name__}: {e}")
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) == 5 and all(not cell.outputs for cell in code)  # stored without outputs
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute(cwd=str(NOTEBOOK.parent))
    text = ["".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in c.outputs) for c in code]
    expected = Translator.load(ckpts["a"], device="cpu").translate(
        ["The red car sees the small dog.", "We want the old blue house."], beam=5, nbest=2
    )
    assert text[1] == "".join(f"{h.score:8.3f}  {h.text}\n" for hyps in expected for h in hyps)
    assert text[2].startswith("[Scored(source='The red car sees the small dog.'")
    assert "('cross', 1, 2, " in text[3]
    assert any("image/png" in o.get("data", {}) for o in code[4].outputs)
