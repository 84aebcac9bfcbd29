"""int8 decoding (`--quantize int8`, nmt.models.quantize): a trained model translates as in float32, every
linear layer (the output layer included) stores int8 weights, the CLI equals the Python API, and bad
values are one line."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
import torch.ao.nn.quantized.dynamic as nnqd
from helpers import cli, shrink
from lmfixture import SENTENCES, lm_files

from nmt import LanguageModel, Translator
from nmt.config import GenerateConfig, InteractiveConfig
from nmt.errors import UserError
from nmt.flags import parse_train_args
from nmt.generation import interactive
from nmt.models import arch_config, build_model
from nmt.models.quantize import quantize_int8
from nmt.training.loop import train

nn = torch.nn


# A 1-layer, 64-dim Transformer with one embedding for source, target and output (so the output layer is
# tied), 800 updates on the toy corpus (about 18 s on one thread): it translates the ten training
# sentences below exactly, with margins that int8 weights do not overturn.
TRAIN = [
    *("--arch", "transformer_tiny", "--encoder-layers", "1", "--decoder-layers", "1", "--share-all-embeddings"),
    *("--encoder-embed-dim", "64", "--decoder-embed-dim", "64"),
    *("--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128"),
    *("--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--dropout", "0"),
    *("--max-tokens", "1500", "--max-update", "800", "--lr", "5e-3", "--warmup-updates", "50"),
    *("--threads", "1", "--keep-last-epochs", "1", "--log-interval", "1000"),
]


@pytest.fixture(scope="module")
def trained(toy_data_dir, tmp_path_factory) -> str:
    save = tmp_path_factory.mktemp("int8_trained")
    assert train(*parse_train_args([str(toy_data_dir), "--save-dir", str(save), *TRAIN])) == 0
    return str(save / "checkpoint_last.pt")


def first_ten(path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:10]


@pytest.fixture(scope="module")
def sources(toy_raw_dir) -> list[str]:
    """Ten training sentences: the model has learned them, so its choices win by large margins."""
    return first_ten(toy_raw_dir / "train.en")


def int8_weight(layer: nn.Module) -> torch.Tensor:
    """The int8 values a quantized linear layer stores, checked: qint8 with one scale per output row."""
    assert isinstance(layer, nnqd.Linear), type(layer)
    w = layer.weight()
    assert w.dtype == torch.qint8 and w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    assert w.q_per_channel_scales().shape == (w.size(0),)
    values = w.int_repr()
    assert values.dtype == torch.int8
    return values


def float_linears(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def int8_linears(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nnqd.Linear)}


@pytest.mark.parametrize("beam", [1, 5])
def test_int8_translates_ten_training_sentences_as_float32(trained, sources, toy_raw_dir, beam):
    fp32 = Translator.load(trained, device="cpu").translate(sources, beam=beam)
    int8 = Translator.load(trained, device="cpu", quantize="int8").translate(sources, beam=beam)
    assert [h[0].text for h in int8] == [h[0].text for h in fp32]
    refs = first_ten(toy_raw_dir / "train.fr")
    assert sum(h[0].text == ref for h, ref in zip(fp32, refs)) >= 8  # a trained model, not a lucky tie
    # the scores (base 2, per token) come from other weights: close, not equal
    diffs = [abs(a[0].score - b[0].score) for a, b in zip(int8, fp32)]
    assert 0 < max(diffs) < 0.25


def test_score_and_attention_use_the_int8_model(trained, sources, toy_raw_dir):
    refs = first_ten(toy_raw_dir / "train.fr")[:3]
    fp32, int8 = Translator.load(trained, device="cpu"), Translator.load(trained, device="cpu", quantize="int8")
    a, b = fp32.score(sources[:3], refs), int8.score(sources[:3], refs)
    assert all(0 < abs(x.score - y.score) < 0.25 for x, y in zip(a, b))  # other weights, close scores
    attn = int8.attention(sources[0])
    assert attn.target == int8.translate(sources[0], beam=5)[0].text  # capture_sentence decodes with it
    assert attn.target == fp32.attention(sources[0]).target


def test_every_linear_layer_and_the_tied_output_layer_store_int8(trained):
    fp32 = Translator.load(trained, device="cpu").models[0]
    model = Translator.load(trained, device="cpu", quantize="int8").models[0]
    assert float_linears(model) == []
    layers = int8_linears(model)
    # the float model computes its output layer with oneDNN (nmt.models.onednn), not an nn.Linear
    assert "decoder.output_projection" not in float_linears(fp32)
    assert sorted(layers) == sorted([*float_linears(fp32), "decoder.output_projection"])
    for layer in layers.values():
        int8_weight(layer)
    # the checkpoint's output layer is the shared embedding; the int8 model holds those rows in int8
    # in a layer of its own and keeps the embedding in float32 for the lookups
    dec = model.decoder
    assert fp32.decoder.output_projection.weight is fp32.decoder.embed_tokens.weight
    assert dec.embed_tokens.weight.dtype == torch.float32
    rows = fp32.decoder.output_weight().detach()  # (V, D)
    q = dec.output_projection.weight()
    assert q.shape == rows.shape
    assert torch.allclose(q.dequantize(), rows, atol=float(q.q_per_channel_scales().max()) / 2 + 1e-7)
    assert not torch.equal(q.dequantize(), rows)  # really rounded to 255 levels a row
    # and the logits come from it: the int8 layer's product, not the float rows'
    x = torch.randn(2, 3, rows.size(1))
    with torch.inference_mode():
        got = dec.logits(x)
        assert torch.equal(got, dec.output_projection(x))
    want = x @ rows.T  # (2, 3, V)
    assert not torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got, want, atol=0.05 * float(want.abs().max()))


@pytest.mark.parametrize("name", ["trimmed output", "lstm tied", "lstm untied"])
def test_trimmed_and_lstm_output_layers_store_int8_and_logits_stay_close(name):
    cfg, tgt_vocab = {
        "trimmed output": (dataclasses.replace(shrink(arch_config("transformer_tiny")), share_all_embeddings=True), 50),
        "lstm tied": (
            dataclasses.replace(shrink(arch_config("lstm_luong")), share_decoder_input_output_embed=True),
            60,
        ),
        "lstm untied": (shrink(arch_config("lstm_bahdanau")), 60),
    }[name]
    torch.manual_seed(0)
    model = build_model(cfg, 60, tgt_vocab, True).eval()
    src, tgt = torch.randint(4, 50, (3, 7)), torch.randint(4, 50, (3, 5))
    pad = torch.zeros_like(src, dtype=torch.bool)
    with torch.inference_mode():
        want = model(src, pad, tgt)  # (B, T, V)
    floats = float_linears(model)
    assert quantize_int8(model) is model
    assert float_linears(model) == []
    assert len(int8_linears(model)) >= len(floats)
    for layer in int8_linears(model).values():
        int8_weight(layer)
    out = model.decoder.output_projection if name == "trimmed output" else model.decoder.out
    out = out if isinstance(out, nnqd.Linear) else out[-1]  # lstm tied: Sequential(out_proj, output rows)
    assert int8_weight(out).size(0) == tgt_vocab
    with torch.inference_mode():
        got = model(src, pad, tgt)
    assert got.shape == want.shape and not torch.equal(got, want)
    assert torch.allclose(got, want, atol=0.05 * float(want.abs().max()))
    if name.startswith("lstm"):  # nn.LSTM is no nn.Linear: its recurrent weights stay float32
        assert all(w.dtype == torch.float32 for w in model.decoder.lstm.parameters())


def test_language_model_continues_prompts_as_in_float32(tmp_path_factory):
    ckpt = str(lm_files(tmp_path_factory).checkpoint)
    prompts = [" ".join(s.split()[:4]) for s in SENTENCES]  # training sentences: confident continuations
    fp32 = LanguageModel.load(ckpt, device="cpu").generate(prompts, beam=1)
    lm = LanguageModel.load(ckpt, device="cpu", quantize="int8")
    assert [c[0].text for c in fp32] == [" ".join(s.split()[4:]) for s in SENTENCES]  # it learned them
    assert [c[0].text for c in lm.generate(prompts, beam=1)] == [c[0].text for c in fp32]
    assert float_linears(lm.models[0]) == []
    assert int8_weight(lm.models[0].decoder.output_projection).size(0) == lm.tok.vocab_size


def test_cli_generate_and_interactive_equal_the_python_api(trained, sources, tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.en"
    src.write_text("\n".join(sources) + "\n", encoding="utf-8")
    api = [h[0].text for h in Translator.load(trained, device="cpu", quantize="int8").translate(sources)]
    code, out, err = cli(monkeypatch, capsys, "generate", "--path", trained, "--input", str(src), "--quantize", "int8")
    assert code == 0, err
    assert out.splitlines() == api
    lines = [(s + "\n").encode() for s in sources]
    buf = io.StringIO()
    gen = GenerateConfig(path=trained, device="cpu", quantize="int8")
    # one buffer: the batch `nmt generate` made (int8 activations take one scale per batch, see the module doc)
    interactive.run(InteractiveConfig(generate=gen, buffer_size=len(lines)), lines, buf)
    assert buf.getvalue().splitlines() == api


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--quantize", "int4"], "error: --quantize must be one of none, int8, got 'int4'"),
        (["--quantize", "int8", "--device", "cuda"], "error: --quantize int8 runs on CPU: use --device cpu"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "interactive"])
def test_bad_quantize_flags_are_one_line(tiny_model, tmp_path, monkeypatch, capsys, flags, message, command):
    src = tmp_path / "in.en"
    src.write_text("a dog\n", encoding="utf-8")
    args = ["--input", str(src)] if command == "generate" else []
    code, out, err = cli(monkeypatch, capsys, command, "--path", tiny_model, *args, *flags)
    assert (code, out, err) == (2, "", message + "\n")


def test_api_refuses_a_bad_quantize_value(tiny_model):
    for bad in ("int4", "INT8", 8):
        with pytest.raises(UserError, match=r"^quantize=.*: expected one of none, int8$"):
            Translator.load(tiny_model, device="cpu", quantize=bad)


def test_quantize_int8_refuses_a_masked_lm():
    model = build_model(shrink(arch_config("mlm_tiny")), 40, 40, True)
    with pytest.raises(UserError, match="int8 decoding covers"):
        quantize_int8(model)
