"""Reliability of checkpoints on disk: bad files through the CLI, failed writes, a second run on one save dir.

A bad checkpoint (truncated, random bytes, another architecture, a pickle that runs code, a newer
format) given to `nmt generate --path` or found as checkpoint_last.pt by `nmt train` ends in one
`error:` line and exit code 2; no code in it runs, and `nmt train` leaves the file as it was.
"""

from __future__ import annotations

import errno
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_TRAIN as TINY
from helpers import cli

from nmt import checkpoint as ckpt
from nmt.data.dataset import read_meta
from nmt.data.tokenizer import read_blobs
from nmt.errors import UserError
from nmt.models import arch_config, build_model

SIZES = {
    "encoder_layers": "1",
    "decoder_layers": "1",
    "encoder_embed_dim": "32",
    "decoder_embed_dim": "32",
    "encoder_ffn_embed_dim": "64",
    "decoder_ffn_embed_dim": "64",
    "encoder_attention_heads": "2",
    "decoder_attention_heads": "2",
}


def assert_one_error_line(code: int, err: str, message: str) -> None:
    """Exit 2 and exactly one `error:` line containing `message` (log lines before it are allowed)."""
    errors = [line for line in err.split("\n") if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err[-2000:]
    assert "Traceback" not in err


def save_tiny(path: Path, data_dir: Path, vocab_delta: int = 0) -> None:
    """An untrained tiny transformer checkpoint for `data_dir` (its vocabulary grown by `vocab_delta`)."""
    meta = read_meta(str(data_dir))
    meta = {**meta, "vocab_size": {k: v + vocab_delta for k, v in meta["vocab_size"].items()}}
    torch.manual_seed(0)
    cfg = arch_config("transformer_tiny", SIZES)
    v = meta["vocab_size"]
    model = build_model(cfg, v[meta["source_lang"]], v[meta["target_lang"]], meta["joined_dictionary"])
    ckpt.save_model(str(path), model, cfg, "transformer_tiny", meta, read_blobs(str(data_dir), meta))


class _RunsCode:
    """Unpickling this creates the file MARKER (what a malicious checkpoint would do)."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _other_arch(p: Path) -> None:
    payload = ckpt.load(str(p))
    payload["model_config"]["encoder_layers"] = 2  # the weights are those of one layer
    torch.save(payload, str(p))


def _code_pickle(p: Path) -> None:
    p.write_bytes(pickle.dumps({"kind": ckpt.KIND, "model": _RunsCode()}, protocol=2))


def _code_in_torch_file(p: Path) -> None:
    torch.save({**ckpt.load(str(p)), "extra": _RunsCode()}, str(p))


BAD = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:5000]), "not a readable nmt checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable nmt checkpoint"),
    "random_bytes": (lambda p: p.write_bytes(os.urandom(4096)), "not a readable nmt checkpoint"),
    "not_a_checkpoint": (lambda p: torch.save({"weights": torch.zeros(3)}, str(p)), "is not an nmt checkpoint"),
    "other_architecture": (_other_arch, "do not fit"),
    "code_pickle": (_code_pickle, "not a readable nmt checkpoint"),
    "code_in_torch_file": (_code_in_torch_file, "not a readable nmt checkpoint"),
    "newer_format": (
        lambda p: torch.save({**ckpt.load(str(p)), "format_version": ckpt.FORMAT_VERSION + 1}, str(p)),
        "newer than this nmt supports",
    ),
}


def make_bad(case: str, path: Path, data_dir: Path, marker: Path) -> str:
    save_tiny(path, data_dir)
    _RunsCode.marker = str(marker)
    BAD[case][0](path)
    return BAD[case][1]


@pytest.mark.parametrize("reader", ["average-checkpoints", "visualize-attn", "library"])
@pytest.mark.parametrize("case", ["code_pickle", "code_in_torch_file"])
def test_other_readers_refuse_a_code_running_checkpoint_and_run_nothing(
    case, reader, toy_data_dir, tmp_path, monkeypatch, capsys
):
    """Every other way in: the two commands that read a checkpoint, and the library's loaders."""
    monkeypatch.chdir(tmp_path)
    bad, marker, out = tmp_path / "bad.pt", tmp_path / "marker", tmp_path / "out"
    message = make_bad(case, bad, toy_data_dir, marker)
    if reader == "library":
        for load in (ckpt.load, ckpt.load_model, ckpt.load_models, lambda p: ckpt.average([p])):
            with pytest.raises(UserError) as e:
                load(str(bad))
            assert str(e.value).startswith(f"{bad} is {message}")
    else:
        args = {
            "average-checkpoints": ["--inputs", str(bad), "--output", str(out)],
            "visualize-attn": ["--path", str(bad), "--source", "a small cat", "--out", str(out), "--device", "cpu"],
        }[reader]
        code, stdout, err = cli(monkeypatch, capsys, reader, *args)
        assert_one_error_line(code, err, message)
        assert str(bad) in err and stdout == ""
        assert not out.exists()  # nothing written
    assert not marker.exists()


@pytest.mark.parametrize("case", sorted(BAD))
def test_generate_refuses_a_bad_checkpoint_with_one_line(case, toy_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    message = make_bad(case, tmp_path / "bad.pt", toy_data_dir, marker)
    (tmp_path / "in.txt").write_text("a small cat\n", encoding="utf-8")
    code, out, err = cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        str(tmp_path / "bad.pt"),
        "--input",
        str(tmp_path / "in.txt"),
        "--device",
        "cpu",
    )
    assert_one_error_line(code, err, message)
    assert str(tmp_path / "bad.pt") in err and out == ""
    assert not marker.exists()


@pytest.mark.parametrize("case", sorted(BAD) + ["other_vocabulary"])
def test_train_refuses_to_resume_from_a_bad_checkpoint_last(case, toy_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save, marker = tmp_path / "ckpt", tmp_path / "marker"
    save.mkdir()
    last = save / "checkpoint_last.pt"
    if case == "other_vocabulary":  # trained on another data dir: its embeddings have another size
        save_tiny(last, toy_data_dir, vocab_delta=7)
        message = "cannot resume from"
    else:
        message = make_bad(case, last, toy_data_dir, marker)
    before = last.read_bytes()
    code, _, err = cli(
        monkeypatch, capsys, "train", str(toy_data_dir), "--save-dir", str(save), *TINY, "--max-update", "2"
    )
    assert_one_error_line(code, err, message)
    assert str(last) in err
    assert not marker.exists()
    assert last.read_bytes() == before  # not replaced by a fresh run
    assert sorted(p.name for p in save.glob("*.pt")) == ["checkpoint_last.pt"]


# ----------------------------------------------------------------------------- failed writes
def _fail_second_save(monkeypatch, error: OSError, where: str) -> None:
    """The second checkpoint save fails: in torch.save (after writing part of the file) or in the copy."""
    calls = {"save": 0, "copy": 0}
    real_save, real_copy = torch.save, ckpt.copy

    def failing_save(obj, f, *args, **kwargs):
        calls["save"] += 1
        if where == "save" and calls["save"] == 2:
            f.write(b"half a checkpoint")
            raise error
        return real_save(obj, f, *args, **kwargs)

    def failing_copy(src, dst):
        calls["copy"] += 1
        if where == "copy" and calls["copy"] == 2:
            raise error
        return real_copy(src, dst)

    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(ckpt, "copy", failing_copy)


@pytest.mark.parametrize(
    "where, error, failed, reason",
    [
        ("save", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "checkpoint_1_6.pt", "No space left on device"),
        ("copy", PermissionError(errno.EACCES, os.strerror(errno.EACCES)), "checkpoint_last.pt", "Permission denied"),
    ],
    ids=["ENOSPC", "EACCES"],
)
def test_failed_checkpoint_write_keeps_the_previous_one_and_says_so(
    where, error, failed, reason, toy_data_dir, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "ckpt"
    _fail_second_save(monkeypatch, error, where)
    code, _, err = cli(
        monkeypatch,
        capsys,
        "train",
        str(toy_data_dir),
        "--save-dir",
        str(save),
        *TINY,
        "--max-update",
        "10",
        "--save-interval-updates",
        "3",
    )
    assert_one_error_line(code, err, f"cannot write {save / failed}: {reason}; the previous checkpoint is intact")
    monkeypatch.undo()
    assert ckpt.load(str(save / "checkpoint_last.pt"))["train_state"]["trainer"]["num_updates"] == 3
    assert not list(save.glob(ckpt.TMP_PREFIX + "*"))
    names = sorted(p.name for p in save.glob("*.pt"))
    assert names == (
        ["checkpoint_1_3.pt", "checkpoint_last.pt"]
        if where == "save"
        else ["checkpoint_1_3.pt", "checkpoint_1_6.pt", "checkpoint_last.pt"]
    )


# ----------------------------------------------------------------------------- one save dir, one run
def test_second_train_on_a_running_save_dir_is_refused(toy_data_dir, tmp_path, monkeypatch, capsys):
    save, log = tmp_path / "ckpt", tmp_path / "first.log"
    args = [
        str(toy_data_dir),
        "--save-dir",
        str(save),
        *TINY,
        "--max-update",
        "100000",
        "--save-interval-updates",
        "5",
        "--log-interval",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as f:
        first = subprocess.Popen(
            [sys.executable, "-m", "nmt", "train", *args], stderr=f, stdout=subprocess.DEVNULL, env=env
        )
    try:
        end = time.monotonic() + 60
        while not (save / "checkpoint_last.pt").exists():  # the first run is training and has saved
            assert first.poll() is None and time.monotonic() < end, log.read_text()[-2000:]
            time.sleep(0.02)
        (save / (ckpt.TMP_PREFIX + "inflight.pt")).write_bytes(b"a write of the first run")
        code, _, err = cli(monkeypatch, capsys, "train", *args)
        assert_one_error_line(code, err, f"another nmt train is already using {save}")
        assert (save / (ckpt.TMP_PREFIX + "inflight.pt")).exists()  # the refused run touched nothing
        assert first.poll() is None  # and the first one goes on
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
    for p in save.glob("checkpoint*.pt"):
        ckpt.load(str(p))
    assert "stopping on signal" in log.read_text()
