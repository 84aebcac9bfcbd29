"""int8 decoding on CPU: greedy and beam-5 decoding speed of float32 vs int8 linear layers, and BLEU.

    python benchmarks/int8_linear.py [--archs transformer_multi30k,transformer_tiny] [--threads 2]
        [--rounds 3] [--sentences 300] [--variants fp32,int8,ao-dynamic,ao-weight-only] [--layers]
        [--checkpoint CKPT --data DATA_DIR [--subset test]]

Speed. Each architecture is built untrained (nmt.models.build_model, shared 8k vocabulary, tied
output layer as in recipes/multi30k.sh) and copied once per variant:

    fp32            the model as trained
    ao-dynamic      torchao quantize_ with Int8DynamicActivationInt8WeightConfig (int8 x int8 matmuls)
    ao-weight-only  torchao quantize_ with Int8WeightOnlyConfig (float activations, int8 weights)
    int8            `nmt generate --quantize int8` (nmt.models.quantize.quantize_int8):
                    torch.ao.quantization.quantize_dynamic, qint8 weights with one scale per output row

each with the output layer made an nn.Linear first (nmt.models.quantize.output_layer_as_linear), so
that it is quantized too (the ao-* variants need torchao: pip install torchao).

--layers first times single linear layers at decoding shapes (16 and 400 rows), alternating the
variants every 20 calls. Then random sources of 8-30 tokens are decoded with the library's own loop
(nmt.generation.generate.translate_pairs) to exactly --length target tokens (--min-len = --max-len-b,
so an untrained model does the same work as a trained one), in rounds that alternate the order of
the variants in one process, so load from other processes hits them alike. Prints sentences/s per
round and the median ratio of each variant to fp32, then per variant the weight bytes and the
resident memory that building, quantizing and decoding a beam 5 round add to a fresh process
(after its imports).

BLEU. With --checkpoint and --data (a binarized data dir of the checkpoint's languages), the
split is translated with beam 5 by fp32 and by `quantize_int8`, and BLEU and the number of
identical translations are printed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import subprocess
import sys
import time

import numpy as np
import sacrebleu
import torch
from torch import nn
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

from nmt.checkpoint import load_models
from nmt.config import GenerateConfig
from nmt.data.dataset import PairDataset, TokenArray, load_split, read_meta
from nmt.device import process_settings
from nmt.generation.generate import translate_pairs, translate_split
from nmt.models import arch_config, build_model
from nmt.models.quantize import output_layer_as_linear, quantize_int8, quantize_linears

VARIANTS = ("fp32", "int8", "ao-dynamic", "ao-weight-only")


def quantized(model: nn.Module, variant: str, copy_first: bool = True) -> nn.Module:
    """`model` (a copy of it, with copy_first) with its linear layers (output layer included) in `variant`."""
    model = (copy.deepcopy(model) if copy_first else model).eval()
    if variant == "int8":  # what --quantize int8 runs; a bare layer gets the same quantization
        return quantize_int8(model) if hasattr(model, "decoder") else quantize_linears(model)
    if variant != "fp32":
        if hasattr(model, "decoder"):  # a whole model, not one layer
            output_layer_as_linear(model)
        quantize_(model, Int8DynamicActivationInt8WeightConfig() if variant == "ao-dynamic" else Int8WeightOnlyConfig())
    return model


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the distinct tensors of the model's state: int8 data and scales of quantized layers included."""
    seen: set[int] = set()

    def size(x) -> int:
        if isinstance(x, (tuple, list)):  # the legacy packed linear's (weight, bias)
            return sum(size(y) for y in x)
        if not isinstance(x, torch.Tensor):
            return 0
        if x.is_quantized:  # qint8: one byte an element, a float64 scale and int64 zero point a row
            rows = x.size(x.q_per_channel_axis()) if x.qscheme() == torch.per_channel_affine else 1
            return x.numel() + 16 * rows
        if type(x) is not torch.Tensor and hasattr(x, "__tensor_flatten__"):  # torchao: int8 data, scales
            return sum(size(getattr(x, name)) for name in x.__tensor_flatten__()[0])
        key = x.untyped_storage().data_ptr()
        if key in seen:  # a tied embedding is one tensor under several names
            return 0
        seen.add(key)
        return x.untyped_storage().nbytes()

    return sum(size(t) for t in model.state_dict().values())


def sources(n: int, vocab: int, seed: int = 1) -> PairDataset:
    """n random sources of 8-30 tokens (ids past the special ones)."""
    rng = np.random.default_rng(seed)
    return PairDataset(TokenArray.from_sequences([rng.integers(4, vocab, rng.integers(8, 31)) for _ in range(n)]))


def build(arch: str, vocab: int) -> nn.Module:
    torch.manual_seed(1)
    cfg = dataclasses.replace(arch_config(arch), share_all_embeddings=True)
    return build_model(cfg, vocab, vocab, True).eval()


def decode_cfg(beam: int, length: int) -> GenerateConfig:
    return GenerateConfig(beam=beam, max_len_a=0.0, max_len_b=length, min_len=length)


def resident_mib() -> float:
    """This process's resident memory now (VmRSS), MiB; freed heap memory stays resident (process_settings)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def rss_of(arch: str, variant: str, args) -> None:
    """In a fresh process: build, quantize, decode one round of beam 5; print the resident MiB it added to
    the process after its imports (the model, its quantization and decoding; imports alone are ~600 MiB)."""
    before = resident_mib()
    model = quantized(build(arch, args.vocab), variant, copy_first=False)
    translate_pairs([model], sources(args.sentences, args.vocab), decode_cfg(5, args.length), torch.device("cpu"))
    print(resident_mib() - before)


def layers(args) -> None:
    """Time one linear layer of each variant at decoding shapes, alternating variants every 20 calls.

    Short alternating bursts: on a shared machine each variant sees the same load."""
    shapes = [(128, 256, "multi30k FFN in"), (128, 8000, "multi30k output"), (256, 1024, "tiny FFN in")]
    shapes += [(1024, 256, "tiny FFN out"), (256, 8000, "tiny output")]
    print(f"one linear layer, {args.threads} threads: microseconds per call (median of {args.bursts} bursts)")
    for d_in, d_out, what in shapes:
        for rows in (16, 400):  # greedy: a batch of sentences; beam 5: 80 sentences x 5
            torch.manual_seed(0)
            base = nn.Sequential(nn.Linear(d_in, d_out))
            fns = {v: quantized(base, v) for v in args.variants}
            x = torch.randn(rows, d_in)
            times: dict[str, list[float]] = {v: [] for v in fns}
            with torch.inference_mode():
                for _ in range(args.bursts):
                    for v, f in fns.items():
                        f(x)
                        start = time.perf_counter()
                        for _ in range(20):
                            f(x)
                        times[v].append((time.perf_counter() - start) / 20 * 1e6)
            med = {v: statistics.median(t) for v, t in times.items()}
            print(
                f"  {what:16} {d_in:5} -> {d_out:5}, {rows:3} rows: "
                + ", ".join(
                    f"{v} {med[v]:.0f}" + ("" if v == "fp32" else f" ({med['fp32'] / med[v]:.2f}x)") for v in fns
                )
            )


def speed(args) -> None:
    cpu = torch.device("cpu")
    pairs = sources(args.sentences, args.vocab)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.sentences} sentences, {args.length} tokens each")
    for arch in args.archs.split(","):
        base = build(arch, args.vocab)
        models = {v: quantized(base, v) for v in args.variants}
        sizes = {v: weight_bytes(m) / 2**20 for v, m in models.items()}
        print(f"\n{arch}: {sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters")
        for beam in (1, 5):
            cfg = decode_cfg(beam, args.length)
            warm = PairDataset(TokenArray.from_sequences([pairs.src[i] for i in range(20)]))
            for m in models.values():
                translate_pairs([m], warm, cfg, cpu)
            ratios: dict[str, list[float]] = {v: [] for v in args.variants if v != "fp32"}
            for r in range(args.rounds):
                order = args.variants[r % len(args.variants) :] + args.variants[: r % len(args.variants)]
                rate = {}
                for v in order:
                    start = time.perf_counter()
                    translate_pairs([models[v]], pairs, cfg, cpu)
                    rate[v] = len(pairs) / (time.perf_counter() - start)
                for v in ratios:
                    ratios[v].append(rate[v] / rate["fp32"])
                print(f"  beam {beam} round {r}: " + ", ".join(f"{v} {rate[v]:.1f}" for v in args.variants) + " sent/s")
            for v, rs in ratios.items():
                print(
                    f"  beam {beam}: {v} / fp32 median {statistics.median(rs):.2f} "
                    f"(min {min(rs):.2f}, max {max(rs):.2f})"
                )
        for v in args.variants:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--rss-of",
                    f"{arch}:{v}",
                    "--threads",
                    str(args.threads),
                    "--sentences",
                    str(args.sentences),
                    "--length",
                    str(args.length),
                    "--vocab",
                    str(args.vocab),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            print(
                f"  {v}: weights {sizes[v]:.1f} MiB; build, quantize and a beam 5 round add "
                f"{float(out.stdout.split()[-1]):.0f} MiB to the resident memory of a fresh process"
            )


def bleu(args) -> None:
    loaded = load_models(args.checkpoint, "cpu")
    meta = read_meta(args.data)
    pairs = load_split(args.data, args.subset, meta)
    tgt_tok = loaded[0].tgt_tok
    refs = [tgt_tok.decode(pairs.tgt[i].tolist()) for i in range(len(pairs))]
    cfg = GenerateConfig(beam=5)
    model = loaded[0].model.eval()
    fp32 = translate_split([model], pairs, tgt_tok, cfg, "cpu")
    int8 = translate_split([quantize_int8(model)], pairs, tgt_tok, cfg, "cpu")
    same = sum(a == b for a, b in zip(fp32, int8))
    print(f"\n{args.checkpoint} on {args.data} {args.subset} ({len(pairs)} sentences, beam 5):")
    for name, hyps in (("fp32", fp32), ("int8", int8)):
        print(f"  {name}: BLEU {sacrebleu.corpus_bleu(hyps, [refs]).score:.2f}")
    print(f"  {same}/{len(pairs)} translations identical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="transformer_multi30k,transformer_tiny")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--length", type=int, default=20, help="target tokens per sentence")
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--layers", action="store_true", help="time single linear layers first")
    ap.add_argument("--bursts", type=int, default=30, help="alternating bursts of 20 calls per layer and variant")
    ap.add_argument("--checkpoint")
    ap.add_argument("--data")
    ap.add_argument("--subset", default="test")
    ap.add_argument("--rss-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.variants = args.variants.split(",")
    with process_settings(args.threads):  # as `nmt generate --threads`: the memory setting too
        if args.rss_of:
            arch, variant = args.rss_of.split(":")
            return rss_of(arch, variant, args)
        if args.layers:
            layers(args)
        if args.rounds:
            speed(args)
        if args.checkpoint:
            bleu(args)


if __name__ == "__main__":
    main()
