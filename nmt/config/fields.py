"""How configs are declared and read: fields with help texts, dicts, and flag texts.

Every config is a dataclass whose fields are declared with `opt(default, help)`, so the default
and the description of each option live in one place; the CLI's `--help` and docs/cli.md show
both. Configs convert to plain dicts (`asdict`) for checkpoints and back (`from_dict`), and flag
texts become typed values with `parse_value` / `apply_overrides`; unknown keys are errors that
list the valid ones.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional, TypeVar, get_type_hints

from nmt.errors import UserError

C = TypeVar("C")


def opt(default: Any = dataclasses.MISSING, help: str = "", factory: Optional[Callable[[], Any]] = None) -> Any:
    """A dataclass field with its help text (`factory` for mutable defaults such as lists)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def help_of(cls: type, name: str) -> str:
    """The help text of field `name` of config class `cls`."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


def default_of(f: dataclasses.Field) -> Any:
    """The default value of a field (MISSING for a required one)."""
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def flag_fields(cls: type) -> dict[str, Any]:
    """{field name: type} of the fields that are flags (nested configs excluded)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(hints[f.name])}


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
    """Parse a flag's text into the field type `typ` (bool, int, float, str, Optional, tuple).

    nan is refused naming the flag (range checks then refuse infinities where they make no sense).
    """
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


def require(ok: bool, message: str) -> None:
    """Raise UserError(message) unless `ok`: the form every range check takes."""
    if not ok:
        raise UserError(message)


def require_finite(cfg: Any, prefix: str = "--") -> None:
    """Refuse nan and infinities in every float field of `cfg` (nested configs included), naming the flag.

    Range checks catch most of them with a message about the range; this is the net under all the
    rest, so that no float option of any command takes a non-finite value.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            require_finite(value, prefix)
            continue
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise UserError(f"{prefix}{f.name.replace('_', '-')} must be a finite number, got {value}")
