"""nmt.training.logs: log lines, interval meters, TensorBoard files, rank-0 logging (exact values)."""

from __future__ import annotations

import json
import logging
import math
import re
import types

import numpy as np
import pytest
import torch

from nmt.training import logs
from nmt.training.dist import DistInfo
from nmt.training.logs import Board, Meter, format_line, setup_logging

LN2 = math.log(2)


# ----------------------------------------------------------------------------- format_line
VALUES = {
    "loss": 4.56789,
    "ppl": 123.456,
    "wps": 1234567.0,
    "lr": 0.0005,
    "gnorm": 0.0,
    "clip": -2.5,
    "num_updates": 42,
    "tiny": 1e-7,
    "hundred": 100.0,
}


def test_simple_format_is_fairseq_style():
    assert format_line("epoch 001 | valid on 'valid' subset", VALUES, "simple") == (
        "epoch 001 | valid on 'valid' subset | loss 4.568 | ppl 123 | wps 1.235e+06 | lr 5.000e-04"
        " | gnorm 0.000 | clip -2.500 | num_updates 42 | tiny 1.000e-07 | hundred 100"
    )
    assert format_line("train", {}, "simple") == "train"
    assert format_line("train", {"bleu": 99.9994, "best": "x"}, "simple") == "train | bleu 99.999 | best x"


def test_json_format_is_one_object_with_rounded_floats():
    values = {k: v for k, v in VALUES.items() if k != "tiny"}
    line = format_line("epoch 001 | valid on 'valid' subset", values, "json")
    assert line == (
        '{"tag": "epoch 001 | valid on \'valid\' subset", "loss": 4.56789, "ppl": 123.456, "wps": 1234567.0, '
        '"lr": 0.0005, "gnorm": 0.0, "clip": -2.5, "num_updates": 42, "hundred": 100.0}'
    )
    assert format_line("train", {"loss": 1 / 3, "ppl": 2 / 3, "n": 7}, "json") == (
        '{"tag": "train", "loss": 0.333333, "ppl": 0.666667, "n": 7}'
    )
    assert json.loads(format_line("train", {"loss": 1 / 3}, "json")) == {"tag": "train", "loss": 0.333333}


# ----------------------------------------------------------------------------- Meter
class Clock:
    """A settable perf_counter for nmt.training.logs."""

    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(logs, "time", types.SimpleNamespace(perf_counter=c))
    return c


def _stats(loss, nll, ntokens, nsentences, gnorm) -> dict:
    return {
        "loss": torch.tensor(loss),
        "nll_loss": torch.tensor(nll),
        "ntokens": torch.tensor(ntokens),
        "nsentences": torch.tensor(nsentences),
        "gnorm": torch.tensor(gnorm),
    }


# Two updates: 24 tokens, 6 sentences, nll 12 nats in all; 4 seconds of wall time.
EXPECTED = {
    "loss": 16 / 24 / LN2,
    "nll_loss": 12 / 24 / LN2,
    "ppl": math.exp(12 / 24),  # 2 ** (nll in bits)
    "wps": 24 / 4,
    "ups": 2 / 4,
    "wpb": 24 / 2,
    "bsz": 6 / 2,
    "gnorm": (1.5 + 2.5) / 2,
}


def _filled(clock: Clock) -> Meter:
    meter = Meter(torch.device("cpu"))
    meter.add(_stats(6.0, 4.0, 10, 2, 1.5))
    meter.add(_stats(10.0, 8.0, 14, 4, 2.5))
    clock.now += 4.0
    return meter


def test_meter_sums_and_reduces_to_per_token_and_per_update_values(clock):
    meter = _filled(clock)
    assert meter.sums.dtype == torch.float64
    assert meter.sums.tolist() == [16.0, 12.0, 24.0, 6.0, 4.0, 2.0]  # loss nll ntokens nsentences gnorm updates
    got = meter.reduce(DistInfo())
    assert list(got) == list(EXPECTED)
    assert got == pytest.approx(EXPECTED, rel=1e-12)
    assert meter.sums.tolist() == [16.0, 12.0, 24.0, 6.0, 4.0, 2.0]  # reducing does not consume the sums


def test_a_meter_restored_from_its_state_reduces_to_the_same_numbers(clock):
    meter = _filled(clock)
    state = meter.state()
    assert state["elapsed"] == 4.0 and state["sums"].device.type == "cpu"
    expected = meter.reduce(DistInfo())
    clock.now += 1000.0  # the resumed run starts much later: the time between runs does not count
    restored = Meter(torch.device("cpu"))
    restored.load_state(state)
    assert restored.reduce(DistInfo()) == expected
    # and it goes on summing from there
    restored.add(_stats(8.0, 6.0, 12, 3, 5.0))
    clock.now += 2.0
    more = restored.reduce(DistInfo())
    assert more["wpb"] == pytest.approx(36 / 3) and more["wps"] == pytest.approx(36 / 6)
    assert more["gnorm"] == pytest.approx(9.0 / 3)


def test_reset_starts_an_empty_interval(clock):
    meter = _filled(clock)
    meter.reset()
    clock.now += 2.0
    assert meter.sums.tolist() == [0.0] * 6
    assert meter.reduce(DistInfo()) == {
        "loss": 0.0,
        "nll_loss": 0.0,
        "ppl": 1.0,
        "wps": 0.0,
        "ups": 0.0,
        "wpb": 0.0,
        "bsz": 0.0,
        "gnorm": 0.0,
    }


def test_a_diverged_nll_does_not_overflow_the_perplexity(clock):
    meter = Meter(torch.device("cpu"))
    meter.add(_stats(1e6, 1e6, 10, 1, 1.0))
    clock.now += 1.0
    assert meter.reduce(DistInfo())["ppl"] == 2.0**100


# ----------------------------------------------------------------------------- Board
def _event_files(root) -> list[str]:
    return sorted(str(p.relative_to(root).parent) for p in root.rglob("events.out.tfevents.*"))


def test_board_without_logdir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    board = Board(None)
    board.scalars("train", {"loss": 1.0}, 1)
    board.image("valid", "cross_attention", np.zeros((4, 4, 3), dtype=np.uint8), 1)
    board.close()
    assert board.writers == {} and list(tmp_path.iterdir()) == []


def test_board_writes_event_files_under_logdir_per_tag(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    board = Board(str(logdir))
    assert not logdir.exists()  # nothing until something is logged
    board.scalars("train", {"loss": 1.5, "num_updates": 3, "tag": "not a number"}, 7)
    board.scalars("train", {"loss": 1.25}, 8)
    image = np.zeros((6, 8, 3), dtype=np.uint8)
    image[:, :4, 0] = 255
    board.image("valid", "cross_attention", image, 8)
    board.close()
    assert _event_files(logdir) == ["train", "valid"]
    train = EventAccumulator(str(logdir / "train")).Reload()
    assert sorted(train.Tags()["scalars"]) == ["loss", "num_updates"]
    assert [(e.step, e.value) for e in train.Scalars("loss")] == [(7, 1.5), (8, 1.25)]
    assert [(e.step, e.value) for e in train.Scalars("num_updates")] == [(7, 3.0)]
    valid = EventAccumulator(str(logdir / "valid"), size_guidance={"images": 0}).Reload()
    (event,) = valid.Images("cross_attention")
    assert (event.step, event.width, event.height) == (8, 8, 6)


# ----------------------------------------------------------------------------- setup_logging
@pytest.fixture
def nmt_logger():
    """Put the `nmt` logger back as it was (setup_logging configures it for the whole process)."""
    root = logging.getLogger("nmt")
    saved = (list(root.handlers), root.level, root.propagate)
    yield logging.getLogger("nmt.train")
    root.handlers[:], root.level, root.propagate = saved


LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| (\w+) \| nmt\.train \| (.*)")


def test_rank_0_logs_plain_lines_on_stderr(nmt_logger, capsys):
    setup_logging(is_main=True)
    setup_logging(is_main=True)  # a second call (the next command in a notebook) adds no second handler
    long = "x" * 300  # longer than any terminal: one line, not wrapped
    nmt_logger.info("epoch %03d | loss %s", 1, long)
    nmt_logger.warning("careful")
    nmt_logger.debug("not shown")
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert [LINE.fullmatch(line).groups() for line in lines] == [
        ("INFO", "epoch 001 | loss " + long),
        ("WARNING", "careful"),
    ]


def test_other_ranks_stay_quiet(nmt_logger, capsys):
    setup_logging(is_main=False)
    nmt_logger.info("progress")
    nmt_logger.warning("a warning")
    assert capsys.readouterr() == ("", "")
    assert not logging.getLogger("nmt").handlers and not logging.getLogger("nmt").propagate
    assert not nmt_logger.isEnabledFor(logging.WARNING) and nmt_logger.isEnabledFor(logging.ERROR)
