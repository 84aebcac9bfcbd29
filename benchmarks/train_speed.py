"""Training speed: nmt's Trainer vs a plain hand-written torch.nn.Transformer loop.

Both train transformer_tiny-sized models (3+3 layers, D 256, FFN 1024, 4 heads, dropout 0.1,
label smoothing 0.1, Adam) on the same Multi30k en-de batches (joint SentencePiece 8k,
--max-tokens 4096, fp32). Rounds alternate between the two loops in one process, so load
from other processes hits both alike; the ratio is the number to trust on a noisy machine.

    python benchmarks/train_speed.py --data data-bin/m30k-en-de [--threads 2] [--rounds 4] [--updates 10]
    python benchmarks/train_speed.py --raw ../shared/data/multi30k   # preprocesses into a temp dir first
    python benchmarks/train_speed.py --raw ... --device cuda --amp bf16 --max-tokens 16384   # on a GPU

On a GPU both loops run under the same autocast (fp16 with a gradient scaler each), and the clock
reads only after the GPU has finished the round.

Prints target tokens/s of both, their ratio, and the share of this machine's measured fp32
matmul throughput that nmt's training reaches (model FLOPs ~ 6 x parameters touched per token).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from nmt.config import OptimConfig, PreprocessConfig, TrainConfig
from nmt.data.dataset import BatchDataset, batch_by_tokens, epoch_order, load_split, read_meta
from nmt.device import keep_freed_memory
from nmt.models import arch_config, build_model
from nmt.tasks.translation import TranslationTask
from nmt.training.dist import DistInfo
from nmt.training.trainer import AMP_DTYPES, Trainer


class PlainTransformer(nn.Module):
    """The baseline: embeddings + sinusoidal positions + nn.Transformer + output Linear."""

    def __init__(
        self, vocab: int, d: int = 256, heads: int = 4, layers: int = 3, ffn: int = 1024, dropout: float = 0.1
    ):
        super().__init__()
        self.d = d
        self.src_embed = nn.Embedding(vocab, d, padding_idx=0)
        self.tgt_embed = nn.Embedding(vocab, d, padding_idx=0)
        self.core = nn.Transformer(d, heads, layers, layers, ffn, dropout, batch_first=True)
        self.out = nn.Linear(d, vocab, bias=False)
        pos = torch.arange(1024).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe = torch.zeros(1024, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.drop = nn.Dropout(dropout)

    def forward(self, src, src_pad_mask, tgt_in):
        s = self.drop(self.src_embed(src) * math.sqrt(self.d) + self.pe[: src.size(1)])
        t = self.drop(self.tgt_embed(tgt_in) * math.sqrt(self.d) + self.pe[: tgt_in.size(1)])
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), device=tgt_in.device)
        h = self.core(
            s,
            t,
            tgt_mask=causal,
            src_key_padding_mask=src_pad_mask,
            tgt_key_padding_mask=tgt_in == 0,
            memory_key_padding_mask=src_pad_mask,
            tgt_is_causal=True,
        )
        return self.out(h)


def matmul_gflops(seconds: float = 2.0) -> float:
    """This machine's fp32 matmul throughput (GFLOP/s) at the current thread count."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="a data dir written by nmt preprocess (en-de, joint 8k)")
    ap.add_argument("--raw", help="raw Multi30k dir to preprocess first (train/valid .en/.de)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--updates", type=int, default=10, help="updates per round per loop")
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    args = ap.parse_args()
    device = torch.device(args.device)
    keep_freed_memory()
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
    batches = batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, args.max_tokens)
    order = epoch_order(len(batches), 1, 1)
    dataset = BatchDataset(pairs, [batches[i] for i in order])
    vocab = meta["vocab_size"]["de"]

    torch.manual_seed(1)
    cfg = TrainConfig(
        data=data, max_tokens=args.max_tokens, amp=args.amp, optim=OptimConfig(lr=5e-4, warmup_updates=4000)
    )
    model = build_model(arch_config("transformer_tiny"), vocab, vocab, True)
    loss_fn = TranslationTask(cfg).loss(model, AMP_DTYPES[cfg.amp])
    ours = Trainer(cfg, model, device, DistInfo(), 256, loss_fn=loss_fn)
    plain = PlainTransformer(vocab).to(device)
    plain_opt = torch.optim.Adam(plain.parameters(), lr=5e-4, betas=(0.9, 0.98), foreach=True)
    plain_scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]

    def plain_step(batch):
        plain.train()
        batch = batch.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = plain(batch.src, batch.src_pad_mask, batch.tgt_in)
        loss = (
            F.cross_entropy(
                logits.float().reshape(-1, vocab),
                batch.tgt_out.reshape(-1),
                ignore_index=0,
                label_smoothing=0.1,
                reduction="sum",
            )
            / batch.ntokens
        )
        plain_scaler.scale(loss).backward()
        plain_scaler.unscale_(plain_opt)
        nn.utils.clip_grad_norm_(plain.parameters(), math.inf)
        plain_scaler.step(plain_opt)
        plain_scaler.update()
        plain_opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    totals = {"nmt": [0, 0.0], "nn.Transformer": [0, 0.0]}
    steps = {"nmt": lambda b: ours.train_step([b]), "nn.Transformer": plain_step}
    cursor = 0
    for r in range(args.rounds + 1):  # round 0 warms up both and is not counted
        chunk = [dataset[(cursor + i) % len(dataset)] for i in range(args.updates)]
        cursor += args.updates
        for name in steps:
            sync()
            start = time.perf_counter()
            for b in chunk:
                steps[name](b)
            sync()
            if r > 0:
                totals[name][0] += sum(b.ntokens for b in chunk)
                totals[name][1] += time.perf_counter() - start
    rate = {k: n / s for k, (n, s) in totals.items()}
    params = sum(p.numel() for p in ours.model.parameters())
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, threads {args.threads}"
    print(
        f"{where}, amp {args.amp}, max_tokens {args.max_tokens}, {args.rounds} x {args.updates} updates, "
        f"{params / 1e6:.1f}M params"
    )
    print(f"nmt             {rate['nmt']:8.0f} target tokens/s")
    print(f"nn.Transformer  {rate['nn.Transformer']:8.0f} target tokens/s")
    print(f"ratio nmt / nn.Transformer: {rate['nmt'] / rate['nn.Transformer']:.2f}")
    if device.type == "cuda":
        return
    peak = matmul_gflops()
    flops_per_token = 44e6  # ~6 x parameters touched per target token for this config
    print(
        f"fp32 matmul peak {peak:.0f} GFLOP/s; nmt reaches {rate['nmt'] * flops_per_token / 1e9:.1f} GFLOP/s "
        f"= {100 * rate['nmt'] * flops_per_token / 1e9 / peak:.0f}% of it"
    )


if __name__ == "__main__":
    main()
