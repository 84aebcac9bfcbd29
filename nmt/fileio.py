"""Atomic file writes: every file nmt writes appears whole or not at all.

The data goes to a temporary file in the target's directory (same filesystem, so the final
rename is atomic), is flushed and fsynced, then renamed over the target; the directory is
fsynced so the rename itself survives a crash. On any error the temporary file is removed
and the previous target, if any, is left exactly as it was. A whole output directory
(`atomic_dir`) is filled under a temporary name beside its target and renamed the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from typing import IO, Iterator, Literal, Optional

from nmt.errors import UserError

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", suffix: str = "", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to `path`; on a clean exit it replaces `path`.

    A path that exists and is not a regular file (/dev/null, a named pipe) is written in place:
    replacing it would remove the device or pipe the user named.
    """
    if os.path.exists(path) and not os.path.isdir(path) and not stat.S_ISREG(os.stat(path).st_mode):
        with open(path, mode, encoding=encoding) as f:
            yield f
        return
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


@contextlib.contextmanager
def atomic_dir(path: str) -> Iterator[str]:
    """A temporary directory next to `path` to fill; on a clean exit it becomes `path`.

    A directory already at `path` is moved aside, then removed once the new one is in place (put
    back if the rename fails), so `path` holds the old directory or the new one, whole. Missing
    parents are created. On any error the temporary directory is removed and `path` is untouched.
    """
    full = os.path.abspath(path)
    parent = os.path.dirname(full)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary directory
        for root, _, files in os.walk(tmp):  # the files are durable before the rename publishes them
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
        publish_dir(tmp, full)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)


def publish_dir(tmp: str, full: str) -> None:
    """Rename the finished directory `tmp` to `full` (same filesystem), replacing a directory there: the
    old one is moved aside first and put back if the rename fails, then removed."""
    if not os.path.exists(full):
        os.rename(tmp, full)
        return
    old = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=os.path.dirname(full))
    os.rename(full, os.path.join(old, "d"))
    try:
        os.rename(tmp, full)
    except OSError:
        os.rename(os.path.join(old, "d"), full)
        raise
    shutil.rmtree(old, ignore_errors=True)


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


def _write_probe(directory: str) -> Optional[str]:
    """None when a file can be created in `directory`; else the system's reason (read-only, denied).

    Creating and removing a real file is the one test that sees permissions, ACLs, read-only mounts
    and full quotas alike (os.access misses the last two, and answers yes to root everywhere).
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(tmp)
    return None


def output_problem(path: str, kind: Literal["file", "dir"]) -> Optional[str]:
    """Why `path` cannot be written as a `kind`, in a few plain words; None when it can.

    A file needs its directory to exist (as a shell redirect does); a directory is created with its
    missing parents (as `mkdir -p`), so only an ancestor that is a file or is not writable stops it.
    Nothing is left on disk by the check.
    """
    if not path:
        return "is empty"
    full = os.path.abspath(path)
    if kind == "file":
        if os.path.isdir(full):
            return "is a directory"
        parent = os.path.dirname(full)
        if not os.path.exists(parent):
            return f"directory {parent} does not exist"
        if not os.path.isdir(parent):
            return f"{parent} is not a directory"
        if os.path.exists(full) and not stat.S_ISREG(os.stat(full).st_mode):
            return None if os.access(full, os.W_OK) else "cannot be written"
        reason = _write_probe(parent)
        return f"cannot write in {parent}: {reason}" if reason else None
    if os.path.exists(full) and not os.path.isdir(full):
        return "exists and is not a directory"
    existing = full
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    reason = _write_probe(existing)
    return f"cannot write in {existing}: {reason}" if reason else None


def check_output(path: str, flag: str, kind: Literal["file", "dir"]) -> None:
    """Raise UserError("FLAG PATH: why") when `path` cannot be written as a `kind`."""
    problem = output_problem(path, kind)
    if problem:
        raise UserError(f"{flag} {path}: {problem}")
