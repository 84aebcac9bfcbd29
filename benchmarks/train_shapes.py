"""Few batch shapes against batches padded to their longest sentence: shapes, padding, memory, speed.

Each variant is a --pad-to-multiple value and a oneDNN kernel cache capacity; by default

    1:8192     batches as long as their longest sentence, 8,192 cached kernels
    8:1024     lengths padded to multiples of 8 and few row counts (the defaults), oneDNN's own cache

(the capacity goes to the child's ONEDNN_PRIMITIVE_CACHE_CAPACITY).

For the Multi30k training split (and its sampled segmentations with --samples) the script prints,
per variant: batches, distinct batch shapes (B, S, T), the distinct matrix products they imply,
and the share of padding among source and target positions. The matrix products are counted by
running one training step of each batch shape on the meta device (no arithmetic) and recording
every mm / addmm / bmm / baddbmm with its operand shapes.

Then it trains `transformer_multi30k` as recipes/multi30k.sh does (shared 8k embeddings, dropout
0.2, label smoothing 0.1, AdamW 3e-3, weight decay 0.03, 1,000 warmup updates, --max-tokens 4096;
bf16 autocast where the CPU has AVX512-BF16 or AMX, with --full-logits on AVX512-BF16 without
AMX, and fp32) over epoch 1's batches, each (variant, precision) in a fresh process, the
variants alternating (in reverse order every other round), and prints each one's peak resident
memory and target tokens/s, and the ratios against the first variant. With --passes 2 each run
trains the same batches twice: the first pass meets every shape anew, the second reuses what
oneDNN cached. --clock cpu counts the process's CPU time instead of wall time, which other jobs
on a shared machine disturb less (use it with --threads 1).

    python benchmarks/train_shapes.py --raw ../shared/data/multi30k                  # a whole epoch
    python benchmarks/train_shapes.py --raw ../shared/data/multi30k --samples 3 --shapes-only
    python benchmarks/train_shapes.py --data data-bin/m30k-en-de --max-batches 30 --passes 2 \\
        --threads 1 --clock cpu --no-shapes                                          # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
MATMULS = ("mm", "addmm", "bmm", "baddbmm")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def recipe_precisions() -> list[tuple[str, bool]]:
    """(amp, full_logits) as recipes/multi30k.sh chooses them on this CPU, then fp32."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return [("bf16", False), ("none", False)]
    if "avx512_bf16" in flags:
        return [("bf16", True), ("none", False)]
    return [("none", False)]


def train_config(data: str, multiple: int, amp: str = "none", full_logits: bool = False):
    from nmt.config import OptimConfig, TrainConfig

    optim = OptimConfig(optimizer="adamw", lr=3e-3, weight_decay=0.03, warmup_updates=1000)
    return TrainConfig(
        data=data,
        max_tokens=4096,
        pad_to_multiple=multiple,
        amp=amp,
        full_logits=full_logits,
        label_smoothing=0.1,
        optim=optim,
    )


def build(cfg, meta: dict):
    from nmt.models import arch_config, build_for_data

    model_cfg = dataclasses.replace(arch_config("transformer_multi30k"), dropout=0.2, share_all_embeddings=True)
    return build_for_data(model_cfg, meta)


# ----------------------------------------------------------------------------- shapes (no training)
def matmul_shapes(cfg, task, steps: list[tuple[int, int, int, int]]) -> set:
    """Distinct (op, operand shapes) of the matrix products of one training step of each (B, S, T, N),
    N the target positions the output layer projects (nmt.training.scored_rows: the batch's real
    target tokens, rounded up)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from nmt.data.dataset import Batch
    from nmt.training import scored_rows
    from nmt.training.trainer import AMP_DTYPES

    seen: set = set()

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in MATMULS:
                seen.add((name, *(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))))
            return func(*args, **(kwargs or {}))

    model = build(cfg, task.meta).to("meta")
    loss_fn = task.loss(model, AMP_DTYPES[cfg.amp])
    real_rows = scored_rows.scored_rows
    try:
        for rows, s, t, n in steps:
            ids = torch.full((rows, max(s, t)), 7, device="meta")
            batch = Batch(ids[:, :s], ids.new_empty(rows), ids[:, :t], ids[:, :t], rows * t, ids.new_empty(rows))
            # meta tensors hold no values to find the padding in: the count comes from the real batch
            scored_rows.scored_rows = lambda target, n=n: torch.arange(n, device=target.device)
            with Record():
                loss, _ = loss_fn(model, model, batch, contextlib.nullcontext)  # meta tensors: the shapes of bf16's
                loss.backward()
    finally:
        scored_rows.scored_rows = real_rows
    return seen


def shape_report(data: str, multiples: list[int], amp: str, full_logits: bool) -> None:
    """Batches, distinct shapes, matrix products and padding of every training copy under each multiple."""
    from nmt.tasks.translation import TranslationTask
    from nmt.training.scored_rows import ROW_MULTIPLE

    print("shapes of the training split's batches (--max-tokens 4096), every epoch's copy:")
    print(
        f"{'--pad-to-multiple':>18} {'copy':>5} {'batches':>8} {'shapes':>7} {'products':>9} "
        f"{'src pad':>8} {'tgt pad':>8} {'padding rows':>13}"
    )
    for multiple in multiples:
        cfg = train_config(data, multiple, amp, full_logits)
        task = TranslationTask(cfg)
        union_shapes: set = set()
        union_products: set = set()
        for k, (pairs, batches) in enumerate(zip(task.train_sets, task.set_batches)):
            src, tgt = pairs.src.sizes + 1, pairs.tgt.sizes + 1
            shapes = [task.policy.shape(src[b], tgt[b]) for b in batches]
            scored = [
                min(-(-int(tgt[b].sum()) // ROW_MULTIPLE) * ROW_MULTIPLE, r * t)
                for b, (r, _, t) in zip(batches, shapes)
            ]
            products = matmul_shapes(cfg, task, sorted({(*shape, n) for shape, n in zip(shapes, scored)}))
            src_pos = sum(r * s for r, s, _ in shapes)
            tgt_pos = sum(r * t for r, _, t in shapes)
            pad_rows = sum(r for r, _, _ in shapes) - len(src)
            union_shapes |= set(shapes)
            union_products |= products
            print(
                f"{multiple:>18} {k:>5} {len(batches):>8} {len(set(shapes)):>7} {len(products):>9} "
                f"{1 - src.sum() / src_pos:>8.1%} {1 - tgt.sum() / tgt_pos:>8.1%} {pad_rows:>13}"
            )
        if len(task.train_sets) > 1:
            print(f"{multiple:>18} {'all':>5} {'':>8} {len(union_shapes):>7} {len(union_products):>9}")
        rows = Counter(r for r, _, _ in union_shapes)
        print(f"{'':>18} row counts: {len(rows)}; padded lengths: {sorted({s for _, s, _ in union_shapes})}")


# ----------------------------------------------------------------------------- one training run
def child(spec: dict) -> None:
    """Train epoch 1 (or its first max_batches batches) of one variant; print one JSON line."""
    import torch

    from nmt.device import keep_freed_memory
    from nmt.tasks.translation import TranslationTask
    from nmt.training.dist import DistInfo
    from nmt.training.loop import iterate
    from nmt.training.trainer import AMP_DTYPES, Trainer

    keep_freed_memory()  # what `nmt train` applies; the kernel cache comes from the environment
    torch.set_num_threads(spec["threads"])
    cfg = train_config(spec["data"], spec["multiple"], spec["amp"], spec["full_logits"])
    task = TranslationTask(cfg)
    torch.manual_seed(cfg.seed)
    model = build(cfg, task.meta)
    trainer = Trainer(cfg, model, torch.device("cpu"), DistInfo(), 128, loss_fn=task.loss(model, AMP_DTYPES[cfg.amp]))
    batches = task.epoch_batches(1)[: spec["max_batches"] or None]
    passes = []
    for _ in range(spec["passes"]):  # the first pass meets every shape anew, later ones reuse kernels
        tokens = 0
        start, cpu = time.perf_counter(), time.process_time()
        for batch in iterate(task.train_dataset(1, batches)):
            torch.manual_seed(cfg.seed * 1_000_003 + trainer.num_updates)  # as the training loop
            trainer.train_step([batch])
            tokens += batch.ntokens
        passes.append({"tokens": tokens, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"passes": passes, "batches": len(batches), "peak_mb": peak}))


def run_child(args, data: str, multiple: int, cache: int, amp: str, full_logits: bool) -> dict:
    spec = {
        "data": data,
        "multiple": multiple,
        "amp": amp,
        "full_logits": full_logits,
        "threads": args.threads,
        "max_batches": args.max_batches,
        "passes": args.passes,
    }
    env = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(cache)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def preprocess_raw(raw: str, pair: str, samples: int) -> str:
    from rich.console import Console

    from nmt.config import PreprocessConfig
    from nmt.data.preprocess import preprocess

    src, tgt = pair.split("-")
    data = os.path.join(tempfile.mkdtemp(), f"m30k-{pair}")
    cfg = PreprocessConfig(
        source_lang=src,
        target_lang=tgt,
        trainpref=f"{raw}/train",
        validpref=f"{raw}/valid",
        destdir=data,
        vocab_size=8000,
        joined_dictionary=True,
        trim_target_vocab=True,
        subword_samples=samples,
    )
    preprocess(cfg, console=Console(quiet=True))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="a data dir written by nmt preprocess (joint 8k dictionary)")
    ap.add_argument("--raw", help="raw Multi30k dir to preprocess first, as recipes/multi30k.sh does")
    ap.add_argument("--pair", default="en-de", help="with --raw: SRC-TGT")
    ap.add_argument("--samples", type=int, default=0, help="with --raw: sampled segmentations (the recipe: 3)")
    ap.add_argument("--variants", default="1:8192,8:1024", help="MULTIPLE:KERNEL_CACHE, comma-separated")
    ap.add_argument("--amp", default="recipe", help="recipe (bf16 as the recipe picks it, then fp32), bf16 or none")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="training runs of every (variant, precision)")
    ap.add_argument("--max-batches", type=int, default=0, help="train only the epoch's first N batches (0: all)")
    ap.add_argument("--passes", type=int, default=1, help="passes over the same batches in each run (2: cold, warm)")
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="tokens per second of wall time, or of the process's CPU time (steadier on a shared machine)",
    )
    ap.add_argument("--shapes-only", action="store_true", help="print the shape table only, train nothing")
    ap.add_argument("--no-shapes", action="store_true", help="train only, without the shape table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if not (args.data or args.raw):
        ap.error("give --data or --raw")
    variants = [tuple(int(x) for x in v.split(":")) for v in args.variants.split(",")]
    precisions = recipe_precisions()
    if args.amp != "recipe":
        precisions = [(a, f) for a, f in precisions if a == args.amp] or [(args.amp, False)]
    data = args.data or preprocess_raw(args.raw, args.pair, args.samples)

    import torch

    torch.set_num_threads(1)  # the shape table does no arithmetic
    amp0, full0 = precisions[0]
    if not args.no_shapes:
        shape_report(data, [m for m, _ in variants], amp0, full0)
    if args.shapes_only:
        return

    results: dict = {}
    for r in range(args.rounds):
        for amp, full_logits in precisions:
            order = variants if r % 2 == 0 else variants[::-1]  # A B, then B A: drifting load hits both alike
            for multiple, cache in order:
                out = run_child(args, data, multiple, cache, amp, full_logits)
                results.setdefault((amp, multiple, cache), []).append(out)
    scope = f"first {args.max_batches} batches" if args.max_batches else "a whole epoch"
    print(
        f"\ntraining, {scope} of epoch 1, {args.threads} threads, {args.rounds} run(s) each, alternating; "
        f"target tokens per {args.clock} second:"
    )
    head = "".join(f" {f'pass {k + 1} tok/s':>14} {'ratio':>6}" for k in range(args.passes))
    print(f"{'precision':<18} {'variant':<22}{head} {'peak RSS MB':>12} {'ratio':>6}")
    for amp, full_logits in precisions:
        name = {"none": "fp32"}.get(amp, amp) + (" full logits" if full_logits else "")
        base = None
        for multiple, cache in variants:
            runs = results[(amp, multiple, cache)]
            rates = [
                sum(r["passes"][k]["tokens"] for r in runs) / sum(r["passes"][k][args.clock] for r in runs)
                for k in range(args.passes)
            ]
            peak = max(r["peak_mb"] for r in runs)
            base = base or (rates, peak)
            cells = "".join(f" {x:>14.0f} {x / b:>6.3f}" for x, b in zip(rates, base[0]))
            print(f"{name:<18} {f'pad {multiple}, cache {cache}':<22}{cells} {peak:>12.0f} {peak / base[1]:>6.3f}")


if __name__ == "__main__":
    main()
