"""Monolingual samples: language-model blocks over the token stream and BERT-style masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.data.dataset import TokenArray
from nmt.data.masking import NUM_SPECIAL, MaskSpec, mask_tokens, sample_generator, word_starts
from nmt.data.monolingual import (
    BlockDataset,
    MaskedDataset,
    lm_blocks,
    lm_sample,
    sentence_sample,
    stream_offsets,
)
from nmt.data.tokenizer import BOS, EOS, PAD

# Sentences of 2, 5, 0 and 1 pieces: a stream of 3 + 6 + 1 + 2 = 12 tokens.
SENTENCES = [[10, 11], [20, 21, 22, 23, 24], [], [30]]
STREAM = [10, 11, EOS, 20, 21, 22, 23, 24, EOS, EOS, 30, EOS]


def _text(sentences=SENTENCES) -> TokenArray:
    return TokenArray.from_sequences(sentences)


def _random_sizes(seed: int, n: int = 300) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 40, n)


# ----------------------------------------------------------------------------- blocks
@pytest.mark.parametrize(
    "mode, rows",
    [
        ("none", [[0, 4, 1], [4, 8, 0], [8, 12, 0]]),
        ("eos", [[0, 3, 1], [3, 7, 1], [7, 9, 0], [9, 10, 1], [10, 12, 1]]),
        ("complete", [[0, 3, 1], [3, 7, 1], [7, 9, 0], [9, 12, 1]]),
    ],
)
def test_blocks_of_each_mode(mode, rows):
    assert lm_blocks(np.array([2, 5, 0, 1]), 4, mode).tolist() == rows


@pytest.mark.parametrize("mode", ["none", "eos", "complete"])
@pytest.mark.parametrize("block", [1, 7, 32, 1000])
def test_every_token_is_a_target_exactly_once_and_blocks_never_exceed_n(mode, block):
    sizes = _random_sizes(block)
    rows = lm_blocks(sizes, block, mode)
    total = int(stream_offsets(sizes)[-1])
    counts = np.zeros(total, dtype=np.int64)
    for start, end, _ in rows.tolist():
        assert 0 < end - start <= block
        counts[start:end] += 1
    assert counts.tolist() == [1] * total


@pytest.mark.parametrize("block", [5, 16, 64])
def test_complete_never_splits_a_sentence_that_fits(block):
    sizes = _random_sizes(block)
    so = stream_offsets(sizes)
    rows = lm_blocks(sizes, block, "complete")
    for i in np.flatnonzero(sizes + 1 <= block):
        assert any(s <= so[i] and so[i + 1] <= e for s, e, _ in rows.tolist()), i
    starts = set(so[:-1].tolist())
    assert all(s in starts for s, _, bos in rows.tolist() if bos)  # blocks open at sentence starts


def test_eos_gives_one_block_per_sentence_that_fits():
    sizes = _random_sizes(3)
    rows = lm_blocks(sizes, 41, "eos")  # every sentence (at most 39 pieces + EOS) fits
    so = stream_offsets(sizes)
    assert rows.tolist() == [[int(a), int(b), 1] for a, b in zip(so[:-1], so[1:])]


@pytest.mark.parametrize("mode", ["none", "eos", "complete"])
def test_inputs_are_the_true_left_context(mode):
    text = _text()
    so = stream_offsets(text.sizes)
    for row in lm_blocks(text.sizes, 4, mode):
        start, end, bos = row.tolist()
        inp, target = lm_sample(text, so, row)
        assert target.tolist() == STREAM[start:end]
        first = BOS if bos else STREAM[start - 1]
        assert inp.tolist() == [first] + STREAM[start : end - 1]
        assert bos == int(start == 0 or (mode != "none" and start in so.tolist()))


def test_a_batch_of_blocks_is_right_padded():
    text = _text()
    rows = lm_blocks(text.sizes, 4, "eos")
    batch = BlockDataset(text, rows, [np.array([1, 2, 3])])[0]
    assert batch.tokens.tolist() == [[BOS, 20, 21, 22], [23, 24, PAD, PAD], [BOS, PAD, PAD, PAD]]
    assert batch.target.tolist() == [[20, 21, 22, 23], [24, EOS, PAD, PAD], [EOS, PAD, PAD, PAD]]
    assert batch.ntokens == 7 and batch.ids.tolist() == [1, 2, 3]
    assert batch.pad_mask.tolist() == [[False] * 4, [False, False, True, True], [False, True, True, True]]


def test_sentence_samples_are_cut_to_n_with_eos():
    text = _text()
    assert sentence_sample(text, 1, 4).tolist() == [20, 21, 22, EOS]
    assert sentence_sample(text, 0, 4).tolist() == [10, 11, EOS]
    assert sentence_sample(text, 2, 4).tolist() == [EOS]


# ----------------------------------------------------------------------------- masking
V = 60
MASK = 4
SPEC = MaskSpec(prob=0.15, replace=0.8, random=0.1, whole_words=False, mask_id=MASK, vocab_size=V)


def _sentence(n: int = 40, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(NUM_SPECIAL + 1, V, (n,), generator=torch.Generator().manual_seed(seed))
    return torch.cat([ids, torch.tensor([EOS])])


def test_only_chosen_positions_have_targets_and_specials_are_never_chosen():
    tokens = torch.tensor([BOS, 7, 8, 1, 9, MASK, 10, 11, EOS, PAD, PAD])
    spec = MaskSpec(1.0, 0.8, 0.1, False, MASK, V)  # choose everything that may be chosen
    for index in range(50):
        inp, target = mask_tokens(tokens, sample_generator(1, 1, index), spec)
        assert target.tolist() == [PAD, 7, 8, PAD, 9, PAD, 10, 11, PAD, PAD, PAD]
        unchosen = target == PAD
        assert torch.equal(inp[unchosen], tokens[unchosen])
        assert all(NUM_SPECIAL <= int(x) < V for x in inp[~unchosen])


def test_at_least_one_position_is_chosen_and_the_share_is_mask_prob():
    chosen = []
    for index in range(400):
        tokens = _sentence(n=1 + index % 7, seed=index)
        _, target = mask_tokens(tokens, sample_generator(3, 1, index), SPEC)
        n = int((target != PAD).sum())
        assert 1 <= n <= len(tokens) - 1
        chosen.append(n)
    tokens = _sentence(n=210)
    counts = [int((mask_tokens(tokens, sample_generator(3, 2, i), SPEC)[1] != PAD).sum()) for i in range(400)]
    assert set(counts) == {31, 32}  # 15% of 210 is 31.5: stochastic rounding, right on average
    assert abs(np.mean(counts) - 31.5) < 0.1


def test_the_80_10_10_split_holds_over_many_draws():
    tokens = _sentence(n=200)
    fates = {"mask": 0, "random": 0, "same": 0}
    for index in range(1000):
        inp, target = mask_tokens(tokens, sample_generator(5, 1, index), SPEC)
        chosen = target != PAD
        fates["mask"] += int((inp[chosen] == MASK).sum())
        fates["same"] += int((inp[chosen] == tokens[chosen]).sum())
        fates["random"] += int(((inp[chosen] != MASK) & (inp[chosen] != tokens[chosen])).sum())
    total = sum(fates.values())
    # A random draw equals the original token 1 time in V - 5: those count as "same" here.
    expected = {"mask": 0.8, "random": 0.1 * (1 - 1 / (V - 5)), "same": 0.1 + 0.1 / (V - 5)}
    for k, share in expected.items():
        assert abs(fates[k] / total - share) < 0.01, (k, fates)
    assert total == 1000 * 30  # 15% of 200, every time


def test_the_same_seed_gives_the_same_masks_and_another_epoch_others():
    tokens = _sentence(n=60)
    a = mask_tokens(tokens, sample_generator(1, 3, 17), SPEC)
    b = mask_tokens(tokens, sample_generator(1, 3, 17), SPEC)
    c = mask_tokens(tokens, sample_generator(1, 4, 17), SPEC)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_whole_word_masking_chooses_all_pieces_of_a_word_or_none():
    pieces = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"] + [("▁" if i % 3 == 0 else "") + f"p{i}" for i in range(5, V)]
    starts = word_starts(pieces)
    spec = MaskSpec(0.3, 0.8, 0.1, True, MASK, V)
    tokens = _sentence(n=50, seed=9)
    word = torch.cumsum((starts[tokens] | (torch.arange(len(tokens)) == 0)).long(), 0)  # word number per position
    for index in range(100):
        _, target = mask_tokens(tokens, sample_generator(1, 1, index), spec, starts)
        chosen = target != PAD
        for w in word[:-1].unique():
            in_word = (word == w) & (tokens != EOS)
            assert chosen[in_word].all() or not chosen[in_word].any(), (index, int(w))
        assert chosen.any() and not chosen[-1]


def test_an_empty_sentence_has_nothing_to_choose():
    inp, target = mask_tokens(torch.tensor([EOS]), sample_generator(1, 1, 0), SPEC)
    assert inp.tolist() == [EOS] and target.tolist() == [PAD]


def test_a_sentences_masks_do_not_depend_on_its_batch():
    text = _text([[5 + (i * 7 + j) % 50 for j in range(3 + i % 9)] for i in range(20)])
    alone = MaskedDataset(text, [np.array([7])], 8, SPEC, seed=2, epoch=3)[0]
    together = MaskedDataset(text, [np.array([3, 7, 11])], 8, SPEC, seed=2, epoch=3)[0]
    width = alone.tokens.size(1)
    assert torch.equal(together.tokens[1, :width], alone.tokens[0])
    assert torch.equal(together.target[1, :width], alone.target[0])
    assert together.ntokens == int((together.target != PAD).sum())
    other_epoch = MaskedDataset(text, [np.array([3, 7, 11])], 8, SPEC, seed=2, epoch=4)[0]
    assert not torch.equal(other_epoch.target, together.target)
