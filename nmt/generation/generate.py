"""Batch translation: checkpoint(s) + a binarized split or raw text -> ordered, detokenized output.

A binarized split is translated in length-bucketed batches (`nmt.data.dataset.batch_by_tokens`, sorted
by length so padding stays small) and written back in split order. Raw text (a file or stdin)
is streamed in chunks of `chunk_size` lines: each chunk is encoded with the checkpoint's own
source tokenizer, translated in length-sorted batches, and written in input order (flushed)
before the next chunk is read, so any number of lines runs in constant memory and works in a
pipe. Lines end at a newline only (a carriage return before it is dropped), as in `nmt preprocess`;
each line is stripped as preprocess strips training text; an empty (or blank) line gives an empty line.
Sources longer than the model's source positions are truncated (keeping EOS) and counted in one
warning.

Output: `plain` writes the --nbest best hypotheses per input line, best first, one a line (an empty
line for each missing one); `fairseq` writes fairseq-style lines per sentence: S-i source, T-i
reference (when known), then per hypothesis (nbest, best first) H-i score pieces (the detokenized
text with --post-process sentencepiece), D-i score detokenized, P-i positional scores, and A-i
alignment with --print-alignment. An empty source line is not decoded: plain gives empty lines, and
fairseq one hypothesis, the empty translation (EOS alone) with score 0, so every input line has its
S/H/D/P lines. As in fairseq, H/D/P scores are in base 2 (log-probs / ln 2). Alignments are
"srcidx-tgtidx" pairs: for each target token (not EOS) the source token (not EOS) with the most
cross-attention (last layer, heads and models averaged). Other line breaks inside an echoed source
(what `str.splitlines` splits at) become spaces, so every reader sees one line per output line.
A file given with --output is written to a temporary file and renamed at the end; stdout is streamed.

A language model's checkpoint (nmt.generation.prompts) continues each raw line instead: the line's
pieces are a prompt forced as the output's first tokens, every line is decoded (an empty one from
BOS alone), and the hypotheses, their scores and the output hold the continuation only (fairseq:
S-i the prompt, H/D/P-i the continuation). Prompts are batched like sources; --max-tokens counts
rows x prompt tokens.
"""

from __future__ import annotations

import contextlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, TextIO

import numpy as np
import torch
from torch import nn

from nmt.checkpoint import load_models
from nmt.config import GenerateConfig, check_generate
from nmt.data.dataset import PairDataset, TokenArray, batch_by_tokens, collate, load_split, read_meta
from nmt.data.tokenizer import read_blobs
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.decoding import EOS, PAD, Hypothesis
from nmt.generation.output import Stats, format_sentence, open_output
from nmt.generation.prompts import LANGUAGE_MODELING, TRANSLATION, cut_prompt, model_kind, prompt_room
from nmt.generation.search import translate_batch
from nmt.models.onednn import onednn_output_layer
from nmt.models.quantize import quantize_int8

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_autocast(device: torch.device, amp: str):
    """torch.autocast for --amp bf16 | fp16 on `device`; nothing for none."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


# ----------------------------------------------------------------------------- translation
def decoding_models(loaded: list, quantize: str, onednn: bool = True) -> list[nn.Module]:
    """The loaded checkpoints' models in eval mode, changed in place (the Loaded items then hold them):
    with quantize "int8" their linear layers hold int8 weights (nmt.models.quantize); otherwise, with
    `onednn`, a float32 Transformer on CPU computes its output layer with oneDNN (nmt.models.onednn)."""
    models = [item.model.eval() for item in loaded]
    if quantize == "int8":
        return [quantize_int8(m) for m in models]
    return [onednn_output_layer(m) for m in models] if onednn else models


def max_source_positions(models: list[nn.Module]) -> int:
    return min(int(m.max_positions()[0]) for m in models)


def batch_budget(max_tokens: int, beam: int, longest: int) -> int:
    """Source tokens per batch for a search with `beam` rows per sentence.

    --max-tokens counts search rows x source tokens, so beam search gets batches `beam` times
    smaller than greedy: on CPU, beam 5 over 1000 Multi30k sentences ran at 84 sentences/s with
    1,600-token batches and 68 with 8,000. Never below one sentence of `longest` tokens + EOS.
    """
    return max(max_tokens // max(beam, 1), longest + 1)


def translate_pairs(
    models: list[nn.Module],
    pairs: PairDataset,
    cfg: GenerateConfig,
    device: torch.device,
    need_attn: bool = False,
    on_batch: Optional[Callable[[int], None]] = None,
    prompts: bool = False,
) -> tuple[list[list[Hypothesis]], int]:
    """Hypotheses of every source sentence of `pairs`, in pairs order; and how many were truncated.

    With `prompts` each source's pieces are also a forced prefix (a language model's prompt)."""
    max_src = max_source_positions(models)
    sizes = np.asarray(pairs.src.sizes, dtype=np.int64)
    truncated = int((sizes > max_src - 1).sum())
    sizes = np.minimum(sizes, max_src - 1)
    budget = batch_budget(cfg.max_tokens, cfg.beam, int(sizes.max(initial=0)))
    batches = batch_by_tokens(sizes, None, budget, cfg.batch_size)

    def translate(idx: np.ndarray) -> list[list[Hypothesis]]:
        src = collate(pairs, idx).src  # (B, S)
        if src.size(1) > max_src:  # cut to max_src, the last kept position becomes EOS
            cut = src[:, max_src] != PAD  # (B,) rows with tokens beyond the limit
            src = src[:, :max_src].clone()
            src[cut, -1] = EOS
        src = src.to(device)
        with amp_autocast(device, cfg.amp):  # autocast (like inference mode) is per thread
            if not prompts:
                return translate_batch(models, src, src.eq(PAD), cfg, need_attn)
            prefix = src.masked_fill(src.eq(EOS), PAD)  # (B, S): the prompts' pieces, right-padded
            return translate_batch(models, src, src.eq(PAD), cfg, need_attn, prefix=prefix)

    out: list[list[Hypothesis]] = [[] for _ in range(len(pairs))]
    pool = ThreadPoolExecutor(cfg.workers, "nmt-generate") if cfg.workers > 1 and len(batches) > 1 else None
    try:
        # Batches are independent and the models hold no state between calls, so worker threads
        # share them (torch releases the GIL inside its kernels); map() yields in batch order.
        results = pool.map(translate, batches) if pool is not None else map(translate, batches)
        for idx, hyps in zip(batches, results):
            for i, h in zip(idx.tolist(), hyps):
                out[i] = h
            if on_batch is not None:
                on_batch(len(idx))
    finally:
        if pool is not None:  # on an error or interrupt, batches not yet started are dropped
            pool.shutdown(wait=True, cancel_futures=True)
    return out, truncated


def translate_split(models: list[nn.Module], pairs: PairDataset, tgt_tok, cfg: GenerateConfig, device) -> list[str]:
    """Detokenized best hypothesis of every sentence of a binarized split, in split order."""
    hyps, _ = translate_pairs(models, pairs, cfg, torch.device(device))
    return [tgt_tok.decode(h[0].tokens.tolist()) if h else "" for h in hyps]


def read_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Lines of a byte stream without their newline; invalid UTF-8 raises UserError naming the line."""
    for n, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{name}: line {n} is not valid UTF-8 (byte {e.start})") from None
        yield line.rstrip("\n").rstrip("\r")


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items (the last one shorter)."""
    buf = []
    for item in items:
        buf.append(item)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def translate_lines(
    models: list[nn.Module],
    lines: Iterable[str],
    src_tok,
    cfg: GenerateConfig,
    device: torch.device,
    stats: Stats,
    need_attn: bool = False,
    on_batch: Optional[Callable[[int], None]] = None,
    prompts: bool = False,
) -> Iterator[list[tuple[str, list[Hypothesis]]]]:
    """Per chunk of `cfg.chunk_size` lines: (line, hypotheses) in input order; blank lines get [].

    With `prompts` (a language model) every line is a prompt that its hypotheses continue, blank
    ones included (from BOS alone); a prompt too long keeps its last pieces (nmt.generation.prompts)."""
    for chunk in chunks(lines, cfg.chunk_size):
        ids = [src_tok.encode(line.strip()) for line in chunk]  # stripped as preprocess strips training text
        real = [i for i, piece_ids in enumerate(ids) if piece_ids or prompts]
        out: list[list[Hypothesis]] = [[] for _ in chunk]
        if prompts:
            cut = [cut_prompt(piece_ids, prompt_room(models)) for piece_ids in ids]
            ids = [piece_ids for piece_ids, _ in cut]
            stats.truncated += sum(was_cut for _, was_cut in cut)
        if real:
            pairs = PairDataset(TokenArray.from_sequences([ids[i] for i in real]))
            hyps, truncated = translate_pairs(models, pairs, cfg, device, need_attn, on_batch, prompts)
            stats.truncated += truncated
            for i, h in zip(real, hyps):
                out[i] = h
        if on_batch is not None and len(chunk) > len(real):
            on_batch(len(chunk) - len(real))
        yield list(zip(chunk, out))


# ----------------------------------------------------------------------------- the command
def _record(stats: Stats, hyps: list[Hypothesis], tgt_tok, keep_text: bool) -> None:
    stats.sentences += 1
    if hyps:
        stats.tokens += len(hyps[0].tokens)
    if keep_text:
        stats.hyps.append(tgt_tok.decode(hyps[0].tokens.tolist()) if hyps else "")


def check_data_vocab(data: str, meta: dict, loaded) -> None:
    """The data directory must use the checkpoint's languages and tokenizer files."""
    ck = loaded.meta
    if (meta["source_lang"], meta["target_lang"]) != (ck["source_lang"], ck["target_lang"]):
        raise UserError(
            f"{data} is {meta['source_lang']}->{meta['target_lang']} but the checkpoint is "
            f"{ck['source_lang']}->{ck['target_lang']}"
        )
    blobs, ck_blobs = read_blobs(data, meta), loaded.payload["tokenizer_blobs"]
    for lang in (meta["source_lang"], meta["target_lang"]):
        mine, theirs = meta["tokenizer"]["files"][lang], ck["tokenizer"]["files"][lang]
        if blobs.get(mine) != ck_blobs.get(theirs):
            raise UserError(f"{data} has a different {lang} vocabulary than the checkpoint")


@contextlib.contextmanager
def generation_settings(cfg: GenerateConfig) -> Iterator[torch.device]:
    """The device of cfg.device, inside the process settings (threads) generation runs under.

    The caller's thread count is restored afterwards.
    """
    device = resolve_device(cfg.device)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA device (use bf16 on CPU)")
    threads = None
    if device.type == "cpu":  # --threads is the total: each of the --workers gets its share
        threads = max(1, (cfg.threads or torch.get_num_threads()) // cfg.workers)
    with process_settings(threads):
        yield device


def write_translations(
    models: list[nn.Module],
    lines: Iterable[str],
    src_tok,
    tgt_tok,
    cfg: GenerateConfig,
    device: torch.device,
    stats: Stats,
    out: Optional[TextIO],
    on_batch: Optional[Callable[[int], None]] = None,
) -> None:
    """Translate raw lines (or continue them, when stats.prompts) a chunk of `cfg.chunk_size` at a time,
    writing each chunk in cfg.format to `out` (flushed; None: write nothing) before the next chunk is
    read, so a reader sees every chunk at once."""
    n = 0
    need_attn, prompts = cfg.print_alignment, stats.prompts
    for chunk in translate_lines(models, lines, src_tok, cfg, device, stats, need_attn, on_batch, prompts):
        text = []
        for line, h in chunk:
            _record(stats, h, tgt_tok, keep_text=False)
            text += format_sentence(n, line, None, h, tgt_tok, cfg)
            n += 1
        if out is not None:
            out.write("\n".join(text) + "\n")
            out.flush()


def run(cfg: GenerateConfig, progress=None) -> Stats:
    """`nmt generate`: validate, load, translate, write; returns the counters (and BLEU inputs)."""
    check_generate(cfg)
    with generation_settings(cfg) as device:
        return _run(cfg, device, progress)


def generation_kind(loaded: list, cfg: GenerateConfig) -> str:
    """TRANSLATION or LANGUAGE_MODELING for these checkpoints; the flags a language model cannot honour are refused."""
    kind = model_kind(loaded, cfg.path)
    if kind == LANGUAGE_MODELING:
        if cfg.data is not None:
            raise UserError(
                f"{cfg.path} is a language model: give prompts with --input FILE|- "
                "(DATA_DIR is for translation; nmt eval-lm scores a monolingual split)"
            )
        if cfg.print_alignment:
            raise UserError("--print-alignment shows cross-attention, which a language model has not")
    return kind


def _run(cfg: GenerateConfig, device: torch.device, progress) -> Stats:
    loaded = load_models(cfg.path, device)
    stats = Stats(prompts=generation_kind(loaded, cfg) != TRANSLATION)
    models = decoding_models(loaded, cfg.quantize, cfg.onednn)
    src_tok, tgt_tok = loaded[0].src_tok, loaded[0].tgt_tok
    need_attn = cfg.print_alignment
    advance = progress.advance if progress is not None else None
    start = time.perf_counter()
    # --quiet keeps translations off stdout; a file asked for with --output is still written.
    emit = not cfg.quiet or cfg.output not in (None, "-")
    with open_output(cfg.output if emit else None) as out:
        if cfg.data is not None:
            meta = read_meta(cfg.data)
            check_data_vocab(cfg.data, meta, loaded[0])
            pairs = load_split(cfg.data, cfg.gen_subset, meta)
            if progress is not None:
                progress.start(len(pairs))
            hyps, stats.truncated = translate_pairs(models, pairs, cfg, device, need_attn, advance)
            refs = [tgt_tok.decode(pairs.tgt[i].tolist()) for i in range(len(pairs))] if pairs.tgt is not None else None
            for i, h in enumerate(hyps):
                _record(stats, h, tgt_tok, keep_text=True)
                if emit:
                    source = src_tok.decode(pairs.src[i].tolist())
                    out.write("\n".join(format_sentence(i, source, refs[i] if refs else None, h, tgt_tok, cfg)) + "\n")
            stats.refs = refs
        else:
            if progress is not None:
                progress.start(None)
            stream = sys.stdin.buffer if cfg.input == "-" else _open_input(cfg.input)
            name = "stdin" if cfg.input == "-" else cfg.input
            try:
                lines = read_lines(stream, name)
                write_translations(models, lines, src_tok, tgt_tok, cfg, device, stats, out if emit else None, advance)
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
    stats.seconds = time.perf_counter() - start
    stats.max_source_positions = max_source_positions(models)
    return stats


def _open_input(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise UserError(f"--input {path}: {e.strerror or e}") from None
