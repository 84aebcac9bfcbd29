"""Named architectures and model construction: the one way a model is built from a config.

`arch_config` turns an architecture name and flag overrides into a model config;
`build_for_data` builds the model a config describes for the vocabularies of a data
directory's (or a checkpoint's) meta.json; `load_weights` loads a state dict strictly and
turns a mismatch into one clear line.
"""

from __future__ import annotations

import torch

from nmt import config as C
from nmt.errors import UserError
from nmt.registry import ARCHS, MODELS, lookup


def arch_config(arch: str, overrides: dict[str, str] | None = None):
    """Config of a named architecture with flag overrides applied (unknown names/keys -> UserError)."""
    cfg = lookup(ARCHS, arch, "architecture")()
    cfg = C.apply_overrides(cfg, overrides or {})
    C.check_model(cfg)
    return cfg


def build_model(cfg, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool = True) -> torch.nn.Module:
    """Instantiate the family of `cfg` (a model config dataclass)."""
    build = lookup(MODELS, cfg.family, "model family")
    return build(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)


def build_for_data(cfg, meta: dict) -> torch.nn.Module:
    """The model `cfg` describes, with the vocabulary sizes of a data dir's or checkpoint's meta."""
    vocab = meta["vocab_size"]
    joined = meta.get("joined_dictionary", False)
    return build_model(cfg, vocab[meta["source_lang"]], vocab[meta["target_lang"]], joined)


def load_weights(model: torch.nn.Module, state: dict, why: str) -> None:
    """Strict `load_state_dict`; a mismatch raises UserError "{why} (first line of torch's reason)"."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).split("\n")[0][:200]
        raise UserError(f"{why} ({first})") from None


def config_from_dict(family: str, values: dict):
    """Model config from a checkpoint's dict."""
    return C.from_dict(lookup(C.MODEL_CONFIGS, family, "model family"), values)


_SIZE_FIELDS = (
    ("encoder_layers", "enc"),
    ("decoder_layers", "dec"),
    ("encoder_embed_dim", "D"),
    ("encoder_hidden_size", "H"),
    ("encoder_ffn_embed_dim", "FFN"),
    ("encoder_attention_heads", "heads"),
    ("attention", "attn"),
    ("encoder_bidirectional", "bidir"),
)


def _sizes(cfg) -> str:
    """ "enc=6 dec=6 D=512 ...": the key sizes of a config; a decoder-only one shows its decoder_* sizes."""
    decoder_only = not hasattr(cfg, "encoder_layers")
    shown = []
    for f, short in _SIZE_FIELDS:
        if decoder_only and f.startswith("encoder_"):
            f = "decoder_" + f.removeprefix("encoder_")
            if f == "decoder_layers":
                continue  # shown as dec=
        if hasattr(cfg, f):
            shown.append(f"{short}={getattr(cfg, f)}")
    return " ".join(shown)


def arch_summaries(vocab_size: int | None = None) -> list[dict]:
    """One row per registered arch: name, family, key sizes, and (with vocab_size) parameter count.

    Parameters are counted on the meta device, so even the big archs cost no memory or time.
    """
    rows = []
    for name in sorted(ARCHS):
        cfg = ARCHS[name]()
        row = {"arch": name, "family": cfg.family, "sizes": _sizes(cfg)}
        if vocab_size:
            with torch.device("meta"):
                model = build_model(cfg, vocab_size, vocab_size, True)
            row["params"] = sum(p.numel() for p in model.parameters())
        rows.append(row)
    return rows
