"""`nmt interactive`: translate lines as they arrive on stdin, printing each buffer's translations at once
(with a language model's checkpoint: continue each line, as `nmt generate --input -` does).

The same search and output formats as `nmt generate` on raw text (nmt.generation.generate): the
buffer of `buffer_size` lines is generate's chunk, so lines are read, translated and written
(flushed) one buffer at a time and a reader in a terminal or a pipe sees each translation as
soon as its buffer is done. Lines are numbered from 0 across buffers in --format fairseq.
End of input ends the run; Ctrl-C raises KeyboardInterrupt to the caller (the CLI exits with 130).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import BinaryIO, Iterable, Optional, TextIO

from nmt.checkpoint import load_models
from nmt.config import InteractiveConfig, check_interactive
from nmt.generation.generate import (
    decoding_models,
    generation_kind,
    generation_settings,
    max_source_positions,
    read_lines,
    write_translations,
)
from nmt.generation.output import Stats
from nmt.generation.prompts import TRANSLATION


def run(cfg: InteractiveConfig, stdin: Optional[Iterable[bytes]] = None, stdout: Optional[TextIO] = None) -> Stats:
    """Translate the lines of `stdin` (bytes lines; default sys.stdin) to `stdout` (default sys.stdout)
    until the input ends; returns the counters."""
    check_interactive(cfg)
    gen = dataclasses.replace(cfg.generate, chunk_size=cfg.buffer_size)
    stream: Iterable[bytes] | BinaryIO = sys.stdin.buffer if stdin is None else stdin
    out = sys.stdout if stdout is None else stdout
    with generation_settings(gen) as device:
        loaded = load_models(gen.path, device)
        prompts = generation_kind(loaded, gen) != TRANSLATION  # a language model continues each line
        models = decoding_models(loaded, gen.quantize, gen.onednn)
        stats = Stats(max_source_positions=max_source_positions(models), prompts=prompts)
        lines = read_lines(stream, "stdin")
        write_translations(models, lines, loaded[0].src_tok, loaded[0].tgt_tok, gen, device, stats, out)
    return stats
