"""Heatmap figures of `nmt visualize-attn`: matplotlib (an Agg canvas of their own), one reusable figure per layout.

Shape legend: H heads, T queries (rows), S keys (columns).

Figures, file names with 1-based layers:
    {kind}_L{n}.{fmt}          all (selected) heads of one layer, shared colour scale, one colour bar
    {kind}_L{n}_mean.{fmt}     the head-averaged map (over all heads of the layer)
    compare_{kind}_L{n}.{fmt}  one row per model (e.g. init, epoch 1, epoch 10): heads + mean
Figures of one layout are created once and refilled for every layer (figure creation and text
layout dominate the cost); axes are placed in inches computed from the piece count, never with
tight_layout. Sentences longer than `max_pieces` are cut, with a note in the title. Texts are drawn
in a font that has their characters (nmt.viz.fonts), so Korean, Chinese, ... pieces are not boxes.

The statistics tables live in nmt.viz.tables, the HTML report in nmt.viz.html.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from nmt.config import FIGURE_FORMATS
from nmt.errors import UserError
from nmt.fileio import atomic_write
from nmt.viz.fonts import FontChoice, FontFile, FontPicker, font_properties

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
FORMATS = FIGURE_FORMATS


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


def _font_kw(choice: FontChoice, size: float) -> dict:
    """Text keywords of a font choice: just the size for matplotlib's default, else the chosen file."""
    return {"fontsize": size} if choice.font is None else {"fontproperties": font_properties(choice, size)}


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
    titles, and `render` writes the bytes of one format. `fonts` chooses the font of the labels
    (once) and of the titles (on every `show`); matplotlib's missing-glyph warnings are silenced
    only when the picker has already reported the missing characters in one line.
    """

    rows: int
    cols: int
    axes2d: Axes2D
    n: int = 0  # panels in use (row-major); 0 = all. The lowest used panel of a column gets x labels.
    fonts: FontPicker = field(default_factory=FontPicker)
    fig: object = field(init=False)
    axes: list = field(init=False)
    images: list = field(init=False)
    titles: list = field(init=False)  # panel titles as plain texts (set_title re-positions on every draw)
    missing: set = field(init=False)  # characters drawn that no installed font has
    title_font: Optional[FontFile] = field(init=False, default=None)  # None: matplotlib's default

    def __post_init__(self) -> None:
        xl, yl = self.axes2d.xlabels, self.axes2d.ylabels
        n = self.n or self.rows * self.cols
        fs = font_size(max(len(xl), len(yl)))
        font = self.fonts.choose([*xl, *yl, self.axes2d.xname, self.axes2d.yname])
        self.missing = set(font.missing)
        cell = fs / 72.0 * 1.45  # inches per piece: one label height plus a little air
        pw = float(np.clip(cell * len(xl), 1.4, 9.0))
        ph = float(np.clip(cell * len(yl), 1.4, 9.0))
        char = fs / 72.0 * 0.62  # average glyph width in inches
        left = 0.45 + char * max((len(s) for s in yl), default=1)
        bottom = 0.45 + char * max((len(s) for s in xl), default=1)
        top, right, gap_x, gap_y = 0.75, 1.0, 0.2, 0.35
        width = left + self.cols * pw + (self.cols - 1) * gap_x + right
        height = bottom + self.rows * ph + (self.rows - 1) * gap_y + top
        # A Figure with its own Agg canvas, outside pyplot: no backend is chosen for the whole process
        # (a notebook keeps its inline backend) and no global registry holds the figure.
        self.fig = MplFigure(figsize=(width, height))
        FigureCanvasAgg(self.fig)
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
                    ax.set_xticks(range(len(xl)), [_escape(s) for s in xl], rotation=90, **_font_kw(font, fs))
                else:
                    ax.set_xticks([])
                if c == 0:
                    ax.set_yticks(range(len(yl)), [_escape(s) for s in yl], **_font_kw(font, fs))
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
            **_font_kw(font, fs + 1),
        )
        self.fig.text(
            0.08 / width,
            (bottom + (height - top - bottom) / 2) / height,
            self.axes2d.yname,
            ha="left",
            va="center",
            rotation=90,
            **_font_kw(font, fs + 1),
        )
        bar = ((width - right + 0.25) / width, bottom / height, 0.15 / width, self.rows * ph / height)
        self.fig.colorbar(self.images[0], cax=self.fig.add_axes(bar))
        self.title = self.fig.suptitle("", fontsize=10, y=1 - 0.25 / height)

    def show(self, maps: Sequence[np.ndarray], titles: Sequence[str], suptitle: str, vmax: float) -> None:
        """Fill the panels in row-major order (extra panels hidden); one colour scale [0, vmax]."""
        vmax = float(vmax) if vmax > 0 else 1.0
        font = self.fonts.choose([*titles[: len(maps)], suptitle])
        self.missing |= font.missing
        if font.font != self.title_font:  # model names may be in any script too
            for text in [*self.titles, self.title]:
                text.set_fontproperties(font_properties(font, text.get_fontsize()))
            self.title_font = font.font
        for k, (ax, im, text) in enumerate(zip(self.axes, self.images, self.titles)):
            visible = k < len(maps)
            ax.set_visible(visible)
            if visible:
                im.set_data(maps[k])
                im.set_clim(0.0, vmax)
                text.set_text(titles[k])
        self.title.set_text(suptitle)

    @contextlib.contextmanager
    def _drawing(self) -> Iterator[None]:
        """Draw with matplotlib's missing-glyph warnings silenced when the FontPicker already said which
        scripts no font has (once, instead of once per glyph and draw)."""
        with warnings.catch_warnings():
            if self.missing:
                warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
            yield

    def render(self, fmt: str, dpi: int) -> bytes:
        buf = io.BytesIO()
        extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}  # zlib effort is wasted on heatmaps
        with self._drawing():
            self.fig.savefig(buf, format=fmt, dpi=dpi, **extra)
        return buf.getvalue()

    def rgb(self, dpi: int) -> np.ndarray:
        """The figure as a (height, width, 3) uint8 picture."""
        self.fig.set_dpi(dpi)
        with self._drawing():
            self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        self.fig.clear()


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
    axes2d: Optional[Axes2D] = None  # its tick labels, which the HTML report also writes as text


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
        self.fonts = FontPicker()  # one per writer: each missing script is reported once
        self.figures: list[Figure] = []

    def panel_figure(self, rows: int, cols: int, axes2d: Axes2D, n: int) -> PanelFigure:
        key = (rows, cols, n, tuple(axes2d.xlabels), tuple(axes2d.ylabels), axes2d.xname, axes2d.yname)
        if key not in self.cache:
            self.cache[key] = PanelFigure(rows, cols, axes2d, n, self.fonts)
        return self.cache[key]

    def emit(self, name: str, kind: str, layer: int, caption: str, panel: PanelFigure) -> Figure:
        data = panel.render(self.fmt, self.dpi)
        path = os.path.join(self.out, f"{name}.{self.fmt}")
        write_atomic(path, data)
        png = None
        if self.keep_png:
            png = data if self.fmt == "png" else panel.render("png", self.dpi)
        fig = Figure(name, kind, layer, caption, path, png, panel.axes2d)
        self.figures.append(fig)
        return fig

    def close(self) -> None:
        for panel in self.cache.values():
            panel.close()
        self.cache.clear()


@dataclass
class Panels:
    """What one figure shows: cropped axes, the maps (T, S) in row-major order, their titles, the
    figure's title and the top of the shared colour scale. The one description of a heatmap
    figure, drawn by `nmt visualize-attn` (`draw_layer`) and by nmt.viz.plot alike."""

    axes2d: Axes2D
    maps: list[np.ndarray]
    titles: list[str]
    title: str
    vmax: float

    def shape(self) -> tuple[int, int]:
        return grid_shape(len(self.maps))

    def show_on(self, panel: PanelFigure) -> PanelFigure:
        panel.show(self.maps, self.titles, self.title, self.vmax)
        return panel

    def figure(self) -> PanelFigure:
        """A new PanelFigure showing these panels (on its own Agg canvas)."""
        return self.show_on(PanelFigure(*self.shape(), self.axes2d, len(self.maps)))


def head_panels(
    kind: str, layer: int, weights: np.ndarray, heads: Sequence[int], axes2d: Axes2D, max_pieces: int, who: str
) -> Panels:
    """The selected heads (0-based) of one layer (1-based), weights (H, T, S): one panel per head."""
    cut, note = crop(axes2d, max_pieces)
    t, s = len(cut.ylabels), len(cut.xlabels)
    maps = [weights[h, :t, :s] for h in heads]
    vmax = max(float(m.max()) for m in maps) if maps else 1.0
    title = f"{KIND_TITLES[kind]}, layer {layer} ({who}){note}"
    return Panels(cut, maps, [f"head {h + 1}" for h in heads], title, vmax)


def mean_panel(kind: str, layer: int, weights: np.ndarray, axes2d: Axes2D, max_pieces: int, who: str) -> Panels:
    """The head-averaged map of one layer (1-based), weights (H, T, S): one panel."""
    cut, note = crop(axes2d, max_pieces)
    mean = weights.mean(axis=0)[: len(cut.ylabels), : len(cut.xlabels)]  # (T, S) over all heads of the layer
    title = f"{KIND_TITLES[kind]}, layer {layer} ({who}){note}"
    return Panels(cut, [mean], [f"mean of {weights.shape[0]} heads"], title, float(mean.max()))


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
    figs = []
    for suffix, what, panels in (
        ("", "heads", head_panels(kind, layer, weights, heads, axes2d, max_pieces, who)),
        ("_mean", "head average", mean_panel(kind, layer, weights, axes2d, max_pieces, who)),
    ):
        grid = writer.panel_figure(*panels.shape(), panels.axes2d, len(panels.maps))
        panels.show_on(grid)
        figs.append(writer.emit(f"{kind}_L{layer}{suffix}", kind, layer, f"{panels.title}: {what}", grid))
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
