"""Model configs, one per family; a named architecture is a function returning one of them.

User flags override an architecture's fields afterwards (`nmt.models.arch_config`), and
`check_model` checks the ranges of the result by field name. Each config names the tasks its
family serves (`tasks`): translation for the encoder-decoders, language_modeling for the
decoder-only Transformer, masked_lm for the encoder-only one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Optional

from nmt.config.fields import opt, require, require_finite


@dataclass
class TransformerConfig:
    """Encoder-decoder Transformer (Vaswani et al. 2017); sizes of `transformer_base` by default."""

    family: ClassVar[str] = "transformer"
    tasks: ClassVar[tuple[str, ...]] = ("translation",)
    encoder_layers: int = opt(6, "Encoder layers.")
    decoder_layers: int = opt(6, "Decoder layers.")
    encoder_embed_dim: int = opt(512, "Encoder model dimension (embeddings and every layer's output).")
    decoder_embed_dim: int = opt(512, "Decoder model dimension (embeddings and every layer's output).")
    encoder_ffn_embed_dim: int = opt(2048, "Hidden size of the encoder's feed-forward blocks.")
    decoder_ffn_embed_dim: int = opt(2048, "Hidden size of the decoder's feed-forward blocks.")
    encoder_attention_heads: int = opt(8, "Attention heads per encoder layer (must divide the dimension).")
    decoder_attention_heads: int = opt(8, "Attention heads per decoder layer (must divide the dimension).")
    dropout: float = opt(0.1, "Dropout on embeddings and on every sublayer's output.")
    attention_dropout: float = opt(0.0, "Dropout on attention weights.")
    activation_dropout: float = opt(0.0, "Dropout after the feed-forward activation.")
    activation_fn: str = opt("relu", "Feed-forward activation: relu | gelu.")
    normalize_before: bool = opt(False, "Pre-norm (layer norm before each sublayer) instead of post-norm.")
    learned_pos: bool = opt(False, "Learned position embeddings instead of sinusoidal ones.")
    no_scale_embedding: bool = opt(False, "Do not scale token embeddings by sqrt(dimension).")
    max_source_positions: int = opt(1024, "Longest source the model accepts, in tokens (EOS included).")
    max_target_positions: int = opt(1024, "Longest target the model accepts, in tokens (BOS included).")
    share_decoder_input_output_embed: bool = opt(False, "Tie the decoder's input embedding and output layer.")
    share_all_embeddings: bool = opt(False, "One embedding for encoder, decoder and output (joined dictionary).")


@dataclass
class LSTMConfig:
    """LSTM encoder-decoder with optional attention; `lstm_seq2seq` sizes by default.

    Shapes and the exact meaning of every option: nmt/models/lstm.py.
    """

    family: ClassVar[str] = "lstm"
    tasks: ClassVar[tuple[str, ...]] = ("translation",)
    encoder_embed_dim: int = opt(256, "Source embedding size.")
    encoder_hidden_size: int = opt(512, "Encoder hidden size per direction.")
    encoder_layers: int = opt(2, "Encoder LSTM layers.")
    encoder_bidirectional: bool = opt(False, "Bidirectional encoder (both directions' states are combined).")
    decoder_embed_dim: int = opt(256, "Target embedding size.")
    decoder_hidden_size: int = opt(512, "Decoder hidden size.")
    decoder_layers: int = opt(2, "Decoder LSTM layers.")
    dropout: float = opt(0.1, "Default of the four dropouts below.")
    encoder_dropout_in: Optional[float] = opt(None, "Dropout on source embeddings (none: --dropout).")
    encoder_dropout_out: Optional[float] = opt(
        None, "Dropout between encoder layers and on its outputs (none: --dropout)."
    )
    decoder_dropout_in: Optional[float] = opt(None, "Dropout on target embeddings (none: --dropout).")
    decoder_dropout_out: Optional[float] = opt(
        None, "Dropout between decoder layers and on its output features (none: --dropout)."
    )
    attention: str = opt("none", "Attention: none | dot | general | qkv | additive | multihead.")
    decoder_attention_heads: int = opt(4, "Heads of --attention multihead.")
    input_feeding: bool = opt(False, "Feed the previous step's output features to the next step (Luong).")
    bridge: str = opt("concat", "Encoder final states -> decoder initial states: concat | average | linear | zero.")
    bridge_layers: str = opt("repeat", "When the encoder has fewer layers than the decoder: repeat | zero.")
    reverse_source: bool = opt(False, "Reverse each source sentence's tokens (final EOS stays; Sutskever 2014).")
    pack: bool = opt(True, "Packed sequences: padding never enters the recurrence.")
    teacher_forcing_ratio: float = opt(1.0, "Below 1, training feeds the model's own greedy predictions sometimes.")
    init_range: float = opt(0.1, "Weights uniform in [-r, r] (Luong et al. 2015); 0 keeps PyTorch's init.")
    share_decoder_input_output_embed: bool = opt(False, "Tie the decoder's input embedding and output layer.")
    share_all_embeddings: bool = opt(False, "One embedding for encoder, decoder and output (joined dictionary).")
    max_source_positions: int = opt(1024, "Longest source the model accepts, in tokens (EOS included).")
    max_target_positions: int = opt(1024, "Longest target the model accepts, in tokens (BOS included).")


@dataclass
class TransformerLMConfig:
    """Decoder-only Transformer language model (GPT-style); fairseq's `transformer_lm` sizes by default.

    Field names follow TransformerConfig's decoder side; the output projection is always the
    token embedding (tied). Shapes: nmt/models/transformer_lm.py.
    """

    family: ClassVar[str] = "transformer_lm"
    tasks: ClassVar[tuple[str, ...]] = ("language_modeling",)
    decoder_layers: int = opt(6, "Decoder layers.")
    decoder_embed_dim: int = opt(512, "Model dimension (embeddings and every layer's output).")
    decoder_ffn_embed_dim: int = opt(2048, "Hidden size of the feed-forward blocks.")
    decoder_attention_heads: int = opt(8, "Attention heads per layer (must divide the dimension).")
    dropout: float = opt(0.1, "Dropout on embeddings and on every sublayer's output.")
    attention_dropout: float = opt(0.0, "Dropout on attention weights.")
    activation_dropout: float = opt(0.0, "Dropout after the feed-forward activation.")
    activation_fn: str = opt("relu", "Feed-forward activation: relu | gelu.")
    normalize_before: bool = opt(False, "Pre-norm (layer norm before each sublayer, plus a final norm).")
    learned_pos: bool = opt(False, "Learned position embeddings instead of sinusoidal ones.")
    no_scale_embedding: bool = opt(False, "Do not scale token embeddings by sqrt(dimension).")
    max_target_positions: int = opt(1024, "Longest input the model accepts, in tokens (BOS included).")


@dataclass
class TransformerMLMConfig:
    """Encoder-only Transformer masked language model (BERT/RoBERTa-style); `mlm_base` sizes by default.

    Field names follow TransformerConfig's encoder side; the output head (dense, GELU, layer norm,
    tied projection plus a bias) is RoBERTa's. Shapes: nmt/models/transformer_mlm.py.
    """

    family: ClassVar[str] = "transformer_mlm"
    tasks: ClassVar[tuple[str, ...]] = ("masked_lm",)
    encoder_layers: int = opt(12, "Encoder layers.")
    encoder_embed_dim: int = opt(768, "Model dimension (embeddings and every layer's output).")
    encoder_ffn_embed_dim: int = opt(3072, "Hidden size of the feed-forward blocks.")
    encoder_attention_heads: int = opt(12, "Attention heads per layer (must divide the dimension).")
    dropout: float = opt(0.1, "Dropout on embeddings and on every sublayer's output.")
    attention_dropout: float = opt(0.1, "Dropout on attention weights.")
    activation_dropout: float = opt(0.0, "Dropout after the feed-forward activation.")
    activation_fn: str = opt("gelu", "Feed-forward activation: relu | gelu.")
    normalize_before: bool = opt(False, "Pre-norm (layer norm before each sublayer, plus a final norm).")
    learned_pos: bool = opt(True, "Learned position embeddings instead of sinusoidal ones.")
    no_scale_embedding: bool = opt(True, "Do not scale token embeddings by sqrt(dimension).")
    layernorm_embedding: bool = opt(True, "Layer norm on the summed token and position embeddings (RoBERTa).")
    max_source_positions: int = opt(512, "Longest input the model accepts, in tokens (EOS included).")


MODEL_CONFIGS: dict[str, type] = {
    c.family: c for c in (TransformerConfig, LSTMConfig, TransformerLMConfig, TransformerMLMConfig)
}


def check_model(cfg) -> None:
    """Range checks of a model config's fields, by their names; the message names the flag."""
    for f in dataclasses.fields(cfg):
        value, flag = getattr(cfg, f.name), "--" + f.name.replace("_", "-")
        if value is None or isinstance(value, (bool, str)):
            continue
        if "dropout" in f.name:
            require(0.0 <= value < 1.0, f"{flag} must be in [0, 1), got {value}")
        if f.name == "teacher_forcing_ratio":
            require(0.0 <= value <= 1.0, f"{flag} must be in [0, 1], got {value}")
        if f.name.endswith(("_layers", "_dim", "_size", "_heads")):
            require(value >= 1, f"{flag} must be >= 1, got {value}")
        if f.name.endswith("_positions"):
            require(value >= 2, f"{flag} must be >= 2 (a token and EOS), got {value}")
    for side in ("encoder", "decoder"):  # Transformer heads split the model dim (an RNN side has a hidden size)
        dim, heads = getattr(cfg, f"{side}_embed_dim", None), getattr(cfg, f"{side}_attention_heads", None)
        if dim is not None and heads is not None and not hasattr(cfg, f"{side}_hidden_size"):
            require(
                dim % heads == 0, f"--{side}-embed-dim {dim} must be a multiple of --{side}-attention-heads {heads}"
            )
    require_finite(cfg)
