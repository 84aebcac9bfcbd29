"""Config of `nmt eval-lm` (a language model's loss and perplexity on a monolingual split), with its check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require


@dataclass
class EvalLMConfig:
    """`nmt eval-lm`: per-token loss and perplexity of a language model on a split read as one token stream."""

    data: str = opt(help="Monolingual data dir (nmt preprocess --only-source).")
    path: str = opt("", "Language model checkpoint (family transformer_lm).")
    gen_subset: str = opt("test", "Split of DATA_DIR to score.")
    context_window: int = opt(
        0, "Tokens of preceding context each block sees and does not score (0: blocks start cold)."
    )
    tokens_per_sample: Optional[int] = opt(
        None,
        "Tokens scored per block (none: the training run's --tokens-per-sample, at most the model's positions, "
        "minus --context-window).",
    )
    max_tokens: int = opt(8000, "Input tokens per batch (blocks with their context; at least one block).")
    device: str = opt("auto", "auto | cpu | cuda.")
    amp: str = opt("none", "Mixed precision: none | bf16 | fp16 (fp16 needs CUDA).")
    json: bool = opt(False, "Print one JSON object instead of text.")


def check_eval_lm(cfg: EvalLMConfig) -> None:
    """Every `nmt eval-lm` setting that is impossible before anything is loaded is a UserError naming the flag."""
    require(bool(cfg.path), "--path is required (a language model checkpoint)")
    require(":" not in cfg.path, "--path: eval-lm scores one checkpoint, not an ensemble")
    require(cfg.context_window >= 0, f"--context-window must be >= 0, got {cfg.context_window}")
    n = cfg.tokens_per_sample
    require(n is None or n >= 1, f"--tokens-per-sample must be >= 1, got {n}")
    require(cfg.max_tokens > 0, f"--max-tokens must be > 0, got {cfg.max_tokens}")
    require(cfg.device in ("auto", "cpu", "cuda"), f"--device must be one of auto, cpu, cuda, got {cfg.device!r}")
    require(cfg.amp in ("none", "bf16", "fp16"), f"--amp must be one of none, bf16, fp16, got {cfg.amp!r}")
