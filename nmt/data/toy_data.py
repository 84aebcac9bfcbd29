"""`nmt toy-data`: the built-in corpora by language pair, written from their template grammars.

en-fr   nmt.data.toy     English->French (agreement, adjective order, negation)
en-ko   nmt.data.toy_ko  English->Korean (SOV, particles chosen by batchim, counters, polite verbs)
ko-en   the same pairs swapped

Files are OUT/{train,valid,test}.{LANG} for both languages. The valid names are
nmt.config.TOY_PAIRS (ko-en gives the same files as en-ko: every Korean sentence translates one
English sentence, so deduplicating either side keeps the same pairs).
"""

from __future__ import annotations

import random
from typing import Callable

from nmt.config import ToyDataConfig, check_toy_data
from nmt.data import toy, toy_ko

Grammar = Callable[[random.Random], tuple[str, str]]

# The other language of a pair -> its English->X grammar; X->en swaps every pair.
GRAMMARS: dict[str, Grammar] = {"fr": toy.sentence_pair, "ko": toy_ko.sentence_pair}


def pair_langs(pair: str) -> tuple[str, str]:
    """'en-ko' -> ('en', 'ko')."""
    src, _, tgt = pair.partition("-")
    return src, tgt


def _swapped(make: Grammar) -> Grammar:
    def swapped(rng: random.Random) -> tuple[str, str]:
        a, b = make(rng)
        return b, a

    return swapped


def grammar(pair: str) -> Grammar:
    """The sentence-pair generator of a pair in TOY_PAIRS, (source, target) in the pair's order."""
    src, tgt = pair_langs(pair)
    make = GRAMMARS[tgt if src == "en" else src]
    return make if src == "en" else _swapped(make)


def toy_pairs(pair: str, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` distinct (source, target) pairs of `pair`, deterministic in `seed`."""
    return toy.generate_pairs(n, seed, grammar(pair))


def write_toy_data(cfg: ToyDataConfig) -> dict[str, int]:
    """Write OUT/{train,valid,test}.{SRC,TGT}; the splits share no sentence. Returns the split sizes."""
    check_toy_data(cfg)
    sizes = toy.split_sizes(cfg.pairs, cfg.valid, cfg.test)
    toy.check_out_dir(cfg.out)
    toy.write_splits(cfg.out, toy_pairs(cfg.pair, cfg.pairs, cfg.seed), pair_langs(cfg.pair), sizes)
    return sizes
