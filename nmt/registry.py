"""Registries: one plain dict per kind of pluggable thing, filled by a decorator.

    @register(ARCHS, "transformer_tiny")
    def transformer_tiny() -> TransformerConfig: ...

Modules register themselves when imported; `nmt.models` imports every model module
explicitly, so nothing is discovered by magic. `lookup` is the only way names are
resolved, so an unknown name always fails the same way: one line listing the valid
names and the closest match.
"""

from __future__ import annotations

import difflib
from typing import Callable, TypeVar

from nmt.errors import UserError

T = TypeVar("T")

MODELS: dict[str, Callable] = {}  # family -> build(cfg, src_vocab_size, tgt_vocab_size) -> nn.Module
ARCHS: dict[str, Callable] = {}  # arch name -> () -> model config dataclass (its class names the family)
TASKS: dict[str, Callable] = {}  # name -> the task class (see nmt.tasks)
CRITERIA: dict[str, Callable] = {}  # name -> criterion function (see nmt.training.criterion)
OPTIMIZERS: dict[str, Callable] = {}  # name -> build(params, cfg) -> torch.optim.Optimizer
LR_SCHEDULERS: dict[str, Callable] = {}  # name -> lr function (see nmt.training.optim)


def register(table: dict[str, T], name: str) -> Callable[[T], T]:
    """Decorator adding the decorated object to `table` under `name` (names are unique)."""

    def add(obj: T) -> T:
        if name in table:
            raise ValueError(f"{name!r} is registered twice")
        table[name] = obj
        return obj

    return add


def lookup(table: dict[str, T], name: str, kind: str) -> T:
    """Return table[name]; an unknown name raises UserError naming the choices and the closest one."""
    if name in table:
        return table[name]
    choices = ", ".join(sorted(table))
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(f"unknown {kind} {name!r}{hint}; valid choices: {choices}")
