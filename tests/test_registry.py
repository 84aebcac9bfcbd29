"""nmt.registry: `register` fills a table once per name; `lookup` fails in one line naming the choices."""

from __future__ import annotations

import pytest

from nmt import registry
from nmt.errors import UserError
from nmt.registry import lookup, register


def _table() -> dict:
    """A table of three names filled through the decorator (the real ones are left alone)."""
    table: dict = {}

    @register(table, "transformer_tiny")
    def tiny():
        return "tiny"

    @register(table, "lstm_luong")
    def luong():
        return "luong"

    @register(table, "transformer_base")
    def base():
        return "base"

    return table


def test_register_adds_the_object_under_its_name_and_returns_it_unchanged():
    table: dict = {}

    def build():
        return 1

    assert register(table, "a")(build) is build  # still usable under its own name
    assert table == {"a": build}
    cls = register(table, "b")(type("B", (), {}))
    assert table == {"a": build, "b": cls}
    t = _table()
    assert list(t) == ["transformer_tiny", "lstm_luong", "transformer_base"]
    assert [f() for f in t.values()] == ["tiny", "luong", "base"]


def test_registering_a_name_twice_raises_and_keeps_the_first():
    table = _table()
    first = table["lstm_luong"]
    with pytest.raises(ValueError, match=r"^'lstm_luong' is registered twice$"):

        @register(table, "lstm_luong")
        def other():
            return "other"

    assert table["lstm_luong"] is first and len(table) == 3


def test_lookup_returns_the_registered_object():
    table = _table()
    for name, obj in table.items():
        assert lookup(table, name, "arch") is obj


def test_unknown_name_lists_the_sorted_choices_and_the_closest_one():
    table = _table()
    with pytest.raises(UserError) as e:
        lookup(table, "transformer_tiy", "architecture")
    assert str(e.value) == (
        "unknown architecture 'transformer_tiy' (did you mean 'transformer_tiny'?); "
        "valid choices: lstm_luong, transformer_base, transformer_tiny"
    )
    with pytest.raises(UserError) as e:
        lookup(table, "lstm_lung", "architecture")
    assert "(did you mean 'lstm_luong'?)" in str(e.value)


def test_unknown_name_with_nothing_close_lists_the_choices_only():
    with pytest.raises(UserError) as e:
        lookup(_table(), "gpt", "arch")
    assert str(e.value) == "unknown arch 'gpt'; valid choices: lstm_luong, transformer_base, transformer_tiny"
    with pytest.raises(UserError) as e:
        lookup({}, "x", "optimizer")
    assert str(e.value) == "unknown optimizer 'x'; valid choices: "


def test_names_are_exact():
    for near in ("LSTM_Luong", "lstm_luong ", "lstm-luong"):
        with pytest.raises(UserError, match="valid choices: lstm_luong, transformer_base, transformer_tiny$"):
            lookup(_table(), near, "arch")


def test_the_real_tables_are_filled_when_nmt_is_imported():
    import nmt.models  # noqa: F401  (imports every model module, which register themselves)
    import nmt.training.trainer  # noqa: F401

    assert {"transformer_tiny", "transformer_base", "lstm_luong"} <= set(registry.ARCHS)
    assert {"transformer", "lstm"} <= set(registry.MODELS)
    assert {"adam", "adamw", "sgd"} <= set(registry.OPTIMIZERS)
    assert {"inverse_sqrt", "cosine", "fixed"} <= set(registry.LR_SCHEDULERS)
    assert {"label_smoothed_cross_entropy", "cross_entropy"} <= set(registry.CRITERIA)
    assert lookup(registry.ARCHS, "transformer_tiny", "architecture") is registry.ARCHS["transformer_tiny"]
