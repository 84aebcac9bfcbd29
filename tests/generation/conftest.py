"""Fixtures of the generation tests.

tiny_sizes  the model flags of the 1-layer, 32-dim Transformer every checkpoint here uses
ckpts       (session) checkpoints of that model on the toy vocabulary, untrained (seeded weights):
            "a" (seed 0), "b" (seed 1), "short" (seed 0, 6 source positions), and "dir" holding them
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.checkpoint import save_model
from nmt.data.dataset import read_meta
from nmt.data.tokenizer import read_blobs
from nmt.models import arch_config, build_model

SIZES = dict(
    encoder_layers="1",
    decoder_layers="1",
    encoder_embed_dim="32",
    decoder_embed_dim="32",
    encoder_ffn_embed_dim="64",
    decoder_ffn_embed_dim="64",
    dropout="0.0",
)


def _save(path: Path, data_dir: Path, seed: int, **extra) -> str:
    meta = read_meta(str(data_dir))
    torch.manual_seed(seed)
    cfg = arch_config("transformer_tiny", SIZES | extra)
    vocab = meta["vocab_size"]
    model = build_model(cfg, vocab[meta["source_lang"]], vocab[meta["target_lang"]], meta["joined_dictionary"])
    save_model(str(path), model, cfg, "transformer_tiny", meta, read_blobs(str(data_dir), meta))
    return str(path)


@pytest.fixture(scope="session")
def ckpts(toy_data_dir, tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("gen_ckpt")
    return {
        "a": _save(d / "checkpoint1.pt", toy_data_dir, 0),
        "b": _save(d / "checkpoint2.pt", toy_data_dir, 1),
        "short": _save(d / "short.pt", toy_data_dir, 0, max_source_positions="6"),
        "dir": str(d),
    }


@pytest.fixture
def tiny_sizes() -> dict[str, str]:
    return dict(SIZES)
