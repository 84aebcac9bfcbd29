"""Flags derived from config dataclasses, for `nmt train`.

Every field of TrainConfig, OptimConfig, LanguageModelConfig and the chosen architecture's model config is a flag
(`encoder_layers` -> `--encoder-layers 4`), so the command line cannot drift from the
configs and a new config field is a new flag with no other change. Bool fields are switches
(`--share-all-embeddings`) that also accept an explicit value (`--pack false`).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from nmt import config as C
from nmt.errors import UserError
from nmt.models import arch_config

BOOL_WORDS = {"1", "0", "true", "false", "yes", "no", "on", "off"}


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
    """`nmt train` argv -> (TrainConfig with its nested configs, model-field overrides as texts)."""
    train_f = C.flag_fields(C.TrainConfig)
    optim_f = C.flag_fields(C.OptimConfig)
    lm_f = C.flag_fields(C.LanguageModelConfig)
    model_f = C.flag_fields(type(arch_config(chosen_arch(args))))
    positionals, values = split_args(args, {**model_f, **lm_f, **optim_f, **train_f})
    if len(positionals) != 1:
        raise UserError(f"nmt train takes one DATA_DIR (written by nmt preprocess), got {positionals or 'none'}")
    train_vals = {k: v for k, v in values.items() if k in train_f}
    optim_vals = {k: v for k, v in values.items() if k in optim_f and k not in train_f}
    lm_vals = {k: v for k, v in values.items() if k in lm_f and k not in train_f and k not in optim_f}
    model_vals = {k: v for k, v in values.items() if k in model_f and k not in {**train_f, **optim_f, **lm_f}}
    cfg = C.apply_overrides(C.TrainConfig(data=positionals[0]), train_vals)
    cfg.optim = C.apply_overrides(C.OptimConfig(), optim_vals)
    cfg.lm = C.apply_overrides(C.LanguageModelConfig(), lm_vals)
    C.check_train(cfg)
    arch_config(cfg.arch, model_vals)  # the model flags too are checked before anything is written
    return cfg, model_vals


def chosen_arch(args: list[str]) -> str:
    """The --arch of a train command line (TrainConfig's default when absent): it decides the model flags."""
    arch = C.TrainConfig.__dataclass_fields__["arch"].default
    for i, tok in enumerate(args):
        if tok == "--arch" and i + 1 < len(args):
            arch = args[i + 1]
        elif tok.startswith("--arch="):
            arch = tok.split("=", 1)[1]
    return arch


def _flag_lines(cfg_cls: type, defaults: Any, skip: tuple[str, ...] = ()) -> list[str]:
    """One help line per flag field of `cfg_cls`: name, description, default (taken from `defaults`)."""
    flags, lines = C.flag_fields(cfg_cls), []
    for f in dataclasses.fields(cfg_cls):
        if f.name in skip or f.name not in flags:  # nested configs are not flags
            continue
        default = getattr(defaults, f.name) if defaults is not None else C.default_of(f)
        shown = "required" if default is dataclasses.MISSING else f"default: {default}"
        flag = "--" + f.name.replace("_", "-")
        lines.append(f"  {flag:<34} {f.metadata.get('help', '')} [{shown}]")
    return lines


def train_help(arch: str) -> str:
    """`nmt train --help`: every training, optimizer and model flag with its description and default.

    The model flags are the fields of `arch`'s config, with that architecture's values as defaults.
    """
    model_cfg = arch_config(arch)
    lines = [
        "Usage: nmt train DATA_DIR [--arch NAME] [--FLAG VALUE ...]",
        "",
        "  Train a model on a data directory written by `nmt preprocess`. Every field below is a flag;",
        "  switches also take a value (--pack false) or a --no- prefix (--no-pack).",
        "",
        "training:",
        *_flag_lines(C.TrainConfig, None, skip=("data",)),
        "",
        "optimization:",
        *_flag_lines(C.OptimConfig, None),
        "",
        "language model and masked LM (--task language_modeling | masked_lm):",
        *_flag_lines(C.LanguageModelConfig, None),
        "",
        f"model ({arch}, family {model_cfg.family}; `nmt train --arch NAME --help` shows another's):",
        *_flag_lines(type(model_cfg), model_cfg),
        "",
    ]
    return "\n".join(lines)
