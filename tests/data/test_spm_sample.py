"""--spm-train-sentences: SentencePiece learns from a seeded sample of a large corpus, all of a small one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from sentencepiece import sentencepiece_model_pb2

from nmt.config import PreprocessConfig
from nmt.data import spm_sample
from nmt.data.preprocess import preprocess
from nmt.data.spm_sample import chosen_lines, training_text, write_sample


def _chosen(n: int, k: int, seed: int) -> np.ndarray:
    """The chosen line numbers (from 0) of the whole corpus."""
    blocks = list(chosen_lines(n, k, seed))
    return np.concatenate([start + b for start, b in zip(range(0, n, spm_sample.SELECT_BLOCK), blocks)])


def test_chosen_lines_are_k_distinct_lines_in_order_and_repeat_with_the_seed(monkeypatch) -> None:
    monkeypatch.setattr(spm_sample, "SELECT_BLOCK", 7)
    a = _chosen(100, 30, seed=5)
    assert len(a) == 30 and np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] < 100
    assert np.array_equal(a, _chosen(100, 30, seed=5))
    assert not np.array_equal(a, _chosen(100, 30, seed=6))
    assert np.array_equal(_chosen(20, 50, seed=5), np.arange(20))  # k >= n: every line


def test_every_line_is_equally_likely_across_blocks(monkeypatch) -> None:
    monkeypatch.setattr(spm_sample, "SELECT_BLOCK", 3)
    counts = np.zeros(20)
    for seed in range(3000):
        counts[_chosen(20, 5, seed)] += 1
    # each line is chosen with probability 5/20: 750 of 3000 (sd ~24)
    assert np.all(np.abs(counts - 750) < 100), counts


def test_write_sample_keeps_the_pairs_aligned(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(spm_sample, "SELECT_BLOCK", 4)
    (tmp_path / "a").write_bytes(b"".join(b"a%d\n" % i for i in range(9)) + b"a9")  # no final newline
    (tmp_path / "b").write_bytes(b"".join(b"b%d\r\n" % i for i in range(10)))
    write_sample([str(tmp_path / "a"), str(tmp_path / "b")], [str(tmp_path / "sa"), str(tmp_path / "sb")], 10, 6, 3)
    picked = _chosen(10, 6, 3)
    assert (tmp_path / "sa").read_bytes() == b"".join(b"a%d\n" % i for i in picked)
    assert (tmp_path / "sb").read_bytes() == b"".join(b"b%d\r\n" % i for i in picked)


def test_a_small_corpus_is_given_as_it_is(tmp_path: Path) -> None:
    paths = {"en": "x.en", "fr": "x.fr"}
    assert training_text(paths, 100, 100, 1, str(tmp_path)) == paths
    assert list(tmp_path.iterdir()) == []


def _spm(raw: Path, dest: Path, **flags) -> bytes:
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(raw / "train"),
        destdir=str(dest),
        vocab_size=200,
        joined_dictionary=True,
        **flags,
    )
    preprocess(cfg, console=Console(quiet=True))
    return (dest / "spm.model").read_bytes()


def _inputs(model: bytes) -> list[str]:
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    return list(proto.trainer_spec.input)


@pytest.fixture(scope="module")
def full_model(toy_raw_dir: Path, tmp_path_factory) -> bytes:
    return _spm(toy_raw_dir, tmp_path_factory.mktemp("spm") / "d")


def test_a_corpus_of_at_most_n_lines_trains_on_every_line(toy_raw_dir: Path, full_model: bytes, tmp_path) -> None:
    assert _spm(toy_raw_dir, tmp_path / "d", spm_train_sentences=1600) == full_model  # train has 1600 lines
    assert _inputs(full_model) == [str(toy_raw_dir / "train.en"), str(toy_raw_dir / "train.fr")]


def test_a_larger_corpus_trains_on_a_seeded_sample(toy_raw_dir: Path, full_model: bytes, tmp_path) -> None:
    a = _spm(toy_raw_dir, tmp_path / "a", spm_train_sentences=400)
    assert _spm(toy_raw_dir, tmp_path / "b", spm_train_sentences=400) == a  # reproducible
    assert a != full_model
    assert _spm(toy_raw_dir, tmp_path / "c", spm_train_sentences=400, seed=2) != a
    # The model records the corpus files, and no sample is left in the data directory.
    assert _inputs(a) == [str(toy_raw_dir / "train.en"), str(toy_raw_dir / "train.fr")]
    assert not [p for p in (tmp_path / "a").iterdir() if "spm-" in p.name or p.name.startswith(".")]
