"""Configs of the commands that use trained models: `nmt generate`, `nmt score`, `nmt average-checkpoints`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require, require_finite
from nmt.fileio import check_output

# What `--post-process` (alias `--remove-bpe`) accepts: fairseq's name for SentencePiece output,
# the only subword scheme the checkpoints' tokenizers produce.
POST_PROCESS = ("none", "sentencepiece")
# What `--quantize` accepts (nmt.models.quantize): float weights, or int8 linear layers on CPU.
QUANTIZE = ("none", "int8")


@dataclass
class GenerateConfig:
    """Search options (nmt.generation.search) and, for `nmt generate`, where text comes from and goes to."""

    beam: int = opt(5, "Beam width; with --sampling, the samples drawn per sentence.")
    nbest: int = opt(
        1, "Hypotheses per sentence in the output, best first (at most --beam): in --format plain, one a line."
    )
    lenpen: float = opt(1.0, "Length penalty: score = sum of log-probs / length**lenpen (length counts EOS).")
    max_len_a: float = opt(0.0, "Max output length = a * source length + b (tokens before EOS).")
    max_len_b: int = opt(200, "The b of --max-len-a.")
    min_len: int = opt(1, "EOS is forbidden before this many tokens.")
    no_repeat_ngram_size: int = opt(0, "Never repeat an n-gram of this size (0: off).")
    unkpen: float = opt(0.0, "Subtracted from the log-probability of <unk>.")
    sampling: bool = opt(False, "Sample instead of searching.")
    sampling_topk: int = opt(-1, "Sample among the k most probable tokens (-1: off).")
    sampling_topp: float = opt(-1.0, "Sample within the smallest set reaching this probability mass (-1: off).")
    temperature: float = opt(1.0, "Softmax temperature.")
    seed: int = opt(1, "Seed of --sampling.")
    max_tokens: int = opt(8000, "Source tokens per batch, padding included.")
    batch_size: Optional[int] = opt(None, "Cap on sentences per batch.")
    device: str = opt("auto", "auto | cpu | cuda.")
    amp: str = opt("none", "Mixed precision: none | bf16 | fp16 (fp16 needs CUDA).")
    quantize: str = opt(
        "none",
        "Weights of the linear layers, the output layer included: none (as trained) | int8 (CPU only; "
        "embeddings, norms and an LSTM's recurrent weights stay float).",
    )
    onednn: bool = opt(
        True,
        "Float32 on CPU: compute a Transformer's output layer with oneDNN (faster for large batches; "
        "--no-onednn: torch's matmul).",
    )
    path: str = opt("", "Checkpoint; a.pt:b.pt for an ensemble.")
    data: Optional[str] = opt(None, "Binarized data dir: translate --gen-subset and score it.")
    gen_subset: str = opt("test", "Split of DATA_DIR.")
    input: Optional[str] = opt(None, "Raw text file, one sentence a line; - for stdin.")
    output: Optional[str] = opt(None, "Output file, written atomically (none: stdout).")
    format: str = opt("plain", "Output format: plain | fairseq.")
    print_alignment: bool = opt(False, "A-i alignment lines (argmax of cross-attention; --format fairseq).")
    post_process: str = opt(
        "none",
        "What H-i lines hold in --format fairseq: none (the target pieces) | sentencepiece (the detokenized text).",
    )
    quiet: bool = opt(
        False, "No progress or translations on stdout, only the summary (on stderr); --output is still written."
    )
    chunk_size: int = opt(2000, "Raw text lines read, translated and written at a time.")
    threads: Optional[int] = opt(None, "CPU threads in all (none: torch's default).")
    workers: int = opt(1, "Batches decoded at once, each on threads / workers intra-op threads.")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check(ok: bool, flag: str, value, need: str) -> None:
    require(ok, f"{flag} must be {need}, got {value!r}")


def check_search(cfg: GenerateConfig) -> None:
    """The search, device and output settings that `nmt generate` and `nmt interactive` share."""
    _check(cfg.beam >= 1, "--beam", cfg.beam, ">= 1")
    _check(1 <= cfg.nbest <= cfg.beam, "--nbest", cfg.nbest, f"between 1 and --beam ({cfg.beam})")
    _check(_finite(cfg.lenpen), "--lenpen", cfg.lenpen, "a finite number")
    _check(_finite(cfg.max_len_a) and cfg.max_len_a >= 0, "--max-len-a", cfg.max_len_a, "a finite number >= 0")
    _check(cfg.max_len_b >= 0, "--max-len-b", cfg.max_len_b, ">= 0")
    _check(cfg.min_len >= 0, "--min-len", cfg.min_len, ">= 0")
    _check(cfg.no_repeat_ngram_size >= 0, "--no-repeat-ngram-size", cfg.no_repeat_ngram_size, ">= 0")
    _check(_finite(cfg.unkpen), "--unkpen", cfg.unkpen, "a finite number")
    topk = cfg.sampling_topk
    _check(topk == -1 or topk >= 1, "--sampling-topk", topk, ">= 1 (or -1: off)")
    topp = cfg.sampling_topp
    _check(topp == -1 or (_finite(topp) and 0 < topp <= 1), "--sampling-topp", topp, "in (0, 1] (or -1: off)")
    _check(_finite(cfg.temperature) and cfg.temperature > 0, "--temperature", cfg.temperature, "a finite number > 0")
    _check(0 <= cfg.seed < 2**63, "--seed", cfg.seed, "between 0 and 2**63 - 1")  # what torch.Generator takes
    require(
        cfg.sampling or (cfg.sampling_topk == -1 and cfg.sampling_topp == -1),
        "--sampling-topk / --sampling-topp need --sampling",
    )
    _check(cfg.max_tokens > 0, "--max-tokens", cfg.max_tokens, "> 0")
    _check(cfg.batch_size is None or cfg.batch_size >= 1, "--batch-size", cfg.batch_size, ">= 1")
    _check(cfg.threads is None or cfg.threads >= 1, "--threads", cfg.threads, ">= 1")
    _check(cfg.workers >= 1, "--workers", cfg.workers, ">= 1")
    _check(cfg.device in ("auto", "cpu", "cuda"), "--device", cfg.device, "one of auto, cpu, cuda")
    _check(cfg.amp in ("none", "bf16", "fp16"), "--amp", cfg.amp, "one of none, bf16, fp16")
    _check(cfg.quantize in QUANTIZE, "--quantize", cfg.quantize, "one of " + ", ".join(QUANTIZE))
    require(cfg.quantize == "none" or cfg.device != "cuda", f"--quantize {cfg.quantize} runs on CPU: use --device cpu")
    _check(cfg.format in ("plain", "fairseq"), "--format", cfg.format, "one of plain, fairseq")
    _check(cfg.post_process in POST_PROCESS, "--post-process", cfg.post_process, "one of " + ", ".join(POST_PROCESS))
    require(not cfg.print_alignment or cfg.format == "fairseq", "--print-alignment needs --format fairseq")
    require(bool(cfg.path), "--path is required (a checkpoint, or a:b for an ensemble)")
    require_finite(cfg)


def check_generate(cfg: GenerateConfig) -> None:
    """Every impossible `nmt generate` setting is a UserError naming the flag."""
    check_search(cfg)
    _check(cfg.chunk_size >= 1, "--chunk-size", cfg.chunk_size, ">= 1")
    require(
        (cfg.data is None) != (cfg.input is None),
        "give either DATA_DIR (a binarized split) or --input FILE|- (raw text), not both",
    )
    if cfg.output not in (None, "-"):
        check_output(cfg.output, "--output", "file")


@dataclass
class InteractiveConfig:
    """`nmt interactive`: lines from stdin, translated a buffer at a time, each buffer printed at once."""

    generate: GenerateConfig = opt(
        help="Search, device and output options (its data, input, output, chunk size and quiet are not used).",
        factory=GenerateConfig,
    )
    buffer_size: int = opt(1, "Lines read before they are translated together and their translations printed.")


def check_interactive(cfg: InteractiveConfig) -> None:
    """Every impossible `nmt interactive` setting is a UserError naming the flag."""
    check_search(cfg.generate)
    _check(cfg.buffer_size >= 1, "--buffer-size", cfg.buffer_size, ">= 1")


@dataclass
class ScoreConfig:
    """`nmt score`: sacreBLEU metrics of system outputs against references."""

    sys: list[str] = opt(help="System output (repeat for several systems).", factory=list)
    ref: list[str] = opt(help="Reference (repeat for several references).", factory=list)
    metrics: str = opt("bleu", "Comma list of bleu, chrf, ter.")
    tokenize: str = opt("13a", "sacreBLEU tokenizer for BLEU (13a, intl, zh, char, none, ...).")
    lowercase: bool = opt(False, "Case-insensitive scores.")
    json: bool = opt(False, "Print one JSON object instead of text.")


@dataclass
class AverageConfig:
    """`nmt average-checkpoints`: the mean of several checkpoints' weights."""

    output: str = opt(help="Averaged checkpoint to write (atomically).")
    inputs: list[str] = opt(help="Checkpoint files, or one directory with --num-*-checkpoints.", factory=list)
    num_epoch_checkpoints: Optional[int] = opt(None, "Average the last N checkpointN.pt of the directory.")
    num_update_checkpoints: Optional[int] = opt(None, "Average the last N checkpoint_E_U.pt of the directory.")
    trained_weights: bool = opt(
        False,
        "Average the weights training reached, not the moving average that checkpoints saved with "
        "--ema-decay hold as their model (one input: extract them).",
    )


def check_average(cfg: AverageConfig) -> None:
    """The checks of `nmt average-checkpoints`' flags that need no checkpoint."""
    require(
        cfg.num_epoch_checkpoints is None or cfg.num_update_checkpoints is None,
        "give --num-epoch-checkpoints or --num-update-checkpoints, not both",
    )
    for flag, n in (
        ("--num-epoch-checkpoints", cfg.num_epoch_checkpoints),
        ("--num-update-checkpoints", cfg.num_update_checkpoints),
    ):
        require(n is None or n >= 1, f"{flag} must be >= 1, got {n}")
    check_output(cfg.output, "--output", "file")
