"""Validation: the books of the best metric (best, --patience, reduce_lr_on_plateau), the metrics a task
reports, and --attn-sample on a model without cross-attention."""

from types import SimpleNamespace

import pytest

from nmt.config import TrainConfig
from nmt.errors import UserError
from nmt.flags import parse_train_args
from nmt.training.dist import DistInfo
from nmt.training.logs import Board
from nmt.training.loop import Run
from nmt.training.validation import Validator, Verdict, judge, patience_exhausted


def _books(values, maximize=False, lr_patience=None) -> list[Verdict]:
    """judge() over a sequence of validations, each starting from the books the last one left."""
    best, bad, plateau = None, 0, 0
    out = []
    for value in values:
        v = judge(value, maximize, best, bad, plateau, lr_patience)
        best, bad, plateau = v.best, v.bad_validations, v.plateau_bad
        out.append(v)
    return out


def test_a_lower_loss_improves_and_anything_else_counts_against_patience():
    assert _books([5.0, 6.0, 5.0, 4.0, 4.5]) == [
        Verdict(improved=True, best=5.0, bad_validations=0, plateau_bad=0, shrink_lr=False),  # the first one
        Verdict(improved=False, best=5.0, bad_validations=1, plateau_bad=0, shrink_lr=False),
        Verdict(improved=False, best=5.0, bad_validations=2, plateau_bad=0, shrink_lr=False),  # equal is no better
        Verdict(improved=True, best=4.0, bad_validations=0, plateau_bad=0, shrink_lr=False),
        Verdict(improved=False, best=4.0, bad_validations=1, plateau_bad=0, shrink_lr=False),
    ]


def test_a_higher_bleu_improves():
    assert [(v.improved, v.best, v.bad_validations) for v in _books([10.0, 9.0, 12.5, 12.5], maximize=True)] == [
        (True, 10.0, 0),
        (False, 10.0, 1),
        (True, 12.5, 0),
        (False, 12.5, 1),
    ]


def test_plateau_shrinks_the_lr_after_more_than_lr_patience_bad_validations():
    books = _books([5.0, 6.0, 6.0, 7.0, 4.0, 8.0, 8.0], lr_patience=1)
    assert [(v.plateau_bad, v.shrink_lr) for v in books] == [
        (0, False),
        (1, False),
        (0, True),  # the second bad validation in a row: shrink, count again
        (1, False),
        (0, False),  # an improvement resets the count
        (1, False),
        (0, True),
    ]
    assert [v.bad_validations for v in books] == [0, 1, 2, 3, 0, 1, 2]  # --patience counts on regardless
    # lr_patience 0: every bad validation shrinks
    assert [v.shrink_lr for v in _books([5.0, 6.0, 7.0, 4.0], lr_patience=0)] == [False, True, True, False]


def test_without_reduce_lr_on_plateau_its_count_is_left_as_it_was():
    assert judge(7.0, False, 5.0, 0, 3, None) == Verdict(False, 5.0, 1, 3, False)
    assert judge(4.0, False, 5.0, 2, 3, None) == Verdict(True, 4.0, 0, 3, False)


def test_patience_is_exhausted_after_that_many_bad_validations_in_a_row():
    assert [patience_exhausted(2, bad) for bad in (0, 1, 2, 3)] == [False, False, True, True]
    assert not patience_exhausted(0, 100) and not patience_exhausted(-1, 100)  # off


def test_the_best_metric_must_be_one_the_task_reports():
    lm_like = SimpleNamespace(metrics=("loss", "nll_loss", "ppl"))
    cfg = TrainConfig(data="d", task="language_model", eval_bleu=True)
    with pytest.raises(UserError, match="^task 'language_model' reports loss, nll_loss, ppl; it has no 'bleu'$"):
        Validator(cfg, lm_like, DistInfo(), None, Board(None))
    Validator(TrainConfig(data="d", best_checkpoint_metric="ppl"), lm_like, DistInfo(), None, Board(None))


def test_attn_sample_without_cross_attention_is_said_once_and_the_config_is_left_alone(toy_data_dir, tmp_path, capfd):
    args = [
        str(toy_data_dir),
        "--save-dir",
        str(tmp_path),
        "--arch",
        "lstm_seq2seq",  # no attention
        "--encoder-layers",
        "1",
        "--decoder-layers",
        "1",
        "--encoder-hidden-size",
        "16",
        "--decoder-hidden-size",
        "16",
        "--encoder-embed-dim",
        "16",
        "--decoder-embed-dim",
        "16",
        "--max-tokens",
        "3000",
        "--max-update",
        "3",
        "--validate-interval-updates",
        "1",
        "--attn-sample",
        "The girl sees the red car.",
        "--threads",
        "1",
        "--no-save",
    ]
    cfg, overrides = parse_train_args(args)
    run = Run(cfg, overrides)
    assert run.run() == 0
    err = capfd.readouterr().err
    assert err.count("valid on 'valid' subset") == 4  # updates 1, 2, 3, and at max_update
    assert err.count("--attn-sample: this model has no cross-attention to draw") == 1
    assert run.validator.attn_sample is None
    assert cfg == parse_train_args(args)[0] and cfg.attn_sample == "The girl sees the red car."
