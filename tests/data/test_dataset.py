from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.data.dataset import (
    BatchDataset,
    PairDataset,
    TokenArray,
    batch_by_tokens,
    collate,
    epoch_order,
    load_split,
    read_meta,
    shard,
)
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError


# ----------------------------------------------------------------------------- meta and loading
def test_read_meta_errors(toy_data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_meta(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="no meta.json"):
        read_meta(str(tmp_path))
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_meta(str(tmp_path))
    meta = json.loads((toy_data_dir / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "splits"}))
    with pytest.raises(UserError, match="lacks splits"):
        read_meta(str(tmp_path))
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(UserError, match="newer than this nmt reads"):
        read_meta(str(tmp_path))
    assert read_meta(str(toy_data_dir)) == meta


def test_load_split(toy_data_dir: Path, tmp_path: Path) -> None:
    pairs = load_split(str(toy_data_dir), "valid")
    assert len(pairs) == len(pairs.src) == len(pairs.tgt) == 200
    assert isinstance(pairs.src.tokens, np.memmap) and pairs.src.tokens.dtype == np.uint16
    assert pairs.src.sizes.dtype == np.int64 and int(pairs.src.sizes[0]) == len(pairs.src[0])
    with pytest.raises(UserError, match="no split 'test7'; available: train, valid, test"):
        load_split(str(toy_data_dir), "test7")
    broken = tmp_path / "d"
    shutil.copytree(toy_data_dir, broken)
    (broken / "valid.en.idx").unlink()
    with pytest.raises(UserError, match="valid.en.idx is missing"):
        load_split(str(broken), "valid")


def test_token_array_pickles_paths_not_data(toy_data_dir: Path) -> None:
    arr = load_split(str(toy_data_dir), "train").src
    blob = pickle.dumps(arr)
    assert len(blob) < 1000 < arr.tokens.nbytes
    again = pickle.loads(blob)
    assert isinstance(again.tokens, np.memmap)
    assert again[5].tolist() == arr[5].tolist() and np.array_equal(again.sizes, arr.sizes)
    mem = TokenArray.from_sequences([[4, 5], [], [6]])
    assert pickle.loads(pickle.dumps(mem))[2].tolist() == [6]


# ----------------------------------------------------------------------------- batching
def _check_batches(src, tgt, max_tokens, batch_size, batches) -> None:
    flat = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    assert sorted(flat.tolist()) == list(range(len(src)))  # every index exactly once
    for b in batches:
        assert len(b) >= 1
        assert len(b) * (src[b].max() + 1) <= max_tokens
        if tgt is not None:
            assert len(b) * (tgt[b].max() + 1) <= max_tokens
        if batch_size:
            assert len(b) <= batch_size


@settings(max_examples=60, deadline=None, database=None)
@given(
    sizes=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=0, max_size=200),
    max_tokens=st.integers(41, 300),
    batch_size=st.one_of(st.none(), st.integers(1, 16)),
)
def test_batch_by_tokens_budget_and_coverage(sizes, max_tokens, batch_size) -> None:
    src = np.array([s for s, _ in sizes], dtype=np.int64)
    tgt = np.array([t for _, t in sizes], dtype=np.int64)
    batches = batch_by_tokens(src, tgt, max_tokens, batch_size)
    _check_batches(src, tgt, max_tokens, batch_size, batches)
    again = batch_by_tokens(src, tgt, max_tokens, batch_size)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)) and len(again) == len(batches)
    _check_batches(src, None, max_tokens, None, batch_by_tokens(src, None, max_tokens))


def test_batch_by_tokens_exact_and_too_long() -> None:
    src = np.array([3, 1, 3, 7, 1])
    tgt = np.array([2, 2, 5, 1, 0])
    # sorted by (tgt, src, index): 4 (0,1), 3 (1,7), 1 (2,1), 0 (2,3), 2 (5,3); +1 for EOS/BOS on both sides
    assert [b.tolist() for b in batch_by_tokens(src, tgt, max_tokens=12)] == [[4], [3], [1, 0], [2]]
    assert [b.tolist() for b in batch_by_tokens(src, tgt, max_tokens=16)] == [[4, 3], [1, 0], [2]]
    assert [b.tolist() for b in batch_by_tokens(src, tgt, max_tokens=16, batch_size=1)] == [[4], [3], [1], [0], [2]]
    with pytest.raises(UserError, match=r"sentence 3 needs 8 source / 2 target tokens .* --max-tokens 7"):
        batch_by_tokens(src, tgt, max_tokens=7)


def test_epoch_order() -> None:
    a = epoch_order(50, epoch=1, seed=3)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, epoch_order(50, epoch=1, seed=3))
    assert not np.array_equal(a, epoch_order(50, epoch=2, seed=3))
    assert not np.array_equal(a, epoch_order(50, epoch=1, seed=4))


def test_shard_equal_and_disjoint() -> None:
    batches = [np.array([i]) for i in range(11)]
    parts = [shard(batches, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    ids = [int(b[0]) for p in parts for b in p]
    assert len(set(ids)) == 9
    assert [int(b[0]) for b in parts[1]] == [1, 4, 7]
    with pytest.raises(ValueError):
        shard(batches, 3, 3)


# ----------------------------------------------------------------------------- collate
def test_collate_exact() -> None:
    pairs = PairDataset(
        TokenArray.from_sequences([[5, 6, 7], [8], [9, 10]], dtype="uint16"),
        TokenArray.from_sequences([[11], [12, 13, 14], []], dtype="uint16"),
    )
    b = collate(pairs, [2, 0, 1])
    assert b.src.tolist() == [[9, 10, EOS, PAD], [5, 6, 7, EOS], [8, EOS, PAD, PAD]]
    assert b.src_lens.tolist() == [3, 4, 2]
    assert b.tgt_in.tolist() == [[BOS, PAD, PAD, PAD], [BOS, 11, PAD, PAD], [BOS, 12, 13, 14]]
    assert b.tgt_out.tolist() == [[EOS, PAD, PAD, PAD], [11, EOS, PAD, PAD], [12, 13, 14, EOS]]
    assert b.ntokens == 1 + 2 + 4
    assert b.ids.tolist() == [2, 0, 1]
    assert b.src_pad_mask.tolist() == [[False, False, False, True], [False] * 4, [False, False, True, True]]
    assert all(t.dtype == torch.long for t in (b.src, b.src_lens, b.tgt_in, b.tgt_out, b.ids))
    assert len(b) == 3 and b.to("cpu").src.tolist() == b.src.tolist()
    src_only = collate(PairDataset(pairs.src), [1])
    assert src_only.src.tolist() == [[8, EOS]] and src_only.tgt_in is None and src_only.tgt_out is None
    assert src_only.ntokens == 0


def test_batch_dataset_with_dataloader(toy_data_dir: Path) -> None:
    pairs = load_split(str(toy_data_dir), "valid")
    batches = batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, max_tokens=256)
    ds = BatchDataset(pairs, batches)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1)
    seen = []
    for i, batch in enumerate(loader):
        assert batch.ids.tolist() == batches[i].tolist()
        assert batch.src.numel() <= 256 and batch.tgt_out.numel() <= 256
        for row, j in enumerate(batch.ids.tolist()):
            n = int(pairs.src.sizes[j])
            assert batch.src[row, :n].tolist() == pairs.src[j].tolist() and batch.src[row, n] == EOS
        seen += batch.ids.tolist()
    assert sorted(seen) == list(range(len(pairs)))
