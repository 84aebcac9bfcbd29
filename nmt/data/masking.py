"""BERT-style masking of one sentence, as a pure function of its tokens and a seeded generator.

Of a sentence's maskable tokens (every id but PAD, UNK, BOS, EOS and <mask> itself), `prob` of
them are chosen (whole words with `whole_words`: a piece starting with "▁" and the pieces that
follow it), at least one; a chosen token becomes <mask> with probability `replace`, a random
maskable id with probability `random`, and stays itself otherwise. The target is the original
token at the chosen positions and PAD elsewhere, so the loss scores those only.

The generator of a sample is seeded from (seed, epoch, sample index) (`sample_generator`), so a
sample's masks do not depend on batching, rank or worker, and a resumed run sees the same ones.

Shape legend: L tokens of a sentence (pieces + EOS), M maskable ones, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from nmt.data.tokenizer import PAD

NUM_SPECIAL = 4  # PAD, UNK, BOS, EOS: never chosen, never drawn as a random replacement


@dataclass(frozen=True)
class MaskSpec:
    """What `mask_tokens` does: the --mask-* flags, the id of <mask> and the vocabulary size."""

    prob: float
    replace: float
    random: float
    whole_words: bool
    mask_id: int
    vocab_size: int


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, index) alone."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def word_starts(pieces: Sequence[str]) -> torch.Tensor:
    """(V,) bool: whether the piece of each id begins a word (starts with "▁"), from the pieces by id."""
    return torch.tensor([p.startswith("▁") for p in pieces], dtype=torch.bool)


def mask_tokens(
    tokens: torch.Tensor, generator: torch.Generator, spec: MaskSpec, starts: Optional[torch.Tensor] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (L,) long -> (input (L,), target (L,)): the masked sentence and the original tokens at
    the chosen positions (PAD elsewhere). `starts` (V,) bool (`word_starts`) is needed with whole words."""
    maskable = (tokens >= NUM_SPECIAL) & (tokens != spec.mask_id)  # (L,)
    pos = maskable.nonzero().squeeze(1)  # (M,)
    target = torch.full_like(tokens, PAD)
    inp = tokens.clone()
    if len(pos) == 0:  # an empty sentence: nothing to choose
        return inp, target
    if spec.whole_words:
        begins = starts[tokens[pos]].clone()  # (M,)
        begins[0] = True
        begins[1:] |= pos[1:] != pos[:-1] + 1  # a piece after a special token starts a word too
        unit = torch.cumsum(begins.long(), 0) - 1  # (M,) the word of each maskable token
    else:
        unit = torch.arange(len(pos))
    units = int(unit[-1]) + 1
    # Stochastic rounding keeps the expected share exactly `prob`, even for short sentences.
    count = min(units, max(1, int(spec.prob * units + float(torch.rand((), generator=generator)))))
    picked = torch.zeros(units, dtype=torch.bool)
    picked[torch.randperm(units, generator=generator)[:count]] = True
    chosen = pos[picked[unit]]  # (C,) positions, ascending
    target[chosen] = tokens[chosen]
    u = torch.rand(len(chosen), generator=generator)  # (C,) which fate each chosen token meets
    inp[chosen[u < spec.replace]] = spec.mask_id
    others = spec.vocab_size - NUM_SPECIAL - 1  # maskable ids: all but the specials and <mask>
    if others > 0:
        draw = torch.randint(0, others, (len(chosen),), generator=generator) + NUM_SPECIAL  # (C,)
        draw += (draw >= spec.mask_id).long()  # skip over <mask>
        rand = (u >= spec.replace) & (u < spec.replace + spec.random)
        inp[chosen[rand]] = draw[rand]
    return inp, target
