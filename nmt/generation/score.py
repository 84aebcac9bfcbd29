"""Scoring with sacreBLEU: BLEU, chrF and TER with their signatures; paired bootstrap significance.

One or more system outputs are scored against one or more reference streams (every file one
segment a line, all with the same number of lines). With several systems, each one after the
first is compared with the first by sacreBLEU's paired bootstrap resampling
(`sacrebleu.significance.PairedTest`, test_type "bs", 1000 resamples, seed from SACREBLEU_SEED
or 12345), which also gives each system's mean score and 95% confidence interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rich.table import Table
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from nmt.errors import UserError

METRICS = ("bleu", "chrf", "ter")
LABELS = {"bleu": "BLEU", "chrf": "chrF2", "ter": "TER"}


@dataclass
class MetricResult:
    score: float
    text: str  # sacreBLEU's own rendering, e.g. "BLEU = 30.12 61.2/36.0/... (BP = ...)"
    p_value: Optional[float] = None  # against the first system (paired bootstrap)
    mean: Optional[float] = None  # bootstrap mean
    ci: Optional[float] = None  # half-width of the 95% confidence interval


@dataclass
class SystemScores:
    path: str
    metrics: dict[str, MetricResult] = field(default_factory=dict)  # by metric key ("bleu", "chrf", "ter")


@dataclass
class Report:
    systems: list[SystemScores]
    signatures: dict[str, str]  # metric key -> sacreBLEU signature
    references: list[str]
    n_segments: int
    bootstrap: bool

    def to_json(self) -> dict:
        return {
            "references": self.references,
            "segments": self.n_segments,
            "signatures": self.signatures,
            "systems": [{"path": s.path, **{k: vars(m) for k, m in s.metrics.items()}} for s in self.systems],
        }


def read_text(path: str, flag: str) -> list[str]:
    """Lines of a UTF-8 file (newlines stripped); missing, unreadable, empty or non-UTF-8 -> UserError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"{flag} {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(f"{flag} {path}: line {line} is not valid UTF-8") from None
    if not text:
        raise UserError(f"{flag} {path} is empty")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise UserError(f"--metrics {text!r}: choose from {', '.join(METRICS)} (comma-separated)")
    return list(dict.fromkeys(names))


def build_metrics(names: list[str], tokenize: str, lowercase: bool) -> dict:
    """sacreBLEU metric objects by key."""
    if tokenize not in BLEU.TOKENIZERS:
        raise UserError(f"--tokenize {tokenize!r}: choose from {', '.join(BLEU.TOKENIZERS)}")
    make = {
        "bleu": lambda: BLEU(tokenize=tokenize, lowercase=lowercase),
        "chrf": lambda: CHRF(lowercase=lowercase),
        "ter": lambda: TER(case_sensitive=not lowercase),
    }
    try:
        return {name: make[name]() for name in names}
    except Exception as e:  # e.g. a tokenizer needing a package or a download that is missing
        raise UserError(f"cannot build the {tokenize} tokenizer: {e}") from None


def score_files(
    sys_paths: list[str],
    ref_paths: list[str],
    metrics: list[str] = ("bleu",),
    tokenize: str = "13a",
    lowercase: bool = False,
    n_bootstrap: int = 1000,
) -> Report:
    """Score every system file against the reference files (see the module docstring)."""
    if not sys_paths:
        raise UserError("--sys: give at least one system output")
    if not ref_paths:
        raise UserError("--ref: give at least one reference")
    refs = [read_text(p, "--ref") for p in ref_paths]
    hyps = [read_text(p, "--sys") for p in sys_paths]
    n = len(refs[0])
    for flag, paths, texts in (("--ref", ref_paths, refs), ("--sys", sys_paths, hyps)):
        for p, lines in zip(paths, texts):
            if len(lines) != n:
                raise UserError(f"{flag} {p} has {len(lines)} lines but --ref {ref_paths[0]} has {n}")
    objs = build_metrics(list(metrics), tokenize, lowercase)
    systems = [SystemScores(p) for p in sys_paths]
    signatures: dict[str, str] = {}
    if len(hyps) == 1:
        for key, metric in objs.items():
            s = metric.corpus_score(hyps[0], refs)
            systems[0].metrics[key] = MetricResult(s.score, str(s))
            signatures[key] = str(metric.get_signature())
        return Report(systems, signatures, list(ref_paths), n, bootstrap=False)

    names = [f"{i}:{p}" for i, p in enumerate(sys_paths)]  # unique even when a path repeats
    for key, metric in objs.items():
        test = PairedTest(list(zip(names, hyps)), {key: metric}, refs, test_type="bs", n_samples=n_bootstrap)
        sigs, results = test()
        (metric_name,) = [k for k in results if k != "System"]
        signatures[key] = str(sigs[metric_name])
        for system, res, h in zip(systems, results[metric_name], hyps):
            text = str(metric.corpus_score(h, refs))
            system.metrics[key] = MetricResult(res.score, text, res.p_value, res.mean, res.ci)
    return Report(systems, signatures, list(ref_paths), n, bootstrap=True)


def render(report: Report, console) -> None:
    """Human-readable output: sacreBLEU lines for one system, a table with p-values for several."""
    if not report.bootstrap:
        for key, m in report.systems[0].metrics.items():
            console.print(m.text, markup=False, highlight=False, soft_wrap=True)
            console.print(f"  signature: {report.signatures[key]}", markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{report.n_segments} segments; p: paired bootstrap against the first system")
    table.add_column("system", overflow="fold")
    keys = list(report.systems[0].metrics)
    for key in keys:
        table.add_column(f"{LABELS[key]} ± 95% CI", justify="right", no_wrap=True)
        table.add_column("p", justify="right", no_wrap=True)
    for i, system in enumerate(report.systems):
        row = [system.path]
        for key in keys:
            m = system.metrics[key]
            row.append(f"{m.score:.2f} ± {m.ci:.2f}" if m.ci is not None else f"{m.score:.2f}")
            if i == 0 or m.p_value is None:
                row.append("baseline" if i == 0 else "")
            else:
                row.append(f"{m.p_value:.4f}" + (" *" if m.p_value < 0.05 else ""))
        table.add_row(*row)
    console.print(table)
    console.print("* significantly different from the first system (p < 0.05)", markup=False, highlight=False)
    for key in keys:
        console.print(f"{key} signature: {report.signatures[key]}", markup=False, highlight=False, soft_wrap=True)
