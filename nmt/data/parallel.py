"""`ordered_map`: a function over a stream of work items, in worker processes, results in input order.

Preprocessing encodes text chunk by chunk; with `--workers N` the chunks go to N processes. The
function gets a `context` (the tokenizers, settings) that each worker receives once, when it
starts, so that items carry only their data. At most 2 * N items are in flight, so a large corpus
never piles up in memory, and results come back in the order of the items, so the output does
not depend on N.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A worker's context, set once by the pool's initializer.
_context: Any = None


def _set_context(context: Any) -> None:
    global _context
    _context = context


def _call(task: tuple[Callable, Any]) -> Any:
    fn, item = task
    return fn(_context, item)


def ordered_map(fn: Callable[[Any, T], R], context: Any, items: Iterable[T], workers: int = 1) -> Iterator[R]:
    """`fn(context, item)` for each item, in order; `workers` > 1 runs them in that many processes.

    `fn` must be a module-level function (workers find it by name). An exception in a worker is
    raised here, and the pool is stopped.
    """
    if workers <= 1:
        for item in items:
            yield fn(context, item)
        return
    with mp.get_context().Pool(workers, initializer=_set_context, initargs=(context,)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.apply_async(_call, ((fn, item),)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
