"""The `nmt` command line: one Typer app, every command a thin wrapper (flags -> config -> one library call).

app         the Typer app, `option` (a flag from a config field: its default and help), `main`
data        preprocess, toy-data
train       train, list-archs
generate    generate, interactive, average-checkpoints, score
lm          eval-lm
visualize   visualize-attn
mlm         fill-mask
export      export

Errors a user can cause arrive as `UserError` and leave as one line on stderr with exit code 2.
"""

# Importing the command modules registers their commands, in this order (the order of `nmt --help`).
# isort: off
from nmt.cli import data as _data  # noqa: F401
from nmt.cli import train as _train  # noqa: F401
from nmt.cli import generate as _generate  # noqa: F401
from nmt.cli import lm as _lm  # noqa: F401
from nmt.cli import visualize as _visualize  # noqa: F401
from nmt.cli import mlm as _mlm  # noqa: F401
from nmt.cli import export as _export  # noqa: F401

# isort: on
from nmt.cli.app import app, main

__all__ = ["app", "main"]
