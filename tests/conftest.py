"""Shared fixtures.

toy_raw_dir   (session) a directory with the toy English->French corpus, 2000 pairs in total:
              train.{en,fr} 1600 lines, valid.{en,fr} 200, test.{en,fr} 200 (nmt.data.toy, seed 1).
toy_data_dir  (session) that corpus after `nmt preprocess` (en->fr, joined SentencePiece unigram
              vocabulary of 300, default cleaning): meta.json, spm.model, {train,valid,test}.{en,fr}.bin/.idx.
              Read it with nmt.data.dataset.load_split / read_meta and nmt.data.tokenizer.load_tokenizers; never
              write into it (it is shared by the whole session). Building both takes well under a second.
tiny_model    (session) an untrained 1-layer, 32-dim transformer_tiny checkpoint for toy_data_dir (path).
multi30k_dir  the real corpus directory, or a skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console

from nmt.checkpoint import save_model
from nmt.config import PreprocessConfig
from nmt.data.dataset import read_meta
from nmt.data.preprocess import preprocess
from nmt.data.tokenizer import read_blobs
from nmt.data.toy import write_toy_corpus
from nmt.models import arch_config, build_model

# Test models are tiny: one thread avoids oversubscription overhead and keeps results deterministic.
torch.set_num_threads(1)

MULTI30K = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"
TOY_PAIRS = 2000
TOY_VOCAB = 300


@pytest.fixture(scope="session")
def toy_raw_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy_raw")
    write_toy_corpus(str(out), pairs=TOY_PAIRS, seed=1)
    return out


@pytest.fixture(scope="session")
def toy_data_dir(toy_raw_dir: Path, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("toy_bin") / "data-bin"
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(toy_raw_dir / "train"),
        validpref=str(toy_raw_dir / "valid"),
        testpref=[str(toy_raw_dir / "test")],
        destdir=str(dest),
        vocab_size=TOY_VOCAB,
        joined_dictionary=True,
    )
    preprocess(cfg, console=Console(quiet=True))
    return dest


@pytest.fixture(scope="session")
def tiny_model(toy_data_dir: Path, tmp_path_factory) -> str:
    meta = read_meta(str(toy_data_dir))
    torch.manual_seed(0)
    sizes = {"encoder_layers": "1", "decoder_layers": "1", "encoder_embed_dim": "32", "decoder_embed_dim": "32"}
    sizes |= {"encoder_ffn_embed_dim": "64", "decoder_ffn_embed_dim": "64", "dropout": "0"}
    cfg = arch_config("transformer_tiny", sizes)
    v = meta["vocab_size"]
    model = build_model(cfg, v[meta["source_lang"]], v[meta["target_lang"]], meta["joined_dictionary"])
    path = tmp_path_factory.mktemp("tiny_model") / "model.pt"
    save_model(str(path), model, cfg, "transformer_tiny", meta, read_blobs(str(toy_data_dir), meta))
    return str(path)


@pytest.fixture
def multi30k_dir() -> Path:
    if not (MULTI30K / "train.en").exists():
        pytest.skip(f"real corpus not found at {MULTI30K}")
    return MULTI30K
