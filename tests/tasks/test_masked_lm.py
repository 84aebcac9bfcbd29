"""The masked-LM task: the data dir it accepts, reproducible masks, batches as a pure function, its loss."""

import contextlib

import numpy as np
import pytest
import torch
from lm_doubles import TinyMLM
from monodata import MONO_VOCAB, make_mono_dir

from nmt.config import LanguageModelConfig, TrainConfig
from nmt.data.tokenizer import PAD
from nmt.errors import UserError
from nmt.models import arch_config
from nmt.tasks import MaskedLMTask
from nmt.tasks.masked_lm import MaskedLoss
from nmt.training.criterion import cross_entropy, label_smoothed_cross_entropy
from nmt.training.dist import DistInfo


@pytest.fixture(scope="module")
def mono_dir(toy_raw_dir, tmp_path_factory):
    return make_mono_dir(toy_raw_dir, tmp_path_factory.mktemp("mono") / "data-bin")


def _task(data, rank=0, world_size=1, seed=1, **lm) -> MaskedLMTask:
    cfg = TrainConfig(data=str(data), task="masked_lm", max_tokens=400, seed=seed)
    cfg.lm = LanguageModelConfig(**{"tokens_per_sample": 16, **lm})
    return MaskedLMTask(cfg, DistInfo(rank, world_size))


def _same(a, b) -> bool:
    return torch.equal(a.tokens, b.tokens) and torch.equal(a.target, b.target)


def test_a_parallel_data_dir_and_a_translation_model_are_refused(toy_data_dir, mono_dir):
    with pytest.raises(UserError, match="^--task masked_lm cannot train on .*: it holds parallel data for translation"):
        _task(toy_data_dir)
    with pytest.raises(UserError) as e:
        _task(mono_dir).build_model(arch_config("transformer_tiny"))
    assert (
        str(e.value) == "--arch transformer_tiny is not a model for --task masked_lm; choose one of: mlm_base, mlm_tiny"
    )
    cfg = TrainConfig(data=str(mono_dir), task="masked_lm", eval_bleu=True)
    with pytest.raises(UserError, match="^--eval-bleu: task 'masked_lm' does not translate"):
        MaskedLMTask(cfg)


def test_one_sample_per_sentence_cut_to_n(mono_dir):
    task = _task(mono_dir)
    batches = task.epoch_batches(1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(task.data.train)))
    batch = task.train_dataset(1, batches)[0]
    lengths = (batch.tokens != PAD).sum(1)
    expected = np.minimum(task.data.train.sizes[batches[0]], 15) + 1
    assert lengths.tolist() == expected.tolist()
    assert batch.ntokens == int((batch.target != PAD).sum()) and (batch.target != PAD).sum(1).min() >= 1


def test_masks_are_reproducible_per_epoch_and_fixed_for_validation(mono_dir):
    a, b = _task(mono_dir), _task(mono_dir)
    batches = a.epoch_batches(2)
    assert [x.tolist() for x in batches] == [x.tolist() for x in b.epoch_batches(2)]
    assert _same(a.train_dataset(2, batches)[3], b.train_dataset(2, batches)[3])
    assert not _same(a.train_dataset(2, batches)[3], a.train_dataset(3, batches)[3])
    # a resumed run skips the consumed batches and sees the same masks for the rest
    assert _same(a.train_dataset(2, batches[3:])[0], a.train_dataset(2, batches)[3])
    assert _same(a.valid_dataset()[0], b.valid_dataset()[0])
    assert not _same(a.train_dataset(2, batches)[3], _task(mono_dir, seed=2).train_dataset(2, batches)[3])


def test_the_chosen_tokens_are_the_targets(mono_dir):
    task = _task(mono_dir, mask_whole_words=True)
    batch = task.train_dataset(1, task.epoch_batches(1))[0]
    original = [task.data.train[i][:15].tolist() + [3] for i in batch.ids.tolist()]
    for row, tokens in enumerate(original):
        target, inp = batch.target[row, : len(tokens)], batch.tokens[row, : len(tokens)]
        chosen = target != PAD
        assert target[chosen].tolist() == [t for t, c in zip(tokens, chosen.tolist()) if c]
        assert inp[~chosen].tolist() == [t for t, c in zip(tokens, chosen.tolist()) if not c]


def test_the_loss_runs_the_head_at_the_chosen_positions_only(mono_dir):
    task = _task(mono_dir)
    torch.manual_seed(0)
    model = TinyMLM(MONO_VOCAB)
    batch = task.train_dataset(1, task.epoch_batches(1))[0]
    loss_fn = task.loss(model, torch.bfloat16)  # the logits are few: never the blockwise form
    assert loss_fn == MaskedLoss(label_smoothed_cross_entropy, 0.1)
    loss, stats = loss_fn(model, model, batch, contextlib.nullcontext)
    tokens, pad_mask, masked = model.calls[-1]
    assert torch.equal(masked, batch.target != PAD) and torch.equal(pad_mask, batch.tokens == PAD)
    full = model(batch.tokens, batch.pad_mask)  # (B, T, V)
    expected, _ = label_smoothed_cross_entropy(full[masked], batch.target[masked], 0.1)
    assert torch.allclose(loss, expected, rtol=1e-6)
    assert int(stats["ntokens"]) == batch.ntokens == int(masked.sum())
    assert int(stats["nsentences"]) == len(batch)
    plain, _ = MaskedLoss(cross_entropy, 0.1)(model, model, batch, contextlib.nullcontext)
    assert torch.allclose(plain, cross_entropy(full[masked], batch.target[masked])[0], rtol=1e-6)


def test_ranks_share_an_epoch(mono_dir):
    ranks = [_task(mono_dir, rank=r, world_size=3) for r in range(3)]
    shares = [[tuple(b.tolist()) for b in t.epoch_batches(1)] for t in ranks]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == ranks[0].num_batches(1) // 3
    assert not (set(shares[0]) & set(shares[1])) and not (set(shares[1]) & set(shares[2]))
