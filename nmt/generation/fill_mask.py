"""`nmt fill-mask`: a masked language model's most probable fillers of each `<mask>` in a text.

Shape legend: B texts, T their padded length (pieces + EOS), N masks in the batch, V vocabulary.

A text is encoded as in training (pieces + EOS) with `<mask>` as one piece (a SentencePiece
user-defined symbol: it is cut out of the text before the rest is segmented). SentencePiece writes
the space before `<mask>` as a piece of its own, "▁", which training never shows the model: there
the mask replaced a whole piece, word-initial "▁" included. So a "▁" piece right before `<mask>`
is dropped, and "minds <mask> alike" reads as "minds<mask> alike": whether the masked piece
begins a word ("▁think") or continues one ("s") is for the model to say, as in training.

Every mask of a text is filled from one forward pass, each independently of the others (the
model sees the other masks as `<mask>`, not as their fillers).

Probabilities are the model's softmax over its whole vocabulary; the special pieces and `<mask>`
itself, which training never asks it to predict, are never offered, so the K fillers of a mask sum
to at most 1.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from nmt.checkpoint import Loaded, load_model
from nmt.config import FillMaskConfig, check_fill_mask
from nmt.config.models import TransformerMLMConfig
from nmt.data.masking import NUM_SPECIAL
from nmt.data.preprocess_mono import MASK_PIECE
from nmt.data.tokenizer import EOS, PAD, UNK
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.generate import read_lines

WORD_START = "▁"  # SentencePiece's word-boundary mark


@dataclass
class Filler:
    """One candidate for a mask: its piece ("▁think"), its text ("think") and its probability."""

    piece: str
    token: str
    probability: float


@dataclass
class FilledText:
    """A text and, per `<mask>` in it (in order), its fillers, most probable first."""

    text: str
    masks: list[list[Filler]]

    def to_json(self) -> dict:
        """{"text": ..., "masks": [[{"piece", "token", "probability"}, ...] per mask]}."""
        return {"text": self.text, "masks": [[asdict(f) for f in fillers] for fillers in self.masks]}

    def to_text(self) -> str:
        """The text, then one line per mask: '  <mask> 1: think 0.8123 | thinks 0.0512 | ...'."""
        lines = [self.text]
        for n, fillers in enumerate(self.masks, start=1):
            cells = " | ".join(f"{f.token or f.piece} {f.probability:.4f}" for f in fillers)
            lines.append(f"  {MASK_PIECE} {n}: {cells}")
        return "\n".join(lines)


def load_masked_lm(path: str, device: str | torch.device = "cpu") -> Loaded:
    """A masked-LM checkpoint; any other (a language model, a translation model) is a UserError."""
    loaded = load_model(path, device)
    family = type(loaded.model_cfg).family
    if family != TransformerMLMConfig.family:
        task = ", ".join(type(loaded.model_cfg).tasks)
        raise UserError(
            f"{path} is a {task} model (architecture {loaded.arch}); fill-mask needs a masked LM (--task masked_lm)"
        )
    return loaded


def mask_id(tok) -> int:
    """The id of `<mask>` in the tokenizer's vocabulary; UserError when it has none."""
    found = tok.piece_to_id(MASK_PIECE) if hasattr(tok, "piece_to_id") else UNK
    if found == UNK:
        raise UserError(f"this model's vocabulary has no {MASK_PIECE} piece")
    return found


def encode_masked(tok, text: str, mask: int) -> list[int]:
    """Piece ids of `text` (no EOS) with `<mask>` as one piece and no "▁" piece right before it."""
    ids = tok.encode(text)
    space = tok.piece_to_id(WORD_START)
    return [i for k, i in enumerate(ids) if not (i == space and k + 1 < len(ids) and ids[k + 1] == mask)]


def _fillers(probs: torch.Tensor, allowed: torch.Tensor, topk: int, tok) -> list[Filler]:
    """The topk allowed ids of one distribution probs (V,), allowed (V,) bool."""
    k = min(topk, int(allowed.sum()))
    top = probs.masked_fill(~allowed, -1.0).topk(k)
    ids, values = top.indices.tolist(), top.values.tolist()
    return [Filler(piece, tok.decode([i]), p) for i, piece, p in zip(ids, tok.pieces(ids), values)]


def fill_mask(
    model: torch.nn.Module,
    tok,
    texts: Sequence[str],
    topk: int,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    where: Callable[[int], str] = lambda i: f"text {i + 1}",
) -> list[FilledText]:
    """The topk fillers of every `<mask>` of every text, in order (see the module doc).

    model: a masked LM (nmt.models.transformer_mlm) in eval mode on `device`; tok its tokenizer;
    where(i) names text i in errors (a text without `<mask>`, one longer than the model's positions).
    """
    mask = mask_id(tok)
    most = model.max_positions()[0]
    encoded = []
    for i, text in enumerate(texts):
        ids = encode_masked(tok, text, mask)
        if mask not in ids:
            raise UserError(f"{where(i)} has no {MASK_PIECE}: {text[:60]!r}")
        if len(ids) + 1 > most:
            raise UserError(f"{where(i)} has {len(ids)} pieces; the model takes at most {most - 1}")
        encoded.append(ids + [EOS])
    vocab = model.output_weight.size(0)
    allowed = torch.ones(vocab, dtype=torch.bool)
    allowed[:NUM_SPECIAL] = False  # PAD, UNK, BOS, EOS: never a training target
    allowed[mask] = False
    out = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        tokens = torch.full((len(chunk), max(map(len, chunk))), PAD, dtype=torch.long)  # (B, T)
        for b, ids in enumerate(chunk):
            tokens[b, : len(ids)] = torch.tensor(ids)
        tokens = tokens.to(device)
        is_mask = tokens.eq(mask)  # (B, T)
        with torch.inference_mode():
            logits = model(tokens, tokens.eq(PAD), masked=is_mask)  # (N, V), row-major: text by text
        probs = logits.float().softmax(dim=-1).cpu()  # (N, V)
        row = 0
        for b, ids in enumerate(chunk):
            n = ids.count(mask)
            masks = [_fillers(probs[row + m], allowed, topk, tok) for m in range(n)]
            out.append(FilledText(texts[start + b], masks))
            row += n
    return out


def read_texts(cfg: FillMaskConfig) -> tuple[list[str], Callable[[int], str]]:
    """The texts of the arguments or of --input (a file or '-'), and how errors name text i."""
    if cfg.input is None:
        return list(cfg.texts), lambda i: f"text {i + 1}"
    if cfg.input == "-":
        return list(read_lines(sys.stdin.buffer, "stdin")), lambda i: f"stdin: line {i + 1}"
    try:
        with open(cfg.input, "rb") as stream:
            texts = list(read_lines(stream, cfg.input))
    except OSError as e:
        raise UserError(f"--input {cfg.input}: {e.strerror or e}") from None
    return texts, lambda i: f"{cfg.input}: line {i + 1}"


def run(cfg: FillMaskConfig) -> list[FilledText]:
    """`nmt fill-mask`: check, load the masked LM, fill every text's masks."""
    check_fill_mask(cfg)
    device = resolve_device(cfg.device)
    loaded = load_masked_lm(cfg.path, device)
    texts, where = read_texts(cfg)
    with process_settings():
        return fill_mask(loaded.model, loaded.src_tok, texts, cfg.topk, device, cfg.batch_size, where)
