from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nmt import cli
from nmt.data.toy import DET_SG, NOUNS, POST_ADJ, PRE_ADJ, generate_pairs, noun_phrase, split_sizes, write_toy_corpus
from nmt.errors import UserError

FILES = [f"{s}.{lang}" for s in ("train", "valid", "test") for lang in ("en", "fr")]


def _read(d: Path) -> dict[str, bytes]:
    return {name: (d / name).read_bytes() for name in FILES}


def test_same_seed_same_files_different_seed_different(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        sizes = write_toy_corpus(str(tmp_path / name), pairs=1000, seed=seed)
        assert sizes == {"train": 800, "valid": 100, "test": 100}
    a, b, c = _read(tmp_path / "a"), _read(tmp_path / "b"), _read(tmp_path / "c")
    assert a == b
    assert all(a[name] != c[name] for name in FILES)


def test_splits_are_disjoint_and_aligned(toy_raw_dir: Path) -> None:
    lines = {name: (toy_raw_dir / name).read_text(encoding="utf-8").splitlines() for name in FILES}
    assert [len(lines[n]) for n in FILES] == [1600, 1600, 200, 200, 200, 200]
    en = {s: set(lines[f"{s}.en"]) for s in ("train", "valid", "test")}
    assert sum(len(v) for v in en.values()) == 2000  # no sentence twice, within or across splits
    fr = {s: set(lines[f"{s}.fr"]) for s in ("train", "valid", "test")}
    assert not (fr["train"] & fr["valid"]) and not (fr["train"] & fr["test"]) and not (fr["valid"] & fr["test"])


def test_sentences_are_learnable() -> None:
    pairs = generate_pairs(3000, seed=7)
    words = {"en": set(), "fr": set()}
    for en, fr in pairs:
        assert 3 <= len(en.split()) <= 15 and len(fr.split()) <= 15
        assert en[0].isupper() and fr[0].isupper() and en.endswith(".") and fr.endswith(".")
        words["en"].update(en.lower().rstrip(".").split())
        words["fr"].update(fr.lower().rstrip(".").split())
    assert 100 <= len(words["en"]) <= 200 and 100 <= len(words["fr"]) <= 250
    # one translation per English sentence, whatever the seed
    other = dict(generate_pairs(20000, seed=8))
    common = [(en, fr) for en, fr in pairs if en in other]
    assert len(common) >= 3 and all(other[en] == fr for en, fr in common)


def test_noun_phrase_agreement_and_order() -> None:
    """Colour adjectives follow the noun in French, size adjectives precede it; all agree with it."""
    nouns = {n[0]: n for n in NOUNS} | {n[1]: n for n in NOUNS}
    rng = random.Random(0)
    for _ in range(500):
        en, fr, plural = noun_phrase(rng)
        en_w, fr_w = en.split(), fr.split()
        _, _, fr_sg, fr_pl, gender = nouns[en_w[-1]]
        form = (gender == "f") + 2 * plural
        noun = fr_pl if plural else fr_sg
        post = [w for w in en_w if w in POST_ADJ]
        pre = [w for w in en_w if w in PRE_ADJ]
        if post:
            assert fr_w[-2:] == [noun, POST_ADJ[post[0]][form]]
        else:
            assert fr_w[-1] == noun
        if pre:
            assert fr_w[fr_w.index(noun) - 1] == PRE_ADJ[pre[0]][form]
        if not plural:
            assert fr_w[0] == DET_SG["a" if en_w[0] == "an" else en_w[0]][gender == "f"]


def test_split_sizes() -> None:
    assert split_sizes(50000) == {"train": 49000, "valid": 500, "test": 500}
    assert split_sizes(20000) == {"train": 19400, "valid": 300, "test": 300}
    assert split_sizes(100, valid=5, test=0) == {"train": 95, "valid": 5, "test": 0}
    with pytest.raises(UserError):
        split_sizes(10, valid=5, test=5)
    with pytest.raises(UserError):
        split_sizes(2)


def test_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["toy-data", "--out", str(tmp_path), "--pairs", "300", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "train.fr").read_text(encoding="utf-8").splitlines()) == 240
