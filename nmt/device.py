"""Process-level performance settings, applied once by the CLI entry point.

glibc serves allocations above 32 MB with a fresh mmap and unmaps them on free. A training
step allocates and frees several tensors of that size (logits and their gradient are
tokens x vocab floats, 128 MB at 4096 x 8000), so every step pays page faults on hundreds of
megabytes of new memory: measured on a 2-core VM, `x - c` on such a tensor took 150 ms with
fresh pages and 26 ms with reused ones. Serving big blocks from the heap and never trimming
it keeps those pages mapped and reused. The cost: the process's RSS stays at its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
MATMUL_KERNELS = 8192


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse freed big blocks instead of unmapping them; False if not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success; a non-glibc libc (musl) has no mallopt and is left alone
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def keep_matmul_kernels(capacity: int = MATMUL_KERNELS) -> int:
    """Size oneDNN's kernel cache (unless the environment already sets it); returns the capacity in force.

    oneDNN reads the variable when it first builds a kernel, so this must run before the
    process's first bf16 matrix product (the CLI calls it at start-up).
    """
    return int(os.environ.setdefault(ONEDNN_CACHE, str(capacity)))
