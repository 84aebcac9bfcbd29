"""nmt: a small, fast, readable neural machine translation toolkit.

The Python API (docs/python.md): `Translator` loads a checkpoint and translates, scores and
captures attention; `plot_attention` draws it (a matplotlib Figure, shown inline in notebooks);
`LanguageModel` loads a language model and continues prompts and scores texts; `MaskFiller`
loads a masked LM and fills in each `<mask>`.
"""

from nmt.language_model import Continuation, LanguageModel, ScoredText
from nmt.mask_filler import FilledText, Filler, MaskFiller
from nmt.translator import Scored, Translation, Translator
from nmt.viz.plot import Attention, plot_attention

__version__ = "0.1.0"

__all__ = [
    "Attention",
    "Continuation",
    "FilledText",
    "Filler",
    "LanguageModel",
    "MaskFiller",
    "Scored",
    "ScoredText",
    "Translation",
    "Translator",
    "plot_attention",
    "__version__",
]
