"""Attention visualization: `nmt visualize-attn` and the images training logs.

attention     the command (`run`): which sentence, which models, capture, statistics, files;
              `cross_attention_image` for the trainer's log
capture       running a model with need_attn: its attention as arrays; its own translation
stats         per-head statistics of attention maps (entropy, diagonality, ...) and head labels
tables        the statistics as stats.csv, stats.json and the terminal table
figures       matplotlib heatmaps of one model's heads and comparisons of several models
html          the self-contained HTML report
"""
