"""`nmt train` flags come from the config dataclasses; bad ones fail with a line naming them."""

import re

import pytest

from nmt.errors import UserError
from nmt.flags import parse_train_args, split_args


def test_flags_map_to_train_optim_and_model_fields():
    cfg, model = parse_train_args(
        [
            "data-bin/x",
            "--arch",
            "transformer_tiny",
            "--max-tokens",
            "2048",
            "--lr",
            "7e-4",
            "--adam-betas",
            "(0.9, 0.99)",
            "--encoder-layers",
            "2",
            "--share-all-embeddings",
            "--no-save",
            "--amp=bf16",
            "--normalize-before",
            "false",
        ]
    )
    assert cfg.data == "data-bin/x" and cfg.arch == "transformer_tiny"
    assert cfg.max_tokens == 2048 and cfg.amp == "bf16" and cfg.no_save is True
    assert cfg.optim.lr == 7e-4 and cfg.optim.adam_betas == (0.9, 0.99)
    assert model == {"encoder_layers": "2", "share_all_embeddings": "true", "normalize_before": "false"}


def test_bool_switch_followed_by_positional():
    pos, vals = split_args(["--share-all-embeddings", "data"], {"share_all_embeddings": bool})
    assert pos == ["data"] and vals == {"share_all_embeddings": "true"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["d", "--max-tokens", "0"], "--max-tokens must be > 0"),
        (["d", "--warmup-updates", "-5"], "--warmup-updates must be >= 0"),
        (["d", "--lr", "nan"], "--lr: cannot read 'nan'"),
        (["d", "--max-tokens", "many"], "--max-tokens: cannot read 'many'"),
        (["d", "--amp", "fp8"], "--amp must be none, bf16 or fp16"),
        (["d", "--encoder-layerz", "2"], "did you mean --encoder-layers"),
        (["d", "--arch", "transformer_tinyy"], "did you mean 'transformer_tiny'"),
        ([], "one DATA_DIR"),
        (["d", "--lr"], "--lr needs a value"),
        (["d", "--best-checkpoint-metric", "bleu"], "needs --eval-bleu"),
        (["d", "--ema-decay", "1"], "--ema-decay must be in [0, 1) (0 = off)"),
        (["d", "--ema-start-update", "-1"], "--ema-start-update must be >= 0"),
    ],
)
def test_bad_flags_name_the_flag(args, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_train_args(args)
