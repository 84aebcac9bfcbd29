from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from nmt import cli
from nmt.config import PreprocessConfig
from nmt.data.binarize import clean_mask
from nmt.data.dataset import collate, load_split, read_meta
from nmt.data.preprocess import preprocess, scan_text
from nmt.data.tokenizer import EOS, UNK, load_tokenizers, read_blobs

QUIET = Console(quiet=True)


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run the real entry point in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["nmt", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capsys.readouterr().err


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under root (hidden ones too) with a checksum of each file."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def write_pair(prefix: Path, src: list[str] | bytes, tgt: list[str] | bytes, langs=("en", "fr")) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang, lines in zip(langs, (src, tgt)):
        data = lines if isinstance(lines, bytes) else "".join(x + "\n" for x in lines).encode("utf-8")
        Path(f"{prefix}.{lang}").write_bytes(data)


# ----------------------------------------------------------------------------- binarized output
def test_binarized_split_equals_encoding(toy_data_dir: Path, toy_raw_dir: Path) -> None:
    meta = read_meta(str(toy_data_dir))
    tok, _ = load_tokenizers(meta, read_blobs(str(toy_data_dir), meta))
    for split in ("train", "valid", "test"):
        pairs = load_split(str(toy_data_dir), split, meta)
        src = (toy_raw_dir / f"{split}.en").read_text(encoding="utf-8").splitlines()
        tgt = (toy_raw_dir / f"{split}.fr").read_text(encoding="utf-8").splitlines()
        assert len(pairs) == len(src) == meta["splits"][split]["kept"]
        for i in range(0, len(src), 7):
            assert pairs.src[i].tolist() == tok.encode(src[i])
            assert pairs.tgt[i].tolist() == tok.encode(tgt[i])
        assert meta["splits"][split]["tokens"] == {"en": int(pairs.src.sizes.sum()), "fr": int(pairs.tgt.sizes.sum())}


def test_meta_is_self_describing(toy_data_dir: Path) -> None:
    meta = json.loads((toy_data_dir / "meta.json").read_text())
    assert meta["format_version"] == 1
    assert (meta["source_lang"], meta["target_lang"], meta["joined_dictionary"]) == ("en", "fr", True)
    assert meta["vocab_size"] == {"en": 300, "fr": 300}
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert meta["dtype"] == "uint16"
    assert meta["tokenizer"]["type"] == "sentencepiece"
    assert meta["tokenizer"]["files"] == {"en": "spm.model", "fr": "spm.model"}
    assert (toy_data_dir / "spm.vocab").read_text(encoding="utf-8").count("\n") == 300
    assert {s: v["lines"] for s, v in meta["splits"].items()} == {"train": 1600, "valid": 200, "test": 200}
    assert np.fromfile(toy_data_dir / "valid.en.idx", dtype=np.int64).shape == (201,)


def test_cleaning_counts_with_word_tokenizer(tmp_path: Path) -> None:
    train = [
        ("a b c", "x y z"),  # kept
        ("", "x"),  # empty
        ("a", "   "),  # empty (blank)
        ("a a a a a a", "x"),  # too long (6 > --max-len 5)
        ("a b", "x y z w v"),  # kept: ratio 2.5
        ("a", "x y z w"),  # ratio 4 > 3
        ("b c", "y"),  # kept: ratio 2
        ("", ""),  # empty
    ]
    write_pair(tmp_path / "raw/train", [s for s, _ in train], [t for _, t in train])
    write_pair(tmp_path / "raw/valid", ["a a a a a a a", "a q"], ["x", "x"])
    write_pair(tmp_path / "raw/test", ["", ""], ["", ""])  # an evaluation split of empty lines is kept
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(tmp_path / "raw/train"),
        validpref=str(tmp_path / "raw/valid"),
        testpref=[str(tmp_path / "raw/test")],
        destdir=str(tmp_path / "d"),
        vocab_size=6,
        tokenizer="none",
        max_len=5,
        max_len_ratio=3,
    )
    meta = preprocess(cfg, console=QUIET)
    tr = meta["splits"]["train"]
    assert (tr["lines"], tr["kept"]) == (8, 3)
    assert tr["dropped"] == {"empty": 3, "too_long": 1, "ratio": 1}
    # vocab 6 = 4 specials + the 2 most frequent words: en a(10) b(3), c -> UNK; fr x(5) y(4)
    assert tr["tokens"] == {"en": 7, "fr": 9}
    assert tr["unknown"] == {"en": 2, "fr": 4}
    va = meta["splits"]["valid"]
    assert (va["lines"], va["kept"], va["flagged"]["too_long"], va["unknown"]["en"]) == (2, 2, 1, 1)
    assert meta["tokenizer"] == {"type": "word", "files": {"en": "dict.en.txt", "fr": "dict.fr.txt"}}
    assert (tmp_path / "d/dict.en.txt").read_text().split("\n")[4:7] == ["a\t10", "b\t3", ""]

    pairs = load_split(str(tmp_path / "d"), "train")
    assert [pairs.src[i].tolist() for i in range(3)] == [[4, 5, UNK], [4, 5], [5, UNK]]
    src_tok, tgt_tok = load_tokenizers(meta, read_blobs(str(tmp_path / "d"), meta))
    assert src_tok.decode(pairs.src[1]) == "a b"
    assert tgt_tok.decode(pairs.tgt[0]) == "x y <unk>"
    empty = load_split(str(tmp_path / "d"), "test")
    assert len(empty) == 2 and meta["splits"]["test"]["flagged"]["empty"] == 2
    assert collate(empty, [0, 1]).src.tolist() == [[EOS], [EOS]]


def test_clean_mask_precedence() -> None:
    keep, reasons = clean_mask(np.array([0, 9, 1, 2]), np.array([9, 0, 9, 2]), max_len=8, max_len_ratio=2)
    assert keep.tolist() == [False, False, False, True]
    assert reasons == {"empty": 2, "too_long": 1, "ratio": 0}


def test_several_test_prefixes_workers_and_force(toy_raw_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(toy_raw_dir / "train"),
        validpref=str(toy_raw_dir / "valid"),
        testpref=[str(toy_raw_dir / "test"), str(toy_raw_dir / "valid")],
        destdir=str(dest),
        vocab_size=300,
        joined_dictionary=True,
        workers=2,
        force=True,
    )
    meta = preprocess(cfg, console=QUIET)
    assert list(meta["splits"]) == ["train", "valid", "test", "test1"]
    assert not (dest / "old.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary directory left behind
    for name in ("train.en.bin", "train.fr.idx", "test.fr.bin", "spm.vocab"):
        assert (dest / name).read_bytes() == (toy_data_dir / name).read_bytes()  # workers=2 == workers=1
    assert (dest / "test1.en.bin").read_bytes() == (toy_data_dir / "valid.en.bin").read_bytes()


def test_scan_text_line_endings(tmp_path: Path) -> None:
    p = tmp_path / "f"
    for data, expected in [(b"", (0, False)), (b"\n\n", (2, False)), (b"a\nb", (2, True)), (b"a\r\nb\r\n", (2, True))]:
        p.write_bytes(data)
        assert scan_text(str(p)) == expected


# ----------------------------------------------------------------------------- bad input
BASE = ["preprocess", "-s", "en", "-t", "fr", "--vocab-size", "40", "--joined-dictionary"]
GOOD = ["The cat sees the dog.", "A red car.", "My small house is green.", "We like trains."]


def _case(name: str, raw: Path) -> tuple[list[str], str]:
    """Write the inputs of one bad case; return (extra CLI args, expected error text)."""
    t = str(raw / "train")
    if name == "missing":
        write_pair(raw / "train", GOOD, GOOD)
        return ["--trainpref", t, "--validpref", str(raw / "nope")], f"input file {raw / 'nope.en'} does not exist"
    if name == "line_counts":
        write_pair(raw / "train", GOOD, GOOD[:3])
        return ["--trainpref", t], f"{t}.en has 4 lines but {t}.fr has 3"
    if name == "utf8":
        write_pair(raw / "train", GOOD, b"fine\nstill fine\nbad \xff byte\nok\n")
        return ["--trainpref", t], f"{t}.fr: line 3 is not valid UTF-8"
    if name == "empty":
        write_pair(raw / "train", b"", b"")
        return ["--trainpref", t], "the training set is empty"
    if name == "blank":
        write_pair(raw / "train", GOOD, ["", " ", "", "\t"])
        return ["--trainpref", t], f"every line of {t}.fr is blank"
    if name == "cleaned_empty":
        write_pair(raw / "train", ["a", "b"], ["", "c d e f g h i j k l m n o p q r s t u v w x y z"])
        return ["--trainpref", t, "--tokenizer", "none"], "the training set is empty after cleaning"
    if name == "vocab":
        write_pair(raw / "train", GOOD, GOOD)
        return ["--trainpref", t, "--vocab-size", "5000"], "--vocab-size 5000 is too large"

    if name == "samples_words":
        write_pair(raw / "train", GOOD, GOOD)
        return ["--trainpref", t, "--tokenizer", "none", "--subword-samples", "2"], "--subword-samples needs"
    if name == "samples_alpha":
        write_pair(raw / "train", GOOD, GOOD)
        return ["--trainpref", t, "--subword-samples", "2", "--subword-alpha", "0"], "--subword-alpha must be in (0, 1]"
    raise AssertionError(name)


CASES = ["missing", "line_counts", "utf8", "empty", "blank", "cleaned_empty", "vocab", "samples_words", "samples_alpha"]


@pytest.mark.parametrize("existing", [False, True], ids=["new-destdir", "existing-destdir"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_exit_2_destdir_untouched(case: str, existing: bool, tmp_path: Path, monkeypatch, capsys) -> None:
    args, expected = _case(case, tmp_path / "raw")
    dest = tmp_path / "out" / "sub" / "data" if not existing else tmp_path / "data"
    if existing:
        dest.mkdir()
        (dest / "keep.txt").write_text("precious")
        args += ["--force"]
    before = snapshot(tmp_path)
    code, err = run_cli(BASE + args + ["--destdir", str(dest)], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err
    assert snapshot(tmp_path) == before


def test_existing_destdir_needs_force(tmp_path: Path, monkeypatch, capsys) -> None:
    write_pair(tmp_path / "raw/train", GOOD, GOOD)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/x").write_text("x")
    before = snapshot(tmp_path)
    args = BASE + ["--trainpref", str(tmp_path / "raw/train"), "--destdir", str(tmp_path / "data")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert err == f"error: --destdir {tmp_path / 'data'} exists and is not empty; use --force to replace it\n"
    assert snapshot(tmp_path) == before


def test_success_through_cli(tmp_path: Path, monkeypatch, capsys) -> None:
    write_pair(tmp_path / "raw/train", GOOD, GOOD)
    args = BASE + ["--trainpref", str(tmp_path / "raw/train"), "--destdir", str(tmp_path / "data")]
    args += ["--tokenizer", "none"]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert "train" in err and "dropped" in err  # the report table goes to stderr
    assert read_meta(str(tmp_path / "data"))["splits"]["train"]["kept"] == 4


def test_subprocess_exit_code(tmp_path: Path) -> None:
    args = BASE + ["--trainpref", str(tmp_path / "none"), "--destdir", str(tmp_path / "d")]
    r = subprocess.run([sys.executable, "-m", "nmt", *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == f"error: input file {tmp_path / 'none.en'} does not exist\n"
    assert not (tmp_path / "d").exists()


def test_help_of_every_command() -> None:
    runner = CliRunner()
    names = [c.name or c.callback.__name__.replace("_", "-") for c in cli.app.registered_commands]
    assert {"preprocess", "toy-data"} <= set(names)
    for name in names:
        result = runner.invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.output


# ----------------------------------------------------------------------------- subword sampling
def _sampled(raw: Path, dest: Path, alpha: float = 0.3) -> dict:
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(raw / "train"),
        destdir=str(dest),
        validpref=str(raw / "valid"),
        vocab_size=300,
        joined_dictionary=True,
        subword_samples=2,
        subword_alpha=alpha,
    )
    return preprocess(cfg, console=QUIET)


def test_subword_samples_segment_the_same_sentences_anew(toy_raw_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    meta = _sampled(toy_raw_dir, tmp_path / "a")
    assert meta["splits"]["train"]["sampled_copies"] == {"count": 2, "alpha": 0.3}
    src_tok, tgt_tok = load_tokenizers(meta, read_blobs(str(tmp_path / "a"), meta))
    train = load_split(str(tmp_path / "a"), "train", meta)
    assert (
        snapshot(tmp_path / "a")["train.en.bin"] == snapshot(toy_data_dir)["train.en.bin"]
    )  # the split itself is unchanged
    copies = [load_split(str(tmp_path / "a"), f"train.sample{k}", meta) for k in (1, 2)]
    for copy in copies:
        assert len(copy) == len(train) == meta["splits"]["train"]["kept"]
        for side, tok in (("src", src_tok), ("tgt", tgt_tok)):
            a, b = getattr(train, side), getattr(copy, side)
            assert all(tok.decode(a[i].tolist()) == tok.decode(b[i].tolist()) for i in range(len(a)))  # same text
            changed = sum(not np.array_equal(a[i], b[i]) for i in range(len(a)))
            assert changed > len(a) // 4  # other pieces for many of them
        assert meta["splits"]["train.sample1"]["tokens"]["en"] > meta["splits"]["train"]["tokens"]["en"]
    assert not np.array_equal(np.asarray(copies[0].src.tokens), np.asarray(copies[1].src.tokens))
    # Seeded: the same command writes the same copies (the SentencePiece model records its path).
    _sampled(toy_raw_dir, tmp_path / "b")
    data = [{k: v for k, v in snapshot(tmp_path / d).items() if k.endswith((".bin", ".idx"))} for d in "ab"]
    assert data[0] == data[1] and "train.sample2.fr.idx" in data[0]


def test_milder_sampling_changes_fewer_segmentations(toy_raw_dir: Path, tmp_path: Path) -> None:
    changed = {}
    for alpha in (0.1, 1.0):
        meta = _sampled(toy_raw_dir, tmp_path / str(alpha), alpha)
        train, copy = (load_split(str(tmp_path / str(alpha)), s, meta) for s in ("train", "train.sample1"))
        changed[alpha] = sum(not np.array_equal(train.src[i], copy.src[i]) for i in range(len(train)))
    assert changed[1.0] < changed[0.1]
