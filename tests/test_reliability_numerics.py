"""Reliability of the numbers: NaN/inf losses stop training with the update number; fp16 overflow handling.

fp16 runs on CPU here (torch.autocast supports float16 on CPU; GradScaler("cpu")), so the
scaler's skip-and-halve logic is tested with an injected infinite gradient.
"""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import TINY_TRAIN as TINY

from nmt.errors import UserError
from nmt.flags import parse_train_args
from nmt.training.loop import Run, iterate
from nmt.training.trainer import MIN_LOSS_SCALE


def fp16_run(where: tuple, *extra) -> Run:
    data, tmp_path = where
    cfg, overrides = parse_train_args(
        [
            str(data),
            "--save-dir",
            str(tmp_path / "ckpt"),
            *TINY,
            "--amp",
            "fp16",
            "--device",
            "cpu",
            "--lr",
            "2e-3",
            "--warmup-updates",
            "5",
            "--dropout",
            "0",
            *extra,
        ]
    )
    return Run(cfg, overrides)


@pytest.fixture
def where(toy_data_dir, tmp_path) -> tuple:
    return toy_data_dir, tmp_path


def inject_inf_grad(run: Run, when) -> None:
    """Make one parameter's gradient infinite in the attempts where `when(attempt)` is true."""
    attempts = {"n": 0}

    def hook(grad):
        attempts["n"] += 1
        return torch.full_like(grad, float("inf")) if when(attempts["n"]) else grad

    run.trainer.params[0].register_hook(hook)


def test_fp16_overflow_skips_the_step_halves_the_scale_and_training_continues(where):
    run = fp16_run(where, "--no-save")
    t = run.trainer
    batches = list(iterate(run.task.train_dataset(1, run.task.epoch_batches(1)[:3])))
    inject_inf_grad(run, lambda attempt: attempt == 1)
    before = [p.detach().clone() for p in t.params]
    scale = t.scaler.get_scale()
    stats = t.train_step([batches[0]])
    assert "overflow" in stats and not torch.isfinite(stats["gnorm"])
    assert all(torch.equal(a, p) for a, p in zip(before, t.params))  # nothing moved
    assert all(p.grad is None for p in t.params)  # no stale gradient leaks into the next update
    assert t.scaler.get_scale() == scale / 2 and t.num_updates == 0 and t.skipped_updates == 1
    stats = t.train_step([batches[1]])
    assert "overflow" not in stats and torch.isfinite(stats["loss"]) and t.num_updates == 1
    assert any(not torch.equal(a, p) for a, p in zip(before, t.params))
    assert t.scaler.get_scale() == scale / 2
    # the scaler state travels with the checkpoint
    state = t.state_dict()
    again = fp16_run(where, "--no-save").trainer
    again.load_state_dict(state)
    assert again.scaler.get_scale() == scale / 2 and again.skipped_updates == 1


def test_fp16_training_with_one_overflow_reaches_max_update(where):
    run = fp16_run(where, "--no-save", "--max-update", "6")
    inject_inf_grad(run, lambda attempt: attempt == 3)
    assert run.run() == 0
    assert run.trainer.num_updates == 6 and run.trainer.skipped_updates == 1
    assert run.progress.batch_offset == 7  # the skipped update consumed its batch


def test_fp16_loss_scale_at_minimum_stops_instead_of_looping(where):
    run = fp16_run(where, "--no-save", "--max-update", "5", "--max-epoch", "3")
    inject_inf_grad(run, lambda attempt: True)
    with pytest.raises(UserError, match=f"fp16 loss scale fell below {MIN_LOSS_SCALE} at update 1"):
        run.run()
    assert run.trainer.num_updates == 0
    assert run.trainer.scaler.get_scale() < MIN_LOSS_SCALE <= 2 * run.trainer.scaler.get_scale()
    assert run.trainer.skipped_updates == 30  # 65536 halved 30 times is the first scale below 1e-4


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    from nmt import cli

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nmt", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return (e.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    "amp, message",
    [("none", "non-finite loss or gradient at update 2"), ("fp16", "fp16 loss scale fell below 0.0001 at update 2")],
)
def test_diverging_run_stops_with_one_line_naming_the_update(amp, message, toy_data_dir, tmp_path, monkeypatch, capsys):
    # lr 1e30: the first Adam step makes the weights huge, the second forward overflows.
    save = tmp_path / "ckpt"
    code, err = _cli(
        monkeypatch,
        capsys,
        "train",
        str(toy_data_dir),
        "--save-dir",
        str(save),
        *TINY,
        "--device",
        "cpu",
        "--amp",
        amp,
        "--lr",
        "1e30",
        "--lr-scheduler",
        "fixed",
        "--max-update",
        "50",
        "--save-interval-updates",
        "1",
    )
    errors = [line for line in err.split("\n") if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err, err[-2000:]
    # only the healthy update was saved; nothing non-finite reached a checkpoint
    from nmt import checkpoint as ckpt

    last = ckpt.load(str(save / "checkpoint_last.pt"))
    assert last["train_state"]["trainer"]["num_updates"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
