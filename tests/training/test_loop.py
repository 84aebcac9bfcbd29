"""The Trainer and the training loop: exact resume, DDP equivalence, AMP, NaN guard, learning."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import free_port

from nmt import checkpoint as ckpt
from nmt.errors import UserError
from nmt.flags import parse_train_args
from nmt.training.loop import Run, iterate, lr_horizon, train

TINY = [
    "--arch",
    "transformer_tiny",
    "--encoder-layers",
    "1",
    "--decoder-layers",
    "1",
    "--encoder-embed-dim",
    "32",
    "--decoder-embed-dim",
    "32",
    "--encoder-ffn-embed-dim",
    "64",
    "--decoder-ffn-embed-dim",
    "64",
    "--encoder-attention-heads",
    "2",
    "--decoder-attention-heads",
    "2",
]


def _args(data, save_dir, *extra):
    return [
        str(data),
        "--save-dir",
        str(save_dir),
        *TINY,
        "--max-tokens",
        "600",
        "--lr",
        "2e-3",
        "--warmup-updates",
        "5",
        "--log-interval",
        "1",
        "--log-format",
        "json",
        "--threads",
        "1",
        *extra,
    ]


def _run(args) -> int:
    cfg, overrides = parse_train_args(args)
    return train(cfg, overrides)


def _losses(text: str) -> dict[int, float]:
    out = {}
    for line in text.splitlines():
        if "{" in line and '"num_updates"' in line:
            rec = json.loads(line[line.index("{") :])
            if not rec["tag"].endswith("end of epoch"):
                out[rec["num_updates"]] = rec["loss"]
    return out


def _params(path):
    return ckpt.load(str(path))["model"]


def _first_batches(run: Run, n: int, epoch: int = 1) -> list:
    """The first `n` collated training batches of `epoch`, as the loop feeds them."""
    return list(iterate(run.task.train_dataset(epoch, run.task.epoch_batches(epoch)[:n])))


def test_interrupted_and_resumed_run_equals_uninterrupted(toy_data_dir, tmp_path, capfd):
    # 1600 train pairs at 600 tokens/batch make 60 batches: 75 updates cross an epoch boundary.
    assert _run(_args(toy_data_dir, tmp_path / "a", "--max-update", "75", "--dropout", "0.2")) == 0
    full = _losses(capfd.readouterr().err)
    assert _run(_args(toy_data_dir, tmp_path / "b", "--max-update", "23", "--dropout", "0.2")) == 0
    first = _losses(capfd.readouterr().err)
    assert _run(_args(toy_data_dir, tmp_path / "b", "--max-update", "75", "--dropout", "0.2")) == 0
    second = _losses(capfd.readouterr().err)
    assert sorted(first) == list(range(1, 24)) and sorted(second) == list(range(24, 76))
    assert {**first, **second} == full  # logged losses identical, update by update
    a, b = _params(tmp_path / "a" / "checkpoint_last.pt"), _params(tmp_path / "b" / "checkpoint_last.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "a" / "checkpoint1.pt").exists()


def test_bf16_autocast_training_step_on_cpu(toy_data_dir, tmp_path):
    cfg, overrides = parse_train_args(_args(toy_data_dir, tmp_path, "--amp", "bf16", "--no-save"))
    run = Run(cfg, overrides)
    before = [p.detach().clone() for p in run.trainer.params]
    stats = run.trainer.train_step(_first_batches(run, 1))
    assert torch.isfinite(stats["loss"]) and torch.isfinite(stats["gnorm"]) and run.trainer.num_updates == 1
    assert any(not torch.equal(a, p) for a, p in zip(before, run.trainer.params))


def test_autocast_takes_the_blockwise_loss_and_gives_the_logits_paths_gradients(toy_data_dir, tmp_path):
    """Under bf16 the Transformer's loss starts from its features (no full logits): same loss, same gradients."""
    args = _args(toy_data_dir, tmp_path, "--amp", "bf16", "--no-save", "--dropout", "0")
    cfg, overrides = parse_train_args(args)
    full, _ = parse_train_args(args + ["--full-logits"])  # the logits path, as in fp32
    runs = [Run(cfg, overrides), Run(full, overrides)]
    assert runs[0].trainer.loss_fn.from_features is not None and runs[1].trainer.loss_fn.from_features is None
    runs[1].trainer.model.load_state_dict(runs[0].trainer.model.state_dict())
    batch = _first_batches(runs[0], 1)[0]
    losses = []
    for run in runs:
        loss, stats = run.trainer.loss(run.trainer.net, run.trainer.model, batch)
        loss.backward()
        losses.append((loss, stats["nll_loss"]))
    assert torch.allclose(losses[0][0], losses[1][0], rtol=1e-4) and torch.allclose(
        losses[0][1], losses[1][1], rtol=1e-4
    )
    for (name, a), b in zip(runs[0].trainer.model.named_parameters(), runs[1].trainer.model.parameters(), strict=True):
        assert (a.grad - b.grad).abs().max() <= 3e-2 * b.grad.abs().max(), name  # bf16 rounding apart
    fp32, _ = parse_train_args(_args(toy_data_dir, tmp_path, "--no-save"))
    assert Run(fp32, overrides).trainer.loss_fn.from_features is None


def test_epochs_take_the_subword_sampled_copies_in_turn(toy_raw_dir, tmp_path, capfd):
    from rich.console import Console

    from nmt.config import PreprocessConfig
    from nmt.data.preprocess import preprocess

    data = tmp_path / "data"
    preprocess(
        PreprocessConfig(
            source_lang="en",
            target_lang="fr",
            trainpref=str(toy_raw_dir / "train"),
            validpref=str(toy_raw_dir / "valid"),
            destdir=str(data),
            vocab_size=300,
            joined_dictionary=True,
            subword_samples=2,
        ),
        console=Console(quiet=True),
    )
    cfg, overrides = parse_train_args(_args(data, tmp_path / "ckpt", "--max-epoch", "4"))
    run = Run(cfg, overrides)
    task = run.task
    assert len(task.train_sets) == 3
    for epoch, copy in ((1, 0), (2, 1), (3, 2), (4, 0), (5, 1)):
        data_e, batches = task.epoch_data(epoch), task.epoch_batches(epoch)
        assert data_e is task.train_sets[copy]
        assert sorted(i for b in batches for i in b.tolist()) == list(range(len(data_e)))  # every pair once
        assert max(len(b) * (int(data_e.tgt.sizes[b].max()) + 1) for b in batches) <= cfg.max_tokens  # its own lengths
        shapes = [task.policy.shape(data_e.src.sizes[b] + 1, data_e.tgt.sizes[b] + 1) for b in batches]
        assert max(rows * max(s, t) for rows, s, t in shapes) <= cfg.max_tokens  # padded shapes, too
    batch = task.epoch_batches(2)[0]
    first = task.train_dataset(2, [batch])[0]
    same = task.train_dataset(1, [batch])[0]  # the same sentences, original segmentation (other padding rows)
    n = len(batch)
    assert [task.tgt_tok.decode(r) for r in first.tgt_out[:n].tolist()] == [
        task.tgt_tok.decode(r) for r in same.tgt_out[:n].tolist()
    ]
    assert run.run() == 0
    err = capfd.readouterr().err
    assert "epoch 004 | valid on 'valid' subset" in err and "epoch 005" not in err


def test_nan_loss_stops_with_the_update_number_and_saves_nothing(toy_data_dir, tmp_path):
    cfg, overrides = parse_train_args(_args(toy_data_dir, tmp_path, "--max-update", "10"))
    run = Run(cfg, overrides)
    forward = run.trainer.model.forward

    def poisoned(src, src_pad_mask, tgt_in, **kw):
        out = forward(src, src_pad_mask, tgt_in, **kw)
        return out * float("nan") if run.trainer.num_updates == 3 else out

    run.trainer.model.forward = poisoned
    with pytest.raises(UserError, match="non-finite loss or gradient at update 4"):
        run.run()
    assert run.trainer.num_updates == 3
    assert not any(p.name.endswith(".pt") for p in tmp_path.iterdir())


def test_update_freq_equals_bigger_batches(toy_data_dir, tmp_path):
    """Accumulating 2 batches then stepping equals the loss-normalized sum over both."""
    cfg, overrides = parse_train_args(
        _args(toy_data_dir, tmp_path, "--no-save", "--dropout", "0", "--update-freq", "2")
    )
    run = Run(cfg, overrides)
    batches = _first_batches(run, 2)
    state = {k: v.clone() for k, v in run.trainer.model.state_dict().items()}
    run.trainer.train_step(batches)
    grads_accum = [p.grad for p in run.trainer.params]
    assert all(g is None for g in grads_accum)  # zeroed after the step
    after_accum = {k: v.clone() for k, v in run.trainer.model.state_dict().items()}
    # the same update by hand: one gradient of (loss_1 + loss_2) / (ntokens_1 + ntokens_2)
    run2 = Run(cfg, overrides)
    run2.trainer.model.load_state_dict(state)
    total = sum(b.ntokens for b in batches)
    loss = (
        sum(
            run2.trainer.loss_fn.criterion(run2.trainer.model(b.src, b.src_pad_mask, b.tgt_in), b.tgt_out, 0.1)[0]
            for b in batches
        )
        / total
    )
    loss.backward()
    run2.trainer._step({})
    for k, v in run2.trainer.model.state_dict().items():
        assert torch.allclose(v, after_accum[k], atol=1e-6), k


def test_second_run_on_same_save_dir_is_refused(toy_data_dir, tmp_path):
    from nmt.training.control import save_dir_lock

    with save_dir_lock(str(tmp_path), enabled=True):
        with pytest.raises(UserError, match="already using"):
            _run(_args(toy_data_dir, tmp_path, "--max-update", "1"))


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_ddp_two_gloo_processes_equal_one_process(toy_data_dir, tmp_path, amp):
    common = _args(toy_data_dir, "X", "--max-update", "6", "--dropout", "0", "--device", "cpu", "--amp", amp)
    one = [a if a != "X" else str(tmp_path / "one") for a in common] + ["--update-freq", "2"]
    two = [a if a != "X" else str(tmp_path / "two") for a in common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r1 = subprocess.run(
        [sys.executable, "-m", "nmt", "train", *one], check=True, env=env, capture_output=True, text=True
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "-m",
            "nmt",
            "train",
            *two,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _params(tmp_path / "one" / "checkpoint_last.pt"), _params(tmp_path / "two" / "checkpoint_last.pt")
    for k in a:  # bf16: the two ranks' products round differently from one process's
        assert torch.allclose(a[k], b[k], atol=1e-5 if amp == "none" else 2e-3), k
    # The log speaks of whole updates: both ranks' tokens per update, each update counted once.
    logged = [
        [
            json.loads(line[line.index("{") :])
            for line in run.stderr.splitlines()
            if '"num_updates"' in line and "valid" not in line
        ]
        for run in (r1, r)
    ]
    assert len(logged[0]) == len(logged[1]) >= 6
    for x, y in zip(*logged):
        assert (x["num_updates"], x["wpb"], x["bsz"]) == (y["num_updates"], y["wpb"], y["bsz"])


@pytest.mark.slow
def test_transformer_tiny_learns_the_toy_corpus(toy_data_dir, tmp_path, capfd):
    # transformer_tiny's shape at a quarter of its width: the same code path, ~15 s on one core.
    args = [
        str(toy_data_dir),
        "--save-dir",
        str(tmp_path),
        "--arch",
        "transformer_tiny",
        "--encoder-layers",
        "2",
        "--decoder-layers",
        "2",
        "--encoder-embed-dim",
        "64",
        "--decoder-embed-dim",
        "64",
        "--encoder-ffn-embed-dim",
        "128",
        "--decoder-ffn-embed-dim",
        "128",
        "--max-tokens",
        "1000",
        "--lr",
        "5e-3",
        "--warmup-updates",
        "30",
        "--max-epoch",
        "10",
        "--log-format",
        "json",
        "--threads",
        "1",
        "--dropout",
        "0.1",
        "--no-save",
    ]
    assert _run(args) == 0
    valid = [
        json.loads(line[line.index("{") :])
        for line in capfd.readouterr().err.splitlines()
        if '"tag"' in line and "valid" in line
    ]
    assert valid[-1]["ppl"] < 2.0, valid[-1]


def test_eval_bleu_patience_pruning_and_tensorboard(toy_data_dir, tmp_path, capfd):
    """An untrained model's BLEU cannot improve at lr ~0: patience 1 stops after epoch 2."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = _args(
        toy_data_dir,
        tmp_path,
        "--max-epoch",
        "5",
        "--lr",
        "1e-12",
        "--eval-bleu",
        "--best-checkpoint-metric",
        "bleu",
        "--patience",
        "1",
        "--keep-last-epochs",
        "1",
        "--attn-sample",
        "The girl sees the red car.",
        "--max-tokens",
        "3000",
    )
    assert _run(args) == 0
    err = capfd.readouterr().err
    valid = [json.loads(line[line.index("{") :]) for line in err.splitlines() if "valid on 'valid'" in line]
    assert len(valid) == 2 and all("bleu" in v and "best_bleu" in v for v in valid)
    assert "early stop" in err
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt")
    assert names == ["checkpoint2.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    events = EventAccumulator(str(tmp_path / "tensorboard" / "valid"), size_guidance={"images": 0}).Reload()
    assert {"loss", "nll_loss", "ppl", "bleu"} <= set(events.Tags()["scalars"])
    assert events.Tags()["images"] == ["cross_attention"] and len(events.Images("cross_attention")) == 2
    train_events = EventAccumulator(str(tmp_path / "tensorboard" / "train")).Reload()
    assert {"loss", "wps", "lr", "gnorm"} <= set(train_events.Tags()["scalars"])


def test_lr_horizon_is_max_update_or_else_max_epoch_times_the_updates_of_an_epoch():
    assert lr_horizon(100, 2, 60, 1, 1) == 100  # --max-update wins
    assert lr_horizon(0, 2, 60, 1, 1) == 120
    assert lr_horizon(0, 2, 60, 3, 1) == 40
    assert lr_horizon(0, 2, 61, 2, 2) == 30  # 30 batches a rank (the 61st is left out), 15 updates an epoch
    assert lr_horizon(0, 1, 61, 4, 2) == 8  # the last, shorter group of an epoch is an update too
    assert lr_horizon(0, 0, 60, 1, 1) == 0  # neither: no horizon


@pytest.mark.parametrize("update_freq", [1, 3])
def test_cosine_horizon_from_max_epoch_ends_at_min_lr(toy_data_dir, tmp_path, update_freq):
    from nmt.training.optim import lr_at

    args = _args(
        toy_data_dir,
        tmp_path,
        "--lr-scheduler",
        "cosine",
        "--min-lr",
        "1e-5",
        "--max-epoch",
        "2",
        "--update-freq",
        str(update_freq),
        "--no-save",
    )
    cfg, overrides = parse_train_args(args)
    run = Run(cfg, overrides)
    per_epoch = -(-len(run.task.epoch_batches(1)) // update_freq)  # 62 batches: 62 or 21 updates
    assert per_epoch == {1: 62, 3: 21}[update_freq]
    assert run.trainer.horizon == 2 * per_epoch
    assert cfg == parse_train_args(args)[0]  # the horizon is the Trainer's: the config is left as given
    last = lr_at(2 * per_epoch, cfg.optim, 32, horizon=run.trainer.horizon)
    assert last == pytest.approx(1e-5, rel=1e-3)  # the last update of the last epoch is at the end of the cosine
    assert lr_at(per_epoch + 5, cfg.optim, 32, horizon=run.trainer.horizon) > 1e-4  # still far from it in the middle


def _timed_run(data, save_dir, hours):
    """A run whose clock reads 10 s per update done, so --stop-time-hours maps to update counts."""
    cfg, overrides = parse_train_args(_args(data, save_dir, "--stop-time-hours", str(hours), "--max-epoch", "50"))
    run = Run(cfg, overrides)
    run.clock = lambda: 10.0 * run.trainer.num_updates
    return run


@pytest.mark.parametrize("schedule", ["cosine", "polynomial_decay"])
def test_time_budget_ends_the_decay_where_max_update_would(toy_data_dir, tmp_path, schedule):
    """10 s an update and 100 s of budget: the decay ends at update 10, as --max-update 10 makes it."""
    flags = ("--lr-scheduler", schedule, "--min-lr", "1e-5", "--no-save")
    cfg, overrides = parse_train_args(
        _args(toy_data_dir, tmp_path / "t", *flags, "--stop-time-hours", str(100 / 3600), "--max-epoch", "50")
    )
    timed = Run(cfg, overrides)
    timed.clock = lambda: 10.0 * timed.trainer.num_updates
    assert timed.run() == 0 and timed.trainer.num_updates == 10
    assert timed.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)  # the last update's lr
    cfg, overrides = parse_train_args(_args(toy_data_dir, tmp_path / "u", *flags, "--max-update", "10"))
    counted = Run(cfg, overrides)
    assert counted.run() == 0 and counted.trainer.num_updates == 10
    for a, b in zip(
        timed.trainer.model.state_dict().values(), counted.trainer.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)  # the same lr at every update, hence the same weights


def test_stop_time_hours_counts_resumed_runs(toy_data_dir, tmp_path, capfd):
    run = _timed_run(toy_data_dir, tmp_path, 45 / 3600)  # 45 s: time is up after update 5 (50 s)
    assert run.run() == 0
    state = ckpt.load(str(tmp_path / "checkpoint_last.pt"))["train_state"]
    assert state["trainer"]["num_updates"] == 5 and state["progress"]["train_seconds"] == 50.0
    assert "reached --stop-time-hours" in capfd.readouterr().err
    again = _timed_run(toy_data_dir, tmp_path, 45 / 3600)  # already over: nothing more is trained
    assert again.run() == 0 and again.trainer.num_updates == 5
    longer = _timed_run(toy_data_dir, tmp_path, 90 / 3600)  # 50 s spent before, 40 s more: 4 updates
    assert longer.run() == 0
    state = ckpt.load(str(tmp_path / "checkpoint_last.pt"))["train_state"]
    assert state["trainer"]["num_updates"] == 9 and state["progress"]["train_seconds"] == 90.0


@pytest.mark.slow
def test_ddp_ranks_stop_together_on_time(toy_data_dir, tmp_path):
    """Each rank votes with its own clock in the update's all-reduce: both leave at the same update."""
    args = _args(toy_data_dir, tmp_path, "--max-epoch", "1000", "--stop-time-hours", str(3 / 3600), "--device", "cpu")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "-m",
            "nmt",
            "train",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "reached --stop-time-hours" in r.stderr
    state = ckpt.load(str(tmp_path / "checkpoint_last.pt"))["train_state"]
    assert state["trainer"]["num_updates"] > 0 and state["progress"]["train_seconds"] >= 3.0


def test_stop_time_hours_must_be_finite_and_not_negative(toy_data_dir, tmp_path):
    for bad in ("-1", "inf", "nan"):
        with pytest.raises(UserError, match="--stop-time-hours"):
            parse_train_args(_args(toy_data_dir, tmp_path, "--stop-time-hours", bad))
