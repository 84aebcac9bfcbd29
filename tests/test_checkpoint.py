"""Checkpoints: round trip, atomic writes, refusal of corrupt, foreign, unsafe and newer files, averaging."""

import collections
import os
import pickle

import pytest
import torch

from nmt import checkpoint as ckpt
from nmt.errors import UserError
from nmt.models import arch_config, build_model

META = {
    "source_lang": "en",
    "target_lang": "fr",
    "joined_dictionary": True,
    "vocab_size": {"en": 40, "fr": 40},
    "tokenizer": {"type": "none", "files": {"en": "dict.txt", "fr": "dict.txt"}},
}
TINY = {
    "encoder_layers": "1",
    "decoder_layers": "1",
    "encoder_embed_dim": "16",
    "decoder_embed_dim": "16",
    "encoder_ffn_embed_dim": "32",
    "decoder_ffn_embed_dim": "32",
    "encoder_attention_heads": "2",
    "decoder_attention_heads": "2",
}


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = arch_config("transformer_tiny", TINY)
    return build_model(cfg, 40, 40, True), cfg


def _save(path, seed=0):
    model, cfg = _model(seed)
    ckpt.save_model(str(path), model, cfg, "transformer_tiny", META, {"dict.txt": b"a\nb\n"})
    return model


def test_round_trip_is_exact_and_weights_only(tmp_path):
    model = _save(tmp_path / "m.pt")
    payload = ckpt.load(str(tmp_path / "m.pt"))
    rebuilt, cfg = ckpt.model_from_payload(payload)
    for (k, a), (k2, b) in zip(model.state_dict().items(), rebuilt.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k
    assert cfg == arch_config("transformer_tiny", TINY)
    torch.load(str(tmp_path / "m.pt"), weights_only=True)  # loads without unpickling code
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    _save(tmp_path / "m.pt", seed=0)
    before = (tmp_path / "m.pt").read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        _save(tmp_path / "m.pt", seed=1)
    assert (tmp_path / "m.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable nmt checkpoint"),
        (lambda p: p.write_bytes(os.urandom(2000)), "not a readable nmt checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps(_Evil())), "not a readable nmt checkpoint"),
        (lambda p: torch.save({"weights": torch.zeros(2)}, str(p)), "is not an nmt checkpoint"),
        (lambda p: torch.save({**ckpt.load(str(p)), "format_version": 99}, str(p)), "newer than this nmt supports"),
    ],
)
def test_bad_checkpoints_are_refused(tmp_path, monkeypatch, recwarn, content, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.pt"
    _save(path)
    content(path)
    recwarn.clear()
    with pytest.raises(UserError, match=message):
        ckpt.load(str(path))
    assert not (tmp_path / "pwned").exists()
    assert [str(w.message) for w in recwarn] == []  # the error is the one line the user sees


def test_other_architecture_weights_are_refused(tmp_path):
    _save(tmp_path / "m.pt")
    payload = ckpt.load(str(tmp_path / "m.pt"))
    payload["model_config"]["encoder_layers"] = 2
    with pytest.raises(UserError, match="do not fit architecture"):
        ckpt.model_from_payload(payload)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        ckpt.load(str(tmp_path / "nope.pt"))


def test_average_is_the_mean(tmp_path):
    models = [_save(tmp_path / f"checkpoint{i}.pt", seed=i) for i in (1, 2, 3)]
    paths = ckpt.epoch_checkpoints(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["checkpoint1.pt", "checkpoint2.pt", "checkpoint3.pt"]
    avg = ckpt.average(paths)
    for k, v in avg["model"].items():
        expected = sum(m.state_dict()[k].double() for m in models) / 3
        assert torch.allclose(v.double(), expected, atol=1e-7), k


def test_stale_temp_files_are_cleaned(tmp_path):
    (tmp_path / (ckpt.TMP_PREFIX + "abc.pt")).write_bytes(b"half")
    assert len(ckpt.clean_stale_temps(str(tmp_path))) == 1
    assert list(tmp_path.iterdir()) == []


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _save(tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(b"\x80\x04K\x01." + b"x" * 50), "it is not a file written by torch.save"),
        (lambda p: p.write_text("hello world\n"), "it is not a file written by torch.save"),
        (
            lambda p: (torch.save({"a": torch.ones(3)}, str(p)), p.write_bytes(p.read_bytes()[:200])),
            "the archive is truncated or corrupt",
        ),
        (
            lambda p: torch.save({"x": collections.OrderedDict, "y": _Unsafe()}, str(p)),
            "it holds objects other than plain values and tensors, and loading them could run code (refused)",
        ),
    ],
)
def test_unreadable_checkpoints_are_explained_in_plain_words(tmp_path, make, reason):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(UserError) as e:
        ckpt.load(str(path))
    assert str(e.value) == f"{path} is not a readable nmt checkpoint: {reason}"
    assert "\x1b" not in str(e.value)


class _Unsafe:
    """An object whose unpickling would call a function: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("loaded",))
