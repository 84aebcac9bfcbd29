"""The one place that decides where code runs and how the process is set up for it.

`resolve_device` turns `--device auto|cpu|cuda` into a torch.device for every command (train,
generate, visualize-attn, the Python API). `process_settings` applies the process-level
settings that training and generation want, and undoes what can be undone when it exits:

- threads: torch's intra-op thread count (`--threads`), restored on exit;
- freed memory: glibc serves allocations above 32 MB with a fresh mmap and unmaps them on free.
  A training step allocates and frees several tensors of that size (the logits and their
  gradient are tokens x vocab floats, 128 MB at 4096 x 8000), so every step would pay page
  faults on hundreds of megabytes (measured on a 2-core VM: `x - c` on such a tensor took
  150 ms with fresh pages and 26 ms with reused ones). `keep_freed_memory` makes malloc reuse
  them instead; the process's resident size then stays at its peak. glibc offers no way back,
  so this one lasts for the life of the process.

oneDNN's cache of generated matrix kernels (one per shape, for bf16 products on CPU) keeps its
default capacity of 1,024: training batches come in few shapes (nmt.data.shapes), whose
kernels all fit in it (453 over the four segmentations of the Multi30k recipe), so none is
generated twice and memory stays bounded. ONEDNN_PRIMITIVE_CACHE_CAPACITY sets another capacity.

The CLI applies them for each command; library callers get them from the same entry points
(`nmt.training.loop.train`, `nmt.generation.generate.run`), so the two behave alike.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from typing import Iterator, Optional

import torch

from nmt.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto | cpu | cuda` -> torch.device; cuda means cuda:LOCAL_RANK (one GPU per torchrun process).

    auto picks CUDA when a GPU is visible. Asking for cuda without one is a UserError.
    """
    if name not in DEVICES:
        raise UserError(f"--device {name!r}: use auto, cpu or cuda")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


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


@contextlib.contextmanager
def process_settings(threads: Optional[int] = None) -> Iterator[None]:
    """Apply the settings above for a training or generation run; restore the thread count after.

    threads: torch intra-op threads for the run (None: leave torch's setting).
    """
    keep_freed_memory()
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
