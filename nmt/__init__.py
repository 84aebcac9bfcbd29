"""nmt: a small, fast, readable neural machine translation toolkit."""

__version__ = "0.1.0"
