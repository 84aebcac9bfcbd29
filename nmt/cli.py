"""The `nmt` command line: one Typer app, every command a thin wrapper.

Each command parses its flags into a config and makes one library call. Errors a user can
cause arrive as `UserError` and leave as one line on stderr with exit code 2.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from nmt import __version__
from nmt.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural machine translation: preprocess, train, generate, score, visualize-attn.",
)


def _version(value: bool) -> None:
    if value:
        print(f"nmt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """nmt: a small, fast, readable neural machine translation toolkit."""


def _not_yet(name: str) -> None:
    raise UserError(f"'nmt {name}' is not available in this version yet")


# ---------------------------------------------------------------- preprocess / toy-data (data pipeline)
@app.command()
def preprocess() -> None:
    """Train SentencePiece and binarize parallel text into a data directory."""
    _not_yet("preprocess")


@app.command("toy-data")
def toy_data() -> None:
    """Write the embedded English->French toy corpus (works offline)."""
    _not_yet("toy-data")


# ---------------------------------------------------------------- train / list-archs
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train() -> None:
    """Train a translation model on a data directory written by `nmt preprocess`."""
    _not_yet("train")


@app.command("list-archs")
def list_archs() -> None:
    """List the registered architectures with their key sizes."""
    _not_yet("list-archs")


# ---------------------------------------------------------------- generate / score / average-checkpoints
@app.command()
def generate() -> None:
    """Translate a binarized split or raw text with a trained checkpoint."""
    _not_yet("generate")


@app.command("average-checkpoints")
def average_checkpoints() -> None:
    """Average the weights of several checkpoints into one."""
    _not_yet("average-checkpoints")


@app.command()
def score() -> None:
    """Score system outputs against references with sacreBLEU (BLEU, chrF, TER)."""
    _not_yet("score")


# ---------------------------------------------------------------- visualize-attn
@app.command("visualize-attn")
def visualize_attn() -> None:
    """Export attention heatmaps per kind, layer and head; compare checkpoints."""
    _not_yet("visualize-attn")


def main() -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app()
    except UserError as e:
        msg = " ".join(str(e).split("\n"))
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
