"""Streaming preprocessing: the output does not depend on --workers or --chunk-lines, and bad input
found in the last chunk is one clear error that leaves nothing behind."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from test_preprocess import run_cli, snapshot, write_pair

from nmt.config import PreprocessConfig
from nmt.data.binarize import Encoded, TokenWriter, binarize_split, read_encoded
from nmt.data.parallel import ordered_map
from nmt.data.preprocess import preprocess
from nmt.data.rawtext import read_chunks, split_lines
from nmt.data.tokenizer import WordTokenizer
from nmt.errors import UserError

QUIET = Console(quiet=True)
KINDS = {
    "joined sentencepiece": dict(target_lang="fr", vocab_size=300, joined_dictionary=True, testpref=["test"]),
    "word vocabularies": dict(target_lang="fr", vocab_size=60, tokenizer="none", max_len=12, max_len_ratio=1.3),
    "monolingual": dict(only_source=True, vocab_size=150),
}


def _run(raw: Path, dest: Path, kind: str, workers: int, chunk_lines: int) -> dict[str, str]:
    flags = dict(KINDS[kind])
    flags["testpref"] = [str(raw / p) for p in flags.get("testpref", [])]
    cfg = PreprocessConfig(
        source_lang="en",
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        destdir=str(dest),
        workers=workers,
        chunk_lines=chunk_lines,
        **flags,
    )
    preprocess(cfg, console=QUIET)
    return snapshot(dest)


@pytest.mark.parametrize("kind", KINDS)
def test_output_is_byte_identical_for_any_workers_and_chunk_size(kind: str, toy_raw_dir: Path, tmp_path: Path) -> None:
    reference = _run(toy_raw_dir, tmp_path / "w1-c10000", kind, workers=1, chunk_lines=10_000)
    assert any(name.startswith("train.") for name in reference)
    for workers, chunk in ((3, 7), (1, 7), (3, 10_000)):
        assert _run(toy_raw_dir, tmp_path / f"w{workers}-c{chunk}", kind, workers, chunk) == reference, (workers, chunk)


def test_read_chunks_keeps_both_sides_in_step_and_lines_whole(tmp_path: Path) -> None:
    write_pair(tmp_path / "t", b"a\r\n\n  b c \nd", b"1\n2\n3\n4\n")  # CRLF, a blank line, no final newline
    chunks = list(read_chunks([str(tmp_path / "t.en"), str(tmp_path / "t.fr")], chunk_lines=3))
    assert [(c.first, c.count) for c in chunks] == [(1, 3), (4, 1)]
    assert [split_lines(c) for c in chunks] == [[["a", "", "b c"], ["1", "2", "3"]], [["d"], ["4"]]]


@pytest.mark.parametrize("chunk_lines", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("workers", [2, 3])
def test_the_shares_of_read_chunks_are_its_chunks_the_others_skipped(tmp_path: Path, chunk_lines, workers, monkeypatch):
    monkeypatch.setattr("nmt.data.rawtext.SKIP_BLOCK", 4)  # lines across block ends
    src = b"".join(b"line %d %s\n" % (i, b"x" * (i % 7)) for i in range(23)) + b"last, no newline"
    write_pair(tmp_path / "t", src, b"".join(b"%d\n" % i for i in range(24)))
    paths = [str(tmp_path / "t.en"), str(tmp_path / "t.fr")]
    whole = list(read_chunks(paths, chunk_lines))
    for k in range(workers):
        share = list(read_chunks(paths, chunk_lines, share=(k, workers)))
        assert len(share) == len(whole)
        assert share == [c if i % workers == k else None for i, c in enumerate(whole)]


@pytest.mark.parametrize("share", [(0, 1), (0, 2), (1, 2)])
def test_a_side_ending_first_is_found_in_skipped_chunks_too(tmp_path: Path, share) -> None:
    write_pair(tmp_path / "t", b"a\nb\nc\nd\ne\n", b"1\n2\n3\n4\n")
    with pytest.raises(UserError, match=r"t.en: line 5 has no counterpart in .*t.fr, which has 4 lines"):
        list(read_chunks([str(tmp_path / "t.en"), str(tmp_path / "t.fr")], 2, share=share))


def test_a_bad_line_in_the_last_chunk_names_its_line(tmp_path: Path) -> None:
    good = [f"line {i}" for i in range(1, 20)]
    write_pair(tmp_path / "utf8", good, "".join(x + "\n" for x in good[:18]).encode() + b"bad \xff\n")
    chunks = list(read_chunks([str(tmp_path / "utf8.en"), str(tmp_path / "utf8.fr")], chunk_lines=7))
    assert [len(split_lines(c)[1]) for c in chunks[:2]] == [7, 7]
    with pytest.raises(UserError, match=r"utf8\.fr: line 19 is not valid UTF-8"):
        split_lines(chunks[2])
    write_pair(tmp_path / "count", good, good[:18])
    with pytest.raises(UserError, match=r"count\.en: line 19 has no counterpart in .*count\.fr, which has 18 lines"):
        list(read_chunks([str(tmp_path / "count.en"), str(tmp_path / "count.fr")], chunk_lines=7))


def test_an_error_in_a_worker_stops_the_stream(tmp_path: Path) -> None:
    """Checked where the chunk is decoded: in a worker process, the error still reaches the caller."""
    good = [f"w{i % 5}" for i in range(30)]
    write_pair(tmp_path / "t", good, "".join(x + "\n" for x in good[:29]).encode() + b"\xc3\n")
    tok = WordTokenizer(["<pad>", "<unk>", "<s>", "</s>", "w1", "w2"])
    with pytest.raises(UserError, match=r"t\.fr: line 30 is not valid UTF-8"):
        binarize_split(
            str(tmp_path / "t.en"),
            str(tmp_path / "t.fr"),
            lambda lang: str(tmp_path / f"out.{lang}"),
            ("en", "fr"),
            (tok, tok),
            "uint16",
            clean=True,
            max_len=10,
            max_len_ratio=9.0,
            workers=2,
            chunk_lines=7,
        )


def _square(context: int, item: int) -> int:
    return context * item * item


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_map_keeps_input_order(workers: int) -> None:
    assert list(ordered_map(_square, 2, functools.partial(_numbers, 50), workers)) == [2 * i * i for i in range(50)]


def _fail_at_7(context: int, item: int) -> int:
    if item == 7:
        raise UserError("item 7 is bad")
    return item


def _die_at_5(context: int, item: int) -> int:
    if item == 5:
        os._exit(3)
    return item


def _numbers(n: int, share: tuple[int, int] = (0, 1)):
    return iter(range(n))


def _items_then_error(n: int, share: tuple[int, int] = (0, 1)):
    yield from range(n)
    raise UserError(f"the source ends badly after {n} items")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ordered_map_raises_errors_where_they_occur_in_input_order(workers: int) -> None:
    got = []
    with pytest.raises(UserError, match="item 7 is bad"):
        for r in ordered_map(_fail_at_7, None, functools.partial(_numbers, 20), workers):
            got.append(r)
    assert got == list(range(7))
    got = []
    with pytest.raises(UserError, match="after 5 items"):
        for r in ordered_map(_square, 1, functools.partial(_items_then_error, 5), workers):
            got.append(r)
    assert got == [0, 1, 4, 9, 16]


def test_ordered_map_reports_a_worker_that_died_instead_of_waiting_for_it() -> None:
    with pytest.raises(RuntimeError, match="worker process died .exit code 3"):
        list(ordered_map(_die_at_5, None, functools.partial(_numbers, 20), 2))


def test_ordered_map_stops_its_workers_when_the_caller_stops_early() -> None:
    import multiprocessing as mp

    results = ordered_map(_square, 1, functools.partial(_numbers, 10_000), 2)
    assert next(results) == 0
    assert mp.active_children()
    results.close()
    assert not mp.active_children()


def test_read_encoded_gives_back_what_was_written_block_by_block(tmp_path: Path) -> None:
    rows = [[5, 6], [], [7], [8, 9, 10], [11]]
    writer = TokenWriter(str(tmp_path / "s"), "uint16")
    writer.add(Encoded.of(rows[:2]))
    writer.add(Encoded.of(rows[2:]))
    writer.close()
    blocks = list(read_encoded(str(tmp_path / "s"), "uint16", 2))
    assert [len(b.lens) for b in blocks] == [2, 2, 1]
    back = [ids.tolist() for b in blocks for ids in np.split(b.flat, np.cumsum(b.lens)[:-1])]
    assert back == rows


# ----------------------------------------------------------------------------- the command line
CHUNK = ["--chunk-lines", "7", "--workers", "2"]
BASE = ["preprocess", "-s", "en", "-t", "fr", "--vocab-size", "30", "--joined-dictionary", "--tokenizer", "none"]


@pytest.mark.parametrize("existing", [False, True], ids=["new-destdir", "existing-destdir"])
@pytest.mark.parametrize("case", ["utf8", "line_counts"])
def test_bad_last_chunk_is_exit_2_and_nothing_written(
    case: str, existing: bool, tmp_path: Path, monkeypatch, capsys
) -> None:
    good = [f"the {i} cat" for i in range(20)]  # 20 lines: chunks of 7, 7 and 6
    if case == "utf8":
        write_pair(tmp_path / "raw/train", good, "".join(x + "\n" for x in good[:18]).encode() + b"\xfe x\nlast\n")
        expected = f"error: {tmp_path / 'raw/train.fr'}: line 19 is not valid UTF-8\n"
    else:
        write_pair(tmp_path / "raw/train", good, good[:19])
        expected = "line 20 of " + str(tmp_path / "raw/train.en") + " has no counterpart"
    dest = tmp_path / "data" if existing else tmp_path / "out" / "data"
    args = BASE + CHUNK + ["--trainpref", str(tmp_path / "raw/train"), "--destdir", str(dest)]
    if existing:
        dest.mkdir()
        (dest / "keep.txt").write_text("precious")
        args.append("--force")
    before = snapshot(tmp_path)
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err
    assert snapshot(tmp_path) == before
