"""Training logs: interval meters, fairseq-style log lines, JSON lines, TensorBoard.

Stats arrive as summed tensors and stay on the device until a log interval, where they are
all-reduced once and turned into numbers (one host sync per interval, not per step).
Losses are reported in base 2 and ppl = 2 ** nll_loss, as fairseq reports them, so users'
log parsers and intuitions carry over.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import time
from typing import Optional

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nmt.training import dist

LN2 = math.log(2)
log = logging.getLogger("nmt.train")


class _ConsoleHandler(logging.Handler):
    """Log records through a rich Console, so lines print above a live progress bar, unwrapped."""

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)


def setup_logging(is_main: bool) -> Console:
    """Plain `time | level | name | message` lines on stderr, rank 0 only; returns the stderr console."""
    console = Console(file=sys.stderr)
    root = logging.getLogger("nmt")
    root.handlers.clear()
    root.propagate = False
    if is_main:
        handler = _ConsoleHandler(console)
        handler.setFormatter(
            logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s", "%Y-%m-%d %H:%M:%S")
        )
        root.addHandler(handler)
    root.setLevel(logging.INFO if is_main else logging.ERROR)
    return console


def epoch_bar(console: Console, enabled: bool) -> Progress:
    """A per-epoch progress bar on stderr; only drawn on a terminal (logs stay clean in files)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )


class Meter:
    """Sums of stats since the last log line; `state()` makes it part of a resumable checkpoint."""

    KEYS = ("loss", "nll_loss", "ntokens", "nsentences", "gnorm", "updates")

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(self.KEYS), dtype=torch.float64, device=self.device)
        self.start = time.perf_counter()
        self.elapsed_before = 0.0  # time carried over from a resumed run

    def add(self, stats: dict) -> None:
        row = [stats["loss"], stats["nll_loss"], stats["ntokens"], stats["nsentences"], stats["gnorm"], torch.ones(())]
        self.sums += torch.stack([t.to(self.device, torch.float64) for t in row])

    def reduce(self, info: dist.DistInfo) -> dict:
        """All-reduce (all ranks must call) and return per-token / per-update averages."""
        s = self.sums.clone()
        if info.enabled:
            s = dist.all_reduce_sum(s, info)
        loss, nll, ntok, nsent, gnorm_sum, updates = s.tolist()
        # Every rank counted the same updates and measured the same norm; tokens and sentences add up.
        gnorm_sum /= info.world_size
        updates /= info.world_size
        wall = time.perf_counter() - self.start + self.elapsed_before
        ntok_safe = max(ntok, 1.0)
        return {
            "loss": loss / ntok_safe / LN2,
            "nll_loss": nll / ntok_safe / LN2,
            "ppl": 2 ** min(nll / ntok_safe / LN2, 100.0),
            "wps": ntok / max(wall, 1e-9),
            "ups": updates / max(wall, 1e-9),
            "wpb": ntok / max(updates, 1.0),
            "bsz": nsent / max(updates, 1.0),
            "gnorm": gnorm_sum / max(updates, 1.0),
        }

    def state(self) -> dict:
        # A copy: on CPU `.cpu()` returns the live tensor, which later updates would change.
        sums = self.sums.detach().cpu().clone()
        return {"sums": sums, "elapsed": time.perf_counter() - self.start + self.elapsed_before}

    def load_state(self, state: dict) -> None:
        self.sums = state["sums"].to(self.device, torch.float64, copy=True)
        self.start = time.perf_counter()
        self.elapsed_before = state["elapsed"]


def memory_mb(device: torch.device) -> float:
    """Peak memory: CUDA allocator peak on GPU, process peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_line(prefix: str, values: dict, fmt: str) -> str:
    """fairseq-style `key value | key value` (or one JSON object with --log-format json)."""
    if fmt == "json":
        return json.dumps({"tag": prefix, **{k: _round(v) for k, v in values.items()}})
    parts = [prefix] + [f"{k} {_fmt(v)}" for k, v in values.items()]
    return " | ".join(parts)


def _round(v):
    """Six decimals, or six significant digits below 0.01 (an early warmup lr of 1e-7 stays 1e-7)."""
    if not isinstance(v, float):
        return v
    return float(f"{v:.6g}") if 0 < abs(v) < 1e-2 else round(v, 6)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


class Board:
    """TensorBoard scalars (and images) under LOGDIR/train and LOGDIR/valid; rank 0 only."""

    def __init__(self, logdir: Optional[str]):
        self.logdir = logdir
        self.writers: dict = {}

    def _writer(self, tag: str):
        if self.logdir is None:
            return None
        if tag not in self.writers:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when used

            self.writers[tag] = SummaryWriter(f"{self.logdir}/{tag}")
        return self.writers[tag]

    def scalars(self, tag: str, values: dict, step: int) -> None:
        w = self._writer(tag)
        if w is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    w.add_scalar(k, v, step)
            w.flush()

    def image(self, tag: str, name: str, image, step: int) -> None:
        w = self._writer(tag)
        if w is not None:
            w.add_image(name, image, step, dataformats="HWC")
            w.flush()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def param_summary(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: encoder, decoder (without embeddings), embeddings, output projection, total."""
    counts = {"encoder": 0, "decoder": 0, "embeddings": 0, "output_projection": 0, "total": 0}
    seen: set[int] = set()
    embed_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel()
        counts["total"] += n
        if id(p) in embed_ids:
            counts["embeddings"] += n
        elif "output_projection" in name:
            counts["output_projection"] += n
        elif name.startswith("encoder"):
            counts["encoder"] += n
        elif name.startswith("decoder"):
            counts["decoder"] += n
    return counts
