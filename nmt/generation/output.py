"""`nmt generate` and `nmt interactive` output: formatted lines per sentence, the output file, progress, the summary.

Formats and scores are described in nmt.generation.generate.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, Optional, TextIO

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from sacrebleu.metrics import BLEU

from nmt.config import GenerateConfig
from nmt.errors import UserError
from nmt.fileio import atomic_write
from nmt.generation.decoding import EOS, Hypothesis


@dataclass
class Stats:
    """Counters of one generate run (summed over chunks)."""

    sentences: int = 0
    tokens: int = 0  # generated target tokens of the best hypotheses, EOS included
    truncated: int = 0  # sources cut to the model's maximum source positions
    seconds: float = 0.0
    hyps: list[str] = field(default_factory=list)  # best detokenized hypotheses (kept only for BLEU)
    refs: Optional[list[str]] = None  # references of a binarized split
    max_source_positions: int = 0
    prompts: bool = False  # a language model continued prompts (truncated: prompts cut to their last pieces)


# Characters str.splitlines() (and text-mode readers) break lines at; a raw source echoed in an
# S- line becomes one line whatever it holds, so output lines map 1:1 to sentences for every reader.
LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def alignment(attn: torch.Tensor) -> str:
    """attn (L, S) -> "srcidx-tgtidx" pairs: per target token but EOS, the most attended source token but EOS."""
    if attn.size(0) < 2 or attn.size(1) < 2:
        return ""
    best = attn[:-1, :-1].argmax(dim=1).tolist()  # (L-1,)
    return " ".join(f"{s}-{t}" for t, s in enumerate(best))


def empty_hypothesis() -> Hypothesis:
    """The hypothesis of an empty (or blank) source line, which is never decoded: the empty
    translation (EOS alone) with score 0 and no alignment pairs."""
    return Hypothesis(tokens=torch.tensor([EOS]), score=0.0, positional_scores=torch.zeros(1), attn=torch.zeros(1, 1))


def format_sentence(
    i: int, source: str, reference: Optional[str], hyps: list[Hypothesis], tgt_tok, cfg: GenerateConfig
) -> list[str]:
    """Output lines of one sentence in cfg.format (see module docstring); `hyps` is [] for an empty source.

    plain: cfg.nbest lines, the detokenized hypotheses best first (empty lines where there are fewer).
    fairseq: S (and T) then H, D, P (and A) per hypothesis; an empty source gets `empty_hypothesis()`.
    """
    if cfg.format == "plain":
        texts = [tgt_tok.decode(h.tokens.tolist()) for h in hyps[: cfg.nbest]]
        return texts + [""] * (cfg.nbest - len(texts))
    lines = [f"S-{i}\t{source.translate(LINE_BREAKS)}"]
    if reference is not None:
        lines.append(f"T-{i}\t{reference.translate(LINE_BREAKS)}")
    for h in hyps or [empty_hypothesis()]:
        ids = h.tokens.tolist()
        score = h.score / math.log(2)
        text = tgt_tok.decode(ids)
        shown = text if cfg.post_process == "sentencepiece" else " ".join(tgt_tok.pieces(ids[:-1]))
        lines.append(f"H-{i}\t{score}\t{shown}")
        lines.append(f"D-{i}\t{score}\t{text}")
        lines.append(f"P-{i}\t" + " ".join(f"{p / math.log(2):.4f}" for p in h.positional_scores.tolist()))
        if cfg.print_alignment and h.attn is not None:
            lines.append(f"A-{i}\t{alignment(h.attn)}")
    return lines


@contextlib.contextmanager
def open_output(path: Optional[str]) -> Iterator[TextIO]:
    """stdout for None or "-"; else a temporary file next to `path`, renamed over it on success only."""
    if path in (None, "-"):
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"--output {path}: directory {directory} does not exist")
    with atomic_write(path, "w", suffix=".txt", encoding="utf-8") as f:
        yield f


class Progress:
    """A rich progress display on stderr (sentences done), or nothing when disabled."""

    def __init__(self, enabled: bool):
        console = Console(stderr=True)
        self.bar = RichProgress(
            TextColumn("translating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (enabled and console.is_terminal),
        )
        self.task = None

    def __enter__(self) -> "Progress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: Optional[int]) -> None:
        self.task = self.bar.add_task("translate", total=total)

    def advance(self, n: int) -> None:
        self.bar.advance(self.task, n)


def truncation_warning(stats: Stats) -> list[str]:
    """One warning line when sources were cut to the model's source positions, else none."""
    if not stats.truncated:
        return []
    if stats.prompts:
        most = max(stats.max_source_positions - 2, 0)
        return [
            f"warning: {stats.truncated} prompt(s) longer than the model's {most} prompt pieces kept their last {most}"
        ]
    return [
        f"warning: {stats.truncated} source sentence(s) longer than the model's "
        f"{stats.max_source_positions} source positions were truncated"
    ]


def summary(stats: Stats) -> list[str]:
    """Summary lines: counts and speed; BLEU with its sacreBLEU signature when references exist."""
    secs = max(stats.seconds, 1e-9)
    done = "continued" if stats.prompts else "translated"
    lines = truncation_warning(stats) + [
        f"{done} {stats.sentences} sentences ({stats.tokens} tokens) in {stats.seconds:.2f} s: "
        f"{stats.sentences / secs:.2f} sentences/s, {stats.tokens / secs:.2f} tokens/s"
    ]
    refs = stats.refs
    if refs is not None:
        bleu = BLEU()
        score = bleu.corpus_score(stats.hyps, [refs])
        lines.append(f"{score} | {bleu.get_signature()}")
    return lines
