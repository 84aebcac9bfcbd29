"""Learning-rate schedules as pure functions, checked against their formulas."""

import math

import pytest

from nmt.config import OptimConfig
from nmt.errors import UserError
from nmt.training.optim import build_optimizer, decay_horizon, lr_at, plateau_update


def test_inverse_sqrt_warmup_then_decay():
    cfg = OptimConfig(lr=1e-3, warmup_updates=100, warmup_init_lr=0.0)
    assert lr_at(50, cfg, 512) == pytest.approx(5e-4)
    assert lr_at(100, cfg, 512) == pytest.approx(1e-3)
    assert lr_at(400, cfg, 512) == pytest.approx(1e-3 * math.sqrt(100 / 400))


def test_noam_formula_and_peak():
    cfg = OptimConfig(lr_scheduler="noam", lr=2.0, warmup_updates=4000)
    for step in (1, 100, 4000, 10000):
        expected = 2.0 * 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        assert lr_at(step, cfg, 512) == pytest.approx(expected)
    assert lr_at(4000, cfg, 512) > lr_at(3999, cfg, 512) and lr_at(4000, cfg, 512) > lr_at(4001, cfg, 512)


def test_cosine_reaches_min_lr():
    cfg = OptimConfig(lr_scheduler="cosine", lr=1e-3, min_lr=1e-5, warmup_updates=10)
    assert lr_at(10, cfg, 8, horizon=110) == pytest.approx(1e-3)
    assert lr_at(60, cfg, 8, horizon=110) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(110, cfg, 8, horizon=110) == pytest.approx(1e-5)
    assert lr_at(500, cfg, 8, horizon=110) == pytest.approx(1e-5)


def test_polynomial_decay_is_a_line_or_a_power_curve():
    cfg = OptimConfig(lr_scheduler="polynomial_decay", lr=1e-3, min_lr=0.0, warmup_updates=10)
    assert lr_at(10, cfg, 8, horizon=110) == pytest.approx(1e-3)
    assert lr_at(35, cfg, 8, horizon=110) == pytest.approx(0.75e-3)
    assert lr_at(60, cfg, 8, horizon=110) == pytest.approx(0.5e-3)
    assert lr_at(110, cfg, 8, horizon=110) == 0.0 and lr_at(200, cfg, 8, horizon=110) == 0.0
    squared = OptimConfig(lr_scheduler="polynomial_decay", lr=1e-3, min_lr=1e-5, warmup_updates=10, power=2.0)
    assert lr_at(60, squared, 8, horizon=110) == pytest.approx(1e-5 + 0.25 * (1e-3 - 1e-5))


def test_decay_horizon_is_what_the_time_budget_allows():
    assert decay_horizon(3000, 100, 50.0, 0.0) == 3000  # no budget: max_update
    assert decay_horizon(3000, 0, 0.0, 200.0) == 3000  # no pace measured yet
    assert decay_horizon(3000, 100, 50.0, 200.0) == 400  # 2 updates/s for 200 s
    assert decay_horizon(300, 100, 50.0, 200.0) == 300  # max_update comes first
    assert decay_horizon(0, 100, 50.0, 200.0) == 400  # no max_update: time alone
    assert decay_horizon(0, 100, 500.0, 200.0) == 100  # over time already: never behind the updates done


def test_the_horizon_sets_where_decay_ends():
    cfg = OptimConfig(lr_scheduler="cosine", lr=1e-3, min_lr=1e-5, warmup_updates=10)
    assert lr_at(60, cfg, 8, horizon=110) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(60, cfg, 8, horizon=1010) > lr_at(60, cfg, 8, horizon=110)
    assert lr_at(1010, cfg, 8, horizon=1010) == pytest.approx(1e-5)


def test_fixed_and_plateau_scale():
    cfg = OptimConfig(lr_scheduler="fixed", lr=0.1, warmup_updates=0)
    assert lr_at(7, cfg, 8) == 0.1
    cfg = OptimConfig(lr_scheduler="reduce_lr_on_plateau", lr=0.1, warmup_updates=0)
    assert lr_at(7, cfg, 8, lr_scale=0.25) == pytest.approx(0.025)


def test_plateau_bookkeeping():
    assert plateau_update(None, 3.0, 0, 1, maximize=False) == (False, 0)
    assert plateau_update(3.0, 2.0, 0, 1, maximize=False) == (False, 0)
    assert plateau_update(2.0, 2.5, 0, 1, maximize=False) == (False, 1)
    assert plateau_update(2.0, 2.5, 1, 1, maximize=False) == (True, 0)
    assert plateau_update(20.0, 25.0, 0, 0, maximize=True) == (False, 0)


def test_unknown_names_list_choices():
    with pytest.raises(UserError, match="did you mean 'cosine'"):
        lr_at(1, OptimConfig(lr_scheduler="cosin"), 8)
    import torch

    with pytest.raises(UserError, match="valid choices: adam, adamw, sgd"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(optimizer="lamb"))


def test_warmup_defaults_depend_on_the_schedule():
    assert lr_at(20, OptimConfig(lr_scheduler="fixed", lr=3e-3), 8) == 3e-3
    assert lr_at(20, OptimConfig(lr_scheduler="inverse_sqrt", lr=3e-3, warmup_init_lr=0.0), 8) == pytest.approx(
        3e-3 * 20 / 4000
    )
