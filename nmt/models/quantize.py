"""int8 decoding on CPU (`--quantize int8`): every linear layer of a model, the output layer included,
with int8 weights.

Which PyTorch path, and why. `torch.ao.quantization.quantize_dynamic` with one scale per output row
(`per_channel_dynamic_qconfig`): each nn.Linear becomes a dynamically quantized one that stores its
weight as int8 (packed for FBGEMM on x86) and quantizes its input on the fly, so the products run
int8 x int8 -> int32. torch marks that API deprecated in favour of torchao's `quantize_`, but on the
2-core AMD EPYC (AVX-512 VNNI) of the project's benchmarks torchao 0.18's eager int8 layers
(Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig) decoded 0.77-1.07x as fast as float32,
while this path decodes 1.20-1.70x as fast (benchmarks/int8_linear.py; the numbers: docs/generation.md).
A torch without torch.ao.quantization refuses `--quantize int8` with a UserError; nothing else changes.

The input of each product is quantized with one scale for the whole call, that is the whole batch:
where two choices are close, a sentence's int8 translation can depend on the sentences batched with it.

What is quantized: every nn.Linear (attention projections, feed-forward, an LSTM decoder's attention,
combine and bridge layers) and the output layer. A tied output layer is F.linear with the target
embedding's rows, which no pass over modules reaches; `output_layer_as_linear` gives the decoder an
nn.Linear holding a copy of those rows, used only by inference (the model's protocol and training path
are unchanged). Embeddings, layer norms and nn.LSTM's recurrent matrices stay float32 (the LSTM decoder
steps through torch.lstm_cell with the float weights themselves).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from nmt.errors import UserError
from nmt.models.lstm_decoder import LSTMDecoder
from nmt.models.transformer import TransformerDecoder

try:  # deprecated (torch planned its removal for 2.10), still in 2.13; without it only --quantize int8 fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
except ImportError:  # pragma: no cover - depends on the installed torch
    quantize_dynamic = per_channel_dynamic_qconfig = None


def _linear_copy(weight: Tensor) -> nn.Linear:
    """A bias-free nn.Linear (D -> V) holding a copy of weight (V, D)."""
    layer = nn.Linear(weight.size(1), weight.size(0), bias=False, device=weight.device, dtype=weight.dtype)
    layer.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
    return layer


def output_layer_as_linear(model: nn.Module) -> nn.Module:
    """Give the decoder its output layer as an nn.Linear of its own, in place; returns the model.

    A tied output layer (F.linear of the features with the target embedding's rows) gets an nn.Linear
    holding a copy of those rows; the embedding keeps its float weights for the lookups, and the
    logits are the same product. An untied output layer is an nn.Linear already. A model of another
    family than the Transformer, its language model and the LSTM is a UserError.
    """
    decoder = getattr(model, "decoder", None)
    if isinstance(decoder, TransformerDecoder):
        layer = decoder.output_projection
        # tied, or another module in its place (oneDNN's product, nmt.models.onednn): an nn.Linear of its own
        if not isinstance(layer, nn.Linear) or layer.weight is decoder.embed_tokens.weight:
            decoder.output_projection = _linear_copy(decoder.output_weight())  # called by decoder.logits
    elif isinstance(decoder, LSTMDecoder):
        if decoder.out is None:  # tied: logits = F.linear(out_proj(features), embedding rows)
            rows = decoder.embed.weight[: decoder.vocab_size]
            decoder.out = nn.Sequential(decoder.out_proj, _linear_copy(rows))
            decoder.out_proj = nn.Identity()  # now inside `out`: one owner, quantized once
    else:
        raise UserError(
            f"int8 decoding covers the transformer, transformer_lm and lstm families, not {type(model).__name__}"
        )
    return model


def quantize_int8(model: nn.Module) -> nn.Module:
    """The model, in eval mode, with int8 weights in every linear layer and the output layer; in place
    (the float weights are dropped, so memory falls), returned for convenience. CPU only: a model on
    another device is a UserError, as is a torch without torch.ao.quantization.

    Decoding with it follows the model protocol unchanged: logits (B, T, V) come from int8 products of
    activations quantized per call, so they differ from float32 ones in the last digits.
    """
    if quantize_dynamic is None:
        raise UserError(f"--quantize int8 needs torch.ao.quantization, which torch {torch.__version__} lacks")
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cpu"}:
        raise UserError(f"--quantize int8 runs on CPU, the model is on {', '.join(sorted(devices))}: use --device cpu")
    return quantize_linears(output_layer_as_linear(model.eval()))


def quantize_linears(module: nn.Module) -> nn.Module:
    """Every nn.Linear in `module` (the module itself included) replaced, in place, by a dynamically
    quantized one: qint8 weight with one scale per output row. Returns the module (a top-level
    nn.Linear comes back as its replacement)."""
    with warnings.catch_warnings():  # the API's deprecation notices (see the module doc)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=".*quantized tensor creation functions.*deprecated", category=UserWarning
        )
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
