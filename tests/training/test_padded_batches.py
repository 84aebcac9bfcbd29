"""The loss ignores the padding of shaped batches (nmt.data.shapes): the same sentences collated
with and without the shape policy give the same loss sums, stats and gradients, in every task."""

from __future__ import annotations

import contextlib

import pytest
import torch
from helpers import shrink
from monodata import make_mono_dir

from nmt.config import LanguageModelConfig, TrainConfig
from nmt.models import arch_config
from nmt.tasks import find_task

TASK_ARCHS = [
    ("translation", "transformer_tiny"),
    ("translation", "lstm_luong"),
    ("translation", "lstm_bahdanau"),
    ("language_modeling", "transformer_lm_tiny"),
    ("masked_lm", "mlm_tiny"),
]


@pytest.fixture(scope="module")
def mono_dir(toy_raw_dir, tmp_path_factory):
    return make_mono_dir(toy_raw_dir, tmp_path_factory.mktemp("mono") / "data-bin")


def _task(task: str, data, multiple: int):
    # eos blocks: one sentence each, so that language-model blocks have many lengths
    lm = LanguageModelConfig(tokens_per_sample=32, sample_break_mode="eos")
    return find_task(task)(TrainConfig(data=str(data), task=task, max_tokens=600, pad_to_multiple=multiple, lm=lm))


def _loss_and_grads(task, batch, arch: str):
    torch.manual_seed(1)
    model = task.build_model(shrink(arch_config(arch))).train()  # shrink: no dropout
    loss, stats = task.loss(model, None)(model, model, batch, contextlib.nullcontext)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {k: v.float() for k, v in stats.items()}, grads


@pytest.mark.parametrize("task_name, arch", TASK_ARCHS)
def test_padding_changes_neither_the_loss_nor_the_gradients(task_name, arch, toy_data_dir, mono_dir):
    data = toy_data_dir if task_name == "translation" else mono_dir
    plain_task, shaped_task = _task(task_name, data, 1), _task(task_name, data, 8)
    idx = plain_task.epoch_batches(1)[0][:5]  # 5 sentences: padding rows and longer rows when shaped
    plain, shaped = plain_task.train_dataset(1, [idx])[0], shaped_task.train_dataset(1, [idx])[0]
    assert len(plain) == 5 and len(shaped) > 5 and shaped.ids[5:].eq(-1).all()
    assert plain.ntokens == shaped.ntokens
    width = lambda b: (b.src if task_name == "translation" else b.tokens).size(1)  # noqa: E731
    assert width(shaped) % 8 == 0 and width(shaped) >= width(plain)
    loss_a, stats_a, grads_a = _loss_and_grads(plain_task, plain, arch)
    loss_b, stats_b, grads_b = _loss_and_grads(shaped_task, shaped, arch)
    assert torch.isfinite(loss_b) and torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert stats_a["ntokens"] == stats_b["ntokens"] == plain.ntokens
    assert stats_a["nsentences"] == stats_b["nsentences"] == 5  # padding rows are not sentences
    assert torch.allclose(stats_a["nll_loss"], stats_b["nll_loss"], rtol=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for k in grads_a:
        assert torch.allclose(grads_a[k], grads_b[k], rtol=1e-4, atol=1e-6), k
