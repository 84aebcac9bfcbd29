"""Decoding on the same weights: nmt (PyTorch) against CTranslate2, in fp32, int8, bf16 and fp16.

    python benchmarks/decode_vs_ct2.py CKPT [--data DIR | --src FILE --ref FILE] [--beams 5,1] [--threads 2,1]
        [--workers 1,2] [--device cpu|cuda] [--batch-sizes 1,32,256] [--rounds 3] [--lenpen 1.0]
        [--max-tokens 8000] [--variants LIST] [--json FILE]

The checkpoint is exported once with `nmt export --format ctranslate2` (float32, in a temporary
directory). A variant is an engine and a precision: nmt decodes the checkpoint itself in fp32, with
`--quantize int8` (CPU), or under `--amp bf16` / `--amp fp16` (fp16 on CUDA); CTranslate2 loads the
export with compute_type float32, int8, bfloat16 or float16. The default variants are nmt and
CTranslate2 in fp32 and int8 on CPU, and in fp32, bf16 and fp16 on CUDA.

Every variant translates the same source pieces (test2016.{src} of DIR, encoded with the
checkpoint's SentencePiece model before the clock starts), with the same search: beam B, length
penalty, at most 200 pieces (nmt --max-len-a 0 --max-len-b 200, CTranslate2 max_decoding_length
201: nmt forces EOS at its limit), and every hypothesis scored (CTranslate2: return_scores, as nmt
always scores). Batches are length-sorted, of at most --max-tokens source tokens (CTranslate2:
batch_type "tokens"), or with --batch-sizes of a fixed number of sentences each (nmt --batch-size,
CTranslate2 batch_type "examples"). With W workers, T threads are W batches decoded at once on
T / W threads each: nmt `--workers W`, CTranslate2 inter_threads W and intra_threads T / W. One
process, rounds alternating the variants; the median time of the rounds is reported.

Per variant and setting it prints sentences/s, generated tokens/s (EOS included), sacreBLEU against
test2016.{tgt}, how many translations are identical (same pieces) to the first variant's, and the
peak resident memory of a child process that loads that variant and translates once (on CUDA also
nmt's peak GPU memory, from torch; CTranslate2 reports none).
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

# torch and nmt are imported where they are used: a child measuring CTranslate2's memory loads
# ctranslate2 alone, as a deployment with it would.

DEFAULT_DATA = Path(os.environ.get("MULTI30K", Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"))
VARIANTS = {
    "cpu": ("nmt fp32", "nmt int8", "ct2 fp32", "ct2 int8"),
    "cuda": ("nmt fp32", "nmt bf16", "nmt fp16", "ct2 fp32", "ct2 bf16", "ct2 fp16"),
}
CT2_COMPUTE = {"fp32": "float32", "int8": "int8", "bf16": "bfloat16", "fp16": "float16"}
MAX_LEN = 200


@dataclass(frozen=True)
class Setting:
    """One search and batching: beam, threads in all, batches at once (workers), and sentences per
    batch (None: batches of at most --max-tokens source tokens)."""

    beam: int
    threads: int
    workers: int = 1
    batch: Optional[int] = None

    def label(self) -> str:
        batches = f"batch {self.batch}" if self.batch else "token batches"
        return f"beam {self.beam} threads {self.threads} workers {self.workers} {batches}"


class Decoder:
    """One variant, loaded once on `device`: `run(ids, pieces, setting)` -> per sentence, in input order,
    the best translation without EOS: ids (nmt) or pieces (CTranslate2)."""

    def __init__(self, name: str, ckpt: str, ct2_dir: str, args) -> None:
        self.max_tokens, self.lenpen, self.device = args.max_tokens, args.lenpen, args.device
        self.engine, self.precision = name.split()
        if self.precision not in CT2_COMPUTE or self.engine not in ("nmt", "ct2"):
            raise SystemExit(f"unknown variant {name!r}: 'nmt' or 'ct2', a space, one of " + ", ".join(CT2_COMPUTE))
        if self.engine == "nmt":
            from nmt.checkpoint import load_model
            from nmt.generation.generate import decoding_models

            if self.precision == "int8" and self.device != "cpu":
                raise SystemExit(f"{name}: nmt decodes int8 on CPU only")
            if self.precision == "fp16" and self.device != "cuda":
                raise SystemExit(f"{name}: fp16 needs --device cuda (bf16 runs on CPU)")
            # as `nmt generate` prepares them: int8 linear layers, or float32 with oneDNN's output layer on CPU
            quantize = "int8" if self.precision == "int8" else "none"
            (self.model,) = decoding_models([load_model(ckpt, self.device)], quantize)
        else:
            import ctranslate2

            compute = CT2_COMPUTE[self.precision]
            supported = ctranslate2.get_supported_compute_types(self.device)
            if compute not in supported:
                raise SystemExit(
                    f"{name}: CTranslate2 has no {compute} on this {self.device} ({', '.join(sorted(supported))})"
                )
            self.translators = {}  # per (threads, workers): CTranslate2 fixes its threads when it loads
            self.load = lambda threads, workers: ctranslate2.Translator(
                ct2_dir,
                device=self.device,
                compute_type=compute,
                inter_threads=workers,
                intra_threads=threads // workers,
            )
            with open(os.path.join(ct2_dir, "nmt_export.json"), encoding="utf-8") as f:
                self.max_src = json.load(f)["max_source_positions"]

    def run(self, ids: list[list[int]], pieces: list[list[str]], s: Setting) -> list[list[int]]:
        if self.engine == "nmt":
            import torch

            from nmt.config import GenerateConfig
            from nmt.data.dataset import PairDataset, TokenArray
            from nmt.data.tokenizer import EOS
            from nmt.generation.generate import translate_pairs

            torch.set_num_threads(s.threads // s.workers)  # as `nmt generate --threads T --workers W`
            cfg = GenerateConfig(
                beam=s.beam,
                lenpen=self.lenpen,
                max_len_a=0,
                max_len_b=MAX_LEN,
                max_tokens=self.max_tokens if s.batch is None else 10**9,  # a fixed count: --batch-size alone
                batch_size=s.batch,
                workers=s.workers,
                amp=self.precision if self.precision in ("bf16", "fp16") else "none",
            )
            pairs = PairDataset(TokenArray.from_sequences(ids))
            hyps, _ = translate_pairs([self.model], pairs, cfg, torch.device(self.device))
            return [[t for t in h[0].tokens.tolist() if t != EOS] for h in hyps]
        if (s.threads, s.workers) not in self.translators:
            self.translators[s.threads, s.workers] = self.load(s.threads, s.workers)
        results = self.translators[s.threads, s.workers].translate_batch(
            pieces,
            beam_size=s.beam,
            length_penalty=self.lenpen,
            max_decoding_length=MAX_LEN + 1,
            max_input_length=self.max_src,
            max_batch_size=self.max_tokens if s.batch is None else s.batch,
            batch_type="tokens" if s.batch is None else "examples",
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


def peak_memory(args, inputs: str, ct2_dir: str, name: str, s: Setting) -> dict:
    """Peak memory of a child process that loads one variant and translates the set once:
    {"peak_mb": resident, "gpu_peak_mb": nmt's on CUDA or None}."""
    cmd = [
        sys.executable,
        __file__,
        args.checkpoint,
        "--max-tokens",
        str(args.max_tokens),
        "--lenpen",
        str(args.lenpen),
    ]
    cmd += ["--device", args.device, "--memory-of", json.dumps({"variant": name, **asdict(s)})]
    cmd += ["--inputs", inputs, "--ct2-dir", ct2_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def peak_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, which belongs to the process's own address
    space (getrusage's ru_maxrss survives exec, so a child would report its parent's peak)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: an upper bound


def memory_child(args) -> int:
    """The child of `peak_memory`: the inputs come encoded from the parent, so that only the variant
    itself (and what it imports) is in memory."""
    spec = json.loads(args.memory_of)
    name = spec.pop("variant")
    with open(args.inputs, encoding="utf-8") as f:
        inputs = json.load(f)
    decoder = Decoder(name, args.checkpoint, args.ct2_dir, args)
    gpu_peak = None
    if name.startswith("nmt"):
        import torch

        from nmt.device import process_settings

        with process_settings():
            decoder.run(inputs["ids"], inputs["pieces"], Setting(**spec))
        if args.device == "cuda":
            gpu_peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        decoder.run(inputs["ids"], inputs["pieces"], Setting(**spec))
    print(json.dumps({"peak_mb": peak_mb(), "gpu_peak_mb": gpu_peak}))
    return 0


def settings(args) -> list[Setting]:
    """Every combination of the lists asked for; workers only where they divide the threads."""
    batches = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [None]
    return [
        Setting(int(b), int(t), int(w), n)
        for b in args.beams.split(",")
        for t in args.threads.split(",")
        for w in args.workers.split(",")
        for n in batches
        if int(t) % int(w) == 0
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--src", default=None, help="source file (default: DATA/test2016.SRC)")
    ap.add_argument("--ref", default=None, help="reference file (default: DATA/test2016.TGT)")
    ap.add_argument("--beams", default="5,1")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--workers", default="1", help="batches decoded at once, each list item tried where it divides T")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch-sizes", default=None, help="sentences per batch, e.g. 1,32,256 (default: token batches)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lenpen", type=float, default=1.0)
    ap.add_argument("--max-tokens", type=int, default=8000)
    ap.add_argument("--variants", default=None, help="comma-separated, e.g. 'nmt fp32,ct2 int8' (default: per device)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # child: variant and setting (JSON)
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

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    loaded, ids, pieces, refs = source(args, args.checkpoint)
    names = args.variants.split(",") if args.variants else list(VARIANTS[args.device])
    # The process settings `nmt generate` runs under (allocator, kernel cache); threads are set per round.
    with tempfile.TemporaryDirectory() as tmp, process_settings():
        ct2_dir = os.path.join(tmp, "ct2")
        export(ExportConfig(path=args.checkpoint, out=ct2_dir))
        inputs = os.path.join(tmp, "inputs.json")
        Path(inputs).write_text(json.dumps({"ids": ids, "pieces": pieces}), encoding="utf-8")
        decoders = {n: Decoder(n, args.checkpoint, ct2_dir, args) for n in names}
        gpu = f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
        print(
            f"{args.checkpoint}: {loaded.arch}, {len(ids)} sentences; torch {torch.__version__}, "
            f"ctranslate2 {ctranslate2.__version__}, lenpen {args.lenpen}, {args.device}{gpu}",
            flush=True,
        )
        rows = []
        for s in settings(args):
            for d in decoders.values():  # warm-up: first calls allocate and pick kernels
                d.run(ids[:64], pieces[:64], s)
            times = {n: [] for n in names}
            outs = {}
            for _ in range(args.rounds):
                for n, d in decoders.items():
                    start = time.perf_counter()
                    outs[n] = d.run(ids, pieces, s)
                    times[n].append(time.perf_counter() - start)
            base = as_ids(loaded, outs[names[0]])
            for n in names:
                secs = statistics.median(times[n])
                hyp_ids = as_ids(loaded, outs[n])
                text = [loaded.tgt_tok.decode(t) for t in hyp_ids]
                row = {
                    "variant": n,
                    **asdict(s),
                    "device": args.device,
                    "sent_per_s": len(ids) / secs,
                    "tok_per_s": sum(len(t) + 1 for t in outs[n]) / secs,
                    "bleu": sacrebleu.corpus_bleu(text, [refs]).score,
                    "identical": sum(a == b for a, b in zip(hyp_ids, base)),
                    **peak_memory(args, inputs, ct2_dir, n, s),
                }
                rows.append(row)
                gpu_mem = f", GPU {row['gpu_peak_mb']:.0f} MB" if row["gpu_peak_mb"] is not None else ""
                print(
                    f"{s.label()} {n:9s}: {row['sent_per_s']:7.1f} sent/s {row['tok_per_s']:8.1f} tok/s  "
                    f"BLEU {row['bleu']:5.2f}  identical to {names[0]}: {row['identical']}/{len(ids)}  "
                    f"peak {row['peak_mb']:.0f} MB{gpu_mem}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
