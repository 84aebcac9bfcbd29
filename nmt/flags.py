"""Flags derived from config dataclasses, for `nmt train`.

Every field of TrainConfig, OptimConfig and the chosen architecture's model config is a flag
(`encoder_layers` -> `--encoder-layers 4`), so the command line cannot drift from the
configs and a new config field is a new flag with no other change. Bool fields are switches
(`--share-all-embeddings`) that also accept an explicit value (`--pack false`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, get_type_hints

from nmt import config as C
from nmt.errors import UserError
from nmt.models import arch_config

BOOL_WORDS = {"1", "0", "true", "false", "yes", "no", "on", "off"}


def _fields(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(hints[f.name])}


def _is_bool(typ: Any) -> bool:
    return typ is bool or str(typ) in ("bool", "Optional[bool]")


def split_args(args: list[str], field_types: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """argv -> (positionals, {field: text}); bools without a value read as "true"."""
    positionals: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--") or tok == "--":
            positionals.append(tok)
            i += 1
            continue
        key, eq, text = tok[2:].partition("=")
        name = key.replace("-", "_")
        if name.startswith("no_") and name[3:] in field_types and _is_bool(field_types[name[3:]]) and not eq:
            values[name[3:]] = "false"
            i += 1
            continue
        if name not in field_types:
            close = difflib.get_close_matches(name, list(field_types), n=1)
            hint = f" (did you mean --{close[0].replace('_', '-')}?)" if close else ""
            raise UserError(f"unknown option --{key}{hint}; see `nmt train --help` and `nmt list-archs`")
        if eq:
            values[name] = text
            i += 1
        elif _is_bool(field_types[name]):
            nxt = args[i + 1] if i + 1 < len(args) else ""
            if nxt.lower() in BOOL_WORDS:
                values[name] = nxt
                i += 2
            else:
                values[name] = "true"
                i += 1
        else:
            if i + 1 >= len(args):
                raise UserError(f"--{key} needs a value")
            values[name] = args[i + 1]
            i += 2
    return positionals, values


def parse_train_args(args: list[str]) -> tuple[C.TrainConfig, dict[str, str]]:
    """`nmt train` argv -> (TrainConfig with its OptimConfig, model-field overrides as texts)."""
    train_f = _fields(C.TrainConfig)
    optim_f = {k: v for k, v in _fields(C.OptimConfig).items() if k not in train_f}  # max_update is copied over
    arch = C.TrainConfig.__dataclass_fields__["arch"].default
    for i, tok in enumerate(args):  # the architecture decides which model flags exist
        if tok == "--arch" and i + 1 < len(args):
            arch = args[i + 1]
        elif tok.startswith("--arch="):
            arch = tok.split("=", 1)[1]
    model_f = _fields(type(arch_config(arch)))
    positionals, values = split_args(args, {**model_f, **optim_f, **train_f})
    if len(positionals) != 1:
        raise UserError(f"nmt train takes one DATA_DIR (written by nmt preprocess), got {positionals or 'none'}")
    train_vals = {k: v for k, v in values.items() if k in train_f}
    optim_vals = {k: v for k, v in values.items() if k in optim_f and k not in train_f}
    model_vals = {k: v for k, v in values.items() if k in model_f and k not in train_f and k not in optim_f}
    cfg = C.apply_overrides(C.TrainConfig(data=positionals[0]), train_vals)
    cfg.optim = C.apply_overrides(C.OptimConfig(), optim_vals)
    validate_train(cfg)
    return cfg, model_vals


def validate_train(cfg: C.TrainConfig) -> None:
    """Range checks of numeric and choice flags; the message names the flag."""
    o = cfg.optim
    checks = [
        (cfg.max_tokens > 0, "--max-tokens must be > 0"),
        (cfg.batch_size is None or cfg.batch_size > 0, "--batch-size must be > 0"),
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
            o.lr_scheduler not in ("cosine", "polynomial_decay")
            or cfg.max_update > 0
            or cfg.max_epoch > 0
            or cfg.stop_time_hours > 0,
            f"--lr-scheduler {o.lr_scheduler} needs --max-update, --max-epoch or --stop-time-hours (its horizon)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def train_help() -> str:
    """Help text listing every train and optimizer flag with its default."""
    lines = [
        "Usage: nmt train DATA_DIR [--arch NAME] [--FLAG VALUE ...]",
        "",
        "Every field below is a flag; model flags are the fields of the chosen architecture's",
        "config (see `nmt list-archs`), e.g. --encoder-layers 4 --dropout 0.3.",
        "",
    ]
    for title, cls in (("training", C.TrainConfig), ("optimization", C.OptimConfig)):
        lines.append(f"{title}:")
        for f in dataclasses.fields(cls):
            if f.name in ("data", "optim") or (cls is C.OptimConfig and f.name == "max_update"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            lines.append(f"  --{f.name.replace('_', '-'):<28} default: {default}")
        lines.append("")
    return "\n".join(lines)
