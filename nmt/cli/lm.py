"""`nmt eval-lm`."""

from __future__ import annotations

import json
from typing import Optional

import typer

from nmt.cli.app import app, option
from nmt.config import EvalLMConfig
from nmt.generation.eval_lm import report, report_json, run

E = EvalLMConfig


@app.command("eval-lm")
def eval_lm(
    data: str = typer.Argument(..., metavar="DATA_DIR", help=E.__dataclass_fields__["data"].metadata["help"]),
    path: str = option(E, "path", default=...),
    gen_subset: str = option(E, "gen_subset"),
    context_window: int = option(E, "context_window"),
    tokens_per_sample: Optional[int] = option(E, "tokens_per_sample"),
    max_tokens: int = option(E, "max_tokens"),
    device: str = option(E, "device"),
    amp: str = option(E, "amp"),
    json_: bool = option(E, "json", "--json"),
) -> None:
    """Per-token loss and perplexity of a language model on a split of a monolingual data dir.

    Prints the number of tokens scored, the loss in nats and bits per token, and the perplexity
    (exp of the loss in nats).
    """
    cfg = EvalLMConfig(
        data=data,
        path=path,
        gen_subset=gen_subset,
        context_window=context_window,
        tokens_per_sample=tokens_per_sample,
        max_tokens=max_tokens,
        device=device,
        amp=amp,
        json=json_,
    )
    score, info = run(cfg)
    if cfg.json:
        print(json.dumps(report_json(score, info)))
    else:
        print("\n".join(report(score, info)))
