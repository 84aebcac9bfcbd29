"""The Python API: a trained checkpoint (or an ensemble) that translates, scores and shows its attention.

    >>> from nmt import Translator
    >>> tr = Translator.load("ckpt/checkpoint_best.pt")
    >>> tr.translate("The red car sees the small dog.")[0].text

Every method goes through the code of a command, so the API and the CLI agree exactly:
`translate` is `nmt generate` (nmt.generation.generate.translate_lines, options checked by
nmt.config.check_generate; scores are those of the H lines of `--format fairseq`), `attention` is
`nmt visualize-attn`'s capture (nmt.viz.capture), and `score` is forced decoding
(nmt.generation.forced) with search's log-prob and length rules. Scores are in base 2, as
fairseq prints them: natural log-probabilities / ln 2. Options default to the fields of
GenerateConfig and VisualizeConfig, the only home of defaults.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from nmt.api_args import LN2, SCORE_OPTIONS, SEARCH_OPTIONS, as_texts, config_from_options, quantize_option
from nmt.checkpoint import load_models
from nmt.config import GenerateConfig, VisualizeConfig, check_generate, check_visualize
from nmt.data.dataset import PairDataset, TokenArray, batch_by_tokens, collate
from nmt.data.tokenizer import BOS, EOS, PAD, UNK
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.decoding import Hypothesis
from nmt.generation.forced import forced_lprobs, sequence_scores
from nmt.generation.generate import decoding_models, translate_lines
from nmt.generation.output import Stats
from nmt.generation.prompts import TRANSLATION, model_kind
from nmt.viz.capture import capture_sentence, translate
from nmt.viz.plot import Attention

log = logging.getLogger(__name__)
ATTENTION_OPTIONS = ("beam",)


@dataclass
class Translation:
    """One hypothesis: detokenized text, score (length-normalised, base 2: the H line's number),
    pieces (without EOS, as on the H line) and positional_scores (per piece and EOS, base 2)."""

    text: str
    score: float
    pieces: list[str]
    positional_scores: list[float]


@dataclass
class Scored:
    """A given translation scored by forced decoding: logprob is the sum of the token log-probs
    (EOS included), score that sum / length**lenpen (length counts EOS), both in base 2;
    positional_scores per piece and EOS."""

    source: str
    target: str
    pieces: list[str]
    logprob: float
    score: float
    positional_scores: list[float]


class Translator:
    """One checkpoint, or several forming an ensemble, ready to translate (see the module doc)."""

    def __init__(self, path: str, loaded: list, device: torch.device) -> None:
        self.path = path  # a.pt or a.pt:b.pt
        self.loaded = loaded  # nmt.checkpoint.Loaded per model
        self.models = [item.model.eval() for item in loaded]
        self.device = device
        self.src_tok, self.tgt_tok = loaded[0].src_tok, loaded[0].tgt_tok

    @classmethod
    def load(
        cls,
        path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
        device: Optional[str] = None,
        quantize: Optional[str] = None,
    ) -> "Translator":
        """path: a checkpoint, "a.pt:b.pt" or a list of checkpoints (an ensemble); device: auto | cpu | cuda
        (None: GenerateConfig's default, auto);
        quantize: none | int8 (None: GenerateConfig's default, none), as `nmt generate --quantize`: int8 linear
        layers, on CPU only."""
        paths = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
        joined = ":".join(paths)
        if not any(joined.split(":")):
            raise UserError("path names no checkpoint")
        device_name = device or GenerateConfig().device
        resolved = resolve_device(device_name)
        quantize = quantize_option(quantize, resolved)
        loaded = load_models(joined, resolved)
        if model_kind(loaded, joined) != TRANSLATION:  # a masked LM is refused by model_kind itself
            raise UserError(f"{joined} is a language model: load it with nmt.LanguageModel")
        decoding_models(loaded, quantize)  # in place: every method then uses the int8 models
        return cls(joined, loaded, resolved)

    # ------------------------------------------------------------------------- translate
    def _search_config(self, options: dict) -> GenerateConfig:
        # The text comes from the caller: input "-" stands for it, so that check_generate's rules all apply.
        cfg = config_from_options(GenerateConfig, SEARCH_OPTIONS, options, {"path": self.path, "input": "-"})
        check_generate(cfg)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise UserError("amp='fp16' needs a CUDA device (use bf16 on CPU)")
        return cfg

    def _translation(self, h: Hypothesis) -> Translation:
        ids = h.tokens.tolist()
        pos = [p / LN2 for p in h.positional_scores.tolist()]
        return Translation(self.tgt_tok.decode(ids), h.score / LN2, self.tgt_tok.pieces(ids[:-1]), pos)

    def translate(self, sentences: Union[str, Sequence[str]], **options) -> list:
        """Per sentence, its hypotheses (list[Translation], best first, `nbest` of them; [] for a blank
        sentence); a single str gives its list alone. options: the search fields of GenerateConfig
        (beam, nbest, lenpen, max_len_a, max_len_b, min_len, no_repeat_ngram_size, unkpen, sampling,
        sampling_topk, sampling_topp, temperature, seed, max_tokens, batch_size, amp, chunk_size, workers)."""
        lines, single = as_texts(sentences, "sentences")
        cfg = self._search_config(options)
        stats, out = Stats(), []
        with process_settings():
            for chunk in translate_lines(self.models, lines, self.src_tok, cfg, self.device, stats):
                out += [[self._translation(h) for h in hyps] for _, hyps in chunk]
        if stats.truncated:
            log.warning(
                "%d source sentence(s) longer than the model's source positions were truncated", stats.truncated
            )
        return out[0] if single else out

    # ------------------------------------------------------------------------- score
    def _target_ids(self, text: str) -> list[int]:
        """Target piece ids; pieces beyond the output layer (preprocess --trim-target-vocab) are unknown."""
        meta = self.loaded[0].meta
        k = meta["vocab_size"][meta["target_lang"]]
        return [i if i < k else UNK for i in self.tgt_tok.encode(text)]

    def score(self, sources: Union[str, Sequence[str]], targets: Union[str, Sequence[str]], **options) -> list:
        """Forced decoding of each (source, target) pair, in batches: list[Scored] in input order (one
        Scored for two str). options: lenpen, max_tokens, batch_size (fields of GenerateConfig)."""
        srcs, single = as_texts(sources, "sources")
        tgts, single_tgt = as_texts(targets, "targets")
        if single != single_tgt or len(srcs) != len(tgts):
            raise UserError(f"sources and targets differ in length: {len(srcs)} and {len(tgts)} sentences")
        cfg = config_from_options(GenerateConfig, SCORE_OPTIONS, options, {"path": self.path, "input": "-"})
        check_generate(cfg)
        src_ids = [self.src_tok.encode(s.strip()) for s in srcs]
        tgt_ids = [self._target_ids(t.strip()) for t in tgts]
        max_src = min(int(m.max_positions()[0]) for m in self.models)
        max_tgt = min(int(m.max_positions()[1]) for m in self.models)
        for name, ids, most in (("sources", src_ids, max_src), ("targets", tgt_ids, max_tgt)):
            for i, seq in enumerate(ids):
                if len(seq) + 1 > most:
                    raise UserError(f"{name}[{i}] has {len(seq)} pieces; the model takes at most {most - 1}")
        pairs = PairDataset(TokenArray.from_sequences(src_ids), TokenArray.from_sequences(tgt_ids))
        out: list = [None] * len(srcs)
        with process_settings():
            for idx in batch_by_tokens(pairs.src.sizes, pairs.tgt.sizes, cfg.max_tokens, cfg.batch_size):
                batch = collate(pairs, idx)
                src, tgt_out = batch.src.to(self.device), batch.tgt_out.to(self.device)  # (B, S), (B, T)
                lprobs = forced_lprobs(self.models, src, src.eq(PAD), batch.tgt_in.to(self.device), tgt_out)
                total, normed = sequence_scores(lprobs, tgt_out, cfg.lenpen)
                for row, i in enumerate(idx.tolist()):
                    n = len(tgt_ids[i]) + 1  # pieces + EOS
                    pos = [p / LN2 for p in lprobs[row, :n].tolist()]
                    pieces = self.tgt_tok.pieces(tgt_ids[i])
                    out[i] = Scored(srcs[i], tgts[i], pieces, float(total[row]) / LN2, float(normed[row]) / LN2, pos)
        return out[0] if single else out

    # ------------------------------------------------------------------------- attention
    def attention(self, source: str, target: Union[str, None] = None, **options) -> Attention:
        """Every attention map of one sentence, as `nmt visualize-attn` captures it: the target is
        teacher-forced, or with target=None the model's own beam translation. options: beam
        (VisualizeConfig's). With an ensemble, the first model's attention."""
        if not isinstance(source, str) or (target is not None and not isinstance(target, str)):
            raise UserError("attention: source (and target, when given) must be a str")
        first = self.path.split(":")[0]
        base = {"path": first, "source": source, "target": target}
        cfg = config_from_options(VisualizeConfig, ATTENTION_OPTIONS, options, base)
        check_visualize(cfg)
        loaded = self.loaded[0]
        model = loaded.model
        src = loaded.src_tok.encode(source)
        max_src, max_tgt = model.max_positions()
        if len(src) + 1 > max_src:
            raise UserError(f"source has {len(src)} pieces; the model takes at most {max_src - 1}")
        if target is None:
            tgt, origin = translate(model, src, cfg.beam, self.device), f"translation (beam {cfg.beam})"
        else:
            tgt, origin = self._target_ids(target), "reference"
        tgt = tgt[: max_tgt - 1]
        weights = capture_sentence(model, src, tgt, self.device)
        if not weights:
            raise UserError(f"architecture {loaded.arch} has no attention to show")
        src_tok, tgt_tok = loaded.src_tok, loaded.tgt_tok
        return Attention(
            source=src_tok.decode(src),
            target=tgt_tok.decode(tgt),
            target_origin=origin,
            src_pieces=src_tok.pieces(src + [EOS]),
            tgt_in_pieces=tgt_tok.pieces([BOS] + tgt),
            tgt_pieces=tgt_tok.pieces(tgt + [EOS]),
            weights=weights,
            label=os.path.splitext(os.path.basename(first))[0],
        )
