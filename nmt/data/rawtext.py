"""Raw text as `nmt preprocess` reads it: checked, in chunks of lines, the two sides of a pair in step.

Lines end at '\\n' only; each line is stripped of surrounding whitespace (so a '\\r' before the
'\\n' goes too). A file is valid when it is UTF-8 (`scan_text` checks a whole file in blocks
before anything is written, and counts its lines). Reading for encoding goes through
`read_chunks`: consecutive `RawChunk`s of at most `chunk_lines` lines of each file, their bytes as
read; `split_lines` turns one into stripped lines, in whichever process encodes it, so the reading
process only moves bytes. Both check again what they meet (invalid UTF-8, one side ending before
the other) and name the file and line, so a file that changed after the scan cannot slip through.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional, Sequence

import numpy as np

from nmt.errors import UserError

SCAN_BLOCK = 1 << 20  # bytes per read of `scan_text`
CHUNK_LINES = 4096  # lines per chunk unless the caller says otherwise (PreprocessConfig.chunk_lines)
SKIP_BLOCK = 1 << 18  # bytes per read when skipping lines


def open_input(path: str) -> BinaryIO:
    """`path` opened for reading bytes; a missing or unreadable file is a UserError naming it."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"input file {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read input file {path}: {e.strerror}") from None


def scan_text(path: str) -> tuple[int, bool]:
    """(number of lines, whether any line has non-blank text) of a UTF-8 file.

    Streams the file in blocks; invalid UTF-8 raises UserError naming the file and line.
    A last line without a final newline counts as a line.
    """
    lines, has_text, tail = 0, False, b""
    with open_input(path) as f:
        while True:
            block = f.read(SCAN_BLOCK)
            data = tail + block
            cut = len(data) if not block else data.rfind(b"\n") + 1  # whole lines only, but all at EOF
            whole, tail = data[:cut], data[cut:]
            try:
                whole.decode("utf-8")
            except UnicodeDecodeError as e:
                line = lines + whole.count(b"\n", 0, e.start) + 1
                raise UserError(f"{path}: line {line} is not valid UTF-8") from None
            lines += whole.count(b"\n") + (1 if not block and whole and not whole.endswith(b"\n") else 0)
            has_text = has_text or bool(whole.strip())
            if not block:
                return lines, has_text


@dataclass(frozen=True)
class RawChunk:
    """`count` consecutive lines of each file of `paths`, from line number `first` (counted from 1):
    `data[i]` is their bytes in `paths[i]`, line ends included."""

    first: int
    count: int
    paths: tuple[str, ...]
    data: tuple[bytes, ...]


def read_chunks(
    paths: Sequence[str], chunk_lines: int = CHUNK_LINES, share: tuple[int, int] = (0, 1)
) -> Iterator[Optional[RawChunk]]:
    """The files `paths` (one, or the two sides of a pair) in chunks of `chunk_lines` lines, in step.

    With `share` (k, n) only the chunks i with i % n == k are read into RawChunks; the others are
    skipped by counting newlines in blocks of bytes, without building lines, and given as None:
    n worker processes each take their share of one pass (nmt.data.parallel). The files must have
    the same number of lines: where one ends first, a UserError names the first line of the other
    that has no counterpart, whichever chunks are read.
    """
    worker, workers = share
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open_input(p)) for p in paths]
        first = 1
        for i in itertools.count():
            if i % workers == worker:
                parts = [list(itertools.islice(f, chunk_lines)) for f in files]
                counts = [len(p) for p in parts]
            else:
                parts, counts = None, [_skip_lines(f, chunk_lines) for f in files]
            if max(counts) == 0:
                return
            if min(counts) != max(counts):
                short, long = counts.index(min(counts)), counts.index(max(counts))
                line = first + counts[short]
                raise UserError(
                    f"{paths[long]}: line {line} has no counterpart in {paths[short]}, which has {line - 1} lines; "
                    "the two sides must be line-aligned"
                )
            yield None if parts is None else RawChunk(first, counts[0], tuple(paths), tuple(b"".join(p) for p in parts))
            first += counts[0]


def _skip_lines(f: BinaryIO, n: int) -> int:
    """Move `f` past its next `n` lines, as many as there are (a last line without '\\n' counts);
    returns how many it passed."""
    skipped, open_line = 0, False
    while skipped < n:
        block = f.read(SKIP_BLOCK)
        if not block:
            return skipped + open_line
        count = block.count(b"\n")
        if skipped + count >= n:
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
            f.seek(int(ends[n - skipped - 1]) + 1 - len(block), io.SEEK_CUR)  # back to just after line n
            return n
        skipped += count
        open_line = not block.endswith(b"\n")
    return skipped


def split_lines(chunk: RawChunk) -> list[list[str]]:
    """The stripped lines of each file of `chunk`; invalid UTF-8 raises UserError naming file and line."""
    return [_decode(path, data, chunk.first, chunk.count) for path, data in zip(chunk.paths, chunk.data)]


def _decode(path: str, data: bytes, first: int, count: int) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first + data.count(b"\n", 0, e.start)
        raise UserError(f"{path}: line {line} is not valid UTF-8") from None
    lines = text.split("\n")
    if len(lines) > count:  # the empty string after the last line's '\n'
        lines.pop()
    return [line.strip() for line in lines]
