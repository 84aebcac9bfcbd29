"""Decoding speed on Multi30k test2016 (1000 sentences) with a checkpoint, beam 5 and greedy.

    python benchmarks/generate_speed.py CKPT [--data DIR] [--threads 2] [--beams 5,1] [--max-tokens 8000]
        [--verify N]

DIR holds the raw corpus (test2016.{src}); default ../shared/data/multi30k next to the repo, or
$MULTI30K. The source side is encoded with the checkpoint's own tokenizer and cut into
length-bucketed batches before the clock starts: the time is the decoding loop only
(`translate_batch` over all batches, model on CPU, `--threads` intra-op threads). Prints
sentences/s and generated tokens/s (best hypotheses, EOS included) per beam size.

--verify N re-translates the first N sentences one at a time (batch of one: no padding, no
batch shrinking) and checks that the batched run gave exactly the same tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nmt.checkpoint import load_models
from nmt.config import GenerateConfig
from nmt.data import PairDataset, TokenArray, batch_by_tokens, collate
from nmt.generate import batch_budget
from nmt.search import PAD, translate_batch

DEFAULT_DATA = Path(os.environ.get("MULTI30K", Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"))


def load_batches(path: Path, src_tok, max_tokens: int, beam: int, max_src: int) -> tuple[list[torch.Tensor], int]:
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    ids = [src_tok.encode(line)[: max_src - 1] for line in lines]
    pairs = PairDataset(TokenArray.from_sequences(ids))
    sizes = np.asarray(pairs.src.sizes)
    batches = batch_by_tokens(sizes, None, batch_budget(max_tokens, beam, int(sizes.max())))
    return [(collate(pairs, idx).src, idx) for idx in batches], len(lines)


def timed(models, batches, cfg) -> tuple[float, int, dict[int, list[int]]]:
    out: dict[int, list[int]] = {}
    tokens = 0
    start = time.perf_counter()
    for src, idx in batches:
        for i, hyps in zip(idx.tolist(), translate_batch(models, src, src.eq(PAD), cfg)):
            out[i] = hyps[0].tokens.tolist()
            tokens += len(out[i])
    return time.perf_counter() - start, tokens, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beams", default="5,1")
    ap.add_argument("--max-tokens", type=int, default=8000)
    ap.add_argument("--max-len-a", type=float, default=1.2)
    ap.add_argument("--max-len-b", type=int, default=10)
    ap.add_argument("--verify", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    loaded = load_models(args.checkpoint, "cpu")
    models = [item.model for item in loaded]
    src_lang = loaded[0].meta["source_lang"]
    path = Path(args.data) / f"test2016.{src_lang}"
    if not path.exists():
        print(f"error: {path} not found (give --data or set MULTI30K)", file=sys.stderr)
        return 2
    max_src = min(m.max_positions()[0] for m in models)
    print(f"{path}; {loaded[0].arch}; {args.threads} threads; torch {torch.__version__}")
    for beam in [int(b) for b in args.beams.split(",")]:
        batches, n = load_batches(path, loaded[0].src_tok, args.max_tokens, beam, max_src)
        print(f"beam {beam}: {n} sentences in {len(batches)} batches")
        cfg = GenerateConfig(beam=beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b)
        timed(models, batches[:1], cfg)  # warm-up
        secs, tokens, out = timed(models, batches, cfg)
        print(f"beam {beam}: {n / secs:8.1f} sentences/s {tokens / secs:9.1f} tokens/s ({secs:.2f} s)")
        if args.verify:
            firsts = sorted(out)[: args.verify]
            single = [(src[j : j + 1, : int(src[j].ne(PAD).sum())], idx[j : j + 1]) for src, idx in batches
                      for j in range(len(idx)) if idx[j] in firsts]
            _, _, alone = timed(models, single, cfg)
            same = sum(alone[i] == out[i] for i in alone)
            print(f"  verify: {same}/{len(alone)} sentences identical when translated one at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
