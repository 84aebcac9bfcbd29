"""`nmt train` (flags derived from the configs: nmt.flags) and `nmt list-archs`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from nmt import flags
from nmt.cli.app import app
from nmt.models import arch_summaries
from nmt.training.loop import train as run_training

LIST_ARCHS_VOCAB = 8000  # the joined vocabulary that parameter counts assume


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def train(ctx: typer.Context) -> None:
    """Train a model on a data directory written by `nmt preprocess` (--help lists every flag)."""
    if any(a in ("--help", "-h") for a in ctx.args):
        print(flags.train_help(flags.chosen_arch(list(ctx.args))))
        print(archs_text())
        raise typer.Exit()
    cfg, model_overrides = flags.parse_train_args(list(ctx.args))
    raise typer.Exit(run_training(cfg, model_overrides))


def archs_text() -> str:
    """The registered architectures, one line each (the end of `nmt train --help`)."""
    rows = arch_summaries()
    width = max(len(r["arch"]) for r in rows)
    lines = ["architectures (nmt list-archs):"]
    for r in rows:
        lines.append(f"  {r['arch']:<{width}}  {r['family']:<11} {r['sizes']}")
    return "\n".join(lines)


@app.command("list-archs")
def list_archs(
    vocab_size: int = typer.Option(LIST_ARCHS_VOCAB, help="Joined vocabulary size used to count parameters."),
) -> None:
    """List the registered architectures with their key sizes and parameter counts."""
    table = Table(title=f"architectures (parameters with a joined vocabulary of {vocab_size})")
    for col in ("arch", "family", "sizes", "parameters"):
        table.add_column(col, no_wrap=True)
    for r in arch_summaries(vocab_size):
        table.add_row(r["arch"], r["family"], r["sizes"], f"{r['params'] / 1e6:.1f}M")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)  # a pipe gets whole names
