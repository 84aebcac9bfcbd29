"""Helpers shared by several test files (importable because pytest puts tests/ on sys.path)."""

import dataclasses


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
