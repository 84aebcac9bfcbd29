"""Training speed of fp32 against bf16 autocast on CPU, on the Multi30k recipe's settings.

`transformer_multi30k` (4+4 layers, D 128, FFN 256, shared 8k embeddings, dropout 0.2, label
smoothing 0.1) on Multi30k batches of --max-tokens 4096 (en-de, or the pair --data holds), one
Trainer per variant in one process, rounds alternating between them so that load from other
processes hits all alike:

    fp32             the default
    bf16 logits      autocast, the loss from the full (tokens x vocabulary) logits (`--full-logits`)
    bf16             autocast, the loss from the features block by block (what `nmt train --amp bf16` does)

    python benchmarks/amp_speed.py --raw ../shared/data/multi30k [--batches 30] [--rounds 3]
    python benchmarks/amp_speed.py --data data-bin/m30k-en-de --kernel-cache 8192   # a larger oneDNN cache

Every variant first runs each batch once, so oneDNN's kernels for these shapes exist before
the clock starts (training reaches that state early: its batches come in few shapes). bf16 pays
off only where the CPU multiplies bf16 natively (AMX or AVX512-BF16); elsewhere it is slower.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="a data dir written by nmt preprocess (joint 8k dictionary)")
    ap.add_argument("--raw", help="raw Multi30k dir to preprocess first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=30, help="batches per round per variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kernel-cache", type=int, default=None, help="oneDNN kernel cache size (default: oneDNN's)")
    args = ap.parse_args()
    # Before torch builds its first kernel: oneDNN reads the cache size once.
    from nmt.device import keep_freed_memory

    if args.kernel_cache:
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.kernel_cache)
    cache = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024 (oneDNN's default)")
    keep_freed_memory()

    import torch

    from nmt.config import OptimConfig, PreprocessConfig, TrainConfig
    from nmt.data.dataset import BatchDataset, batch_by_tokens, epoch_order, load_split, read_meta
    from nmt.models import arch_config, build_model
    from nmt.tasks.translation import TranslationTask
    from nmt.training.dist import DistInfo
    from nmt.training.trainer import AMP_DTYPES, Trainer

    torch.set_num_threads(args.threads)
    data = args.data
    if data is None:
        from nmt.data.preprocess import preprocess

        data = tempfile.mkdtemp() + "/m30k"
        preprocess(
            PreprocessConfig(
                source_lang="en",
                target_lang="de",
                trainpref=f"{args.raw}/train",
                validpref=f"{args.raw}/valid",
                destdir=data,
                vocab_size=8000,
                joined_dictionary=True,
            )
        )
    meta = read_meta(data)
    pairs = load_split(data, "train", meta)
    batches = batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, 4096)
    order = epoch_order(len(batches), 1, 1)
    dataset = BatchDataset(pairs, [batches[i] for i in order])
    chunk = [dataset[i] for i in range(min(args.batches, len(dataset)))]
    vocab = meta["vocab_size"][meta["target_lang"]]

    trainers = {}
    for name, amp, full_logits in (("fp32", "none", False), ("bf16 logits", "bf16", True), ("bf16", "bf16", False)):
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
        model = build_model(model_cfg, vocab, vocab, True)
        loss_fn = TranslationTask(cfg).loss(model, AMP_DTYPES[cfg.amp])
        trainer = Trainer(cfg, model, torch.device("cpu"), DistInfo(), 128, loss_fn=loss_fn)
        for b in chunk:  # every shape once, outside the clock
            trainer.train_step([b])
        trainers[name] = trainer

    totals = {name: [0, 0.0] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for b in chunk:
                trainer.train_step([b])
            totals[name][0] += sum(b.ntokens for b in chunk)
            totals[name][1] += time.perf_counter() - start
    rate = {name: n / s for name, (n, s) in totals.items()}
    print(f"CPU, threads {args.threads}, {args.rounds} x {len(chunk)} updates per variant, oneDNN kernel cache {cache}")
    for name, r in rate.items():
        print(f"{name:12s} {r:8.0f} target tokens/s   x{r / rate['fp32']:.2f} of fp32")


if __name__ == "__main__":
    main()
