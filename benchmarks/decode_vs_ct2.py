"""Decoding on the same weights: nmt (PyTorch) fp32 and int8 against CTranslate2 fp32 and int8.

    python benchmarks/decode_vs_ct2.py CKPT [--data DIR | --src FILE --ref FILE] [--beams 5,1] [--threads 2,1]
        [--workers 1,2] [--rounds 3] [--lenpen 1.0] [--max-tokens 8000] [--variants LIST] [--json FILE]

The checkpoint is exported once with `nmt export --format ctranslate2` (float32, in a temporary
directory); CTranslate2 loads it with compute_type float32 or int8, and nmt decodes the checkpoint
itself, in fp32 or with `--quantize int8`. Every variant translates the same source pieces
(test2016.{src} of DIR, encoded with the checkpoint's SentencePiece model before the clock
starts), with the same search: beam B, length penalty, at most 200 pieces (nmt --max-len-a 0
--max-len-b 200, CTranslate2 max_decoding_length 201: nmt forces EOS at its limit), length-sorted
batches of at most --max-tokens source tokens (CTranslate2: batch_type "tokens"), and every
hypothesis scored (CTranslate2: return_scores, as nmt always scores). With W workers, T threads
are W batches decoded at once on T / W threads each: nmt `--workers W`, CTranslate2 inter_threads
W and intra_threads T / W. One process, rounds alternating the variants; the median time of the
rounds is reported.

Per variant, beam and thread count it prints sentences/s, generated tokens/s (EOS included),
sacreBLEU against test2016.{tgt}, how many translations are identical (same pieces) to nmt fp32's,
and the peak resident memory of a child process that loads that variant and translates once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# torch and nmt are imported where they are used: a child measuring CTranslate2's memory loads
# ctranslate2 alone, as a deployment with it would.

DEFAULT_DATA = Path(os.environ.get("MULTI30K", Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"))
VARIANTS = ("nmt fp32", "nmt int8", "ct2 fp32", "ct2 int8")
MAX_LEN = 200


class Decoder:
    """One variant, loaded once: `run(ids, pieces, beam, threads, workers)` -> per sentence, in input order,
    the best translation without EOS: ids (nmt) or pieces (CTranslate2)."""

    def __init__(self, name: str, ckpt: str, ct2_dir: str, max_tokens: int, lenpen: float) -> None:
        self.name, self.max_tokens, self.lenpen = name, max_tokens, lenpen
        engine, precision = name.split()
        self.engine = engine
        if engine == "nmt":
            from nmt.checkpoint import load_model
            from nmt.generation.generate import decoding_models

            # as `nmt generate` prepares them: int8 linear layers, or float32 with oneDNN's output layer
            (self.model,) = decoding_models([load_model(ckpt, "cpu")], "int8" if precision == "int8" else "none")
        else:
            import ctranslate2

            compute = "float32" if precision == "fp32" else "int8"
            self.translators = {}  # per (threads, workers): CTranslate2 fixes its threads when it loads
            self.load = lambda threads, workers: ctranslate2.Translator(
                ct2_dir, device="cpu", compute_type=compute, inter_threads=workers, intra_threads=threads // workers
            )
            with open(os.path.join(ct2_dir, "nmt_export.json"), encoding="utf-8") as f:
                self.max_src = json.load(f)["max_source_positions"]

    def run(
        self, ids: list[list[int]], pieces: list[list[str]], beam: int, threads: int, workers: int = 1
    ) -> list[list[int]]:
        if self.engine == "nmt":
            import torch

            from nmt.config import GenerateConfig
            from nmt.data.dataset import PairDataset, TokenArray
            from nmt.data.tokenizer import EOS
            from nmt.generation.generate import translate_pairs

            torch.set_num_threads(threads // workers)  # as `nmt generate --threads T --workers W`
            cfg = GenerateConfig(
                beam=beam,
                lenpen=self.lenpen,
                max_len_a=0,
                max_len_b=MAX_LEN,
                max_tokens=self.max_tokens,
                workers=workers,
            )
            hyps, _ = translate_pairs(
                [self.model], PairDataset(TokenArray.from_sequences(ids)), cfg, torch.device("cpu")
            )
            return [[t for t in h[0].tokens.tolist() if t != EOS] for h in hyps]
        if (threads, workers) not in self.translators:
            self.translators[threads, workers] = self.load(threads, workers)
        results = self.translators[threads, workers].translate_batch(
            pieces,
            beam_size=beam,
            length_penalty=self.lenpen,
            max_decoding_length=MAX_LEN + 1,
            max_input_length=self.max_src,
            max_batch_size=self.max_tokens,
            batch_type="tokens",
            return_scores=True,  # nmt's hypotheses carry their scores: the same work
        )
        return [r.hypotheses[0] for r in results]


def source(args, ckpt: str):
    """The checkpoint, the source sentences as ids and as pieces, and the references."""
    from nmt.checkpoint import load_model

    loaded = load_model(ckpt, "cpu")
    data = Path(args.data)
    src = args.src or data / f"test2016.{loaded.meta['source_lang']}"
    ref = args.ref or data / f"test2016.{loaded.meta['target_lang']}"
    lines = Path(src).read_text(encoding="utf-8").rstrip("\n").split("\n")
    refs = Path(ref).read_text(encoding="utf-8").rstrip("\n").split("\n")
    ids = [loaded.src_tok.encode(line) for line in lines]
    pieces = [loaded.src_tok.pieces(i) for i in ids]
    return loaded, ids, pieces, refs


def as_ids(loaded, out: list) -> list[list[int]]:
    """nmt gives ids, CTranslate2 pieces: its target vocabulary is nmt's pieces in id order."""
    return [t if not t or isinstance(t[0], int) else [loaded.tgt_tok.piece_to_id(p) for p in t] for t in out]


def peak_rss_mb(args, inputs: str, ct2_dir: str, name: str, beam: int, threads: int, workers: int) -> float:
    """Peak resident memory of a child process that loads one variant and translates the set once."""
    cmd = [
        sys.executable,
        __file__,
        args.checkpoint,
        "--max-tokens",
        str(args.max_tokens),
        "--lenpen",
        str(args.lenpen),
    ]
    cmd += ["--memory-of", f"{name}|{beam}|{threads}|{workers}", "--inputs", inputs, "--ct2-dir", ct2_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def peak_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, which belongs to the process's own address
    space (getrusage's ru_maxrss survives exec, so a child would report its parent's peak)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: an upper bound


def memory_child(args) -> int:
    """The child of `peak_rss_mb`: the inputs come encoded from the parent, so that only the variant
    itself (and what it imports) is in memory."""
    name, beam, threads, workers = args.memory_of.split("|")
    with open(args.inputs, encoding="utf-8") as f:
        inputs = json.load(f)
    decode = Decoder(name, args.checkpoint, args.ct2_dir, args.max_tokens, args.lenpen).run
    if name.startswith("nmt"):
        from nmt.device import process_settings

        with process_settings():
            decode(inputs["ids"], inputs["pieces"], int(beam), int(threads), int(workers))
    else:
        decode(inputs["ids"], inputs["pieces"], int(beam), int(threads), int(workers))
    print(json.dumps({"peak_mb": peak_mb()}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--src", default=None, help="source file (default: DATA/test2016.SRC)")
    ap.add_argument("--ref", default=None, help="reference file (default: DATA/test2016.TGT)")
    ap.add_argument("--beams", default="5,1")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--workers", default="1", help="batches decoded at once, each list item tried where it divides T")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lenpen", type=float, default=1.0)
    ap.add_argument("--max-tokens", type=int, default=8000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # child: "variant|beam|threads|workers"
    ap.add_argument("--inputs", default=None, help=argparse.SUPPRESS)  # child: the encoded source (JSON)
    ap.add_argument("--ct2-dir", default=None, help=argparse.SUPPRESS)  # child: the exported model
    args = ap.parse_args()
    if args.memory_of:
        return memory_child(args)

    import ctranslate2
    import sacrebleu
    import torch

    from nmt.config import ExportConfig
    from nmt.device import process_settings
    from nmt.export.run import export

    loaded, ids, pieces, refs = source(args, args.checkpoint)
    # The process settings `nmt generate` runs under (allocator, kernel cache); threads are set per round.
    with tempfile.TemporaryDirectory() as tmp, process_settings():
        ct2_dir = os.path.join(tmp, "ct2")
        export(ExportConfig(path=args.checkpoint, out=ct2_dir))
        inputs = os.path.join(tmp, "inputs.json")
        Path(inputs).write_text(json.dumps({"ids": ids, "pieces": pieces}), encoding="utf-8")
        names = args.variants.split(",")
        decoders = {n: Decoder(n, args.checkpoint, ct2_dir, args.max_tokens, args.lenpen) for n in names}
        print(
            f"{args.checkpoint}: {loaded.arch}, {len(ids)} sentences; torch {torch.__version__}, "
            f"ctranslate2 {ctranslate2.__version__}, lenpen {args.lenpen}",
            flush=True,
        )
        rows = []
        settings = [
            (int(b), int(t), int(w))
            for b in args.beams.split(",")
            for t in args.threads.split(",")
            for w in args.workers.split(",")
            if int(t) % int(w) == 0
        ]
        for beam, threads, workers in settings:
            for d in decoders.values():  # warm-up: first calls allocate and pick kernels
                d.run(ids[:64], pieces[:64], beam, threads, workers)
            times = {n: [] for n in names}
            outs = {}
            for _ in range(args.rounds):
                for n, d in decoders.items():
                    start = time.perf_counter()
                    outs[n] = d.run(ids, pieces, beam, threads, workers)
                    times[n].append(time.perf_counter() - start)
            base = as_ids(loaded, outs[names[0]])
            for n in names:
                secs = statistics.median(times[n])
                hyp_ids = as_ids(loaded, outs[n])
                text = [loaded.tgt_tok.decode(t) for t in hyp_ids]
                row = {
                    "variant": n,
                    "beam": beam,
                    "threads": threads,
                    "workers": workers,
                    "sent_per_s": len(ids) / secs,
                    "tok_per_s": sum(len(t) + 1 for t in outs[n]) / secs,
                    "bleu": sacrebleu.corpus_bleu(text, [refs]).score,
                    "identical": sum(a == b for a, b in zip(hyp_ids, base)),
                    "peak_mb": peak_rss_mb(args, inputs, ct2_dir, n, beam, threads, workers),
                }
                rows.append(row)
                print(
                    f"beam {beam} threads {threads} workers {workers} {n:9s}: {row['sent_per_s']:7.1f} sent/s "
                    f"{row['tok_per_s']:8.1f} tok/s  BLEU {row['bleu']:5.2f}  "
                    f"identical to {names[0]}: {row['identical']}/{len(ids)}  peak {row['peak_mb']:.0f} MB",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
