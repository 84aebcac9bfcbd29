"""Dataclass configs: the only home of defaults.

Model configs are per family (`TransformerConfig`, `LSTMConfig`); a named architecture is a
function in the model module returning one of them, and user flags override its fields
afterwards with `apply_overrides`. Every config converts to a plain dict (`asdict`) for
checkpoints and back (`from_dict`), rejecting unknown keys.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, TypeVar, get_type_hints

from nmt.errors import UserError

C = TypeVar("C")


# ----------------------------------------------------------------------------- models
@dataclass
class TransformerConfig:
    """Encoder-decoder Transformer (Vaswani et al. 2017); sizes of `transformer_base` by default."""

    family: ClassVar[str] = "transformer"
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_embed_dim: int = 512
    decoder_embed_dim: int = 512
    encoder_ffn_embed_dim: int = 2048
    decoder_ffn_embed_dim: int = 2048
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    activation_fn: str = "relu"  # relu | gelu
    normalize_before: bool = False  # pre-norm when True, post-norm (the 2017 paper) otherwise
    learned_pos: bool = False  # learned position embeddings instead of sinusoidal
    no_scale_embedding: bool = False  # embeddings are scaled by sqrt(D) unless this is set
    max_source_positions: int = 1024
    max_target_positions: int = 1024
    share_decoder_input_output_embed: bool = False
    share_all_embeddings: bool = False  # needs a joined dictionary


@dataclass
class LSTMConfig:
    """LSTM encoder-decoder with optional attention; `lstm_seq2seq` sizes by default.

    Shapes and the exact meaning of every option: nmt/models/lstm.py.
    """

    family: ClassVar[str] = "lstm"
    encoder_embed_dim: int = 256
    encoder_hidden_size: int = 512  # per direction
    encoder_layers: int = 2
    encoder_bidirectional: bool = False
    decoder_embed_dim: int = 256
    decoder_hidden_size: int = 512
    decoder_layers: int = 2
    dropout: float = 0.1  # default of the four dropouts below
    encoder_dropout_in: Optional[float] = None  # on source embeddings; None = dropout
    encoder_dropout_out: Optional[float] = None  # between encoder layers and on its outputs; None = dropout
    decoder_dropout_in: Optional[float] = None  # on target embeddings; None = dropout
    decoder_dropout_out: Optional[float] = None  # between decoder layers and on its output features; None = dropout
    attention: str = "none"  # none | dot | general | qkv | additive | multihead
    decoder_attention_heads: int = 4  # for attention=multihead
    input_feeding: bool = False  # Luong: feed the previous output features to the next step
    bridge: str = "concat"  # concat | average | linear | zero (encoder final states -> decoder initial)
    bridge_layers: str = "repeat"  # repeat | zero, when the encoder has fewer layers than the decoder
    reverse_source: bool = False  # Sutskever et al. 2014: reverse each sentence's real tokens (final EOS stays)
    pack: bool = True  # packed sequences: padding never enters the recurrence
    teacher_forcing_ratio: float = 1.0  # below 1 feeds the model's own greedy predictions in training
    init_range: float = 0.1  # weights uniform in [-r, r] (Luong et al. 2015); 0 = PyTorch defaults
    share_decoder_input_output_embed: bool = False
    share_all_embeddings: bool = False  # needs a joined dictionary
    max_source_positions: int = 1024
    max_target_positions: int = 1024


MODEL_CONFIGS: dict[str, type] = {c.family: c for c in (TransformerConfig, LSTMConfig)}


# ----------------------------------------------------------------------------- data
@dataclass
class PreprocessConfig:
    source_lang: str
    target_lang: str
    trainpref: str
    destdir: str
    validpref: Optional[str] = None
    testpref: list[str] = field(default_factory=list)  # several -> splits test, test1, test2, ...
    vocab_size: int = 8000
    joined_dictionary: bool = False
    trim_target_vocab: bool = False  # joined only: the output layer covers only the target training pieces
    spm_model_type: str = "unigram"  # unigram | bpe
    tokenizer: str = "sentencepiece"  # sentencepiece | none (text is already tokenized)
    max_len: int = 256  # training pairs with more tokens on either side are dropped
    max_len_ratio: float = 9.0  # training pairs with a longer/shorter length ratio above this are dropped
    workers: int = 1  # processes encoding text chunks in parallel
    force: bool = False  # replace an existing non-empty destdir
    character_coverage: float = 1.0  # SentencePiece: share of characters kept (lower for large alphabets)
    input_sentence_size: int = 1_000_000  # SentencePiece trains on a seeded sample of at most this many lines
    seed: int = 1  # SentencePiece's input sampling (and, plus k, the k-th sampled copy's segmentation)
    subword_samples: int = 0  # copies of train with sampled segmentations, one per epoch in turn (0: none)
    subword_alpha: float = 0.3  # their sampling: unigram smoothing exponent (smaller, more varied) or BPE-dropout rate


# ----------------------------------------------------------------------------- training
@dataclass
class OptimConfig:
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 5e-4  # peak lr (for noam: the scale factor)
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-8
    momentum: float = 0.0  # sgd
    weight_decay: float = 0.0
    clip_norm: float = 0.0  # 0 = no clipping (the norm is still measured and logged)
    lr_scheduler: str = "inverse_sqrt"  # inverse_sqrt | noam | cosine | polynomial_decay | fixed | reduce_lr_on_plateau
    warmup_updates: Optional[int] = None  # None: 4000 for inverse_sqrt and noam, 0 for the others
    warmup_init_lr: float = 1e-7
    min_lr: float = 0.0
    lr_shrink: float = 0.5  # reduce_lr_on_plateau factor
    lr_patience: int = 0  # reduce_lr_on_plateau: validations without improvement before shrinking
    power: float = 1.0  # polynomial_decay's exponent (1: linear)
    # Horizon of cosine and polynomial_decay: TrainConfig.max_update, or max_epoch x updates per
    # epoch; under --stop-time-hours the Trainer ends them sooner if time runs out first.
    max_update: int = 0


@dataclass
class TrainConfig:
    data: str
    task: str = "translation"  # what the data dir holds and how it is learned (nmt.tasks)
    arch: str = "transformer_tiny"
    save_dir: str = "checkpoints"
    criterion: str = "label_smoothed_cross_entropy"
    label_smoothing: float = 0.1
    max_tokens: int = 4096  # per batch (per process), source or target, padding included
    batch_size: Optional[int] = None  # optional cap on sentences per batch
    update_freq: int = 1  # gradient accumulation: batches per optimizer step
    seed: int = 1
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "none"  # none | bf16 | fp16
    # Under --amp the loss takes the decoder's features and computes the logits a block of rows
    # at a time (less memory, level speed with AMX or on GPUs); this keeps the whole logits,
    # which is faster where matrix products are the slow part (e.g. CPUs with AVX512-BF16 only).
    full_logits: bool = False
    threads: Optional[int] = None  # torch intra-op threads on CPU
    max_epoch: int = 0  # 0 = no limit
    max_update: int = 0  # 0 = no limit
    stop_time_hours: float = 0.0  # stop once the run has taken this long, summed over resumed runs; 0 = no limit
    patience: int = -1  # stop after this many consecutive validations without improvement; <= 0 = off
    validate_interval: int = 1  # epochs
    validate_interval_updates: int = 0  # 0 = only at epoch ends
    eval_bleu: bool = False
    eval_bleu_beam: int = 1
    # Validation translations stop at a * source length + b tokens, as fairseq recipes pass
    # in --eval-bleu-args: an early model that never emits EOS would run 200 steps otherwise.
    eval_bleu_max_len_a: float = 1.2
    eval_bleu_max_len_b: int = 10
    best_checkpoint_metric: str = "loss"  # loss | nll_loss | ppl | bleu
    log_interval: int = 100
    log_format: str = "simple"  # simple | json
    tensorboard_logdir: Optional[str] = None  # default: SAVE_DIR/tensorboard
    keep_last_epochs: int = -1
    save_interval_updates: int = 0
    keep_interval_updates: int = -1
    restore_file: str = "checkpoint_last.pt"
    reset_optimizer: bool = False
    no_save: bool = False
    save_init_checkpoint: bool = False
    attn_sample: Optional[str] = None  # a sentence whose cross-attention is logged at each validation
    compile: bool = False  # torch.compile the model
    # Validate, save and translate with an exponential moving average of the weights (nmt.training.ema):
    # each update moves it (1 - decay) of the way to the trained weights; 0 = off.
    ema_decay: float = 0.0
    ema_start_update: int = 0  # until this update the average equals the weights (e.g. the lr warmup)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ----------------------------------------------------------------------------- generation
@dataclass
class GenerateConfig:
    """Search options (nmt.generation.search) and, for `nmt generate`, where text comes from and goes to."""

    beam: int = 5  # beam width; with --sampling the number of samples per sentence
    nbest: int = 1  # hypotheses per sentence in the output (<= beam)
    lenpen: float = 1.0  # score = sum of log-probs / length**lenpen (length counts EOS)
    max_len_a: float = 0.0  # max output length = a * source length + b (tokens before EOS)
    max_len_b: int = 200
    min_len: int = 1  # EOS forbidden before this many tokens
    no_repeat_ngram_size: int = 0  # 0 = off
    unkpen: float = 0.0  # subtracted from the UNK log-prob
    sampling: bool = False
    sampling_topk: int = -1  # -1 = off
    sampling_topp: float = -1.0  # -1 = off; else in (0, 1]
    temperature: float = 1.0
    seed: int = 1
    max_tokens: int = 8000  # source tokens per batch, padding included
    batch_size: Optional[int] = None  # optional cap on sentences per batch
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "none"  # none | bf16 | fp16
    # `nmt generate` only
    path: str = ""  # checkpoint(s), "a.pt:b.pt" for an ensemble
    data: Optional[str] = None  # binarized data dir (translate --gen-subset and score it)
    gen_subset: str = "test"
    input: Optional[str] = None  # raw text file, "-" for stdin
    output: Optional[str] = None  # default: stdout
    format: str = "plain"  # plain | fairseq
    print_alignment: bool = False  # fairseq format: A-i lines (argmax of cross-attention)
    quiet: bool = False  # only the summary (and BLEU) on stdout, no progress; --output is still written
    chunk_size: int = 2000  # raw text lines read, translated and written at a time
    threads: Optional[int] = None  # CPU threads in all (torch's default when None)
    workers: int = 1  # batches decoded at once, each on threads / workers intra-op threads


# ----------------------------------------------------------------------------- helpers
def asdict(cfg: Any) -> dict:
    """Config -> plain dict (tuples become lists) for JSON and checkpoints."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[C], values: dict) -> C:
    """Plain dict -> config of `cls`; unknown keys are an error naming the valid ones."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown {cls.__name__} key(s) {unknown}; valid: {sorted(names)}")
    kwargs = {}
    for k, v in values.items():
        sub = hints[k]
        if dataclasses.is_dataclass(sub) and isinstance(v, dict):
            v = from_dict(sub, v)
        elif isinstance(v, list) and "tuple" in str(sub):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def parse_value(text: str, typ: Any, key: str) -> Any:
    """Parse a flag's text into the field type `typ` (bool, int, float, str, Optional, tuple)."""
    s = str(typ)
    if text.lower() in ("none", "null") and "Optional" in s:
        return None
    try:
        if typ is bool or s in ("bool", "Optional[bool]"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if "int" in s and "float" not in s and "tuple" not in s:
            return int(text)
        if "tuple" in s:
            return tuple(float(x) for x in text.replace("(", "").replace(")", "").split(","))
        if "float" in s:
            value = float(text)
            if math.isnan(value):
                raise ValueError
            return value
    except ValueError:
        raise UserError(f"--{key.replace('_', '-')}: cannot read {text!r} as {s}") from None
    return text


def apply_overrides(cfg: C, overrides: dict[str, str]) -> C:
    """Return a copy of `cfg` with fields replaced from flag texts; unknown keys list the valid ones."""
    hints = get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes = {}
    for key, text in overrides.items():
        k = key.lstrip("-").replace("-", "_")
        if k not in names:
            valid = ", ".join("--" + n.replace("_", "-") for n in names)
            raise UserError(f"unknown option --{key.lstrip('-')} for {type(cfg).__name__}; valid: {valid}")
        changes[k] = parse_value(text, hints[k], k)
    return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------- attention visualization
@dataclass
class VisualizeConfig:
    """`nmt visualize-attn`: one sentence from --source, --input FILE or a data dir split."""

    path: str
    source: Optional[str] = None  # raw source text
    target: Optional[str] = None  # raw reference to teacher-force (with --source); else the model's translation
    input: Optional[str] = None  # raw text file, one sentence a line (with --index)
    data: Optional[str] = None  # binarized data dir (with --gen-subset and --index)
    gen_subset: str = "test"
    index: int = 0  # 0-based sentence index in --input or the split
    reference: bool = True  # teacher-force the split's reference when it has one
    beam: int = 5  # beam of the model's own translation
    out: str = "attn"
    format: str = "png"  # png | svg | pdf
    dpi: int = 100
    kinds: list[str] = field(default_factory=list)  # enc_self, dec_self, cross; empty = all the model has
    layers: list[int] = field(default_factory=list)  # 1-based; empty = all
    heads: list[int] = field(default_factory=list)  # 1-based; empty = all
    max_pieces: int = 60  # longer sentences are cut in the figures (statistics use every piece)
    compare: list[str] = field(default_factory=list)  # more checkpoints drawn side by side
    compare_init: bool = False  # add the same architecture with fresh random weights
    seed: int = 1  # seed of the --compare-init weights
    max_sentences: int = 1  # statistics averaged over the first N sentences of --input / the split
    html: bool = False  # also write OUT/report.html
    device: str = "auto"
