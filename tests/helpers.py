"""Helpers shared by several test files (importable because pytest puts tests/ on sys.path)."""

import dataclasses
import socket
import sys

import pytest

# `nmt train` flags of a 1-layer, 32-dim Transformer with small batches on one thread: the size of
# the training runs the reliability and checkpointing tests make.
TINY_TRAIN = [
    *("--arch", "transformer_tiny", "--encoder-layers", "1", "--decoder-layers", "1"),
    *("--encoder-embed-dim", "32", "--decoder-embed-dim", "32"),
    *("--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64"),
    *("--encoder-attention-heads", "2", "--decoder-attention-heads", "2"),
    *("--max-tokens", "600", "--threads", "1"),
]


def shrink(cfg):
    """A fast copy of any model config: 2 layers, dim 16, FFN 32, 2 heads, hidden 16, no dropout."""
    changes = {}
    for f in dataclasses.fields(cfg):
        n = f.name
        if n in ("encoder_layers", "decoder_layers"):
            changes[n] = 2
        elif n.endswith("_ffn_embed_dim"):
            changes[n] = 32
        elif n.endswith("_embed_dim"):
            changes[n] = 16
        elif n.endswith("_attention_heads"):
            changes[n] = 2
        elif n.endswith("hidden_size"):
            changes[n] = 16
        elif "dropout" in n:
            changes[n] = 0.0
    return dataclasses.replace(cfg, **changes)


def cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run `nmt ARGS` in this process through the real entry point; (exit code, stdout, stderr)."""
    from nmt import cli as nmt_cli

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nmt", *args])
    with pytest.raises(SystemExit) as e:
        nmt_cli.main()
    out = capsys.readouterr()
    return (e.value.code or 0), out.out, out.err


def free_port() -> int:
    """A TCP port free on the loopback interface now, for a rendezvous (a fixed port can still be
    held by the previous run's socket, and two runs at once would collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
