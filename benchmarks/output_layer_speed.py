"""Train-step speed with the output layer over the target's pieces (`preprocess --trim-target-vocab`).

Preprocesses Multi30k SRC-TGT twice into a temp dir (joint SentencePiece 8k, with and without
trimming: the same pairs, the same lengths, so the same batches), builds the Multi30k recipe's
model on each (transformer_multi30k, shared embeddings, dropout 0.2, label smoothing 0.1), and
times train steps on the same batches in alternating rounds in one process, so that load from
other processes hits both alike.

    python benchmarks/output_layer_speed.py --raw ../shared/data/multi30k [--pair en-fr] [--rounds 10]

Prints target tokens/s of both per round and the median ratio trimmed / full.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch
from rich.console import Console

from nmt.config import OptimConfig, PreprocessConfig, TrainConfig
from nmt.data.dataset import BatchDataset, batch_by_tokens, epoch_order, load_split, read_meta
from nmt.data.preprocess import preprocess
from nmt.device import keep_freed_memory
from nmt.models import arch_config, build_model
from nmt.tasks.translation import TranslationTask
from nmt.training.dist import DistInfo
from nmt.training.trainer import Trainer


def trainer_and_batches(raw: str, src: str, tgt: str, trim: bool, n: int, max_tokens: int):
    """(Trainer of the recipe's model, the first `n` batches of epoch 1) on freshly preprocessed data."""
    data = tempfile.mkdtemp() + f"/{'trim' if trim else 'full'}"
    preprocess(
        PreprocessConfig(
            source_lang=src,
            target_lang=tgt,
            trainpref=f"{raw}/train",
            destdir=data,
            vocab_size=8000,
            joined_dictionary=True,
            trim_target_vocab=trim,
        ),
        Console(quiet=True),
    )
    meta = read_meta(data)
    pairs = load_split(data, "train", meta)
    batches = batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, max_tokens)
    order = epoch_order(len(batches), 1, 1)
    dataset = BatchDataset(pairs, [batches[i] for i in order[:n]])
    torch.manual_seed(1)
    model_cfg = dataclasses.replace(arch_config("transformer_multi30k"), dropout=0.2, share_all_embeddings=True)
    cfg = TrainConfig(
        data=data,
        max_tokens=max_tokens,
        amp="none",
        label_smoothing=0.1,
        optim=OptimConfig(lr=3e-3, warmup_updates=1000),
    )
    sizes = meta["vocab_size"]
    model = build_model(model_cfg, sizes[src], sizes[tgt], True)
    print(f"{'trimmed' if trim else 'full'}: output layer of {sizes[tgt]} rows, source {sizes[src]}")
    loss_fn = TranslationTask(cfg).loss(model, None)
    return Trainer(cfg, model, torch.device("cpu"), DistInfo(), model_cfg.encoder_embed_dim, loss_fn=loss_fn), [
        dataset[i] for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", required=True, help="raw Multi30k dir (train.SRC, train.TGT)")
    ap.add_argument("--pair", default="en-fr")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--updates", type=int, default=10, help="updates per round per variant")
    ap.add_argument("--max-tokens", type=int, default=4096)
    args = ap.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    src, tgt = args.pair.split("-")
    n = 3 * args.updates
    runs = {
        name: trainer_and_batches(args.raw, src, tgt, name == "trimmed", n, args.max_tokens)
        for name in ("full", "trimmed")
    }
    assert [b.ntokens for b in runs["full"][1]] == [b.ntokens for b in runs["trimmed"][1]]
    for trainer, batches in runs.values():  # warm-up: allocator and kernels
        for b in batches[:3]:
            trainer.train_step([b])
    ratios = []
    for r in range(args.rounds):
        rates = {}
        for name in ("full", "trimmed") if r % 2 == 0 else ("trimmed", "full"):
            trainer, batches = runs[name]
            part = batches[(r % 3) * args.updates : (r % 3 + 1) * args.updates]
            start = time.perf_counter()
            for b in part:
                trainer.train_step([b])
            rates[name] = sum(b.ntokens for b in part) / (time.perf_counter() - start)
        ratios.append(rates["trimmed"] / rates["full"])
        print(
            f"round {r}: full {rates['full']:.0f}, trimmed {rates['trimmed']:.0f} target tokens/s, "
            f"ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"trimmed / full: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
