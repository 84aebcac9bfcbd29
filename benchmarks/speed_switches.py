"""Does the blockwise loss pay on this machine? The technique against its switch, in one process.

    blockwise loss   under --amp, the loss computed from the decoder's features a block of rows at a
                     time instead of from the whole logits (`nmt train --full-logits` turns it off)

`transformer_multi30k` (4+4 layers, D 128, FFN 256, shared 8k embeddings, dropout 0.2, label
smoothing 0.1) trains on the same Multi30k batches (--max-tokens 4096) in three variants, one
Trainer each, in rounds that alternate between them so that load from other processes hits all
alike: fp32 (the reference), bf16 with the blockwise loss and bf16 with the full logits. It
prints target tokens/s of each, the speed ratio of the technique on/off, and each variant's peak
resident memory, measured in a child process that runs the same batches alone.

    nmt preprocess -s en -t de --trainpref $M30K/train --validpref $M30K/valid \\
        --destdir data-bin/m30k-en-de --vocab-size 8000 --joined-dictionary
    python benchmarks/speed_switches.py --data data-bin/m30k-en-de [--batches 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import resource
import subprocess
import sys
import time

import torch

from nmt.config import OptimConfig, TrainConfig
from nmt.data.dataset import BatchDataset, batch_by_tokens, epoch_order, load_split, read_meta
from nmt.device import process_settings
from nmt.models import arch_config, build_for_data
from nmt.tasks.translation import TranslationTask
from nmt.training.dist import DistInfo
from nmt.training.trainer import AMP_DTYPES, Trainer

# name -> (amp, full_logits)
VARIANTS = {
    "fp32": ("none", False),
    "bf16, blockwise loss": ("bf16", False),
    "bf16, full logits": ("bf16", True),
}
PAIRS = (("blockwise loss", "bf16, blockwise loss", "bf16, full logits"),)


def make_trainer(data: str, meta: dict, name: str) -> Trainer:
    amp, full_logits = VARIANTS[name]
    torch.manual_seed(1)
    model_cfg = dataclasses.replace(arch_config("transformer_multi30k"), dropout=0.2, share_all_embeddings=True)
    cfg = TrainConfig(
        data=data,
        max_tokens=4096,
        amp=amp,
        full_logits=full_logits,
        label_smoothing=0.1,
        optim=OptimConfig(lr=3e-3, warmup_updates=1000),
    )
    model = build_for_data(model_cfg, meta)
    loss_fn = TranslationTask(cfg).loss(model, AMP_DTYPES[cfg.amp])
    return Trainer(cfg, model, torch.device("cpu"), DistInfo(), 128, loss_fn=loss_fn)


def batches(data: str, meta: dict, count: int) -> list:
    pairs = load_split(data, "train", meta)
    plan = batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, 4096)
    order = epoch_order(len(plan), 1, 1)
    dataset = BatchDataset(pairs, [plan[i] for i in order])
    return [dataset[i] for i in range(min(count, len(dataset)))]


def run(trainer: Trainer, chunk: list) -> None:
    for b in chunk:
        trainer.train_step([b])


def peak_memory_mb(args: argparse.Namespace, name: str) -> float:
    """Peak resident memory of a child process that trains `name` on the same batches."""
    cmd = [sys.executable, __file__, "--data", args.data, "--batches", str(args.batches)]
    cmd += ["--threads", str(args.threads), "--memory-of", name]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["peak_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a data dir written by nmt preprocess (joint 8k dictionary)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=30, help="batches per round per variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-of", choices=list(VARIANTS), help=argparse.SUPPRESS)  # the child's job
    args = ap.parse_args()
    with process_settings(args.threads):
        meta = read_meta(args.data)
        chunk = batches(args.data, meta, args.batches)
        if args.memory_of:
            trainer = make_trainer(args.data, meta, args.memory_of)
            run(trainer, chunk)
            run(trainer, chunk)
            print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
            return
        peaks = {name: peak_memory_mb(args, name) for name in VARIANTS}
        trainers = {name: make_trainer(args.data, meta, name) for name in VARIANTS}
        for trainer in trainers.values():  # every shape once, outside the clock
            run(trainer, chunk)
        tokens = sum(int(b.ntokens) for b in chunk)
        seconds = {name: 0.0 for name in VARIANTS}
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                run(trainer, chunk)
                seconds[name] += time.perf_counter() - start
    print(f"threads {args.threads}, {len(chunk)} batches x {args.rounds} rounds, {tokens} target tokens a round")
    print(f"cpu: {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}")
    speed = {name: tokens * args.rounds / s for name, s in seconds.items()}
    for name in VARIANTS:
        print(f"  {name:<22} {speed[name]:>8,.0f} tok/s   peak {peaks[name]:,.0f} MB")
    for technique, on, off in PAIRS:
        print(f"{technique}: {speed[on] / speed[off]:.3f}x the speed without it ({on} / {off})")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
