"""Attention speed on CPU: SDPA's fused kernel against the explicit softmax(q k^T) path.

Times forward + backward of `nmt.models.layers.attention` both ways at sentence-like shapes
(4 heads; padded or causal masks) and at longer ones, so the crossover that sets
`SHORT_KEYS` can be re-measured on another machine or torch version:

    python benchmarks/attention_speed.py [--threads 2] [--repeat 20]

Prints milliseconds per call of each path and their ratio; the explicit path is the one
`attention` takes on CPU for keys up to SHORT_KEYS long.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nmt.models.layers import SHORT_KEYS, attention, causal_attend_mask

# (batch, query length, key length, head dim): Multi30k-sized batches of 4096 tokens, then longer
SHAPES = [
    (200, 17, 15, 32),
    (400, 9, 8, 32),
    (100, 40, 40, 64),
    (60, 64, 64, 32),
    (30, 128, 128, 32),
    (16, 256, 256, 64),
    (8, 512, 512, 64),
]


def time_call(fn, q, k, v, repeat: int) -> float:
    """Milliseconds per forward + backward of fn(q, k, v) -> out, after three warm-up calls."""
    grad = torch.randn_like(q)
    for i in range(repeat + 3):
        if i == 3:
            start = time.perf_counter()
        fn(q, k, v).backward(grad)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads {args.threads}; SHORT_KEYS = {SHORT_KEYS}; forward + backward, 4 heads")
    print(f"{'B':>4} {'T':>4} {'S':>4} {'Dh':>3} {'mask':>7} {'SDPA ms':>8} {'explicit ms':>12} {'SDPA/explicit':>14}")
    for b, t, s, dh in SHAPES:
        for causal in (False, True):
            if causal:
                s = t
                attend = causal_attend_mask(t)
            else:  # padded batch: key lengths between s/2 and s
                lengths = torch.randint(s // 2, s + 1, (b,))
                attend = (torch.arange(s) < lengths[:, None])[:, None, None, :]
            q = torch.randn(b, 4, t, dh, requires_grad=True)
            k, v = (torch.randn(b, 4, s, dh, requires_grad=True) for _ in range(2))

            def sdpa(q, k, v, attend=attend, causal=causal):
                if causal:
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
                return F.scaled_dot_product_attention(q, k, v, attn_mask=attend)

            def explicit(q, k, v, attend=attend, causal=causal):
                return attention(q, k, v, attend, causal, need_weights=True)[0]

            fused, plain = time_call(sdpa, q, k, v, args.repeat), time_call(explicit, q, k, v, args.repeat)
            mask = "causal" if causal else "padding"
            print(f"{b:>4} {t:>4} {s:>4} {dh:>3} {mask:>7} {fused:>8.2f} {plain:>12.2f} {fused / plain:>14.2f}")


if __name__ == "__main__":
    main()
