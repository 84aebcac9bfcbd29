"""The output layer through oneDNN for float32 decoding on CPU (`nmt generate --onednn`, on by default).

Why. The output layer is the largest product of a decoding step: (rows, D) x (D, V) with a small D
and a large V. torch's float32 CPU matmul (MKL) runs it at 60-75% of the speed oneDNN's linear reaches
for some hundred rows and more, whose (rows, V) result outgrows the core's cache: on the 2-core AMD
EPYC of the project's benchmarks, 575 x 128 x 5,540 runs at 73 against 93 GFLOP/s on one thread,
and the Multi30k recipe's model decodes 1.07-1.10x as fast on one thread, 1.02-1.04x on two
(benchmarks/decode_vs_ct2.py, docs/benchmarks.md).
The products agree bit for bit with torch's on that machine (a reduction over D in the same order);
the tests check agreement within float rounding. For the decoder's other, square-ish layers oneDNN
was slower there, so only the output layer goes this way.

What. `onednn_output_layer(model)` gives a Transformer decoder (translation or language model) an
output layer module that calls oneDNN's linear (`torch.ops.mkldnn._linear_pointwise`, the product
torch.compile uses for CPU linear layers) with the decoder's own output weight, tied or not: nothing is
copied. Anything else (another device or dtype, autocast as under --amp bf16, autograd) goes to F.linear,
so they behave as before. A torch built without oneDNN, or without that operator, keeps
F.linear: the switch then changes nothing. Other families are left as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.models.transformer import TransformerDecoder


def onednn_available() -> bool:
    """True when this torch can run oneDNN's linear on CPU."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class OneDNNOutputLayer(nn.Module):
    """Bias-free (D -> V) product with the output weight (V, D) it is given: the decoder's own Parameter
    (so the model's parameters and state_dict keys stay as they were) or a view of the embedding's rows."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        # A Parameter registers under the name nn.Linear gave it; embedding rows are a view, detached.
        self.weight = weight if isinstance(weight, nn.Parameter) else weight.detach()

    def forward(self, x: Tensor) -> Tensor:
        """x (..., D) -> logits (..., V)."""
        cpu_fp32 = x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        if not cpu_fp32 or torch.is_grad_enabled():
            return F.linear(x, self.weight)  # autocast, other devices, and gradients: torch's product
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, None, "none", [], "")


def onednn_output_layer(model: nn.Module) -> nn.Module:
    """The model, in place, with its Transformer decoder's output layer computed by oneDNN on CPU
    (see the module doc); returned for convenience. Models of other families, models on another
    device and torch builds without the operator come back unchanged."""
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, TransformerDecoder) or not onednn_available():
        return model
    weight = decoder.output_weight()
    if weight.device.type == "cpu" and weight.dtype == torch.float32:
        decoder.output_projection = OneDNNOutputLayer(weight)  # decoder.logits calls it
    return model
