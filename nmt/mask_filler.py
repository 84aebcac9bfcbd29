"""The Python API of a masked language model: fill in `<mask>`, show its self-attention.

    >>> from nmt import MaskFiller
    >>> mf = MaskFiller.load("ckpt/checkpoint_best.pt")
    >>> mf.fill("Great minds <mask> alike.").masks[0][0].token
    'think'

Every method goes through the code of a command, so the API and the CLI agree exactly: `fill`
is `nmt fill-mask` (nmt.generation.fill_mask, options checked by nmt.config.check_fill_mask),
`attention` is `nmt visualize-attn`'s capture of a masked LM (nmt.viz.capture.mlm_attention).
Options default to the fields of FillMaskConfig, the only home of defaults.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch

from nmt.api_args import as_texts, config_from_options
from nmt.checkpoint import Loaded
from nmt.config import FillMaskConfig, check_fill_mask
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.fill_mask import FilledText, Filler, fill_mask, load_masked_lm
from nmt.viz.capture import mlm_attention
from nmt.viz.plot import Attention

FILL_OPTIONS = ("topk", "batch_size")

__all__ = ["FilledText", "Filler", "MaskFiller"]


class MaskFiller:
    """A masked-LM checkpoint ready to fill in `<mask>` (see the module doc)."""

    def __init__(self, path: str, loaded: Loaded, device: torch.device) -> None:
        self.path = path
        self.loaded = loaded  # nmt.checkpoint.Loaded
        self.model = loaded.model.eval()
        self.tok = loaded.src_tok
        self.device = device

    @classmethod
    def load(cls, path: Union[str, os.PathLike], device: Optional[str] = None) -> "MaskFiller":
        """path: a checkpoint of `nmt train --task masked_lm` (any other is a UserError); device: auto | cpu |
        cuda (None: FillMaskConfig's default, auto)."""
        path = os.fspath(path)
        resolved = resolve_device(device or FillMaskConfig(path=path).device)
        return cls(path, load_masked_lm(path, resolved), resolved)

    def fill(self, texts: Union[str, Sequence[str]], **options) -> Union[list[FilledText], FilledText]:
        """Per text, per `<mask>` in it, the most probable fillers (list[Filler], best first): a list of
        FilledText, or for a single str its FilledText alone. The results of `nmt
        fill-mask` for the same texts. options: topk, batch_size (fields of FillMaskConfig)."""
        lines, single = as_texts(texts, "texts")
        cfg = config_from_options(FillMaskConfig, FILL_OPTIONS, options, {"path": self.path, "input": "-"})
        check_fill_mask(cfg)
        with process_settings():
            out = fill_mask(self.model, self.tok, lines, cfg.topk, self.device, cfg.batch_size, lambda i: f"texts[{i}]")
        return out[0] if single else out

    def attention(self, text: str) -> Attention:
        """The self-attention maps ("enc_self", every layer and head) of one text (pieces + EOS), as
        `nmt visualize-attn --source TEXT` captures them; draw them with nmt.plot_attention(...,
        kind="enc_self")."""
        if not isinstance(text, str):
            raise UserError(f"attention: text must be a str, got {type(text).__name__}")
        label = os.path.splitext(os.path.basename(self.path))[0]
        return mlm_attention(self.loaded, text, self.device, label)
