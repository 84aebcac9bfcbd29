"""Help that teaches: every option of every command has a description and shows its default."""

from __future__ import annotations

import typer.main
from helpers import cli

from nmt.cli import app
from nmt.flags import train_help
from nmt.registry import ARCHS


def test_every_option_of_every_command_has_help_and_a_default():
    group = typer.main.get_command(app)
    assert {"preprocess", "train", "generate", "score", "visualize-attn", "average-checkpoints"} <= set(group.commands)
    for name, command in group.commands.items():
        for p in command.params:
            where = f"nmt {name} {p.name}"
            assert p.help, where
            if p.param_type_name == "option" and p.name != "help":
                assert p.required or p.show_default not in (False, None), where


def test_switches_and_unset_options_say_their_default(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "250")  # one row per option
    code, out, _ = cli(monkeypatch, capsys, "generate", "--help")
    assert code == 0
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│") and "--" in line}
    assert "[default: (off)]" in rows["--quiet"] and "summary (on stderr)" in rows["--quiet"]
    assert "[default: (none)]" in rows["--output"] and "[default: 5]" in rows["--beam"]


def test_train_help_lists_every_flag_with_its_default_for_every_arch():
    for arch in ARCHS:
        for line in train_help(arch).splitlines():
            if line.startswith("  --"):
                assert line.rstrip().endswith("]") and ("[default:" in line or "[required]" in line), (arch, line)
