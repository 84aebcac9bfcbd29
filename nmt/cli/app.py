"""The Typer app, the option helper every command uses, and the console entry point.

`option(Config, "field")` makes a Typer option whose default and help text are the config
field's, so a command's `--help` shows exactly the defaults the library uses.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import typer

from nmt import __version__
from nmt import config as C
from nmt.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural machine translation: preprocess, train, generate, interactive, score, visualize-attn.",
)

_REQUIRED = ...  # Typer's marker of a required option


def option(cls: type, name: str, *decls: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A Typer option for field `name` of config `cls`: the field's default (or `default`) and help.

    A bool field becomes a single switch `--name` unless `decls` say otherwise. Every option shows
    its default in `--help`: "none" and "off" for the defaults Typer would leave unsaid.
    """
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    value = C.default_of(f) if default is dataclasses.MISSING else default
    if value is dataclasses.MISSING:
        value = _REQUIRED
    if isinstance(value, bool) and not decls:
        decls = ("--" + name.replace("_", "-"),)
    if value is None or value is False:  # Typer shows no default for these; say it in words
        kw.setdefault("show_default", "none" if value is None else "off")
    return typer.Option(value, *decls, help=f.metadata.get("help", ""), **kw)


def _version(value: bool) -> None:
    if value:
        print(f"nmt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """nmt: a small, fast, readable neural machine translation toolkit."""


def main() -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app()
    except UserError as e:
        msg = " ".join(str(e).split("\n"))
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside training's own handler (which saves first): nothing to lose
        print("interrupted", file=sys.stderr)
        sys.exit(130)
