"""Attention visualization: `nmt visualize-attn` and the images training logs.

attention     the command: which sentence, which models, capture, statistics, files
stats         per-head statistics of attention maps (entropy, diagonality, ...)
figures       heatmaps and the HTML report
"""
