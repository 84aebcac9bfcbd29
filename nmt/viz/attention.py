"""`nmt visualize-attn`: capture every head of every layer for each kind of attention, draw it.

Shape legend: H heads, S source length, T target length.

`run` resolves the sentence (--source / --input FILE --index N / DATA_DIR --gen-subset --index N),
its target (the given reference, teacher-forced, or the model's own beam translation), the models
(--compare-init, --path, --compare ...: all teacher-forced on the same target), captures their
attention (nmt.viz.capture), measures every head (nmt.viz.stats) and writes the figures
(nmt.viz.figures), the statistics files (nmt.viz.tables) and the report (nmt.viz.html).
`cross_attention_image` renders one picture for the trainer's TensorBoard log.

A language model or a masked LM reads one text instead of a pair (nmt.viz.capture.text_pair): a
language model's causal self-attention (dec_self) of BOS + the text's pieces, teacher-forced; a
masked LM's self-attention (enc_self) of pieces + EOS. There is no target and no search: --target
is refused, --beam and --reference do not apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nmt.checkpoint import load_model
from nmt.config import check_visualize
from nmt.data.dataset import load_split, read_meta
from nmt.data.tokenizer import BOS, EOS, UNK
from nmt.device import resolve_device
from nmt.errors import UserError
from nmt.models import build_for_data
from nmt.viz import figures as R
from nmt.viz import stats as A
from nmt.viz.capture import (
    LANGUAGE_MODELING,
    capture_sentence,
    task_of,
    text_ids,
    text_pair,
    translate,
    translate_many,
)
from nmt.viz.figures import Figure
from nmt.viz.html import write_html
from nmt.viz.stats import KINDS
from nmt.viz.tables import write_stats


# ----------------------------------------------------------------------------- the command
@dataclass
class Sentence:
    """The sentence drawn: piece ids (no specials), texts, and where the target comes from."""

    src: list[int]
    tgt: list[int]
    src_text: str
    tgt_text: str
    tgt_origin: str  # "reference" | "translation (beam K)"; "text" (a language model's); "" (no target)


@dataclass
class Result:
    """What `run` produced; `rows` are per-head statistics (see nmt.viz.stats.stat_rows)."""

    out: str
    arch: str
    sentence: Sentence
    labels: list[str]  # models, in drawing order
    figures: list[Figure]
    rows: list[dict]
    summaries: list[str]  # one line per model, kind and layer
    n_sentences: int  # sentences behind the statistics
    files: list[str]


def parse_int_list(text: Optional[str], flag: str) -> list[int]:
    """'1,3-5' -> [1, 3, 4, 5] (1-based numbers for --layers / --heads); None or '' -> []."""
    out: list[int] = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-")
            values = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise UserError(f"{flag}: cannot read {part!r}; use numbers and ranges like 1,3-4") from None
        if not values or values[0] < 1:
            raise UserError(f"{flag}: {part!r} must be 1-based numbers (1, 2, ...)")
        out += [v for v in values if v not in out]
    return out


def _read_sentences(cfg, loaded) -> tuple[dict[int, tuple[list[int], Optional[list[int]]]], int]:
    """{i: (src ids, reference ids or None)} for the sentence drawn (--index) and the first
    --max-sentences ones (statistics), and the number of sentences the statistics use."""
    if cfg.source is not None:
        tgt = None
        if cfg.target is not None and task_of(loaded) != "translation":
            raise UserError(f"--target: a {task_of(loaded)} model reads one text; give it with --source alone")
        if cfg.target is not None:  # pieces beyond the output layer (preprocess --trim-target-vocab) are unknown
            k = loaded.meta["vocab_size"][loaded.meta["target_lang"]]
            tgt = [i if i < k else UNK for i in loaded.tgt_tok.encode(cfg.target)]
        return {cfg.index: (text_ids(loaded, cfg.source), tgt)}, 1
    if cfg.input is not None:
        try:
            with open(cfg.input, encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in f]
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read --input {cfg.input}: {e.__class__.__name__}") from None
        n, where = len(lines), f"{cfg.input} has {len(lines)} lines"

        def get(i: int) -> tuple[list[int], Optional[list[int]]]:
            return text_ids(loaded, lines[i]), None

    else:
        if read_meta(cfg.data).get("vocab_size") != loaded.meta.get("vocab_size"):
            raise UserError(f"{cfg.data} has a different vocabulary than the checkpoint {cfg.path}")
        split = load_split(cfg.data, cfg.gen_subset)
        use_ref = cfg.reference and split.tgt is not None
        n, where = len(split), f"split {cfg.gen_subset!r} of {cfg.data} has {len(split)} sentences"

        def get(i: int) -> tuple[list[int], Optional[list[int]]]:
            return split.src[i].tolist(), split.tgt[i].tolist() if use_ref else None

    if not 0 <= cfg.index < n:
        raise UserError(f"--index {cfg.index} is out of range: {where}")
    n_stats = min(cfg.max_sentences, n)
    return {i: get(i) for i in sorted(set(range(n_stats)) | {cfg.index})}, n_stats


def _models(cfg, loaded, device: torch.device) -> list[tuple[str, torch.nn.Module]]:
    """(label, model) in drawing order: init, --path, then every --compare."""
    models = []
    if cfg.compare_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            init = build_for_data(loaded.model_cfg, loaded.meta)
        models.append((f"init (seed {cfg.seed})", init.to(device).eval()))
    models.append((_stem(cfg.path), loaded.model))
    for path in cfg.compare:
        other = load_model(path, device)
        same = other.meta.get("vocab_size") == loaded.meta.get("vocab_size") and getattr(other, "payload", {}).get(
            "tokenizer_blobs"
        ) == getattr(loaded, "payload", {}).get("tokenizer_blobs")
        if not same:
            raise UserError(f"{path} has a different vocabulary than {cfg.path}; they cannot be compared")
        models.append((_stem(path), other.model))
    labels = [label for label, _ in models]
    return [(lab if labels.count(lab) == 1 else f"{lab} #{i + 1}", m) for i, (lab, m) in enumerate(models)]


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _selection(cfg, attn: dict[str, list[np.ndarray]], arch: str) -> list[tuple[str, list[int], list[int]]]:
    """[(kind, 0-based layers, 0-based heads)] chosen by --kinds/--layers/--heads, checked against the model."""
    if not attn:
        raise UserError(f"architecture {arch} has no attention to visualize")
    for kind in cfg.kinds:
        if kind not in KINDS:
            raise UserError(f"--kinds: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        if kind not in attn:
            raise UserError(f"architecture {arch} has no {kind} attention; it has {', '.join(attn)}")
    kinds = [k for k in KINDS if k in attn and (not cfg.kinds or k in cfg.kinds)]
    most_layers = max(len(attn[k]) for k in kinds)
    most_heads = max(w.shape[0] for k in kinds for w in attn[k])
    asked = [(n, most_layers, "--layers") for n in cfg.layers] + [(n, most_heads, "--heads") for n in cfg.heads]
    for n, most, flag in asked:
        if n > most:
            raise UserError(f"{flag} {n} is out of range: architecture {arch} has {most}")
    out = []
    for kind in kinds:
        layers = [n - 1 for n in cfg.layers if n <= len(attn[kind])] if cfg.layers else list(range(len(attn[kind])))
        heads_in = attn[kind][0].shape[0]
        heads = [n - 1 for n in cfg.heads if n <= heads_in] if cfg.heads else list(range(heads_in))
        if layers and heads:
            out.append((kind, layers, heads))
    return out


def _shapes(attn: dict[str, list[np.ndarray]]) -> dict[str, list[int]]:
    return {kind: [w.shape[0] for w in layers] for kind, layers in attn.items()}


def run(cfg) -> Result:
    """`nmt visualize-attn`: capture, figures, statistics, report (cfg: nmt.config.VisualizeConfig)."""
    check_visualize(cfg)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.path, device)
    pairs, n_stats = _read_sentences(cfg, loaded)
    index = cfg.index
    _selection(cfg, capture_sentence(loaded.model, [], [], device), loaded.arch)  # fail before any search
    models = _models(cfg, loaded, device)
    max_src, max_tgt = loaded.model.max_positions()
    chosen = sorted(pairs)
    for i in chosen:
        if len(pairs[i][0]) + 1 > max_src:
            raise UserError(f"sentence {i} has {len(pairs[i][0])} source pieces; the model takes at most {max_src - 1}")
    task = task_of(loaded)
    if task == "translation":
        missing = [i for i in chosen if pairs[i][1] is None]
        beam_out = translate_many(loaded.model, [pairs[i][0] for i in missing], cfg.beam, device)
        targets = {i: pairs[i][1] for i in chosen if pairs[i][1] is not None} | dict(zip(missing, beam_out))
        targets = {i: t[: max_tgt - 1] for i, t in targets.items()}
        origin = "reference" if pairs[index][1] is not None else f"translation (beam {cfg.beam})"
    else:  # one text each (a split's "reference" of a monolingual dir is the text itself)
        pairs = {i: text_pair(task, src) for i, (src, _) in pairs.items()}
        targets = {i: tgt for i, (_, tgt) in pairs.items()}
        origin = "text" if task == LANGUAGE_MODELING else ""
    src, tgt = pairs[index][0], targets[index]
    src_text = loaded.src_tok.decode(src)
    if task != "translation" and cfg.source is not None:  # the text as given: "a <mask>" and "a<mask>" read alike
        src_text = cfg.source
    sentence = Sentence(src, tgt, src_text, loaded.tgt_tok.decode(tgt), origin)

    main = [label for label, m in models if m is loaded.model][0]
    drawn = {label: capture_sentence(m, src, tgt, device) for label, m in models}
    selection = _selection(cfg, drawn[main], loaded.arch)
    for label, attn in drawn.items():
        if _shapes(attn) != _shapes(drawn[main]):
            raise UserError(f"{label} has a different architecture than {main}; its maps cannot be compared")

    rows, summaries = [], []
    stats_ids = list(range(n_stats)) if n_stats > 1 else [index]
    for label, model in models:
        per_sentence = (
            drawn[label] if i == index else capture_sentence(model, pairs[i][0], targets[i], device) for i in stats_ids
        )
        more_rows, more_lines = A.stat_rows(label, per_sentence, selection)
        rows += more_rows
        summaries += more_lines

    src_p = loaded.src_tok.pieces(src + [EOS])
    tgt_in_p = loaded.tgt_tok.pieces([BOS] + tgt)
    tgt_out_p = loaded.tgt_tok.pieces(tgt + [EOS])
    writer = R.FigureWriter(cfg.out, cfg.format, cfg.dpi, keep_png=cfg.html)
    try:
        for kind, layers, heads in selection:
            ax = R.axes_for(kind, src_p, tgt_in_p, tgt_out_p)
            for layer in layers:
                R.draw_layer(writer, kind, layer + 1, drawn[main][kind][layer], heads, ax, cfg.max_pieces, main)
                if len(models) > 1:
                    per_model = [(label, drawn[label][kind][layer]) for label, _ in models]
                    R.draw_compare(writer, kind, layer + 1, per_model, heads, ax, cfg.max_pieces)
    finally:
        writer.close()
    files = [f.path for f in writer.figures if f.path] + write_stats(cfg.out, rows)
    labels = [label for label, _ in models]
    result = Result(cfg.out, loaded.arch, sentence, labels, writer.figures, rows, summaries, len(stats_ids), files)
    if cfg.html:
        result.files.append(write_html(os.path.join(cfg.out, "report.html"), result))
    return result


# ----------------------------------------------------------------------------- for the trainer
def cross_attention_image(
    model: torch.nn.Module,
    src_tok,
    tgt_tok,
    sentence: str,
    device: torch.device | str,
    max_pieces: int = 40,
    dpi: int = 72,
) -> np.ndarray:
    """(height, width, 3) uint8 picture of the last layer's head-averaged cross-attention of the
    model's greedy translation of `sentence`, for SummaryWriter.add_image(..., dataformats="HWC").

    Accepts a DDP- or torch.compile-wrapped model; its train/eval mode is restored afterwards.
    Raises UserError when the model has no cross-attention.
    """
    net = getattr(model, "module", model)
    net = getattr(net, "_orig_mod", net)
    was_training = net.training
    net.eval()
    try:
        src = src_tok.encode(sentence)[: net.max_positions()[0] - 1]
        tgt = translate(net, src, 1, device)
        attn = capture_sentence(net, src, tgt, device)
    finally:
        net.train(was_training)
    if "cross" not in attn:
        raise UserError("this model has no cross-attention to draw")
    weights = attn["cross"][-1]  # (H, T, S)
    axes2d = R.axes_for("cross", src_tok.pieces(src + [EOS]), [], tgt_tok.pieces(tgt + [EOS]))
    cut, note = R.crop(axes2d, max_pieces)
    mean = weights.mean(axis=0)[: len(cut.ylabels), : len(cut.xlabels)]  # (T, S)
    panel = R.PanelFigure(1, 1, cut)
    try:
        title = f"cross-attention, last layer (greedy){note}"
        panel.show([mean], [f"mean of {weights.shape[0]} heads"], title, float(mean.max()))
        return panel.rgb(dpi)
    finally:
        panel.close()
