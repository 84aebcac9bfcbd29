"""Transformer family (being written)."""
