"""--ema-decay: the moving average of the weights, its place in checkpoints, validation and resume."""

import json

import pytest
import torch
from test_loop import _args, _run

from nmt import checkpoint as ckpt
from nmt.training.ema import ema_weight, make_average, update_average


def test_ema_weight_copies_until_the_start_update_then_moves_by_one_minus_decay():
    assert [ema_weight(u, 0.99, 3) for u in (1, 3)] == [1.0, 1.0]
    assert ema_weight(4, 0.99, 3) == pytest.approx(0.01)
    assert ema_weight(1, 0.5, 0) == 0.5


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("steps", torch.zeros(1))


def test_update_average_interpolates_parameters_and_copies_buffers():
    model = _Tiny()
    average = make_average(model)
    assert not average.training and not any(p.requires_grad for p in average.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model.steps.fill_(7.0)
    update_average(average, model, 0.25)
    for name in ("lin.weight", "lin.bias"):
        assert torch.allclose(average.state_dict()[name], before[name] + 0.25, atol=1e-6)
    assert average.steps.item() == 7.0  # buffers are not averaged
    update_average(average, model, 1.0)
    for name, value in model.state_dict().items():
        assert torch.equal(average.state_dict()[name], value)


def test_saved_average_follows_the_recurrence_update_by_update(toy_data_dir, tmp_path):
    decay = 0.9
    assert (
        _run(
            _args(
                toy_data_dir,
                tmp_path,
                "--max-update",
                "4",
                "--save-interval-updates",
                "1",
                "--ema-decay",
                str(decay),
                "--ema-start-update",
                "2",
            )
        )
        == 0
    )
    saved = [ckpt.load(p) for p in ckpt.update_checkpoints(str(tmp_path))]
    assert len(saved) == 4
    trained = [s["train_state"]["trained_model"] for s in saved]
    averages = [s["model"] for s in saved]
    for u in (0, 1):  # updates 1 and 2: the average is the weights
        for k in trained[u]:
            assert torch.equal(averages[u][k], trained[u][k]), k
    for u in (2, 3):
        for k in trained[u]:
            expected = decay * averages[u - 1][k] + (1 - decay) * trained[u][k]
            assert torch.allclose(averages[u][k], expected, atol=1e-6), k
    assert any(not torch.equal(averages[3][k], trained[3][k]) for k in trained[3])


def test_the_average_neither_changes_training_nor_breaks_exact_resume(toy_data_dir, tmp_path):
    ema = ["--dropout", "0.2", "--ema-decay", "0.95", "--ema-start-update", "5"]
    assert _run(_args(toy_data_dir, tmp_path / "plain", "--max-update", "30", "--dropout", "0.2")) == 0
    assert _run(_args(toy_data_dir, tmp_path / "ema", "--max-update", "30", *ema)) == 0
    assert _run(_args(toy_data_dir, tmp_path / "resumed", "--max-update", "13", *ema)) == 0
    assert _run(_args(toy_data_dir, tmp_path / "resumed", "--max-update", "30", *ema)) == 0
    plain = ckpt.load(str(tmp_path / "plain" / "checkpoint_last.pt"))["model"]
    full = ckpt.load(str(tmp_path / "ema" / "checkpoint_last.pt"))
    resumed = ckpt.load(str(tmp_path / "resumed" / "checkpoint_last.pt"))
    for k in plain:
        assert torch.equal(full["train_state"]["trained_model"][k], plain[k]), k  # training untouched
        assert torch.equal(resumed["train_state"]["trained_model"][k], plain[k]), k
        assert torch.equal(resumed["model"][k], full["model"][k]), k  # the average resumes exactly
    assert any(not torch.equal(full["model"][k], plain[k]) for k in plain)
    assert "trained_model" not in ckpt.load(str(tmp_path / "plain" / "checkpoint_last.pt"))["train_state"]


def _valid_losses(err: str) -> list[float]:
    return [json.loads(line[line.index("{") :])["loss"] for line in err.splitlines() if "valid on 'valid'" in line]


def test_validation_scores_the_average(toy_data_dir, tmp_path, capfd):
    base = ["--max-epoch", "1", "--no-save"]
    assert _run(_args(toy_data_dir, tmp_path / "a", *base)) == 0
    plain = _valid_losses(capfd.readouterr().err)
    # An average that only starts after the run's last update is the weights themselves.
    assert _run(_args(toy_data_dir, tmp_path / "b", *base, "--ema-decay", "0.999", "--ema-start-update", "1000")) == 0
    assert _valid_losses(capfd.readouterr().err) == plain
    # One that moves 0.1% a step stays near the initial weights: far worse than the trained model.
    assert _run(_args(toy_data_dir, tmp_path / "c", *base, "--ema-decay", "0.999")) == 0
    slow = _valid_losses(capfd.readouterr().err)
    assert len(plain) == len(slow) == 1 and slow[0] > plain[0] + 1.0


def test_average_checkpoints_can_take_the_trained_weights(toy_data_dir, tmp_path, monkeypatch, capsys):
    from helpers import cli as _cli

    assert (
        _run(
            _args(
                toy_data_dir,
                tmp_path / "ema",
                "--max-update",
                "6",
                "--save-interval-updates",
                "3",
                "--ema-decay",
                "0.9",
                "--ema-start-update",
                "1",
            )
        )
        == 0
    )
    paths = ckpt.update_checkpoints(str(tmp_path / "ema"))
    trained = [ckpt.load(p)["train_state"]["trained_model"] for p in paths]
    out = str(tmp_path / "raw.pt")
    code, _, _ = _cli(
        monkeypatch, capsys, "average-checkpoints", "--inputs", *paths, "--trained-weights", "--output", out
    )
    assert code == 0
    for k, v in ckpt.load(out)["model"].items():
        assert torch.allclose(v, (trained[0][k] + trained[1][k]) / 2, atol=1e-6), k
    # One input: its trained weights exactly, a checkpoint that translates like any other.
    code, _, _ = _cli(
        monkeypatch, capsys, "average-checkpoints", "--inputs", paths[1], "--trained-weights", "--output", out
    )
    assert code == 0 and all(torch.equal(v, trained[1][k]) for k, v in ckpt.load(out)["model"].items())
    assert "train_state" not in ckpt.load(out)
    # A checkpoint without them (trained without --ema-decay, or an average) is refused, nothing written.
    plain = str(tmp_path / "plain.pt")
    code, _, err = _cli(
        monkeypatch, capsys, "average-checkpoints", "--inputs", out, "--trained-weights", "--output", plain
    )
    assert code == 2 and "holds no trained weights apart from its model" in err and err.count("\n") == 1
    assert not (tmp_path / "plain.pt").exists()
