"""A masked LM trained by `nmt train --task masked_lm` until it knows its few sentences, and an
untrained language model on the same data (imported by the fill-mask, MaskFiller and attention tests).

`trained_models(tmp_path_factory)` builds them once per test session (about 8 s on one thread):
{"data": the monolingual data dir, "mlm": checkpoint_last.pt of the masked LM, "lm": the language model}.
"""

from __future__ import annotations

from pathlib import Path

import torch
from monodata import make_mono_dir

from nmt.checkpoint import save_model
from nmt.data.dataset import read_meta
from nmt.data.tokenizer import read_blobs
from nmt.flags import parse_train_args
from nmt.models import arch_config, build_for_data
from nmt.training.loop import train

SENTENCES = (
    "the cat sat on the mat .",
    "the dog ran to the park .",
    "my friend reads a good book .",
    "birds sing in the tall tree .",
)
# A BPE vocabulary of 100 makes every word of SENTENCES one piece ("▁sat"); <mask> is id 4.
MLM_TRAIN = [
    *("--task", "masked_lm", "--arch", "mlm_tiny", "--encoder-layers", "1", "--encoder-embed-dim", "32"),
    *("--encoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2", "--tokens-per-sample", "16"),
    *("--max-tokens", "512", "--lr", "1e-2", "--warmup-updates", "10", "--dropout", "0", "--max-update", "150"),
    *("--threads", "1", "--log-interval", "1000"),
]
LM_SIZES = {"decoder_layers": "2", "decoder_embed_dim": "32", "decoder_ffn_embed_dim": "64"}
LM_SIZES |= {"decoder_attention_heads": "2", "dropout": "0"}

_BUILT: dict[str, dict[str, str]] = {}  # per session temp dir: the models are built once


def trained_models(tmp_path_factory) -> dict[str, str]:
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT:
        root = tmp_path_factory.mktemp("mlm")
        raw = root / "raw"
        raw.mkdir()
        for split in ("train", "valid"):
            (raw / f"{split}.en").write_text("\n".join(SENTENCES * 2) + "\n", encoding="utf-8")
        data = make_mono_dir(raw, root / "data-bin", vocab_size=100, spm_model_type="bpe")
        cfg, overrides = parse_train_args([str(data), "--save-dir", str(root / "mlm"), *MLM_TRAIN])
        assert train(cfg, overrides) == 0
        _BUILT[key] = {"data": str(data), "mlm": str(root / "mlm" / "checkpoint_last.pt"), "lm": _lm(data, root)}
    return _BUILT[key]


def _lm(data: Path, root: Path) -> str:
    """An untrained 2-layer, 2-head transformer_lm_tiny (seed 0) saved as a checkpoint of `data`."""
    meta = read_meta(str(data))
    cfg = arch_config("transformer_lm_tiny", LM_SIZES)
    torch.manual_seed(0)
    model = build_for_data(cfg, meta)
    path = root / "lm.pt"
    save_model(str(path), model, cfg, "transformer_lm_tiny", meta, read_blobs(str(data), meta))
    return str(path)
