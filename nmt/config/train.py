"""Configs of `nmt train`: the optimizer and the run, with the checks of their flags."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require, require_finite
from nmt.config.tasks import LanguageModelConfig, check_language_model
from nmt.fileio import check_output

LR_SCHEDULERS_WITH_HORIZON = ("cosine", "polynomial_decay")


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (nmt.training.optim)."""

    optimizer: str = opt("adam", "Optimizer: adam | adamw | sgd.")
    lr: float = opt(5e-4, "Peak learning rate (for noam: the scale factor).")
    adam_betas: tuple[float, float] = opt((0.9, 0.98), "Adam's betas, as B1,B2.")
    adam_eps: float = opt(1e-8, "Adam's epsilon.")
    momentum: float = opt(0.0, "SGD momentum.")
    weight_decay: float = opt(0.0, "Weight decay (decoupled with adamw).")
    clip_norm: float = opt(0.0, "Clip the gradient norm to this (0: no clipping; the norm is still logged).")
    lr_scheduler: str = opt(
        "inverse_sqrt", "Schedule: inverse_sqrt | noam | cosine | polynomial_decay | fixed | reduce_lr_on_plateau."
    )
    warmup_updates: Optional[int] = opt(None, "Linear warmup updates (none: 4000 for inverse_sqrt and noam, else 0).")
    warmup_init_lr: float = opt(1e-7, "Learning rate at the start of the warmup.")
    min_lr: float = opt(0.0, "Floor of the decaying schedules.")
    lr_shrink: float = opt(0.5, "reduce_lr_on_plateau: factor applied to the lr on a plateau.")
    lr_patience: int = opt(0, "reduce_lr_on_plateau: validations without improvement before shrinking.")
    power: float = opt(1.0, "polynomial_decay's exponent (1: linear).")


@dataclass
class TrainConfig:
    """`nmt train`: everything but the optimizer (`optim`) and the model (the architecture's config)."""

    data: str = opt(help="Data directory written by `nmt preprocess`.")
    task: str = opt("translation", "What the data directory holds and how it is learned (see nmt.tasks).")
    arch: str = opt("transformer_tiny", "Named architecture (`nmt list-archs`); model flags override its sizes.")
    save_dir: str = opt("checkpoints", "Directory of the checkpoints (and of TensorBoard logs by default).")
    criterion: str = opt("label_smoothed_cross_entropy", "Loss function.")
    label_smoothing: float = opt(0.1, "Share of probability mass spread over the vocabulary in the loss.")
    max_tokens: int = opt(4096, "Tokens per batch and process, source or target, padding included.")
    batch_size: Optional[int] = opt(None, "Cap on sentences per batch.")
    pad_to_multiple: int = opt(
        8,
        "Pad batch lengths to a multiple of this and cut batches to few shapes, so CPU matrix kernels are "
        "reused (1: off, batches padded to their longest sentence).",
    )
    row_sizes: int = opt(
        4, "Row counts a batch of one length bucket may have: the most that fit, and its 1/N, 2/N, ... (padded up)."
    )
    update_freq: int = opt(1, "Gradient accumulation: batches per optimizer step.")
    seed: int = opt(1, "Seed of initial weights, batch order and dropout.")
    num_workers: int = opt(0, "DataLoader worker processes (0: batches are built in the training process).")
    device: str = opt("auto", "auto | cpu | cuda.")
    amp: str = opt("none", "Mixed precision: none | bf16 | fp16 (fp16 needs CUDA).")
    full_logits: bool = opt(
        False,
        "Under --amp, keep the whole logits instead of computing the loss a block of rows at a time "
        "(faster where matrix products are the slow part, e.g. CPUs with AVX512-BF16 only).",
    )
    threads: Optional[int] = opt(None, "torch intra-op threads on CPU (none: torch's default).")
    max_epoch: int = opt(0, "Stop after this many epochs (0: no limit).")
    max_update: int = opt(0, "Stop after this many updates (0: no limit); also the horizon of decaying schedules.")
    stop_time_hours: float = opt(0.0, "Stop once training has taken this long, summed over resumed runs (0: no limit).")
    patience: int = opt(-1, "Stop after this many validations in a row without improvement (<= 0: off).")
    validate_interval: int = opt(1, "Validate every N epochs.")
    validate_interval_updates: int = opt(0, "Also validate every N updates (0: only at epoch ends).")
    eval_bleu: bool = opt(False, "Translate the validation set and report BLEU at each validation.")
    eval_bleu_beam: int = opt(1, "Beam of those validation translations.")
    eval_bleu_max_len_a: float = opt(
        1.2, "Validation translations stop at a * source length + b tokens (an early model may never emit EOS)."
    )
    eval_bleu_max_len_b: int = opt(10, "The b of --eval-bleu-max-len-a.")
    best_checkpoint_metric: str = opt("loss", "What checkpoint_best.pt is best at: loss | nll_loss | ppl | bleu.")
    log_interval: int = opt(100, "Log training stats every N updates.")
    log_format: str = opt("simple", "Log lines: simple | json.")
    tensorboard_logdir: Optional[str] = opt(None, "TensorBoard directory (none: SAVE_DIR/tensorboard).")
    keep_last_epochs: int = opt(-1, "Keep only the last N checkpointN.pt files (-1: keep all).")
    save_interval_updates: int = opt(0, "Also save checkpoint_E_U.pt every N updates (0: off).")
    keep_interval_updates: int = opt(-1, "Keep only the last N checkpoint_E_U.pt files (-1: keep all).")
    restore_file: str = opt("checkpoint_last.pt", "Checkpoint to resume from (relative to --save-dir).")
    reset_optimizer: bool = opt(False, "Resume the weights only: a fresh optimizer and training state.")
    no_save: bool = opt(False, "Write no checkpoints.")
    save_init_checkpoint: bool = opt(False, "Also save the initial weights as checkpoint_init.pt.")
    attn_sample: Optional[str] = opt(None, "A sentence whose cross-attention goes to TensorBoard at each validation.")
    compile: bool = opt(False, "torch.compile the model.")
    ema_decay: float = opt(
        0.0,
        "Validate, save and translate with an exponential moving average of the weights; each update moves "
        "it (1 - decay) of the way to the trained weights (0: off).",
    )
    ema_start_update: int = opt(0, "Until this update the average equals the weights (e.g. the lr warmup).")
    optim: OptimConfig = opt(help="Optimizer and schedule.", factory=OptimConfig)
    lm: LanguageModelConfig = opt(
        help="Samples of the language-model and masked-LM tasks.", factory=LanguageModelConfig
    )


def check_train(cfg: TrainConfig) -> None:
    """Range checks of numeric and choice flags of `nmt train`; the message names the flag."""
    o = cfg.optim
    checks = [
        (cfg.max_tokens > 0, "--max-tokens must be > 0"),
        (cfg.batch_size is None or cfg.batch_size > 0, "--batch-size must be > 0"),
        (cfg.pad_to_multiple >= 1, "--pad-to-multiple must be >= 1 (1 = off)"),
        (cfg.row_sizes >= 1, "--row-sizes must be >= 1"),
        (cfg.update_freq >= 1, "--update-freq must be >= 1"),
        (cfg.num_workers >= 0, "--num-workers must be >= 0"),
        (cfg.threads is None or cfg.threads > 0, "--threads must be > 0"),
        (0.0 <= cfg.label_smoothing < 1.0, "--label-smoothing must be in [0, 1)"),
        (cfg.max_epoch >= 0, "--max-epoch must be >= 0"),
        (cfg.max_update >= 0, "--max-update must be >= 0"),
        (0 <= cfg.stop_time_hours < math.inf, "--stop-time-hours must be a finite number >= 0"),
        (cfg.log_interval > 0, "--log-interval must be > 0"),
        (cfg.validate_interval > 0, "--validate-interval must be > 0"),
        (cfg.validate_interval_updates >= 0, "--validate-interval-updates must be >= 0"),
        (cfg.save_interval_updates >= 0, "--save-interval-updates must be >= 0"),
        (cfg.eval_bleu_beam >= 1, "--eval-bleu-beam must be >= 1"),
        (
            cfg.eval_bleu_max_len_a >= 0 and cfg.eval_bleu_max_len_b >= 1,
            "--eval-bleu-max-len-a must be >= 0 and --eval-bleu-max-len-b >= 1",
        ),
        (cfg.device in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
        (cfg.amp in ("none", "bf16", "fp16"), "--amp must be none, bf16 or fp16"),
        (cfg.log_format in ("simple", "json"), "--log-format must be simple or json"),
        (
            cfg.best_checkpoint_metric in ("loss", "nll_loss", "ppl", "bleu"),
            "--best-checkpoint-metric must be loss, nll_loss, ppl or bleu",
        ),
        (cfg.best_checkpoint_metric != "bleu" or cfg.eval_bleu, "--best-checkpoint-metric bleu needs --eval-bleu"),
        (0 <= cfg.seed < 2**32, "--seed must be between 0 and 2**32 - 1"),
        (cfg.patience >= -1, "--patience must be >= -1 (-1 = off)"),
        (cfg.keep_last_epochs >= -1, "--keep-last-epochs must be >= -1 (-1 = keep all)"),
        (0 <= cfg.ema_decay < 1, "--ema-decay must be in [0, 1) (0 = off)"),
        (cfg.ema_start_update >= 0, "--ema-start-update must be >= 0"),
        (cfg.keep_interval_updates >= -1, "--keep-interval-updates must be >= -1 (-1 = keep all)"),
        (o.lr > 0 and math.isfinite(o.lr), "--lr must be a finite number > 0"),
        (0 <= o.momentum < math.inf, "--momentum must be a finite number >= 0"),
        (o.warmup_updates is None or o.warmup_updates >= 0, "--warmup-updates must be >= 0"),
        (0 <= o.warmup_init_lr < math.inf, "--warmup-init-lr must be a finite number >= 0"),
        (0 <= o.min_lr < math.inf, "--min-lr must be a finite number >= 0"),
        (0 <= o.clip_norm < math.inf, "--clip-norm must be a finite number >= 0"),
        (0 <= o.weight_decay < math.inf, "--weight-decay must be a finite number >= 0"),
        (0 < o.adam_eps < math.inf, "--adam-eps must be a finite number > 0"),
        (
            len(o.adam_betas) == 2 and all(0 <= b < 1 for b in o.adam_betas),
            "--adam-betas must be two numbers in [0, 1)",
        ),
        (0 < o.lr_shrink < 1, "--lr-shrink must be in (0, 1)"),
        (o.lr_patience >= 0, "--lr-patience must be >= 0"),
        (0 < o.power < math.inf, "--power must be a finite number > 0"),
        (
            o.lr_scheduler not in LR_SCHEDULERS_WITH_HORIZON
            or cfg.max_update > 0
            or cfg.max_epoch > 0
            or cfg.stop_time_hours > 0,
            f"--lr-scheduler {o.lr_scheduler} needs --max-update, --max-epoch or --stop-time-hours (its horizon)",
        ),
    ]
    for ok, message in checks:
        require(ok, message)
    check_language_model(cfg.lm)
    require_finite(cfg)
    check_output(cfg.save_dir, "--save-dir", "dir")
    if cfg.tensorboard_logdir is not None:
        check_output(cfg.tensorboard_logdir, "--tensorboard-logdir", "dir")
