"""Process control for training: stop signals and the save-dir lock.

A signal only sets a flag; the training loop checks it between updates, so a checkpoint is
written at an update boundary (exact resume) before the process exits. The lock is an
advisory `flock` on SAVE_DIR/.lock, released by the kernel when the process dies, so a killed
run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from typing import Optional

from nmt.errors import UserError


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between updates and saves before exiting."""

    def __init__(self):
        self.signum: Optional[int] = None

    def __call__(self, signum, _frame):
        self.signum = signum

    @contextlib.contextmanager
    def installed(self):
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def exit_code(self) -> int:
        return 130 if self.signum == signal.SIGINT else 0


@contextlib.contextmanager
def save_dir_lock(save_dir: str, enabled: bool):
    """Refuse a second `nmt train` on the same save dir while one runs (flock dies with the process)."""
    if not enabled:
        yield
        return
    try:
        os.makedirs(save_dir, exist_ok=True)
        fd = os.open(os.path.join(save_dir, ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as e:
        raise UserError(f"cannot use --save-dir {save_dir}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"another nmt train is already using {save_dir} (lock held); wait for it or use another --save-dir"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
