"""The translation task: batches as a pure function of the data and the flags, sharding, the criterion, the registry."""

import contextlib
import json
import shutil

import pytest
import torch
from helpers import cli

from nmt.config import TrainConfig
from nmt.errors import UserError
from nmt.models import arch_config
from nmt.registry import TASKS
from nmt.tasks import TranslationTask, find_task
from nmt.tasks.translation import TranslationLoss, epoch_plan
from nmt.training.criterion import (
    cross_entropy,
    label_smoothed_cross_entropy,
    label_smoothed_cross_entropy_from_features,
)
from nmt.training.dist import DistInfo


def _task(data, rank: int = 0, world_size: int = 1, **cfg) -> TranslationTask:
    return TranslationTask(
        TrainConfig(data=str(data), max_tokens=cfg.pop("max_tokens", 600), **cfg), DistInfo(rank, world_size)
    )


def _ids(batches) -> list[list[int]]:
    return [b.tolist() for b in batches]


def test_the_task_is_registered_under_translation_and_reports_its_metrics():
    assert TASKS["translation"] is TranslationTask and find_task("translation") is TranslationTask
    assert TrainConfig(data="d").task == "translation"
    assert TranslationTask.metrics == ("loss", "nll_loss", "ppl", "bleu")


@pytest.mark.parametrize("name, hint", [("foo", ""), ("transltion", " (did you mean 'translation'?)")])
def test_an_unknown_task_is_a_user_error_listing_the_valid_ones(name, hint):
    with pytest.raises(UserError) as e:
        find_task(name)
    assert str(e.value) == f"unknown task {name!r}{hint}; valid choices: language_modeling, masked_lm, translation"


def test_nmt_train_with_an_unknown_task_exits_2_with_one_line(toy_data_dir, tmp_path, monkeypatch, capsys):
    save = tmp_path / "ckpt"
    code, out, err = cli(monkeypatch, capsys, "train", str(toy_data_dir), "--task", "foo", "--save-dir", str(save))
    assert code == 2 and out == ""
    assert err == "error: unknown task 'foo'; valid choices: language_modeling, masked_lm, translation\n"
    assert not save.exists()  # refused before the save dir was touched


def test_epoch_plan_orders_by_seed_and_epoch_then_shards():
    batches = list("abcdefg")
    assert epoch_plan(batches, 1, 1, 0, 1) == ["g", "b", "e", "a", "d", "c", "f"]
    assert epoch_plan(batches, 2, 1, 0, 1) == ["a", "g", "f", "b", "e", "d", "c"]
    assert epoch_plan(batches, 1, 2, 0, 1) == ["e", "c", "a", "d", "g", "f", "b"]
    # 7 batches over 3 ranks: every third of the epoch's order, 2 each; the 7th ("f") is left out
    assert [epoch_plan(batches, 1, 1, r, 3) for r in range(3)] == [["g", "a"], ["b", "d"], ["e", "c"]]


def test_batches_are_a_pure_function_of_data_max_tokens_seed_and_epoch(toy_data_dir):
    task = _task(toy_data_dir)
    assert task.num_batches(1) == 62 and len(task.train_sets[0]) == 1600
    epochs = {e: _ids(task.epoch_batches(e)) for e in (1, 2, 3)}
    for ids in epochs.values():
        assert sorted(i for b in ids for i in b) == list(range(1600))  # every pair once per epoch
        assert sorted(ids) == sorted(_ids(task.set_batches[0]))  # the same batches, in the epoch's order
    assert epochs[1] != epochs[2] != epochs[3] != epochs[1]
    # Another task object over the same data and flags, and flags that are not about data, change nothing.
    other = _task(toy_data_dir, label_smoothing=0.3, update_freq=4, arch="lstm_seq2seq", num_workers=2, amp="bf16")
    assert all(_ids(other.epoch_batches(e)) == ids for e, ids in epochs.items())
    again = _task(toy_data_dir)
    assert all(_ids(again.epoch_batches(e)) == ids for e, ids in epochs.items())
    # The seed reorders the same batches; max_tokens and the shape flags make other batches.
    reseeded = _ids(_task(toy_data_dir, seed=2).epoch_batches(1))
    assert reseeded != epochs[1] and sorted(reseeded) == sorted(epochs[1])
    bigger = _task(toy_data_dir, max_tokens=1200)
    assert bigger.num_batches(1) < 62
    pairs = bigger.train_sets[0]
    for b in bigger.set_batches[0]:
        rows, S, T = bigger.policy.shape(pairs.src.sizes[b] + 1, pairs.tgt.sizes[b] + 1)
        assert rows * max(S, T) <= 1200 and S % 8 == 0 and T % 8 == 0  # the padded shape keeps the budget
    assert _task(toy_data_dir, pad_to_multiple=1).num_batches(1) == 60  # each batch as long as its longest


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_sharding_over_ranks_partitions_an_epochs_batches(toy_data_dir, world_size):
    whole = _ids(_task(toy_data_dir).epoch_batches(2))  # 62 batches
    per_rank = len(whole) // world_size
    shares = [_ids(_task(toy_data_dir, rank=r, world_size=world_size).epoch_batches(2)) for r in range(world_size)]
    assert [len(s) for s in shares] == [per_rank] * world_size  # as many updates on every rank
    # Rank r takes batches r, r + world_size, ... of the epoch's order: together, its first per_rank * world_size.
    interleaved = [shares[r][k] for k in range(per_rank) for r in range(world_size)]
    assert interleaved == whole[: per_rank * world_size]
    seen = [i for s in shares for b in s for i in b]
    assert len(seen) == len(set(seen))  # no sentence on two ranks


def test_the_valid_split_is_shared_among_ranks_without_loss(toy_data_dir):
    one = _task(toy_data_dir).valid_dataset()
    assert len(one.pairs) == 200
    shares = [_task(toy_data_dir, rank=r, world_size=3).valid_dataset() for r in range(3)]
    assert [_ids(s.batches) for s in shares] == [_ids(one.batches[r::3]) for r in range(3)]
    assert sorted(i for s in shares for b in s.batches for i in b.tolist()) == list(range(200))


def test_a_data_dir_without_valid_split_has_no_valid_dataset(toy_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(toy_data_dir, data)
    meta = json.loads((data / "meta.json").read_text())
    del meta["splits"]["valid"]
    (data / "meta.json").write_text(json.dumps(meta))
    assert _task(data).valid_dataset() is None


def test_train_dataset_collates_the_epochs_batches_in_order(toy_data_dir):
    task = _task(toy_data_dir)
    batches = task.epoch_batches(3)[:2]
    dataset = task.train_dataset(3, batches)
    assert len(dataset) == 2
    for k in range(2):
        n = len(batches[k])
        assert dataset[k].ids[:n].tolist() == batches[k].tolist() and dataset[k].ids[n:].eq(-1).all()
        assert dataset[k].ntokens == int(task.train_sets[0].tgt.sizes[batches[k]].sum()) + n


def test_the_loss_is_the_criterion_and_its_blockwise_form_only_under_autocast(toy_data_dir):
    task = _task(toy_data_dir, label_smoothing=0.2)
    transformer = task.build_model(arch_config("transformer_tiny"))
    lstm = task.build_model(arch_config("lstm_seq2seq"))
    assert task.loss(transformer, None) == TranslationLoss(label_smoothed_cross_entropy, 0.2, scored_only=True)
    blockwise = TranslationLoss(
        label_smoothed_cross_entropy, 0.2, label_smoothed_cross_entropy_from_features, torch.bfloat16, True
    )
    assert task.loss(transformer, torch.bfloat16) == blockwise
    assert task.loss(lstm, torch.bfloat16) == TranslationLoss(label_smoothed_cross_entropy, 0.2, None, torch.bfloat16)
    full = _task(toy_data_dir, label_smoothing=0.2, full_logits=True)
    assert full.loss(transformer, torch.bfloat16).from_features is None
    assert _task(toy_data_dir, criterion="cross_entropy").loss(transformer, None).criterion is cross_entropy
    with pytest.raises(UserError, match="unknown criterion 'ce'; valid choices: cross_entropy, label_smoothed"):
        _task(toy_data_dir, criterion="ce").loss(transformer, None)


def test_the_loss_of_a_batch_is_the_criterion_of_the_teacher_forced_logits(toy_data_dir):
    task = _task(toy_data_dir)
    torch.manual_seed(1)
    model = task.build_model(arch_config("transformer_tiny")).eval()
    batch = task.train_dataset(1, task.epoch_batches(1)[:1])[0]
    loss, stats = task.loss(model, None)(model, model, batch, contextlib.nullcontext)
    want, want_stats = label_smoothed_cross_entropy(
        model(batch.src, batch.src_pad_mask, batch.tgt_in), batch.tgt_out, 0.1
    )
    # the output layer runs on the scored rows alone (nmt.training.scored_rows): equal up to summation order
    assert torch.allclose(loss, want, rtol=1e-6) and torch.allclose(
        stats["nll_loss"], want_stats["nll_loss"], rtol=1e-6
    )
    assert int(stats["ntokens"]) == batch.ntokens and int(stats["nsentences"]) == int(batch.ids.ge(0).sum())
