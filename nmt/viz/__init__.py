"""Attention visualization: `nmt visualize-attn`, the images training logs, and figures for notebooks.

attention     the command (`run`): which sentence, which models, capture, statistics, files;
              `cross_attention_image` for the trainer's log
capture       running a model with need_attn: its attention as arrays; its own translation
stats         per-head statistics of attention maps (entropy, diagonality, ...) and head labels
tables        the statistics as stats.csv, stats.json and the terminal table
figures       matplotlib heatmaps of one model's heads and comparisons of several models
plot          `Attention` (one sentence's maps) and `plot_attention`: the same heatmaps as Figures
html          the self-contained HTML report
"""

from nmt.viz.plot import Attention, plot_attention

__all__ = ["Attention", "plot_attention"]
