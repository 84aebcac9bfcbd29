"""Atomic file writes: every file nmt writes appears whole or not at all.

The data goes to a temporary file in the target's directory (same filesystem, so the final
rename is atomic), is flushed and fsynced, then renamed over the target; the directory is
fsynced so the rename itself survives a crash. On any error the temporary file is removed
and the previous target, if any, is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", suffix: str = "", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to `path`; on a clean exit it replaces `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=directory)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def fsync_dir(directory: str) -> None:
    """Make a rename in `directory` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
