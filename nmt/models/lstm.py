"""LSTM family (being written)."""
