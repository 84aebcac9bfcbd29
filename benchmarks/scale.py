"""Does preprocessing stay flat in memory as the corpus grows? Time, lines/s and peak memory by size.

    python benchmarks/scale.py --sizes 0.1M,1M,10M --workdir /tmp/nmt-scale [--json scale.json]

For each size N (0.1M = 100,000 pairs; K and M suffixes), a synthetic English->French training
corpus of N pairs from the toy grammar (nmt.data.toy, drawn with a seeded generator and written
line by line, so making it takes no memory either) is written once to WORKDIR/N/raw and kept for
later runs. Then, each in a child process of its own:

- `nmt preprocess` with 1 and with 2 --workers (joined SentencePiece vocabulary, --vocab-size);
- `nmt train` on the result until its first update (`--max-update 1 --no-save`, transformer_tiny,
  CPU, one thread): the start-up of training on that corpus.

For each run it prints wall time, lines/s and peak memory. Preprocessing's lines/s are those of
its encoding step (every split, as its report on stderr gives them: `encoding: N lines in S s`),
the part that --workers spreads over processes; `overall` is training pairs over wall time,
SentencePiece training and start-up included. Peak memory is the
largest resident set of the child or any of its descendants (os.wait4's ru_maxrss), and the
largest sum of proportional set sizes (PSS) over the child and its worker processes, sampled from
/proc every 0.2 s (shared pages counted once: the memory the run really holds).

With --rounds R each worker count runs R times, the counts alternating; a row then gives the
median time and speed and the largest peak memory of its runs.

SentencePiece keeps every line it trains on in memory, so preprocessing is given at most
--spm-train-sentences lines of each language (the preprocess flag; 100,000 here by default, so
that every size trains SentencePiece on as much text and the comparison measures everything
else). Pass --spm-train-sentences 2000000 to measure the preprocess default.

Targets it reports against: peak RSS at the largest size within 1.2x that at the smallest; 2
workers at least 1.6x the lines/s of 1 (needs 2 idle cores); training start-up under 30 s at
10M pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from nmt.data.toy_data import grammar

ROOT = Path(__file__).resolve().parents[1]
TARGET_RSS_RATIO, TARGET_SPEEDUP, TARGET_STARTUP_S = 1.2, 1.6, 30.0


def parse_size(text: str) -> int:
    """'0.1M' -> 100000, '50K' -> 50000, '2000' -> 2000."""
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:].upper(), 1)
    return round(float(text[:-1] if scale > 1 else text) * scale)


def make_corpus(raw: Path, pairs: int, seed: int = 1) -> None:
    """WORKDIR/N/raw/train.{en,fr}: `pairs` toy pairs, written as they are drawn (kept once complete)."""
    if (raw / "done").exists():
        return
    raw.mkdir(parents=True, exist_ok=True)
    make, rng = grammar("en-fr"), random.Random(seed)
    with open(raw / "train.en", "w", encoding="utf-8") as en, open(raw / "train.fr", "w", encoding="utf-8") as fr:
        for _ in range(pairs):
            a, b = make(rng)
            en.write(a + "\n")
            fr.write(b + "\n")
    (raw / "done").write_text("")


def _descendants(pid: int) -> list[int]:
    """pid and every process below it, from /proc (best effort: processes come and go)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def run(cmd: list[str]) -> dict:
    """Run `cmd` as a child; its wall time, peak RSS (MB, the largest process), peak summed PSS (MB)
    and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_pss, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak_pss[0] = max(peak_pss[0], sum(_pss_kb(p) for p in _descendants(child.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)  # the child's rusage, its reaped descendants included
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if child.returncode:
        sys.exit(f"failed ({child.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_pss_mb": peak_pss[0] // 1024,
        "stderr": err.decode(errors="replace"),
    }


def encoding_speed(report: str) -> int:
    """Lines/s of the encoding step, from nmt preprocess's report line `encoding: N lines in S s (R lines/s)`."""
    match = re.search(r"encoding: (\d+) lines in [\d.]+ s \((\d+) lines/s\)", report)
    if not match:
        sys.exit("nmt preprocess did not report its encoding speed")
    return int(match.group(2))


def measure(size: str, work: Path, args: argparse.Namespace) -> list[dict]:
    pairs = parse_size(size)
    base = work / size
    make_corpus(base / "raw", pairs)
    nmt = [sys.executable, "-m", "nmt"]
    runs: dict[int, list[dict]] = {w: [] for w in args.workers}
    for r in range(args.rounds):  # alternating (1 2, then 2 1, ...): drifting load hits each alike
        for workers in args.workers if r % 2 == 0 else args.workers[::-1]:
            dest = base / f"bin-w{workers}"
            cmd = nmt + ["preprocess", "-s", "en", "-t", "fr", "--trainpref", str(base / "raw" / "train")]
            cmd += ["--destdir", str(dest), "--vocab-size", str(args.vocab_size), "--joined-dictionary", "--force"]
            cmd += ["--workers", str(workers), "--spm-train-sentences", str(args.spm_train_sentences)]
            run_ = run(cmd)
            speed = {
                "lines_per_s": encoding_speed(run_.pop("stderr")),
                "overall_lines_per_s": round(pairs / run_["wall_s"]),
            }
            runs[workers].append({**run_, **speed})
    rows = []
    for workers in args.workers:
        rows.append(
            {"size": size, "pairs": pairs, "step": f"preprocess, {workers} worker(s)", **summary(runs[workers])}
        )
        print(_line(rows[-1]), flush=True)
    cmd = nmt + ["train", str(base / f"bin-w{args.workers[0]}"), "--arch", "transformer_tiny", "--max-update", "1"]
    cmd += ["--no-save", "--save-dir", str(base / "ckpt"), "--device", "cpu", "--threads", "1", "--max-tokens", "4096"]
    r = run(cmd)
    del r["stderr"]
    rows.append({"size": size, "pairs": pairs, "step": "train to update 1", **r})
    print(_line(rows[-1]), flush=True)
    return rows


def summary(runs: list[dict]) -> dict:
    """One row for the rounds of a step: the median of times and speeds, the largest peak memory."""

    def median(key: str):
        values = sorted(r[key] for r in runs)
        return values[len(values) // 2]

    row = {k: median(k) for k in ("wall_s", "lines_per_s", "overall_lines_per_s")}
    row.update({k: max(r[k] for r in runs) for k in ("peak_rss_mb", "peak_pss_mb")})
    return {**row, "rounds": len(runs)}


def _line(r: dict) -> str:
    speed = " " * 43
    if "lines_per_s" in r:
        speed = f"{r['lines_per_s']:>9,} lines/s (overall {r['overall_lines_per_s']:>8,})"
    return (
        f"{r['size']:>6} {r['step']:<24} {r['wall_s']:>8.1f} s {speed}"
        f"  peak RSS {r['peak_rss_mb']:>7.0f} MB  peak PSS {r['peak_pss_mb']:>7.0f} MB"
    )


def verdicts(rows: list[dict], sizes: list[str], workers: list[int]) -> list[str]:
    """The targets, each with the measured value and whether it is met."""
    out = []

    def get(size: str, step: str) -> dict:
        return next(r for r in rows if r["size"] == size and r["step"] == step)

    small, large = sizes[0], sizes[-1]
    for w in workers:
        step = f"preprocess, {w} worker(s)"
        ratio = get(large, step)["peak_rss_mb"] / get(small, step)["peak_rss_mb"]
        ok = "met" if ratio <= TARGET_RSS_RATIO else "NOT met"
        out.append(f"{step}: peak RSS at {large} / at {small} = {ratio:.2f} (target <= {TARGET_RSS_RATIO}): {ok}")
    if 1 in workers and 2 in workers:
        for size in sizes:
            speedup = (
                get(size, "preprocess, 2 worker(s)")["lines_per_s"]
                / get(size, "preprocess, 1 worker(s)")["lines_per_s"]
            )
            ok = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
            out.append(f"{size}: 2 workers / 1 worker = {speedup:.2f}x lines/s (target >= {TARGET_SPEEDUP}x): {ok}")
    startup = get(large, "train to update 1")["wall_s"]
    ok = "met" if startup < TARGET_STARTUP_S else "NOT met"
    note = "" if parse_size(large) >= 10_000_000 else " (the target is set at 10M pairs)"
    out.append(f"training start-up at {large}: {startup:.1f} s (target < {TARGET_STARTUP_S:.0f} s){note}: {ok}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0.1M,1M,10M", help="training pairs per corpus, comma-separated (K, M)")
    ap.add_argument("--workdir", default="scale-work", help="corpora and data directories (corpora are kept)")
    ap.add_argument("--workers", default="1,2", help="--workers values of nmt preprocess, comma-separated")
    ap.add_argument("--vocab-size", type=int, default=300)
    ap.add_argument("--spm-train-sentences", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=1, help="preprocess runs per worker count, alternating (median)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    sizes = sorted(args.sizes.split(","), key=parse_size)
    work = Path(args.workdir).resolve()
    rows = [r for size in sizes for r in measure(size, work, args)]
    lines = verdicts(rows, sizes, args.workers)
    print("\n".join(lines))
    if args.json:
        result = {"rows": rows, "targets": lines, "cpus": os.cpu_count(), "settings": vars(args)}
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
