"""`nmt generate`, `nmt interactive`, `nmt average-checkpoints` and `nmt score`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Iterator, List, Optional

import typer
from rich.console import Console

from nmt.checkpoint import average_checkpoints as average_checkpoints_to
from nmt.cli.app import app, option
from nmt.config import AverageConfig, GenerateConfig, InteractiveConfig, ScoreConfig
from nmt.generation.generate import run as run_generate
from nmt.generation.interactive import run as run_interactive
from nmt.generation.output import Progress, summary, truncation_warning
from nmt.generation.score import parse_metrics, render, score_files

G = GenerateConfig


@app.command()
def generate(
    data: Optional[str] = typer.Argument(
        None, metavar="DATA_DIR", help=G.__dataclass_fields__["data"].metadata["help"]
    ),
    path: str = option(G, "path", default=...),
    gen_subset: str = option(G, "gen_subset"),
    input: Optional[str] = option(G, "input", "--input"),
    output: Optional[str] = option(G, "output"),
    beam: int = option(G, "beam"),
    nbest: int = option(G, "nbest"),
    lenpen: float = option(G, "lenpen"),
    max_len_a: float = option(G, "max_len_a"),
    max_len_b: int = option(G, "max_len_b"),
    min_len: int = option(G, "min_len"),
    no_repeat_ngram_size: int = option(G, "no_repeat_ngram_size"),
    unkpen: float = option(G, "unkpen"),
    sampling: bool = option(G, "sampling"),
    sampling_topk: int = option(G, "sampling_topk"),
    sampling_topp: float = option(G, "sampling_topp"),
    temperature: float = option(G, "temperature"),
    seed: int = option(G, "seed"),
    max_tokens: int = option(G, "max_tokens"),
    batch_size: Optional[int] = option(G, "batch_size"),
    device: str = option(G, "device"),
    amp: str = option(G, "amp"),
    quantize: str = option(G, "quantize"),
    onednn: bool = option(G, "onednn", "--onednn/--no-onednn"),
    threads: Optional[int] = option(G, "threads"),
    workers: int = option(G, "workers"),
    format: str = option(G, "format", "--format"),
    print_alignment: bool = option(G, "print_alignment"),
    post_process: str = option(G, "post_process", "--post-process", "--remove-bpe"),
    quiet: bool = option(G, "quiet"),
    chunk_size: int = option(G, "chunk_size"),
) -> None:
    """Translate a binarized split or raw text with a trained checkpoint.

    With a language model's checkpoint, continue each line of --input (the prompt) instead.
    Translations go to stdout (or --output); progress and a summary (speed, and BLEU with its
    sacreBLEU signature when DATA_DIR has references) go to stderr.
    """
    cfg = GenerateConfig(**locals())
    with _stop_quietly_on_broken_pipe(), Progress(enabled=not quiet) as progress:
        stats = run_generate(cfg, progress)
    for line in summary(stats):
        print(line, file=sys.stderr)


@app.command()
def interactive(
    path: str = option(G, "path", default=...),
    buffer_size: int = option(InteractiveConfig, "buffer_size"),
    beam: int = option(G, "beam"),
    nbest: int = option(G, "nbest"),
    lenpen: float = option(G, "lenpen"),
    max_len_a: float = option(G, "max_len_a"),
    max_len_b: int = option(G, "max_len_b"),
    min_len: int = option(G, "min_len"),
    no_repeat_ngram_size: int = option(G, "no_repeat_ngram_size"),
    unkpen: float = option(G, "unkpen"),
    sampling: bool = option(G, "sampling"),
    sampling_topk: int = option(G, "sampling_topk"),
    sampling_topp: float = option(G, "sampling_topp"),
    temperature: float = option(G, "temperature"),
    seed: int = option(G, "seed"),
    max_tokens: int = option(G, "max_tokens"),
    batch_size: Optional[int] = option(G, "batch_size"),
    device: str = option(G, "device"),
    amp: str = option(G, "amp"),
    quantize: str = option(G, "quantize"),
    onednn: bool = option(G, "onednn", "--onednn/--no-onednn"),
    threads: Optional[int] = option(G, "threads"),
    workers: int = option(G, "workers"),
    format: str = option(G, "format", "--format"),
    print_alignment: bool = option(G, "print_alignment"),
    post_process: str = option(G, "post_process", "--post-process", "--remove-bpe"),
) -> None:
    """Translate lines from stdin as they arrive, printing each translation at once.

    With a language model's checkpoint, continue each line instead.

    --buffer-size lines are read, translated together and printed (flushed); end of input
    (Ctrl-D in a terminal) or Ctrl-C ends the run. Output formats are those of `nmt generate`.
    """
    search = dict(locals())
    buffer_size = search.pop("buffer_size")
    cfg = InteractiveConfig(generate=GenerateConfig(**search), buffer_size=buffer_size)
    if sys.stdin.isatty():
        print("type a sentence and press Enter (Ctrl-D: end)", file=sys.stderr)
    with _stop_quietly_on_broken_pipe():
        stats = run_interactive(cfg)
    for line in truncation_warning(stats):
        print(line, file=sys.stderr)


@contextlib.contextmanager
def _stop_quietly_on_broken_pipe() -> Iterator[None]:
    """The reader went away (e.g. `| head`): exit 0 without the error Python prints at exit."""
    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command("average-checkpoints")
def average_checkpoints(
    inputs: List[str] = option(AverageConfig, "inputs", default=...),
    more: Optional[List[str]] = typer.Argument(
        None,
        metavar="CHECKPOINT",
        show_default=False,
        help="More checkpoint files: `--inputs a.pt b.pt c.pt` averages all three.",
    ),
    output: str = option(AverageConfig, "output"),
    num_epoch_checkpoints: Optional[int] = option(AverageConfig, "num_epoch_checkpoints"),
    num_update_checkpoints: Optional[int] = option(AverageConfig, "num_update_checkpoints"),
    trained_weights: bool = option(AverageConfig, "trained_weights"),
) -> None:
    """Average the weights of several checkpoints into one."""
    cfg = AverageConfig(
        output=output,
        inputs=list(inputs) + list(more or []),
        num_epoch_checkpoints=num_epoch_checkpoints,
        num_update_checkpoints=num_update_checkpoints,
        trained_weights=trained_weights,
    )
    paths = average_checkpoints_to(cfg)
    names = ", ".join(os.path.basename(p) for p in paths)
    print(f"averaged {len(paths)} checkpoints ({names}) into {cfg.output}", file=sys.stderr)


@app.command()
def score(
    sys_: List[str] = option(ScoreConfig, "sys", "--sys", default=...),
    ref: List[str] = option(ScoreConfig, "ref", "--ref", default=...),
    metrics: str = option(ScoreConfig, "metrics"),
    tokenize: str = option(ScoreConfig, "tokenize"),
    lowercase: bool = option(ScoreConfig, "lowercase"),
    json_: bool = option(ScoreConfig, "json", "--json"),
) -> None:
    """Score system outputs against references with sacreBLEU (BLEU, chrF, TER).

    With several --sys, a table compares them, with paired bootstrap resampling p-values
    against the first system.
    """
    cfg = ScoreConfig(sys=list(sys_), ref=list(ref), metrics=metrics, tokenize=tokenize, lowercase=lowercase)
    report = score_files(cfg.sys, cfg.ref, parse_metrics(cfg.metrics), cfg.tokenize, cfg.lowercase)
    if json_:
        print(json.dumps(report.to_json()))
    else:
        console = Console()
        render(report, console if console.is_terminal else Console(width=160))
