"""Running a model for its attention: teacher-forced capture as arrays, and the model's own translation.

Shape legend: B batch, H heads, S source length, T target length.

Kinds: `enc_self` (source x source), `dec_self` (decoder input x decoder input, causal: the
upper triangle is masked and shows as zero), `cross` (target x source: row i is the step that
predicts target piece i, columns are source pieces). Capture is one teacher-forced pass through
the model's explicit attention path: `encode(..., need_attn=True)` then
`decode(tgt_in, ..., need_attn=True)` over the whole target at once. Only the model protocol of
nmt.models is used, so every family is captured the same way.

When no target is given, the one forced through the model is its own beam translation
(`translate`, `translate_many`: nmt.generation's search, so the same hypotheses as `nmt generate`).

The monolingual families read one text (`text_ids`): a language model (decoder only) as its
decoder input, BOS + pieces, teacher-forced (dec_self only: its `encode` has no attention); a
masked LM (encoder only, no `decode`) as its source, pieces + EOS (enc_self only), with `<mask>`
read as `nmt fill-mask` reads it. `lm_attention` and `mlm_attention` return one text's maps as
the `Attention` that `nmt visualize-attn` draws.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nmt.checkpoint import Loaded
from nmt.config import GenerateConfig
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.errors import UserError
from nmt.generation.fill_mask import encode_masked, mask_id
from nmt.generation.search import translate_batch
from nmt.viz.plot import Attention
from nmt.viz.stats import KINDS

LANGUAGE_MODELING, MASKED_LM = "language_modeling", "masked_lm"


def capture_batch(
    model: torch.nn.Module, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor
) -> dict[str, list[torch.Tensor]]:
    """Teacher-forced attention of a batch: {kind: [(B, H, T_q, T_k) per layer]} (kinds present only).

    src (B, S), src_pad_mask (B, S) True at padding, tgt_in (B, T) = BOS + pieces. Weights are
    float32 on the CPU; a family returning (B, T, S) for single-head attention gets H = 1.
    A model without `decode` (an encoder alone: a masked LM) gives its encoder's maps only.
    """
    dec_attn = None
    with torch.inference_mode():
        memory, enc_attn = model.encode(src, src_pad_mask, need_attn=True)
        if hasattr(model, "decode"):
            _, _, dec_attn = model.decode(tgt_in, memory, src_pad_mask, None, need_attn=True)
    out: dict[str, list[torch.Tensor]] = {}
    for group in (enc_attn or {}, dec_attn or {}):
        for kind, layers in group.items():
            if kind in KINDS and layers:
                out[kind] = [(w if w.dim() == 4 else w.unsqueeze(1)).float().cpu() for w in layers]
    return out


def capture_sentence(
    model: torch.nn.Module, src: Sequence[int], tgt: Sequence[int], device: torch.device | str = "cpu"
) -> dict[str, list[np.ndarray]]:
    """Attention of one sentence pair of piece ids (no specials): {kind: [(H, T_q, T_k) per layer]}.

    The model sees src + EOS and BOS + tgt; so enc_self is (S+1, S+1), dec_self (T+1, T+1) and
    cross (T+1, S+1), row i of cross being the step that predicts (tgt + EOS)[i].
    """
    src_t = torch.tensor([list(src) + [EOS]], dtype=torch.long, device=device)  # (1, S)
    tgt_in = torch.tensor([[BOS] + list(tgt)], dtype=torch.long, device=device)  # (1, T)
    attn = capture_batch(model, src_t, src_t.eq(PAD), tgt_in)
    return {kind: [w[0].numpy() for w in layers] for kind, layers in attn.items()}


def translate(model: torch.nn.Module, src: Sequence[int], beam: int, device: torch.device | str) -> list[int]:
    """The model's own translation of one sentence (piece ids, no EOS) with nmt.generation.decoding."""
    return translate_many(model, [src], beam, device)[0]


def translate_many(
    model: torch.nn.Module, sources: Sequence[Sequence[int]], beam: int, device: torch.device | str, batch: int = 32
) -> list[list[int]]:
    """Best hypotheses (piece ids, no EOS) of many sentences, in order, `batch` at a time."""
    cfg = GenerateConfig(beam=beam)
    out: list[list[int]] = []
    for start in range(0, len(sources), batch):
        chunk = [list(s) + [EOS] for s in sources[start : start + batch]]
        width = max(len(s) for s in chunk)
        src = torch.full((len(chunk), width), PAD, dtype=torch.long)  # (B, S)
        for i, s in enumerate(chunk):
            src[i, : len(s)] = torch.tensor(s)
        src = src.to(device)
        with torch.inference_mode():
            hyps = translate_batch([model], src, src.eq(PAD), cfg)
        for nbest in hyps:
            ids = nbest[0].tokens.tolist()
            out.append(ids[:-1] if ids and ids[-1] == EOS else ids)
    return out


# ----------------------------------------------------------------------------- one text (LM, masked LM)
def task_of(loaded: Loaded) -> str:
    """The task a checkpoint's model serves: translation, language_modeling or masked_lm."""
    return type(loaded.model_cfg).tasks[0]


def text_ids(loaded: Loaded, text: str) -> list[int]:
    """Piece ids of a text as the model reads it (no specials); `<mask>` as fill-mask reads it for a masked LM."""
    if task_of(loaded) == MASKED_LM:
        return encode_masked(loaded.src_tok, text, mask_id(loaded.src_tok))
    return loaded.src_tok.encode(text)


def text_pair(task: str, ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """(src, tgt) for `capture_sentence` of one text: a language model reads it as its decoder input
    (BOS + pieces), any other model as its source (pieces + EOS), with no target."""
    return ([], list(ids)) if task == LANGUAGE_MODELING else (list(ids), [])


def text_attention(loaded: Loaded, text: str, device: torch.device | str = "cpu", label: str = "model") -> Attention:
    """Every self-attention map of one text through a language model (dec_self over BOS + pieces,
    teacher-forced) or a masked LM (enc_self over pieces + EOS): what `nmt visualize-attn --source TEXT`
    draws. A text longer than the model's positions is a UserError."""
    task = task_of(loaded)
    if task not in (LANGUAGE_MODELING, MASKED_LM):
        raise UserError(f"architecture {loaded.arch} is a {task} model: give it a source and a target")
    if not isinstance(text, str):
        raise UserError(f"attention: text must be a str, got {type(text).__name__}")
    ids = text_ids(loaded, text)
    most = loaded.model.max_positions()[0]
    if len(ids) + 1 > most:
        raise UserError(f"text has {len(ids)} pieces; the model takes at most {most - 1}")
    src, tgt = text_pair(task, ids)
    tok = loaded.src_tok
    lm = task == LANGUAGE_MODELING
    return Attention(
        source="" if lm else text,  # as given: "a <mask>" and "a<mask>" read alike
        target=tok.decode(tgt) if lm else "",
        target_origin="text" if lm else "",
        src_pieces=[] if lm else tok.pieces(src + [EOS]),
        tgt_in_pieces=tok.pieces([BOS] + tgt) if lm else [],
        tgt_pieces=tok.pieces(tgt + [EOS]) if lm else [],
        weights=capture_sentence(loaded.model, src, tgt, device),
        label=label,
    )


def lm_attention(loaded: Loaded, text: str, device: torch.device | str = "cpu", label: str = "model") -> Attention:
    """A language model's causal self-attention ("dec_self") of one text, teacher-forced (BOS + pieces)."""
    if task_of(loaded) != LANGUAGE_MODELING:
        raise UserError(f"architecture {loaded.arch} is not a language model")
    return text_attention(loaded, text, device, label)


def mlm_attention(loaded: Loaded, text: str, device: torch.device | str = "cpu", label: str = "model") -> Attention:
    """A masked LM's self-attention ("enc_self") of one text (pieces + EOS)."""
    if task_of(loaded) != MASKED_LM:
        raise UserError(f"architecture {loaded.arch} is not a masked language model")
    return text_attention(loaded, text, device, label)
