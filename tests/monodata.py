"""A monolingual data directory for the tests of the language-model tasks (imported by them)."""

from pathlib import Path

from rich.console import Console

from nmt.config import PreprocessConfig
from nmt.data.preprocess import preprocess

MONO_VOCAB = 150


def make_mono_dir(raw: Path, dest: Path, **flags) -> Path:
    """`nmt preprocess --only-source -s en` of the toy corpus in `raw` (train, valid) into `dest`."""
    cfg = PreprocessConfig(
        source_lang="en",
        only_source=True,
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        destdir=str(dest),
        vocab_size=flags.pop("vocab_size", MONO_VOCAB),
        **flags,
    )
    preprocess(cfg, console=Console(quiet=True))
    return dest
