"""A language model overfitted on four sentences, trained through the real `nmt train` (imported by the
tests of prompts, eval-lm and LanguageModel).

`lm_files(tmp_path_factory)` writes, once per test session (later calls find the files):
    raw/{train,valid,test}.en   the four sentences (train: ten times over; test: the first alone)
    data-bin                    `nmt preprocess --only-source -s en` of them (SentencePiece, 40 pieces)
    ckpt/checkpoint_best.pt     a 1-layer, 32-dim transformer_lm_tiny after 300 updates (about 6 s):
                                it continues the start of each sentence with exactly the rest of it
and returns a LMFiles with those paths; `mlm_checkpoint` an untrained masked LM for the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from monodata import make_mono_dir

from nmt.checkpoint import save_model
from nmt.data.dataset import read_meta
from nmt.data.tokenizer import read_blobs
from nmt.flags import parse_train_args
from nmt.models import arch_config, build_for_data
from nmt.training.loop import train

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a small red boat sails on the calm blue lake",
    "my old cat sleeps all day in the warm sun",
    "two tall trees stand near the quiet river bank",
]
LM_FLAGS = [
    *("--task", "language_modeling", "--arch", "transformer_lm_tiny", "--decoder-layers", "1"),
    *("--decoder-embed-dim", "32", "--decoder-ffn-embed-dim", "64", "--decoder-attention-heads", "2"),
    *("--tokens-per-sample", "64", "--max-tokens", "512", "--lr", "1e-2", "--warmup-updates", "10"),
    *("--dropout", "0", "--max-update", "300", "--threads", "1", "--log-interval", "100", "--keep-last-epochs", "1"),
]


@dataclass
class LMFiles:
    raw: Path
    data: Path
    checkpoint: Path


def lm_files(tmp_path_factory) -> LMFiles:
    root = tmp_path_factory.getbasetemp() / "tiny_lm"
    files = LMFiles(root / "raw", root / "data-bin", root / "ckpt" / "checkpoint_best.pt")
    if files.checkpoint.exists():
        return files
    files.raw.mkdir(parents=True)
    (files.raw / "train.en").write_text("\n".join(SENTENCES * 10) + "\n", encoding="utf-8")
    (files.raw / "valid.en").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    (files.raw / "test.en").write_text(SENTENCES[0] + "\n", encoding="utf-8")
    make_mono_dir(files.raw, files.data, vocab_size=40, testpref=[str(files.raw / "test")])
    cfg, overrides = parse_train_args([str(files.data), "--save-dir", str(root / "ckpt"), *LM_FLAGS])
    assert train(cfg, overrides) == 0
    return files


def mlm_checkpoint(files: LMFiles, path: Path) -> Path:
    """An untrained 1-layer mlm_tiny for the data of `files`, saved at `path`."""
    meta = read_meta(str(files.data))
    cfg = arch_config("mlm_tiny", {"encoder_layers": "1", "encoder_embed_dim": "32", "encoder_ffn_embed_dim": "64"})
    torch.manual_seed(0)
    save_model(str(path), build_for_data(cfg, meta), cfg, "mlm_tiny", meta, read_blobs(str(files.data), meta))
    return path
