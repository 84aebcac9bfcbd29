"""The language-modeling task: the data dir it accepts, its flags, batches as a pure function, its loss."""

import contextlib
import pickle

import numpy as np
import pytest
import torch
from helpers import cli
from lm_doubles import TinyLM
from monodata import MONO_VOCAB, make_mono_dir

from nmt.config import LanguageModelConfig, TrainConfig
from nmt.errors import UserError
from nmt.flags import parse_train_args, train_help
from nmt.models import arch_config
from nmt.registry import TASKS
from nmt.tasks import LanguageModelingTask, MaskedLMTask, TranslationTask, find_task
from nmt.tasks.checks import check_task_data
from nmt.tasks.language_modeling import LMLoss
from nmt.training.criterion import label_smoothed_cross_entropy, label_smoothed_cross_entropy_from_features
from nmt.training.dist import DistInfo


@pytest.fixture(scope="module")
def mono_dir(toy_raw_dir, tmp_path_factory):
    return make_mono_dir(toy_raw_dir, tmp_path_factory.mktemp("mono") / "data-bin")


def _cfg(data, task="language_modeling", **lm) -> TrainConfig:
    cfg = TrainConfig(data=str(data), task=task, max_tokens=400)
    cfg.lm = LanguageModelConfig(**{"tokens_per_sample": 40, **lm})
    return cfg


def _task(data, rank=0, world_size=1, **lm) -> LanguageModelingTask:
    return LanguageModelingTask(_cfg(data, **lm), DistInfo(rank, world_size))


def _ids(batches):
    return [b.tolist() for b in batches]


def test_the_tasks_are_registered_and_report_no_bleu():
    assert TASKS["language_modeling"] is LanguageModelingTask and find_task("masked_lm") is MaskedLMTask
    assert LanguageModelingTask.metrics == MaskedLMTask.metrics == ("loss", "nll_loss", "ppl")


def test_a_parallel_data_dir_is_refused_in_one_line(toy_data_dir):
    with pytest.raises(UserError) as e:
        _task(toy_data_dir)
    assert str(e.value) == (
        f"--task language_modeling cannot train on {toy_data_dir}: it holds parallel data for translation; "
        "preprocess one language with --only-source -s LANG"
    )
    with pytest.raises(UserError, match="^--task masked_lm cannot train on .*parallel data for translation"):
        check_task_data(_cfg(toy_data_dir, task="masked_lm"))
    check_task_data(_cfg(toy_data_dir, task="translation"))


def test_translation_refuses_a_monolingual_data_dir(mono_dir):
    with pytest.raises(UserError) as e:
        TranslationTask(TrainConfig(data=str(mono_dir)))
    assert str(e.value) == (
        f"--task translation cannot train on {mono_dir}: it holds monolingual data for language_modeling, "
        "masked_lm; preprocess parallel text with -s SRC -t TGT"
    )


def test_nmt_train_on_the_wrong_data_dir_exits_2_with_one_line(toy_data_dir, tmp_path, monkeypatch, capsys):
    args = ["train", str(toy_data_dir), "--task", "language_modeling", "--save-dir", str(tmp_path / "ckpt")]
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: --task language_modeling cannot train on") and err.count("\n") == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"eval_bleu": True},
            "--eval-bleu: task 'language_modeling' does not translate; it reports loss, nll_loss and ppl",
        ),
        ({"attn_sample": "A cat."}, "--attn-sample draws cross-attention, which task 'language_modeling' has not"),
        ({"max_tokens": 39}, "--tokens-per-sample 40 exceeds --max-tokens 39: a sample would not fit in a batch"),
    ],
)
def test_flags_that_do_not_fit_the_task_are_refused(mono_dir, changes, message):
    cfg = _cfg(mono_dir)
    for k, v in changes.items():
        setattr(cfg, k, v)
    with pytest.raises(UserError) as e:
        LanguageModelingTask(cfg)
    assert str(e.value) == message


def test_the_model_must_be_a_language_model(mono_dir):
    with pytest.raises(UserError) as e:
        _task(mono_dir).build_model(arch_config("transformer_tiny"))
    assert str(e.value) == (
        "--arch transformer_tiny is not a model for --task language_modeling; "
        "choose one of: transformer_lm, transformer_lm_gpt, transformer_lm_tiny"
    )


@pytest.mark.parametrize("mode", ["none", "eos", "complete"])
def test_batches_are_a_pure_function_and_cover_every_block_once(mono_dir, mode):
    a, b = _task(mono_dir, sample_break_mode=mode), _task(mono_dir, sample_break_mode=mode)
    assert _ids(a.epoch_batches(1)) == _ids(b.epoch_batches(1))
    assert _ids(a.epoch_batches(2)) != _ids(a.epoch_batches(1))
    assert sorted(_ids(a.epoch_batches(2))) == sorted(_ids(a.epoch_batches(1)))
    assert a.num_batches(1) == len(a.epoch_batches(1))
    blocks = np.concatenate(a.epoch_batches(1))
    assert sorted(blocks.tolist()) == list(range(len(a.train_blocks)))
    lengths = a.train_blocks[:, 1] - a.train_blocks[:, 0]
    assert lengths.max() <= 40 and all(len(x) * lengths[x].max() <= 400 for x in a.epoch_batches(1))


def test_ranks_share_an_epoch_and_the_valid_split(mono_dir):
    whole = _task(mono_dir)
    ranks = [_task(mono_dir, rank=r, world_size=2) for r in range(2)]
    shares = [_ids(t.epoch_batches(3)) for t in ranks]
    assert len(shares[0]) == len(shares[1]) == whole.num_batches(3) // 2
    assert not set(map(tuple, shares[0])) & set(map(tuple, shares[1]))
    valid = [len(t.valid_dataset()) for t in ranks]
    assert sum(valid) == len(whole.valid_dataset()) and abs(valid[0] - valid[1]) <= 1


def test_a_batch_holds_the_blocks_with_their_context(mono_dir):
    task = _task(mono_dir)
    batches = task.epoch_batches(1)
    dataset = task.train_dataset(1, batches)
    batch = dataset[0]
    assert batch.ids.tolist() == batches[0].tolist()
    assert torch.equal(batch.tokens[:, 1:], batch.target[:, :-1].masked_fill(batch.target[:, 1:] == 0, 0))
    assert (
        batch.ntokens
        == int((batch.target != 0).sum())
        == int(sum(task.train_blocks[batches[0], 1] - task.train_blocks[batches[0], 0]))
    )
    again = pickle.loads(pickle.dumps(dataset))[0]  # as DataLoader workers receive it
    assert torch.equal(again.tokens, batch.tokens) and torch.equal(again.target, batch.target)


def test_the_loss_is_the_criterion_of_the_logits_and_blockwise_under_autocast(mono_dir):
    task = _task(mono_dir)
    torch.manual_seed(0)
    model = TinyLM(MONO_VOCAB)
    batch = task.train_dataset(1, task.epoch_batches(1))[0]
    loss_fn = task.loss(model, None)
    assert loss_fn == LMLoss(label_smoothed_cross_entropy, 0.1, None, None, scored_only=True)
    loss, stats = loss_fn(model, model, batch, contextlib.nullcontext)
    expected, expected_stats = label_smoothed_cross_entropy(model(batch.tokens), batch.target, 0.1)
    assert torch.allclose(loss, expected, rtol=1e-6) and int(stats["ntokens"]) == batch.ntokens
    assert torch.allclose(stats["nll_loss"], expected_stats["nll_loss"], rtol=1e-6)
    assert int(stats["nsentences"]) == int(expected_stats["nsentences"])
    blockwise = task.loss(model, torch.bfloat16)
    assert blockwise.from_features is label_smoothed_cross_entropy_from_features
    exact = LMLoss(label_smoothed_cross_entropy, 0.1, label_smoothed_cross_entropy_from_features, torch.float32, True)
    loss_f, _ = exact(model, model, batch, contextlib.nullcontext)
    assert torch.allclose(loss_f, expected, rtol=1e-5)


def test_the_flags_parse_into_the_nested_config_and_are_checked():
    cfg, _ = parse_train_args(["d", "--tokens-per-sample", "64", "--sample-break-mode", "eos", "--mask-whole-words"])
    assert cfg.lm == LanguageModelConfig(tokens_per_sample=64, sample_break_mode="eos", mask_whole_words=True)
    assert TrainConfig(data="d").lm == LanguageModelConfig()
    assert "language model and masked LM" in train_help("transformer_tiny") and "--mask-random-prob" in train_help(
        "transformer_tiny"
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tokens-per-sample", "1"], "--tokens-per-sample must be >= 2, got 1"),
        (["--sample-break-mode", "doc"], "--sample-break-mode 'doc' is not one of: none, eos, complete"),
        (["--mask-prob", "1.5"], "--mask-prob must be a number in [0, 1], got 1.5"),
        (["--mask-random-prob", "inf"], "--mask-random-prob must be a number in [0, 1], got inf"),
        (["--mask-replace-prob", "0.95"], "--mask-replace-prob 0.95 + --mask-random-prob 0.1 exceeds 1"),
    ],
)
def test_bad_flag_values_are_one_line(flags, message):
    with pytest.raises(UserError) as e:
        parse_train_args(["d", *flags])
    assert str(e.value) == message
