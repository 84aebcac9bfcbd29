"""Reliability of `nmt train` under faults: SIGKILL anywhere, SIGINT/SIGTERM, torchrun stops.

Every test injects the fault for real (signals to real subprocesses, slowed checkpoint writes)
and checks that nothing is lost: the resumed run logs the same loss for every update number and
ends with bit-identical parameters, and every checkpoint file on disk loads.
"""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_TRAIN as TINY
from helpers import free_port

from nmt import checkpoint as ckpt
from nmt.flags import parse_train_args
from nmt.training.loop import train

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# Runs `nmt` in a subprocess; with NMT_TEST_SLOW_SAVE=seconds every torch.save writes half of the
# checkpoint, waits, then writes the rest, so a kill can land in the middle of a checkpoint write.
BOOT = r"""
import io, os, sys, time
delay = float(os.environ.get("NMT_TEST_SLOW_SAVE", "0"))
if delay:
    import torch
    real_save = torch.save
    def slow_save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(delay)
        f.write(data[len(data) // 2 :])
    torch.save = slow_save
from nmt.cli import main
sys.argv = ["nmt", *sys.argv[1:]]
main()
"""


def train_args(data, save_dir, *extra) -> list[str]:
    return [
        str(data),
        "--save-dir",
        str(save_dir),
        *TINY,
        "--lr",
        "2e-3",
        "--warmup-updates",
        "5",
        "--log-interval",
        "1",
        "--log-format",
        "json",
        "--dropout",
        "0.2",
        *extra,
    ]


def losses(text: str) -> dict[int, float]:
    """{update number: logged train loss} of the complete JSON log lines in `text` (end-of-epoch lines excluded)."""
    out = {}
    for line in text.split("\n"):
        if '"num_updates"' not in line:
            continue
        try:
            rec = json.loads(line[line.index("{") :])
        except ValueError:  # the last line of a killed process may be cut
            continue
        if not rec["tag"].endswith("end of epoch"):
            out[rec["num_updates"]] = rec["loss"]
    return out


def reference(data, save_dir, capfd, *extra) -> tuple[dict[int, float], dict]:
    """An uninterrupted in-process run: (losses by update, final parameters)."""
    capfd.readouterr()
    cfg, overrides = parse_train_args(train_args(data, save_dir, *extra))
    assert train(cfg, overrides) == 0
    logged = losses(capfd.readouterr().err)
    return logged, ckpt.load(str(Path(save_dir) / "checkpoint_last.pt"))["model"]


def assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_every_checkpoint_loads(save_dir: Path) -> int:
    """Every visible *.pt loads (temp files start with a dot and are not matched); returns how many."""
    paths = glob.glob(str(save_dir / "*.pt"))
    for p in paths:
        ckpt.load(p)
    return len(paths)


def updates_in(path: Path) -> int:
    return ckpt.load(str(path))["train_state"]["trainer"]["num_updates"] if path.exists() else 0


def start(args: list[str], log: Path, slow_save: float = 0.0, torchrun_port: int | None = None) -> subprocess.Popen:
    """`nmt train ARGS` in a new process group, stderr to `log`."""
    env = {**ENV, "NMT_TEST_SLOW_SAVE": str(slow_save)}
    if torchrun_port is not None:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(torchrun_port),
            "-m",
            "nmt",
            "train",
            *args,
        ]
    elif slow_save:
        cmd = [sys.executable, "-c", BOOT, "train", *args]
    else:
        cmd = [sys.executable, "-m", "nmt", "train", *args]
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f, env=env, start_new_session=True)


def wait_for(proc: subprocess.Popen, ready, timeout: float = 60.0, poll: float = 0.005) -> bool:
    """Poll until `ready()` (True) or the process ends (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return True
        if proc.poll() is not None:
            return bool(ready())
        time.sleep(poll)
    proc.kill()
    raise AssertionError("timed out waiting for the training process")


def logged_update(log: Path) -> int:
    done = losses(log.read_text(encoding="utf-8", errors="replace"))
    return max(done) if done else 0


def temp_files(save_dir: Path) -> list[str]:
    return glob.glob(str(save_dir / (ckpt.TMP_PREFIX + "*")))


# ----------------------------------------------------------------------------- SIGKILL anywhere
@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_uninterrupted_run(toy_data_dir, tmp_path, capfd):
    # ~45 batches per epoch: 60 updates cross an epoch end (checkpoint1.pt, best, last).
    extra = ["--max-update", "60", "--save-interval-updates", "4", "--keep-interval-updates", "3"]
    ref_losses, ref_params = reference(toy_data_dir, tmp_path / "ref", capfd, *extra)
    assert sorted(ref_losses) == list(range(1, 61))

    save = tmp_path / "killed"
    args = train_args(toy_data_dir, save, *extra)
    rng = random.Random(1234)
    seen: dict[int, float] = {}
    # A plan of faults: SIGKILL a few updates after a random point, or in the middle of a checkpoint write.
    plan = ["write", "update", "write", "update"]
    stale: set[str] = set()
    for attempt, fault in enumerate(plan + ["none"] * 3):
        log = tmp_path / f"attempt{attempt}.log"
        resumed_at = updates_in(save / "checkpoint_last.pt")
        if fault == "write":
            proc = start(args, log, slow_save=0.3)
            hit = wait_for(proc, lambda stale=stale: bool(set(temp_files(save)) - stale))
        elif fault == "update":
            target = resumed_at + rng.randint(1, 10)
            proc = start(args, log)
            hit = wait_for(proc, lambda log=log, target=target: logged_update(log) >= target, poll=0.001)
        else:
            proc = start(args, log)
            hit = False
        if hit:
            proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=120)
        text = log.read_text(encoding="utf-8", errors="replace")
        if fault != "none":
            assert hit and code == -signal.SIGKILL, (fault, code, text[-2000:])
        if losses(text):  # the restarted run got going: the half-written files of the last kill are gone
            assert not stale & set(temp_files(save)), stale
        for n, loss in losses(text).items():
            assert n > resumed_at  # the run restarted from checkpoint_last.pt, not earlier or later
            assert loss == ref_losses[n], (attempt, n)  # redone updates too
            seen[n] = loss
        assert assert_every_checkpoint_loads(save) >= (1 if resumed_at else 0)
        stale = set(temp_files(save))
        if fault == "write":
            assert stale  # the kill left a half-written temp file: it must be ignored and cleaned
        if code == 0:
            break
    assert code == 0, text[-2000:]
    assert attempt == len(plan)
    assert seen == ref_losses
    assert temp_files(save) == []
    assert_same_params(ckpt.load(str(save / "checkpoint_last.pt"))["model"], ref_params)
    assert updates_in(save / "checkpoint_last.pt") == 60


# ----------------------------------------------------------------------------- SIGINT / SIGTERM
def test_sigint_and_sigterm_save_checkpoint_last_and_resume_exactly(toy_data_dir, tmp_path, capfd):
    """SIGINT exits 130 and SIGTERM exits 0, each within seconds with checkpoint_last.pt written;
    running the same command again continues as if nothing happened."""
    extra = ["--max-update", "80"]
    ref_losses, ref_params = reference(toy_data_dir, tmp_path / "ref", capfd, *extra)
    save = tmp_path / "run"
    args = train_args(toy_data_dir, save, *extra)
    stopped = 0
    # Ctrl-C in a terminal: SIGINT to the whole process group, DataLoader workers included.
    for sig, code, workers in ((signal.SIGINT, 130, "2"), (signal.SIGTERM, 0, "0")):
        log = tmp_path / f"{sig.name}.log"
        proc = start(args + ["--num-workers", workers], log)
        assert wait_for(proc, lambda log=log, stopped=stopped: logged_update(log) >= stopped + 5, poll=0.001)
        sent = time.monotonic()
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
        assert proc.wait(timeout=20) == code
        assert time.monotonic() - sent < 10
        text = log.read_text(encoding="utf-8")
        before, stopped = stopped, updates_in(save / "checkpoint_last.pt")
        assert before + 5 <= stopped < 80 and f"stopping on signal at update {stopped}" in text, text[-2000:]
        assert losses(text) == {n: ref_losses[n] for n in range(before + 1, stopped + 1)}
    proc = start(args, tmp_path / "resume.log")
    assert proc.wait(timeout=120) == 0
    rest = losses((tmp_path / "resume.log").read_text(encoding="utf-8"))
    assert rest == {n: ref_losses[n] for n in range(stopped + 1, 81)}
    assert_same_params(ckpt.load(str(save / "checkpoint_last.pt"))["model"], ref_params)


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_with_a_valid_checkpoint(toy_data_dir, tmp_path):
    save, log = tmp_path / "ddp", tmp_path / "ddp.log"
    args = train_args(toy_data_dir, save, "--max-update", "100000", "--device", "cpu", "--save-interval-updates", "5")
    proc = start(args, log, torchrun_port=free_port())
    try:
        assert wait_for(proc, lambda: logged_update(log) >= 3, timeout=90, poll=0.01)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # no hang: torchrun and both ranks are gone
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(encoding="utf-8")
    stopped = updates_in(save / "checkpoint_last.pt")
    assert stopped >= 3 and f"stopping on signal at update {stopped}" in text, text[-3000:]
    assert assert_every_checkpoint_loads(save) >= 1 and temp_files(save) == []
    # no rank of that process group is left running
    time.sleep(0.5)
    try:
        os.killpg(proc.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


# A rank whose peer never comes: it must give up after the timeout instead of waiting forever.
LONELY_RANK = r"""
import json, sys, time
from nmt.training import dist
start = time.monotonic()
try:
    dist.setup("cpu", timeout_minutes=float(sys.argv[1]))
    outcome = "joined"
except Exception as e:
    outcome = f"{type(e).__name__}: {e}"
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start}))
"""


def test_process_group_is_joined_with_a_timeout():
    import inspect

    from nmt.training import dist

    timeout_s = 2.0
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0", "WORLD_SIZE": "2"}
    r = subprocess.run(
        [sys.executable, "-c", LONELY_RANK, str(timeout_s / 60)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["outcome"] != "joined", got
    assert timeout_s <= got["seconds"] < 45, got  # it waited for the peer, then gave up
    assert inspect.signature(dist.setup).parameters["timeout_minutes"].default == 30  # what `nmt train` uses
