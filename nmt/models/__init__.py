"""Model families: the Transformer and the LSTM encoder-decoders, behind one protocol, and the
decoder-only and encoder-only Transformers (language model, masked LM) built from the same layers.

protocol        the contract every family implements (see its docstring), `select_batch`
build           named architectures, building a model for a data dir, loading weights
layers          masks, attention, dropout and the Transformer layers
positions       sinusoidal and learned position embeddings
transformer     the Transformer family and its named architectures
transformer_lm  the decoder-only language model (GPT-style) and its named architectures
transformer_mlm the encoder-only masked language model (BERT/RoBERTa-style) and its named architectures
lstm            the LSTM family's model and its named architectures
lstm_encoder    the LSTM encoder and the bridge to the decoder's initial states
lstm_decoder    the LSTM decoder (input feeding, scheduled sampling)
lstm_attention  the attention variants of the LSTM decoder
quantize        int8 decoding on CPU: the linear layers, the output layer included, with int8 weights
onednn          float32 decoding on CPU: the output layer through oneDNN's linear

Importing this package registers every family and architecture (explicit imports, no discovery).
"""

from nmt.models import lstm as _lstm  # noqa: F401  (registers the family and its archs)
from nmt.models import transformer as _transformer  # noqa: F401  (registers the family and its archs)
from nmt.models import transformer_lm as _transformer_lm  # noqa: F401  (registers the family and its archs)
from nmt.models import transformer_mlm as _transformer_mlm  # noqa: F401  (registers the family and its archs)
from nmt.models.build import (
    arch_config,
    arch_summaries,
    build_for_data,
    build_model,
    config_from_dict,
    load_weights,
)
from nmt.models.protocol import select_batch

__all__ = [
    "arch_config",
    "arch_summaries",
    "build_for_data",
    "build_model",
    "config_from_dict",
    "load_weights",
    "select_batch",
]
