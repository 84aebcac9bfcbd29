"""Decoding speed on Multi30k test2016 (1000 sentences) with a checkpoint, beam 5 and greedy.

    python benchmarks/generate_speed.py CKPT [--data DIR] [--threads 2] [--beams 5,1] [--workers 1,2]
        [--max-tokens 8000] [--verify N]

DIR holds the raw corpus (test2016.{src}); default ../shared/data/multi30k next to the repo, or
$MULTI30K. The source side is encoded with the checkpoint's own tokenizer before the clock
starts: the time is the decoding loop only (`nmt.generation.generate.translate_pairs`: length-bucketed
batches, search, hypotheses back in input order; model on CPU). `--threads` is the total: with
W workers (`nmt generate --workers W`) W batches are decoded at once on threads/W intra-op
threads each. Prints sentences/s and generated tokens/s (best hypotheses, EOS included) per beam
size and worker count, and checks that every worker count gives the first one's best hypotheses
(the same tokens; scores may differ in the last bits, since a matrix product on one thread sums
in another order than on two), so the speeds compare runs of the same process and the same work.

--verify N re-translates the first N sentences one at a time (batch of one: no padding, no
batch shrinking) and checks that the batched run gave exactly the same tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from nmt.checkpoint import load_models
from nmt.config import GenerateConfig
from nmt.data.dataset import PairDataset, TokenArray
from nmt.generation.generate import translate_pairs

DEFAULT_DATA = Path(os.environ.get("MULTI30K", Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"))


def load_pairs(path: Path, src_tok, max_src: int) -> PairDataset:
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    return PairDataset(TokenArray.from_sequences([src_tok.encode(line)[: max_src - 1] for line in lines]))


def timed(models, pairs: PairDataset, cfg: GenerateConfig, threads: int) -> tuple[float, int, list]:
    """Seconds, generated tokens, and (tokens, score) of every best hypothesis, in input order."""
    torch.set_num_threads(max(1, threads // cfg.workers))  # as `nmt generate --threads --workers`
    start = time.perf_counter()
    hyps, _ = translate_pairs(models, pairs, cfg, torch.device("cpu"))
    secs = time.perf_counter() - start
    best = [(h[0].tokens.tolist(), h[0].score) for h in hyps]
    return secs, sum(len(t) for t, _ in best), best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beams", default="5,1")
    ap.add_argument("--max-tokens", type=int, default=8000)
    ap.add_argument("--max-len-a", type=float, default=1.2)
    ap.add_argument("--max-len-b", type=int, default=10)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (threads split among them)")
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
    pairs = load_pairs(path, loaded[0].src_tok, max_src)
    n = len(pairs)
    for beam in [int(b) for b in args.beams.split(",")]:
        base = None
        for workers in [int(w) for w in args.workers.split(",")]:
            cfg = GenerateConfig(
                beam=beam,
                max_len_a=args.max_len_a,
                max_len_b=args.max_len_b,
                max_tokens=args.max_tokens,
                workers=workers,
            )
            timed(models, PairDataset(TokenArray.from_sequences([pairs.src[i] for i in range(50)])), cfg, args.threads)
            secs, tokens, best = timed(models, pairs, cfg, args.threads)
            print(
                f"beam {beam}, {workers} worker(s) x {max(1, args.threads // workers)} thread(s): "
                f"{n / secs:8.1f} sentences/s {tokens / secs:9.1f} tokens/s ({secs:.2f} s)",
                flush=True,
            )
            if base is None:
                base = best
            else:
                same = sum(x[0] == y[0] for x, y in zip(best, base))
                close = max(abs(x[1] - y[1]) for x, y in zip(best, base))
                print(f"  {same}/{n} best hypotheses identical to the first run's (scores differ by <= {close:.1e})")
        if args.verify:  # one sentence per batch: no padding, no batch shrinking
            one = GenerateConfig(beam=beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b, batch_size=1)
            firsts = PairDataset(TokenArray.from_sequences([pairs.src[i] for i in range(args.verify)]))
            _, _, alone = timed(models, firsts, one, args.threads)
            same = sum(alone[i][0] == base[i][0] for i in range(args.verify))
            print(f"  verify: {same}/{args.verify} sentences identical when translated one at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
