"""Model families and the protocol every one of them implements.

Shape legend: B batch, S source length, T target length, D model dim, H heads, V vocab.

Protocol (both families; search, trainer, generate and visualize rely on nothing else):

    forward(src, src_pad_mask, tgt_in) -> logits                       (B, T, V)
        teacher-forced training pass (what DDP wraps).
    encode(src, src_pad_mask, need_attn=False) -> (memory, attn)
        memory: dict[str, Tensor], every tensor batch-first (dim 0 = B);
        attn: None, or {"enc_self": [(B, H, S, S) per layer]} when need_attn.
    decode(tgt_in, memory, src_pad_mask, state=None, need_attn=False) -> (logits, state, attn)
        state=None: tgt_in (B, T) is the whole prefix from BOS.
        state given: tgt_in holds only the positions after those already in `state`
        (usually (B, 1)); the result equals decoding the whole prefix at once.
        state: dict[str, Tensor | list | int], every tensor batch-first, so beam search
        reorders it with `select_batch(state, order)` and never needs the family.
        attn: None, or {"dec_self": [(B, H, T, T_all) per layer], "cross": [(B, H, T, S) per layer]}
        when need_attn (families without self-attention leave that kind out).
    max_positions() -> (max source tokens, max target tokens)

Optional (the Transformer has it; the trainer checks for it): `forward(..., features_only=True)`
returns the decoder output (B, T, D) and `output_weight` (V, D) the bias-free projection to
the logits, so that the loss can be computed without holding all (B, T, V) logits at once.

`src_pad_mask` is True at padding. Tokens: src = pieces + EOS, tgt_in = BOS + pieces,
tgt_out = pieces + EOS (ids in nmt.data.tokenizer). No cache lives on modules, and no state tensor
is ever modified in place (search shares unchanged state tensors between beams).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from nmt import config as C
from nmt.errors import UserError
from nmt.registry import ARCHS, MODELS, lookup

# Explicit imports register the families and their named architectures.
from nmt.models import transformer as _transformer  # noqa: F401,E402
from nmt.models import lstm as _lstm  # noqa: F401,E402


def select_batch(tree: Any, index: torch.Tensor) -> Any:
    """index_select dim 0 of every tensor in a nested dict/list/tuple; other leaves pass through."""
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, dict):
        return {k: select_batch(v, index) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(select_batch(v, index) for v in tree)
    return tree


def arch_config(arch: str, overrides: dict[str, str] | None = None):
    """Config of a named architecture with flag overrides applied (unknown names/keys -> UserError)."""
    cfg = lookup(ARCHS, arch, "architecture")()
    cfg = C.apply_overrides(cfg, overrides or {})
    check_ranges(cfg)
    return cfg


def check_ranges(cfg) -> None:
    """Generic range checks of model config fields by their names; the message names the flag."""
    for f in dataclasses.fields(cfg):
        value, flag = getattr(cfg, f.name), "--" + f.name.replace("_", "-")
        if value is None or isinstance(value, (bool, str)):
            continue
        if "dropout" in f.name and not 0.0 <= value < 1.0:
            raise UserError(f"{flag} must be in [0, 1), got {value}")
        if f.name == "teacher_forcing_ratio" and not 0.0 <= value <= 1.0:
            raise UserError(f"{flag} must be in [0, 1], got {value}")
        if f.name.endswith(("_layers", "_dim", "_size", "_heads")) and value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
        if f.name.endswith("_positions") and value < 2:
            raise UserError(f"{flag} must be >= 2 (a token and EOS), got {value}")


def build_model(cfg, src_vocab_size: int, tgt_vocab_size: int, joined_dictionary: bool = True) -> torch.nn.Module:
    """Instantiate the family of `cfg` (a model config dataclass)."""
    build = lookup(MODELS, cfg.family, "model family")
    return build(cfg, src_vocab_size, tgt_vocab_size, joined_dictionary)


def config_from_dict(family: str, values: dict):
    """Model config from a checkpoint's dict."""
    return C.from_dict(lookup(C.MODEL_CONFIGS, family, "model family"), values)


_SIZE_FIELDS = (
    ("encoder_layers", "enc"), ("decoder_layers", "dec"), ("encoder_embed_dim", "D"), ("encoder_hidden_size", "H"),
    ("encoder_ffn_embed_dim", "FFN"), ("encoder_attention_heads", "heads"), ("attention", "attn"),
    ("encoder_bidirectional", "bidir"),
)


def arch_summaries(vocab_size: int | None = None) -> list[dict]:
    """One row per registered arch: name, family, key sizes, and (with vocab_size) parameter count.

    Parameters are counted on the meta device, so even the big archs cost no memory or time.
    """
    rows = []
    for name in sorted(ARCHS):
        cfg = ARCHS[name]()
        sizes = " ".join(f"{short}={getattr(cfg, f)}" for f, short in _SIZE_FIELDS if hasattr(cfg, f))
        row = {"arch": name, "family": cfg.family, "sizes": sizes}
        if vocab_size:
            with torch.device("meta"):
                model = build_model(cfg, vocab_size, vocab_size, True)
            row["params"] = sum(p.numel() for p in model.parameters())
        rows.append(row)
    return rows
