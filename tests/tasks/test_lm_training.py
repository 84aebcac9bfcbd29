"""The language-model tasks with the real models, through `nmt train`: they learn, resume exactly,
refuse a model or data made for another task before writing anything, and leave translation alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import cli, free_port
from monodata import make_mono_dir

from nmt import checkpoint as ckpt
from nmt.flags import parse_train_args
from nmt.training.loop import train

SMALL = {
    "language_modeling": [
        *("--arch", "transformer_lm_tiny", "--decoder-layers", "1", "--decoder-embed-dim", "32"),
        *("--decoder-ffn-embed-dim", "64", "--decoder-attention-heads", "2", "--tokens-per-sample", "32"),
    ],
    "masked_lm": [
        *("--arch", "mlm_tiny", "--encoder-layers", "1", "--encoder-embed-dim", "32"),
        *("--encoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2", "--tokens-per-sample", "32"),
    ],
}


@pytest.fixture(scope="module")
def mono_dir(toy_raw_dir, tmp_path_factory):
    return make_mono_dir(toy_raw_dir, tmp_path_factory.mktemp("mono") / "data-bin")


def _args(task: str, data, save_dir, *extra) -> list[str]:
    return [
        str(data),
        *("--task", task, "--save-dir", str(save_dir), *SMALL[task]),
        *("--max-tokens", "512", "--lr", "2e-3", "--warmup-updates", "5", "--dropout", "0.1"),
        *("--log-interval", "1", "--log-format", "json", "--threads", "1"),
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


@pytest.mark.parametrize("task", ["language_modeling", "masked_lm"])
def test_interrupted_and_resumed_run_equals_uninterrupted(task, mono_dir, tmp_path, capfd):
    assert _run(_args(task, mono_dir, tmp_path / "a", "--max-update", "12")) == 0
    full = _losses(capfd.readouterr().err)
    assert _run(_args(task, mono_dir, tmp_path / "b", "--max-update", "5")) == 0
    first = _losses(capfd.readouterr().err)
    assert _run(_args(task, mono_dir, tmp_path / "b", "--max-update", "12")) == 0
    second = _losses(capfd.readouterr().err)
    assert sorted(first) == list(range(1, 6)) and sorted(second) == list(range(6, 13))
    assert {**first, **second} == full
    assert full[12] < full[1]  # it learns
    a = ckpt.load(str(tmp_path / "a" / "checkpoint_last.pt"))
    b = ckpt.load(str(tmp_path / "b" / "checkpoint_last.pt"))
    assert a["data_meta"]["tasks"] == ["language_modeling", "masked_lm"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


@pytest.mark.slow
@pytest.mark.parametrize("task, amp", [("language_modeling", "none"), ("masked_lm", "none"), ("masked_lm", "bf16")])
def test_ddp_two_gloo_processes_equal_one_process_with_two_batches_an_update(task, amp, mono_dir, tmp_path):
    no_dropout = ("--dropout", "0", "--attention-dropout", "0")  # dropout masks would differ between the runs
    common = _args(task, mono_dir, "X", "--max-update", "4", *no_dropout, "--device", "cpu", "--amp", amp)
    one = [a if a != "X" else str(tmp_path / "one") for a in common] + ["--update-freq", "2"]
    two = [a if a != "X" else str(tmp_path / "two") for a in common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "nmt", "train", *one], check=True, env=env, capture_output=True)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    r = subprocess.run([*launch, "-m", "nmt", "train", *two], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    a = ckpt.load(str(tmp_path / "one" / "checkpoint_last.pt"))["model"]
    b = ckpt.load(str(tmp_path / "two" / "checkpoint_last.pt"))["model"]
    for k in a:  # the same blocks or masked sentences, split over ranks instead of over two batches
        assert torch.allclose(a[k], b[k], atol=1e-5 if amp == "none" else 2e-3), k


@pytest.mark.parametrize(
    "task, arch, message",
    [
        (
            "language_modeling",
            "transformer_tiny",
            "--arch transformer_tiny is not a model for --task language_modeling",
        ),
        ("masked_lm", "transformer_lm_tiny", "--arch transformer_lm_tiny is not a model for --task masked_lm"),
        ("translation", "mlm_tiny", "--arch mlm_tiny is not a model for --task translation"),
    ],
)
def test_an_arch_of_another_task_is_refused_before_anything_is_written(
    task, arch, message, mono_dir, toy_data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    data = toy_data_dir if task == "translation" else mono_dir
    code, _, err = cli(monkeypatch, capsys, "train", str(data), "--task", task, "--arch", arch, "--save-dir", "ck")
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "ck").exists()


def test_a_data_dir_of_another_task_is_refused_before_anything_is_written(
    mono_dir, toy_data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(monkeypatch, capsys, "train", str(mono_dir), "--arch", "transformer_tiny", "--save-dir", "ck")
    assert code == 2 and "--task translation cannot train on" in err and err.count("\n") == 1, err
    code, _, err = cli(monkeypatch, capsys, "train", str(toy_data_dir), "--task", "masked_lm", "--save-dir", "ck")
    assert code == 2 and "--task masked_lm cannot train on" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
