"""Rendered outputs of `nmt visualize-attn`: heatmap figures, statistics tables, the HTML report.

Shape legend: H heads, T queries (rows), S keys (columns).

Figures (matplotlib, Agg backend), file names with 1-based layers:
    {kind}_L{n}.{fmt}          all (selected) heads of one layer, shared colour scale, one colour bar
    {kind}_L{n}_mean.{fmt}     the head-averaged map (over all heads of the layer)
    compare_{kind}_L{n}.{fmt}  one row per model (e.g. init, epoch 1, epoch 10): heads + mean
Figures of one layout are created once and refilled for every layer (figure creation and text
layout dominate the cost); axes are placed in inches computed from the piece count, never with
tight_layout. Sentences longer than `max_pieces` are cut, with a note in the title.

Statistics: stats.csv and stats.json (one row per model, kind, layer and head; NaN -> empty / null)
and a rich table. The HTML report is one self-contained file: figures embedded as base64 PNG,
inline CSS, no external URL.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nmt.errors import UserError  # noqa: E402
from nmt.fileio import atomic_write  # noqa: E402
from nmt.viz.stats import STAT_NAMES  # noqa: E402

KIND_TITLES = {
    "enc_self": "encoder self-attention",
    "dec_self": "decoder self-attention (masked)",
    "cross": "cross-attention",
}
KIND_AXES = {  # (x label, y label)
    "enc_self": ("source (keys)", "source (queries)"),
    "dec_self": ("decoder input (keys)", "decoder input (queries)"),
    "cross": ("source", "target (predicted piece)"),
}
FORMATS = ("png", "svg", "pdf")


# ----------------------------------------------------------------------------- layout
def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) for n panels: rows = floor(sqrt n), cols = ceil(n / rows); 8 -> (2, 4)."""
    rows = max(1, int(math.isqrt(max(n, 1))))
    return rows, math.ceil(max(n, 1) / rows)


def font_size(n_pieces: int) -> float:
    """Tick label size in points: 8 up to 20 pieces, shrinking to 5 at 50 and beyond."""
    return float(np.clip(8.0 - 3.0 * (n_pieces - 20) / 30.0, 5.0, 8.0))


def _escape(label: str) -> str:
    """Pieces are shown verbatim: '$' would start matplotlib mathtext."""
    return label.replace("$", r"\$")


@dataclass
class Axes2D:
    """What one panel shows: tick labels and axis names (shared by every panel of a figure)."""

    xlabels: list[str]
    ylabels: list[str]
    xname: str
    yname: str


@dataclass
class PanelFigure:
    """A rows x cols grid of heatmap panels with one colour bar, built once and refilled.

    Axes are placed in inches computed from the number of pieces (cell size follows the font
    size), so the figure never needs tight_layout; `show` swaps the image data, colour limits and
    titles, and `render` writes the bytes of one format.
    """

    rows: int
    cols: int
    axes2d: Axes2D
    n: int = 0  # panels in use (row-major); 0 = all. The lowest used panel of a column gets x labels.
    fig: object = field(init=False)
    axes: list = field(init=False)
    images: list = field(init=False)
    titles: list = field(init=False)  # panel titles as plain texts (set_title re-positions on every draw)

    def __post_init__(self) -> None:
        xl, yl = self.axes2d.xlabels, self.axes2d.ylabels
        n = self.n or self.rows * self.cols
        fs = font_size(max(len(xl), len(yl)))
        cell = fs / 72.0 * 1.45  # inches per piece: one label height plus a little air
        pw = float(np.clip(cell * len(xl), 1.4, 9.0))
        ph = float(np.clip(cell * len(yl), 1.4, 9.0))
        char = fs / 72.0 * 0.62  # average glyph width in inches
        left = 0.45 + char * max((len(s) for s in yl), default=1)
        bottom = 0.45 + char * max((len(s) for s in xl), default=1)
        top, right, gap_x, gap_y = 0.75, 1.0, 0.2, 0.35
        width = left + self.cols * pw + (self.cols - 1) * gap_x + right
        height = bottom + self.rows * ph + (self.rows - 1) * gap_y + top
        self.fig = plt.figure(figsize=(width, height))
        self.axes, self.images, self.titles = [], [], []
        blank = np.zeros((len(yl), len(xl)))
        # Ticks only where labels are shown and no tick marks: tick artists are most of the drawing cost.
        for r in range(self.rows):
            for c in range(self.cols):
                x0 = left + c * (pw + gap_x)
                y0 = height - top - (r + 1) * ph - r * gap_y
                ax = self.fig.add_axes((x0 / width, y0 / height, pw / width, ph / height))
                im = ax.imshow(blank, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
                lowest = (r + 1) * self.cols + c >= n
                if lowest:
                    ax.set_xticks(range(len(xl)), [_escape(s) for s in xl], rotation=90, fontsize=fs)
                else:
                    ax.set_xticks([])
                if c == 0:
                    ax.set_yticks(range(len(yl)), [_escape(s) for s in yl], fontsize=fs)
                else:
                    ax.set_yticks([])
                ax.tick_params(length=0, pad=1.5)
                ax.xaxis.set_label_coords(0.5, -0.1)  # fixed: skips the per-draw search for a free spot
                ax.yaxis.set_label_coords(-0.1, 0.5)
                self.titles.append(ax.text(0.5, 1.0, "", transform=ax.transAxes, ha="center", va="bottom", fontsize=8))
                self.axes.append(ax)
                self.images.append(im)
        # Axis names once per figure (per-axes labels would be placed by a costly sibling search).
        self.fig.text(
            (left + (width - left - right) / 2) / width,
            0.08 / height,
            self.axes2d.xname,
            ha="center",
            va="bottom",
            fontsize=fs + 1,
        )
        self.fig.text(
            0.08 / width,
            (bottom + (height - top - bottom) / 2) / height,
            self.axes2d.yname,
            ha="left",
            va="center",
            rotation=90,
            fontsize=fs + 1,
        )
        bar = ((width - right + 0.25) / width, bottom / height, 0.15 / width, self.rows * ph / height)
        self.fig.colorbar(self.images[0], cax=self.fig.add_axes(bar))
        self.title = self.fig.suptitle("", fontsize=10, y=1 - 0.25 / height)

    def show(self, maps: Sequence[np.ndarray], titles: Sequence[str], suptitle: str, vmax: float) -> None:
        """Fill the panels in row-major order (extra panels hidden); one colour scale [0, vmax]."""
        vmax = float(vmax) if vmax > 0 else 1.0
        for k, (ax, im, text) in enumerate(zip(self.axes, self.images, self.titles)):
            visible = k < len(maps)
            ax.set_visible(visible)
            if visible:
                im.set_data(maps[k])
                im.set_clim(0.0, vmax)
                text.set_text(titles[k])
        self.title.set_text(suptitle)

    def render(self, fmt: str, dpi: int) -> bytes:
        buf = io.BytesIO()
        extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}  # zlib effort is wasted on heatmaps
        self.fig.savefig(buf, format=fmt, dpi=dpi, **extra)
        return buf.getvalue()

    def close(self) -> None:
        plt.close(self.fig)


def write_atomic(path: str, data: bytes) -> None:
    """Write bytes to `path` through a temp file in the same directory and a rename."""
    with atomic_write(path) as f:
        f.write(data)


# ----------------------------------------------------------------------------- figures
@dataclass
class Figure:
    """One written figure: file path (None when only rendered for the report), PNG bytes for HTML."""

    name: str  # e.g. cross_L2_mean
    kind: str
    layer: int  # 1-based
    caption: str
    path: Optional[str]
    png: Optional[bytes]


def axes_for(kind: str, src_pieces: list[str], tgt_in_pieces: list[str], tgt_out_pieces: list[str]) -> Axes2D:
    """Tick labels of a kind: queries on y, keys on x."""
    x, y = {"enc_self": (src_pieces, src_pieces), "dec_self": (tgt_in_pieces, tgt_in_pieces)}.get(
        kind, (src_pieces, tgt_out_pieces)
    )
    return Axes2D(list(x), list(y), *KIND_AXES[kind])


def crop(axes2d: Axes2D, max_pieces: int) -> tuple[Axes2D, str]:
    """Keep at most max_pieces rows and columns; returns the cropped axes and a note for titles."""
    notes = []
    if len(axes2d.xlabels) > max_pieces:
        notes.append(f"first {max_pieces} of {len(axes2d.xlabels)} key pieces")
    if len(axes2d.ylabels) > max_pieces:
        notes.append(f"first {max_pieces} of {len(axes2d.ylabels)} query pieces")
    cut = Axes2D(axes2d.xlabels[:max_pieces], axes2d.ylabels[:max_pieces], axes2d.xname, axes2d.yname)
    return cut, (" (" + ", ".join(notes) + " shown)") if notes else ""


class FigureWriter:
    """Renders maps into reusable PanelFigures and writes them (atomically) under `out`."""

    def __init__(self, out: str, fmt: str, dpi: int, keep_png: bool) -> None:
        if fmt not in FORMATS:
            raise UserError(f"--format {fmt!r} is not supported; valid: {', '.join(FORMATS)}")
        self.out, self.fmt, self.dpi, self.keep_png = out, fmt, dpi, keep_png
        self.cache: dict[tuple, PanelFigure] = {}
        self.figures: list[Figure] = []

    def panel_figure(self, rows: int, cols: int, axes2d: Axes2D, n: int) -> PanelFigure:
        key = (rows, cols, n, tuple(axes2d.xlabels), tuple(axes2d.ylabels), axes2d.xname, axes2d.yname)
        if key not in self.cache:
            self.cache[key] = PanelFigure(rows, cols, axes2d, n)
        return self.cache[key]

    def emit(self, name: str, kind: str, layer: int, caption: str, panel: PanelFigure) -> Figure:
        data = panel.render(self.fmt, self.dpi)
        path = os.path.join(self.out, f"{name}.{self.fmt}")
        write_atomic(path, data)
        png = None
        if self.keep_png:
            png = data if self.fmt == "png" else panel.render("png", self.dpi)
        fig = Figure(name, kind, layer, caption, path, png)
        self.figures.append(fig)
        return fig

    def close(self) -> None:
        for panel in self.cache.values():
            panel.close()
        self.cache.clear()


def draw_layer(
    writer: FigureWriter,
    kind: str,
    layer: int,
    weights: np.ndarray,
    heads: Sequence[int],
    axes2d: Axes2D,
    max_pieces: int,
    who: str,
) -> list[Figure]:
    """Head grid and head-averaged map of one layer: weights (H, T, S); heads are 0-based."""
    cut, note = crop(axes2d, max_pieces)
    t, s = len(cut.ylabels), len(cut.xlabels)
    maps = [weights[h, :t, :s] for h in heads]
    vmax = max(float(m.max()) for m in maps) if maps else 1.0
    rows, cols = grid_shape(len(maps))
    title = f"{KIND_TITLES[kind]}, layer {layer} ({who}){note}"
    grid = writer.panel_figure(rows, cols, cut, len(maps))
    grid.show(maps, [f"head {h + 1}" for h in heads], title, vmax)
    figs = [writer.emit(f"{kind}_L{layer}", kind, layer, f"{title}: heads", grid)]
    mean = weights.mean(axis=0)[:t, :s]  # (T, S) over all heads of the layer
    single = writer.panel_figure(1, 1, cut, 1)
    single.show([mean], [f"mean of {weights.shape[0]} heads"], title, float(mean.max()))
    figs.append(writer.emit(f"{kind}_L{layer}_mean", kind, layer, f"{title}: head average", single))
    return figs


def draw_compare(
    writer: FigureWriter,
    kind: str,
    layer: int,
    per_model: Sequence[tuple[str, np.ndarray]],
    heads: Sequence[int],
    axes2d: Axes2D,
    max_pieces: int,
) -> Figure:
    """One row per model (label, weights (H, T, S)): the selected heads then the head average."""
    cut, note = crop(axes2d, max_pieces)
    t, s = len(cut.ylabels), len(cut.xlabels)
    maps, titles = [], []
    for label, w in per_model:
        maps += [w[h, :t, :s] for h in heads] + [w.mean(axis=0)[:t, :s]]
        titles += [f"{label}: head {h + 1}" for h in heads] + [f"{label}: mean"]
    vmax = max(float(m.max()) for m in maps)
    title = f"{KIND_TITLES[kind]}, layer {layer}: " + " vs ".join(label for label, _ in per_model) + note
    panel = writer.panel_figure(len(per_model), len(heads) + 1, cut, len(maps))
    panel.show(maps, titles, title, vmax)
    return writer.emit(f"compare_{kind}_L{layer}", kind, layer, title, panel)


# ----------------------------------------------------------------------------- statistics
COLUMNS = ("model", "kind", "layer", "head", *STAT_NAMES, "label", "sentences")
SHORT = {"max_weight": "max", "distance": "dist", "diag_agree": "diag"}


def _clean(value):
    """NaN -> None (JSON null / empty CSV cell); floats rounded to 6 significant digits."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    return value


def write_stats(out: str, rows: Sequence[dict]) -> list[str]:
    """OUT/stats.csv and OUT/stats.json (one row per model, kind, layer, head); returns the paths."""
    clean = [{c: _clean(r[c]) for c in COLUMNS} for r in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in clean:
        w.writerow(["" if r[c] is None else r[c] for c in COLUMNS])
    paths = [os.path.join(out, "stats.csv"), os.path.join(out, "stats.json")]
    write_atomic(paths[0], buf.getvalue().encode())
    write_atomic(paths[1], (json.dumps({"columns": list(COLUMNS), "rows": clean}, indent=1) + "\n").encode())
    return paths


def _cell(value) -> str:
    value = _clean(value)
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def table_columns(rows: Sequence[dict]) -> list[str]:
    """Columns worth showing: 'model' only with several models."""
    several = len({r["model"] for r in rows}) > 1
    return [c for c in COLUMNS if c != "sentences" and (several or c != "model")]


def stats_table(rows: Sequence[dict], title: str):
    """A rich Table of the statistics (NaN shown as '-')."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    cols = table_columns(rows)
    for c in cols:
        table.add_column(SHORT.get(c, c), justify="left" if c in ("model", "kind", "label") else "right")
    for r in rows:
        table.add_row(*[_cell(r[c]) for c in cols])
    return table


# ----------------------------------------------------------------------------- HTML
CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td.t { text-align: left; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.png or b"").decode("ascii")
    cap = html.escape(fig.caption)
    img = f'<img alt="{html.escape(fig.name)}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{cap}</figcaption></figure>"


def write_html(path: str, result) -> str:
    """One self-contained HTML file (base64 PNG figures, inline CSS) from a visualize Result; returns path."""
    e = html.escape
    s = result.sentence
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>attention: ' + e(s.src_text[:60]) + "</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Attention</h1>",
        "<p>architecture <code>" + e(result.arch) + "</code>; models: " + e(", ".join(result.labels)) + "</p>",
        "<p><b>source</b>: " + e(s.src_text) + "</p>",
        f"<p><b>target</b> ({e(s.tgt_origin)}, teacher-forced): " + e(s.tgt_text) + "</p>",
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
        cells = "".join(
            f"<td{' class=t' if c in ('model', 'kind', 'label') else ''}>{e(_cell(r[c]))}</td>" for c in cols
        )
        parts.append(f"<tr>{cells}</tr>")
    parts += ["</table>", STATS_HELP, "</body></html>"]
    write_atomic(path, "\n".join(parts).encode("utf-8"))
    return path


STATS_HELP = """<p style="font-size:0.85em">entropy: normalized by log of the visible length (1 = uniform);
max: mean largest weight; dist / offset: mean (absolute / signed) key distance from the diagonal;
eos: weight on EOS (BOS for decoder self-attention); self / prev / next: weight on the query's own,
previous and next position; diag: share of rows whose argmax is the monotone diagonal (cross).
Labels: first rule that holds of EOS/BOS sink (eos &ge; 0.5), self / previous token / next token
(&ge; 0.5), diagonal/monotone (diag &ge; 0.5), focused (max &ge; 0.5), broad (entropy &ge; 0.75), else mixed.</p>"""
