"""Training checkpoints: names of a save, pruning, where a run resumes from, checkpoints of older versions."""

import os
from dataclasses import asdict

import torch
from helpers import TINY_TRAIN as TINY

from nmt import checkpoint as ckpt
from nmt.config import TrainConfig
from nmt.fileio import TMP_PREFIX
from nmt.flags import parse_train_args
from nmt.training.checkpointing import Progress, checkpoint_names, find_restore, prune
from nmt.training.loop import train


def _touch(directory, *names) -> None:
    for n in names:
        (directory / n).write_bytes(b"")


def _names(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_progress_fields_are_the_saved_keys():
    assert asdict(Progress()) == {
        "epoch": 1,
        "batch_offset": 0,
        "best": None,
        "bad_validations": 0,
        "plateau_bad": 0,
        "train_seconds": 0.0,
    }


def test_the_names_of_one_save():
    assert checkpoint_names([], improved=False) == ["checkpoint_last.pt"]
    assert checkpoint_names(["checkpoint3.pt"], improved=True) == [
        "checkpoint3.pt",
        "checkpoint_last.pt",
        "checkpoint_best.pt",
    ]
    assert checkpoint_names(["checkpoint_2_500.pt"], improved=False) == ["checkpoint_2_500.pt", "checkpoint_last.pt"]


def test_pruning_keeps_the_newest_epoch_and_update_checkpoints(tmp_path):
    epochs = [f"checkpoint{e}.pt" for e in (1, 2, 3, 9, 10)]  # 10 is newer than 9, whatever the string order
    updates = ["checkpoint_1_100.pt", "checkpoint_2_250.pt", "checkpoint_3_1000.pt"]
    others = ["checkpoint_last.pt", "checkpoint_best.pt", "checkpoint_init.pt", "notes.txt"]
    _touch(tmp_path, *epochs, *updates, *others)
    removed = prune(str(tmp_path), keep_last_epochs=2, keep_interval_updates=1)
    assert [os.path.basename(p) for p in removed] == [
        "checkpoint1.pt",
        "checkpoint2.pt",
        "checkpoint3.pt",
        "checkpoint_1_100.pt",
        "checkpoint_2_250.pt",
    ]
    assert _names(tmp_path) == sorted(["checkpoint9.pt", "checkpoint10.pt", "checkpoint_3_1000.pt", *others])


def test_pruning_minus_one_keeps_all_and_zero_keeps_none(tmp_path):
    _touch(tmp_path, "checkpoint1.pt", "checkpoint2.pt", "checkpoint_1_10.pt", "checkpoint_last.pt")
    assert prune(str(tmp_path), keep_last_epochs=-1, keep_interval_updates=-1) == []
    assert len(_names(tmp_path)) == 4
    prune(str(tmp_path), keep_last_epochs=0, keep_interval_updates=-1)
    assert _names(tmp_path) == ["checkpoint_1_10.pt", "checkpoint_last.pt"]
    prune(str(tmp_path), keep_last_epochs=-1, keep_interval_updates=0)
    assert _names(tmp_path) == ["checkpoint_last.pt"]


def test_a_run_resumes_from_restore_file_as_given_or_in_the_save_dir(toy_data_dir, tmp_path, monkeypatch):
    save = tmp_path / "save"
    assert train(*parse_train_args([str(toy_data_dir), "--save-dir", str(save), *TINY, "--max-update", "1"])) == 0
    last = str(save / "checkpoint_last.pt")
    cfg = TrainConfig(data=str(toy_data_dir), save_dir=str(save))
    assert find_restore(cfg, is_main=True).path == last  # the default name, in the save dir
    other = TrainConfig(data=str(toy_data_dir), save_dir=str(tmp_path / "elsewhere"), restore_file=last)
    found = find_restore(other, is_main=True)
    assert found.path == last and found.payload["train_state"]["trainer"]["num_updates"] == 1
    fresh = TrainConfig(data=str(toy_data_dir), save_dir=str(tmp_path / "fresh"))
    assert find_restore(fresh, is_main=True) is None
    monkeypatch.chdir(save)  # a relative name that exists as given is taken as given
    here = TrainConfig(data=".", save_dir=str(tmp_path / "elsewhere"), restore_file="checkpoint_last.pt")
    assert find_restore(here, is_main=True).path == "checkpoint_last.pt"


def test_only_the_lock_holder_removes_temp_files_of_an_interrupted_write(tmp_path):
    stale = TMP_PREFIX + "abc.pt"
    _touch(tmp_path, stale, TMP_PREFIX + "output.txt")
    cfg = TrainConfig(data="d", save_dir=str(tmp_path))
    assert find_restore(cfg, is_main=False) is None and stale in _names(tmp_path)
    no_save = TrainConfig(data="d", save_dir=str(tmp_path), no_save=True)
    assert find_restore(no_save, is_main=True) is None and stale in _names(tmp_path)
    assert find_restore(cfg, is_main=True) is None
    assert _names(tmp_path) == [TMP_PREFIX + "output.txt"]  # only checkpoint temps are ours


def test_a_checkpoint_of_the_previous_version_resumes_exactly(toy_data_dir, tmp_path):
    """Earlier versions wrote the lr horizon into train_config's optim.max_update; nothing reads it back."""
    flags = [*TINY, "--lr-scheduler", "cosine", "--lr", "2e-3", "--warmup-updates", "2", "--dropout", "0.2"]
    flags += ["--max-update", "6"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        train(*parse_train_args([str(toy_data_dir), "--save-dir", str(a), *flags, "--save-interval-updates", "3"])) == 0
    )
    payload = ckpt.load(str(a / "checkpoint_1_3.pt"))  # the state after 3 of the 6 updates
    config = payload["train_state"]["train_config"]
    assert "max_update" not in config["optim"] and config["max_update"] == 6  # the config as given, not changed
    config["optim"]["max_update"] = 1000  # as an earlier version wrote it, here a horizon this run must not take
    b.mkdir()
    ckpt.save(str(b / "checkpoint_last.pt"), payload)
    assert train(*parse_train_args([str(toy_data_dir), "--save-dir", str(b), *flags])) == 0
    a_state, b_state = ckpt.load(str(a / "checkpoint_last.pt")), ckpt.load(str(b / "checkpoint_last.pt"))
    assert b_state["train_state"]["trainer"]["num_updates"] == 6
    for k, v in a_state["model"].items():
        assert torch.equal(v, b_state["model"][k]), k
