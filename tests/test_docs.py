"""The documentation stays true to the code: generated pages are current, every flag is documented,
every link and image exists."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REGENERATE = "run `python scripts/gen_cli_docs.py --write` and commit the result"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_cli_reference_is_current():
    assert _read("docs/cli.md") == _gen().cli_markdown(), f"docs/cli.md is out of date: {REGENERATE}"


def test_architecture_table_is_current():
    page = _read("docs/architectures.md")
    assert _gen().with_arch_table(page) == page, f"the table in docs/architectures.md is out of date: {REGENERATE}"


def test_cli_reference_has_every_command_and_train_flag():
    from nmt import config as C
    from nmt.cli import app

    text = _read("docs/cli.md")
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        assert f"## nmt {name}\n" in text
    for cls in (C.TrainConfig, C.OptimConfig, C.LanguageModelConfig, *C.MODEL_CONFIGS.values()):
        for f in dataclasses.fields(cls):
            if f.name not in ("data", "optim", "lm"):
                assert _flag(f.name) in text, f"{_flag(f.name)} missing from docs/cli.md"


@pytest.mark.parametrize(
    "page, classes",
    [
        ("docs/architectures.md", ("TransformerConfig", "LSTMConfig", "TransformerLMConfig", "TransformerMLMConfig")),
        ("docs/training.md", ("TrainConfig", "OptimConfig", "LanguageModelConfig")),
    ],
)
def test_every_config_field_is_documented(page, classes):
    from nmt import config as C

    text = _read(page)
    missing = [
        _flag(f.name)
        for cls in classes
        for f in dataclasses.fields(getattr(C, cls))
        if f.name not in ("data", "optim", "lm") and not re.search(re.escape(_flag(f.name)) + r"(?![\w-])", text)
    ]
    assert not missing, f"{page} does not document {', '.join(missing)}"


@pytest.mark.parametrize(
    "page, commands",
    [
        ("docs/generation.md", ("generate", "interactive", "score", "average-checkpoints", "eval-lm")),
        ("docs/visualization.md", ("visualize-attn",)),
        ("docs/fill-mask.md", ("fill-mask",)),
        ("docs/deploy.md", ("export",)),
    ],
)
def test_every_command_option_is_documented(page, commands):
    import typer.main

    from nmt.cli import app

    group = typer.main.get_command(app)
    text = _read(page)
    missing = [
        f"{cmd} {opt}"
        for cmd in commands
        for param in group.commands[cmd].params
        for opt in param.opts
        if opt.startswith("--") and opt != "--help" and not re.search(re.escape(opt) + r"(?![\w-])", text)
    ]
    assert not missing, f"{page} does not document {', '.join(missing)}"


def test_every_arch_is_described():
    from nmt.registry import ARCHS

    text = _read("docs/architectures.md")
    for name in ARCHS:
        assert text.count(f"`{name}`") >= 2, f"{name} needs a row in the table and a line saying what it follows"


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


# Measurement pages are written from benchmark and recipe runs, not by hand with the rest.
MEASURED = {"results.md", "benchmarks.md", "reliability.md"}


def test_links_and_images_exist():
    for page in _pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if path.name in MEASURED and path.parent == DOCS:
                continue
            assert path.exists(), f"{page.name} links to missing {target}"
            if path.suffix == ".png":
                assert path.stat().st_size < 200_000, f"{target} is over 200 KB"


def test_readme_starts_with_the_two_commands():
    head = _read("README.md").split("\n")[:8]
    assert any(line.strip().startswith("make demo") for line in head)
    assert any(line.strip().startswith("make test") for line in head)
