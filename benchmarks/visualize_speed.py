"""Speed of `nmt visualize-attn` on a transformer_base-sized model (random weights).

One 20-piece sentence, teacher-forced on a 20-piece target, all 3 kinds x 6 layers x 8 heads:
18 head grids + 18 head-averaged maps (+ stats and, optionally, the HTML report). The target
is at most 30 s on a CPU machine. Usage:

    python benchmarks/visualize_speed.py [--threads 1] [--format png] [--html] [--repeat 1]

Prints one line per phase (seconds): checkpoint load, capture, and the whole `run` call.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import nmt.models as M
from nmt.checkpoint import load_model, save_model
from nmt.config import VisualizeConfig
from nmt.data.tokenizer import SPECIAL_PIECES, WordTokenizer
from nmt.viz import attention as V
from nmt.viz.capture import capture_sentence

N_WORDS = 2000  # vocabulary of the synthetic word tokenizer (embeddings are not what is measured)


def make_checkpoint(path: Path) -> tuple[str, str]:
    """A transformer_base checkpoint with random weights and a word vocabulary; returns (source, target)."""
    words = [f"w{i}" for i in range(N_WORDS)]
    tok = WordTokenizer(list(SPECIAL_PIECES) + words)
    meta = {
        "format_version": 1,
        "source_lang": "src",
        "target_lang": "tgt",
        "joined_dictionary": True,
        "vocab_size": {"src": tok.vocab_size, "tgt": tok.vocab_size},
        "tokenizer": {"type": "word", "files": {"src": "dict.txt", "tgt": "dict.txt"}},
        "splits": {},
    }
    cfg = M.arch_config("transformer_base")
    torch.manual_seed(0)
    model = M.build_model(cfg, tok.vocab_size, tok.vocab_size, True)
    save_model(str(path), model, cfg, "transformer_base", meta, {"dict.txt": tok.to_bytes()})
    source = " ".join(words[7 * i % N_WORDS] for i in range(20))
    target = " ".join(words[11 * i % N_WORDS] for i in range(20))
    return source, target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    ap.add_argument("--html", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "base.pt"
        source, target = make_checkpoint(ckpt)
        t0 = time.perf_counter()
        loaded = load_model(str(ckpt))
        t_load = time.perf_counter() - t0
        src, tgt = loaded.src_tok.encode(source), loaded.tgt_tok.encode(target)
        t0 = time.perf_counter()
        attn = capture_sentence(loaded.model, src, tgt)
        t_capture = time.perf_counter() - t0
        shapes = {k: (len(v), *v[0].shape) for k, v in attn.items()}
        print(f"model transformer_base, sentence {len(src)} + {len(tgt)} pieces, attention {shapes}")
        print(f"load {t_load:.2f} s, capture {t_capture:.3f} s")
        for r in range(args.repeat):
            out = Path(tmp) / f"out{r}"
            cfg = VisualizeConfig(
                path=str(ckpt),
                source=source,
                target=target,
                out=str(out),
                format=args.format,
                html=args.html,
                device="cpu",
            )
            t0, c0 = time.perf_counter(), time.process_time()
            res = V.run(cfg)
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
            n_fig = sum(1 for f in res.figures if f.path)
            print(
                f"run {r + 1}: {total:.2f} s wall ({cpu:.2f} s CPU) for {n_fig} {args.format} figures"
                f" + {len(res.files) - n_fig} other files"
                f" ({'with' if args.html else 'without'} HTML), {len(res.rows)} head rows;"
                f" {'PASS' if total <= 30 else 'FAIL'} (limit 30 s)"
            )


if __name__ == "__main__":
    main()
