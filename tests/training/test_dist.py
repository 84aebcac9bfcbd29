"""nmt.training.dist: a real two-process Gloo group, and the single-process no-ops.

The two ranks run in processes started with torch.multiprocessing (spawn), join through
MASTER_ADDR/MASTER_PORT on the loopback interface and send what they saw back through a queue;
every wait has a timeout, so a broken group fails the test instead of hanging it.
"""

from __future__ import annotations

import math
import os
import queue
import time

import pytest
import torch
import torch.distributed
import torch.multiprocessing as mp
from helpers import free_port

from nmt.training import dist
from nmt.training.logs import Meter

WORLD = 2
TIMEOUT_S = 120
# Rank r's stats for one update: tokens and sentences differ per rank, the gradient norm is the
# same everywhere (every rank measures the norm of the same all-reduced gradients).
STATS = [
    {"loss": 6.0, "nll_loss": 4.0, "ntokens": 10, "nsentences": 2, "gnorm": 3.0},
    {"loss": 10.0, "nll_loss": 8.0, "ntokens": 14, "nsentences": 4, "gnorm": 3.0},
]
RANK1_BARRIER_DELAY = 0.5  # rank 1 reaches the barrier this long after rank 0


def _rank(rank: int, port: int, results) -> None:
    """One rank, in its own process: join, use every function of nmt.training.dist, leave."""
    try:
        os.environ.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            WORLD_SIZE=str(WORLD),
            LOCAL_RANK=str(rank),
            OMP_NUM_THREADS="1",
        )
        torch.set_num_threads(1)
        info, device = dist.setup("cpu", timeout_minutes=1.0)
        seen = {
            "info": info,
            "device": device,
            "joined": (torch.distributed.get_rank(), torch.distributed.get_world_size()),
            "backend": torch.distributed.get_backend(),
        }
        t = torch.tensor([rank + 1.0, 10.0 * (rank + 1)])
        out = dist.all_reduce_sum(t, info)
        seen["sum"], seen["in_place"] = out.tolist(), out is t
        seen["broadcast"] = dist.broadcast_object({"from": rank, "words": ["a", "b"][: rank + 1]}, info)
        meter = Meter(device)
        meter.add({k: torch.tensor(v) for k, v in STATS[rank].items()})
        reduced = meter.reduce(info)
        seen["meter"] = {k: reduced[k] for k in ("loss", "nll_loss", "wpb", "bsz", "gnorm")}
        if rank == 1:
            time.sleep(RANK1_BARRIER_DELAY)
        seen["barrier_entered"] = time.time()
        dist.barrier(info)
        seen["barrier_left"] = time.time()
        dist.cleanup(info)
        seen["left_group"] = not torch.distributed.is_initialized()
        results.put((rank, seen))
    except BaseException as e:  # reported to the test instead of dying silently
        results.put((rank, f"{type(e).__name__}: {e}"))


@pytest.fixture(scope="module")
def ranks() -> dict[int, dict]:
    """What each of the two ranks saw: {rank: dict}."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, results), daemon=True) for r in range(WORLD)]
    for p in procs:
        p.start()
    seen: dict[int, dict] = {}
    try:
        end = time.monotonic() + TIMEOUT_S
        while len(seen) < WORLD:
            try:
                rank, value = results.get(timeout=max(end - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(f"ranks {sorted(set(range(WORLD)) - set(seen))} did not report in time") from None
            assert isinstance(value, dict), f"rank {rank} failed: {value}"
            seen[rank] = value
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0, p.exitcode
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    return seen


# ----------------------------------------------------------------------------- two processes
def test_setup_joins_the_gloo_group_on_cpu(ranks):
    for rank, seen in ranks.items():
        assert seen["info"] == dist.DistInfo(rank=rank, world_size=2, local_rank=rank)
        assert seen["info"].is_main == (rank == 0) and seen["info"].enabled
        assert seen["device"] == torch.device("cpu")
        assert seen["joined"] == (rank, 2) and seen["backend"] == "gloo"


def test_all_reduce_sum_adds_every_rank_in_place(ranks):
    for seen in ranks.values():
        assert seen["sum"] == [1.0 + 2.0, 10.0 + 20.0] and seen["in_place"]


def test_broadcast_object_gives_rank_0s_object_everywhere(ranks):
    for seen in ranks.values():
        assert seen["broadcast"] == {"from": 0, "words": ["a"]}


def test_barrier_waits_for_every_rank(ranks):
    # rank 0 cannot leave the barrier before rank 1, which arrives half a second later, entered it
    assert ranks[0]["barrier_left"] >= ranks[1]["barrier_entered"]
    assert ranks[1]["barrier_entered"] - ranks[0]["barrier_entered"] >= RANK1_BARRIER_DELAY / 2


def test_cleanup_leaves_the_group(ranks):
    assert all(seen["left_group"] for seen in ranks.values())


def test_meter_reduce_adds_tokens_over_ranks_and_counts_each_update_once(ranks):
    tokens, sentences = 10 + 14, 2 + 4
    expected = {"wpb": tokens / 1, "bsz": sentences / 1, "gnorm": 3.0}
    for seen in ranks.values():
        m = seen["meter"]
        assert {k: m[k] for k in expected} == pytest.approx(expected, rel=1e-12)
        assert m["loss"] == pytest.approx((6.0 + 10.0) / tokens / math.log(2), rel=1e-12)
        assert m["nll_loss"] == pytest.approx((4.0 + 8.0) / tokens / math.log(2), rel=1e-12)
    assert ranks[0]["meter"] == ranks[1]["meter"]


# ----------------------------------------------------------------------------- one process
@pytest.fixture
def single(monkeypatch):
    """A process not started by torchrun."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not torch.distributed.is_initialized()


def test_dist_info_defaults_are_one_main_process():
    info = dist.DistInfo()
    assert (info.rank, info.world_size, info.local_rank) == (0, 1, 0)
    assert info.is_main and not info.enabled
    other = dist.DistInfo(rank=3, world_size=4, local_rank=1)
    assert not other.is_main and other.enabled


def test_single_process_setup_joins_nothing(single, monkeypatch):
    assert dist.setup("cpu") == (dist.DistInfo(), torch.device("cpu"))
    assert not torch.distributed.is_initialized()
    # torchrun with one process: the variables are set, and there is still no group to join
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dist.setup("cpu") == (dist.DistInfo(0, 1, 3), torch.device("cpu"))
    assert not torch.distributed.is_initialized()


def test_single_process_functions_are_no_ops(single):
    info, _ = dist.setup("cpu")
    t = torch.tensor([1.5, -2.0])
    assert dist.all_reduce_sum(t, info) is t and t.tolist() == [1.5, -2.0]
    obj = {"a": [1, 2]}
    assert dist.broadcast_object(obj, info) is obj
    assert dist.barrier(info) is None
    assert dist.cleanup(info) is None
    assert not torch.distributed.is_initialized()
