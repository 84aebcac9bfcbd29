"""Every command that writes refuses an unusable output path up front: one `error:` line naming the flag
and the path, exit code 2, and nothing left on disk. Every float flag refuses nan and infinities.

Output files need an existing directory (as a shell redirect does); output directories are created
with their parents (as `mkdir -p`), so for them the parent cases are "an ancestor is a file" and
"an ancestor cannot be written".
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
from helpers import TINY_TRAIN, cli

from nmt.config import GenerateConfig, OptimConfig, PreprocessConfig, TrainConfig, TransformerConfig, VisualizeConfig
from nmt.fileio import output_problem


def tree(root: Path) -> set[str]:
    """Every path under `root` (files and directories), relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nothing can be created in: mode 0555, or for root (who ignores modes) a read-only mount."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("running as root, which writes into mode-0555 directories, and cannot mount a read-only one")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def commands(toy_raw_dir, toy_data_dir, model) -> dict[str, tuple[str, str, list[str]]]:
    """Each writing command: (output flag, "file" or "dir", argv without the output flag)."""
    src = str(toy_raw_dir / "test.en")
    return {
        "generate": ("--output", "file", ["generate", "--path", model, "--input", src]),
        "average": ("--output", "file", ["average-checkpoints", "--inputs", model]),
        "visualize": ("--out", "dir", ["visualize-attn", "--path", model, "--source", "the cat"]),
        "toy-data": ("--out", "dir", ["toy-data", "--pairs", "300"]),
        "preprocess": (
            "--destdir",
            "dir",
            ["preprocess", "-s", "en", "-t", "fr", "--trainpref", str(toy_raw_dir / "train"), "--vocab-size", "100"],
        ),
        "train": ("--save-dir", "dir", ["train", str(toy_data_dir), *TINY_TRAIN, "--max-update", "1"]),
        "export": ("--out", "dir", ["export", "--path", model]),
        "tensorboard": (
            "--tensorboard-logdir",
            "dir",
            ["train", str(toy_data_dir), *TINY_TRAIN, "--max-update", "1", "--save-dir", "{tmp}/ckpt"],
        ),
    }


CASES = ["is-a-directory-or-file", "missing-parent", "parent-is-a-file", "read-only"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "command", ["generate", "average", "visualize", "toy-data", "preprocess", "train", "tensorboard", "export"]
)
def test_unwritable_output_is_one_line_exit_2_and_leaves_nothing(
    command, case, toy_raw_dir, toy_data_dir, tiny_model, tmp_path, monkeypatch, capsys, request
):
    flag, kind, argv = commands(toy_raw_dir, toy_data_dir, tiny_model)[command]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "adir").mkdir()
    if case == "is-a-directory-or-file":
        target, reason = (tmp_path / "adir", "is a directory") if kind == "file" else (tmp_path / "afile", "not a dir")
    elif case == "missing-parent":
        if kind == "dir":  # directories are made with their parents; the ancestor that stops it is a file
            target, reason = tmp_path / "afile" / "sub" / "out", "is not a directory"
        else:
            target, reason = tmp_path / "nodir" / "out.txt", "does not exist"
    elif case == "parent-is-a-file":
        target, reason = tmp_path / "afile" / "out", "is not a directory"
    else:
        target, reason = request.getfixturevalue("readonly_dir") / "out", "cannot write in"
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    code, out, err = cli(monkeypatch, capsys, *argv, flag, str(target))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err[-2000:]
    assert f"{flag} {target}" in err and reason in err and "Traceback" not in err, err
    assert tree(tmp_path) == before
    assert (tmp_path / "afile").read_text() == "keep me\n"


def test_output_directories_are_made_with_their_parents(tmp_path, monkeypatch, capsys):
    out = tmp_path / "a" / "b" / "raw"
    code, _, err = cli(monkeypatch, capsys, "toy-data", "--pairs", "300", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir())[:2] == ["test.en", "test.fr"]


def test_output_problem_answers_none_for_writable_paths(tmp_path):
    assert output_problem(str(tmp_path / "new.txt"), "file") is None
    assert output_problem(str(tmp_path / "x" / "y"), "dir") is None
    assert output_problem(str(tmp_path), "dir") is None
    assert output_problem(os.devnull, "file") is None  # written in place, never replaced
    assert output_problem("", "file") == "is empty"
    assert list(tmp_path.iterdir()) == []  # the checks leave nothing behind


def float_flags(*classes: type) -> list[str]:
    """The flags of the float (and float-tuple) fields of these configs."""
    flags = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            typ = str(f.type)
            if "float" in typ and "int" not in typ.replace("float", ""):
                flags.append("--" + f.name.replace("_", "-"))
    return flags


def test_every_float_flag_is_listed():
    assert "--lr" in float_flags(OptimConfig) and "--adam-betas" in float_flags(OptimConfig)
    assert "--lenpen" in float_flags(GenerateConfig) and "--dropout" in float_flags(TransformerConfig)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_flag_of_every_command_refuses_non_finite_numbers(
    value, toy_raw_dir, toy_data_dir, tiny_model, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    runs = []
    for flag in float_flags(TrainConfig, OptimConfig, TransformerConfig):
        text = f"{value},0.98" if flag == "--adam-betas" else value
        runs.append(["train", str(toy_data_dir), *TINY_TRAIN, "--max-update", "1", flag, text])
    for flag in float_flags(GenerateConfig):
        runs.append(["generate", "--path", tiny_model, "--input", str(toy_raw_dir / "test.en"), flag, value])
    for flag in float_flags(PreprocessConfig):
        runs.append(["preprocess", "-s", "en", "-t", "fr", "--trainpref", str(toy_raw_dir / "train")])
        runs[-1] += ["--destdir", "bin", flag, value]
    for flag in float_flags(VisualizeConfig):
        runs.append(["visualize-attn", "--path", tiny_model, "--source", "the cat", flag, value])
    assert len(runs) > 20
    for argv in runs:
        code, out, err = cli(monkeypatch, capsys, *argv)
        flag = argv[-2]
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (argv, err[-2000:])
        assert flag in err and "Traceback" not in err, (argv, err)
    assert list(tmp_path.iterdir()) == []
