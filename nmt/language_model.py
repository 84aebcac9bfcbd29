"""The Python API of a language model (GPT-style, family transformer_lm): continue prompts, score texts.

    >>> from nmt import LanguageModel
    >>> lm = LanguageModel.load("ckpt-lm/checkpoint_best.pt")
    >>> lm.generate("A man rides")[0].text          # the continuation of the prompt
    >>> lm.perplexity(["A man rides a bike."])

Every method goes through the code of a command, so the API and the CLI agree exactly: `generate`
is `nmt generate --input` on a language model (nmt.generation.generate.translate_lines with its
prompts, options checked by nmt.config.check_generate; scores are those of the H lines of
`--format fairseq`, in base 2), and `score` / `perplexity` use `nmt eval-lm`'s per-token loss
(nmt.generation.eval_lm.token_nll), in nats. Each text is scored on its own, from BOS: its
pieces and EOS are the scored tokens. Options default to the fields of GenerateConfig, the only
home of defaults; an unknown option or a value of the wrong type is a UserError.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from nmt.api_args import LN2, SEARCH_OPTIONS, as_texts, config_from_options, quantize_option
from nmt.checkpoint import load_models
from nmt.config import GenerateConfig, check_generate
from nmt.data.dataset import batch_by_tokens
from nmt.data.monolingual import pad_batch
from nmt.data.tokenizer import BOS, EOS
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.decoding import Hypothesis
from nmt.generation.eval_lm import LMScore, token_nll
from nmt.generation.generate import decoding_models, translate_lines
from nmt.generation.output import Stats
from nmt.generation.prompts import LANGUAGE_MODELING, model_kind
from nmt.viz.capture import lm_attention
from nmt.viz.plot import Attention

SCORE_OPTIONS = ("max_tokens", "batch_size")


@dataclass
class Continuation:
    """One continuation of a prompt: detokenized text (without the prompt), score (length-normalised,
    base 2: the H line's number), pieces (without EOS) and positional_scores (per piece and EOS, base 2)."""

    text: str
    score: float
    pieces: list[str]
    positional_scores: list[float]


@dataclass
class ScoredText:
    """A text scored by the model from BOS: its pieces, `tokens` scored (pieces + EOS), `logprob` (the
    sum of their natural log-probabilities), `loss` (nats per token: -logprob / tokens), `bits` (loss /
    ln 2) and `perplexity` (exp(loss)), as `nmt eval-lm` computes them."""

    text: str
    pieces: list[str]
    tokens: int
    logprob: float
    loss: float
    bits: float
    perplexity: float


class LanguageModel:
    """One language model checkpoint, or several forming an ensemble (see the module doc)."""

    def __init__(self, path: str, loaded: list, device: torch.device) -> None:
        self.path = path  # a.pt or a.pt:b.pt
        self.loaded = loaded  # nmt.checkpoint.Loaded per model
        self.models = [item.model.eval() for item in loaded]
        self.device = device
        self.tok = loaded[0].tgt_tok

    @classmethod
    def load(
        cls,
        path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
        device: Optional[str] = None,
        quantize: Optional[str] = None,
    ) -> "LanguageModel":
        """path: a checkpoint, "a.pt:b.pt" or a list of checkpoints (an ensemble); device: auto | cpu | cuda
        (None: GenerateConfig's default, auto);
        quantize: none | int8 (None: GenerateConfig's default, none), as `nmt generate --quantize`: int8 linear
        layers, on CPU only. A translation or masked-LM checkpoint is a UserError."""
        paths = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
        joined = ":".join(paths)
        if not any(joined.split(":")):
            raise UserError("path names no checkpoint")
        resolved = resolve_device(device or GenerateConfig().device)
        quantize = quantize_option(quantize, resolved)
        loaded = load_models(joined, resolved)
        if model_kind(loaded, joined) != LANGUAGE_MODELING:
            raise UserError(f"{joined} is a translation model: load it with nmt.Translator")
        decoding_models(loaded, quantize)  # in place: every method then uses the int8 models
        return cls(joined, loaded, resolved)

    # ------------------------------------------------------------------------- generate
    def _continuation(self, h: Hypothesis) -> Continuation:
        ids = h.tokens.tolist()
        pos = [p / LN2 for p in h.positional_scores.tolist()]
        return Continuation(self.tok.decode(ids), h.score / LN2, self.tok.pieces(ids[:-1]), pos)

    def generate(self, prompts: Union[str, Sequence[str]], **options) -> list:
        """Per prompt, its continuations (list[Continuation], best first, `nbest` of them); a single str
        gives its list alone. An empty prompt continues from BOS alone. options: the search fields of
        GenerateConfig (beam, nbest, lenpen, max_len_a, max_len_b, min_len, no_repeat_ngram_size, unkpen,
        sampling, sampling_topk, sampling_topp, temperature, seed, max_tokens, batch_size, amp,
        chunk_size, workers)."""
        lines, single = as_texts(prompts, "prompts")
        cfg = config_from_options(GenerateConfig, SEARCH_OPTIONS, options, {"path": self.path, "input": "-"})
        check_generate(cfg)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise UserError("amp='fp16' needs a CUDA device (use bf16 on CPU)")
        stats, out = Stats(prompts=True), []
        with process_settings():
            for chunk in translate_lines(self.models, lines, self.tok, cfg, self.device, stats, prompts=True):
                out += [[self._continuation(h) for h in hyps] for _, hyps in chunk]
        return out[0] if single else out

    # ------------------------------------------------------------------------- score
    def _nll(self, tokens: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T) per-token loss in nats; an ensemble averages the models' probabilities of each target."""
        per_model = [token_nll(model, tokens, target) for model in self.models]
        if len(per_model) == 1:
            return per_model[0]
        return -(torch.logsumexp(-torch.stack(per_model), dim=0) - math.log(len(per_model)))

    def score(self, texts: Union[str, Sequence[str]], **options) -> list:
        """Each text scored on its own from BOS: list[ScoredText] in input order (one ScoredText for a str).
        options: max_tokens, batch_size (fields of GenerateConfig)."""
        lines, single = as_texts(texts, "texts")
        cfg = config_from_options(GenerateConfig, SCORE_OPTIONS, options, {"path": self.path, "input": "-"})
        check_generate(cfg)
        ids = [self.tok.encode(text.strip()) for text in lines]
        most = min(int(m.max_positions()[1]) for m in self.models)
        for i, seq in enumerate(ids):
            if len(seq) + 1 > most:
                raise UserError(f"texts[{i}] has {len(seq)} pieces; the model takes at most {most - 1}")
        out: list = [None] * len(lines)
        sizes = np.array([len(seq) for seq in ids], dtype=np.int64)
        with process_settings():
            for idx in batch_by_tokens(sizes, None, cfg.max_tokens, cfg.batch_size):
                samples = [(np.array([BOS, *ids[i]]), np.array([*ids[i], EOS])) for i in idx.tolist()]
                batch = pad_batch(samples, idx).to(self.device)
                nll = self._nll(batch.tokens, batch.target).double().sum(dim=1)  # (B,)
                for row, i in enumerate(idx.tolist()):
                    s = LMScore(len(ids[i]) + 1, float(nll[row]))
                    out[i] = ScoredText(
                        lines[i], self.tok.pieces(ids[i]), s.tokens, -s.nll, s.loss, s.bits, s.perplexity
                    )
        return out[0] if single else out

    def perplexity(self, texts: Union[str, Sequence[str]], **options) -> float:
        """exp of the mean per-token loss (nats) over all tokens of the texts, each scored on its own
        (`score`); options as score's."""
        scored = self.score([texts] if isinstance(texts, str) else texts, **options)
        return LMScore(sum(s.tokens for s in scored), -sum(s.logprob for s in scored)).perplexity

    # ------------------------------------------------------------------------- attention
    def attention(self, text: str) -> Attention:
        """The causal self-attention maps ("dec_self", every layer and head) of one text, teacher-forced
        (BOS + pieces), as `nmt visualize-attn --source TEXT` captures them; draw them with
        nmt.plot_attention(..., kind="dec_self"). With an ensemble, the first model's attention."""
        if not isinstance(text, str):
            raise UserError(f"attention: text must be a str, got {type(text).__name__}")
        label = os.path.splitext(os.path.basename(self.path.split(":")[0]))[0]
        return lm_attention(self.loaded[0], text, self.device, label)
