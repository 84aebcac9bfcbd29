"""The self-contained HTML report of `nmt visualize-attn --html` (OUT/report.html).

One file that opens anywhere: figures embedded as base64 PNG, inline CSS, no external URL.
Sections: the sentence and its target, the pieces on the figures' axes, one line per model, kind
and layer naming what its heads do, the heatmaps, the comparison figures (with several models),
the per-head statistics table and a key to its columns and labels. Every text, the pieces included,
is HTML text (escaped), never an image of text: the browser draws any script in its own fonts,
whatever fonts the machine that drew the figures had.
"""

from __future__ import annotations

import base64
import html

from nmt.fileio import atomic_write
from nmt.viz.figures import Figure
from nmt.viz.tables import SHORT, TEXT_COLUMNS, cell, table_columns

CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td.t { text-align: left; }
code { background: #f4f4f4; padding: 0 3px; }
p.pieces code { margin-right: 2px; white-space: pre; }
"""

STATS_HELP = """<p style="font-size:0.85em">entropy: normalized by log of the visible length (1 = uniform);
max: mean largest weight; dist / offset: mean (absolute / signed) key distance from the diagonal;
eos: weight on EOS (BOS for decoder self-attention); self / prev / next: weight on the query's own,
previous and next position; diag: share of rows whose argmax is the monotone diagonal (cross).
Labels: first rule that holds of EOS/BOS sink (eos &ge; 0.5), self / previous token / next token
(&ge; 0.5), diagonal/monotone (diag &ge; 0.5), focused (max &ge; 0.5), broad (entropy &ge; 0.75), else mixed.</p>"""


def sentence_lines(sentence) -> list[tuple[str, str, str]]:
    """(what, note, text) per line saying what the model read: the source and the target of a
    translation model, the one text of a language model (teacher-forced) or a masked LM."""
    if sentence.tgt_origin == "text":
        return [("text", "(teacher-forced: <s> + pieces)", sentence.tgt_text)]
    if not sentence.tgt_origin:
        return [("text", "", sentence.src_text)]
    teacher = f"({sentence.tgt_origin}, teacher-forced)"
    return [("source", "", sentence.src_text), ("target", teacher, sentence.tgt_text)]


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.png or b"").decode("ascii")
    cap = html.escape(fig.caption)
    img = f'<img alt="{html.escape(fig.name)}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{cap}</figcaption></figure>"


def _pieces_html(figures: list[Figure]) -> list[str]:
    """Each distinct axis of the figures with its pieces, in order, as text: one paragraph each."""
    seen, out = set(), []
    for fig in figures:
        if fig.axes2d is None:
            continue
        for name, labels in ((fig.axes2d.xname, fig.axes2d.xlabels), (fig.axes2d.yname, fig.axes2d.ylabels)):
            if (name, tuple(labels)) not in seen:
                seen.add((name, tuple(labels)))
                pieces = " ".join(f"<code>{html.escape(p)}</code>" for p in labels)
                out.append(f'<p class="pieces"><b>{html.escape(name)}</b>: {pieces}</p>')
    return out


def write_html(path: str, result) -> str:
    """One self-contained HTML file from a visualize result; returns path.

    `result` is an nmt.viz.attention.Result: its sentence, arch, labels (models), summaries,
    n_sentences, figures (with PNG bytes) and rows (per-head statistics) are shown.
    """
    e = html.escape
    s = result.sentence
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>attention: ' + e(sentence_lines(s)[0][2][:60]) + "</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Attention</h1>",
        "<p>architecture <code>" + e(result.arch) + "</code>; models: " + e(", ".join(result.labels)) + "</p>",
        *[f"<p><b>{e(what)}</b>{' ' * bool(note)}{e(note)}: {e(text)}</p>" for what, note, text in sentence_lines(s)],
        "<h2>Pieces on the axes</h2>",
        *_pieces_html(result.figures),
        f"<h2>Heads in words</h2><p>statistics over {result.n_sentences} sentence(s)</p><ul>",
        *[f"<li>{e(line)}</li>" for line in result.summaries],
        "</ul><h2>Heatmaps</h2>",
        *[_figure_html(f) for f in result.figures if not f.name.startswith("compare_")],
    ]
    compare = [f for f in result.figures if f.name.startswith("compare_")]
    if compare:
        parts += ["<h2>Comparison: " + e(" vs ".join(result.labels)) + "</h2>", *map(_figure_html, compare)]
    cols = table_columns(result.rows)
    parts += ['<h2>Per-head statistics</h2><table class="stats"><tr>']
    parts += [f"<th>{e(SHORT.get(c, c))}</th>" for c in cols] + ["</tr>"]
    for r in result.rows:
        cells = "".join(f"<td{' class=t' if c in TEXT_COLUMNS else ''}>{e(cell(r[c]))}</td>" for c in cols)
        parts.append(f"<tr>{cells}</tr>")
    parts += ["</table>", STATS_HELP, "</body></html>"]
    with atomic_write(path) as f:
        f.write("\n".join(parts).encode("utf-8"))
    return path
