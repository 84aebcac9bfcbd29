"""Tokenizers: SentencePiece (trained by `nmt preprocess`) and a plain word vocabulary.

Special ids are fixed for every tokenizer and every data directory: PAD=0, UNK=1, BOS=2, EOS=3.
Both tokenizers share one small interface (`vocab_size`, `encode`, `decode`, `pieces`) and are
built from bytes (the model or vocabulary file), so a checkpoint can carry them without disk access.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Protocol, Sequence, Union

import sentencepiece as spm

from nmt.errors import UserError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")  # indexed by id


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def pieces(self, ids: Sequence[int]) -> list[str]: ...


def _content_ids(ids: Sequence[int]) -> list[int]:
    """Ids up to (not including) the first EOS, without PAD and BOS."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(i)
    return out


class SentencePieceTokenizer:
    """A SentencePiece model (serialized proto bytes) with the fixed special ids."""

    def __init__(self, model: bytes) -> None:
        self.model = model
        self.sp = spm.SentencePieceProcessor(model_proto=model)
        self.vocab_size: int = self.sp.get_piece_size()
        ids = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if ids != (PAD, UNK, BOS, EOS):
            raise UserError(f"SentencePiece model has special ids {ids}, expected {(PAD, UNK, BOS, EOS)}")

    def encode(self, text: str) -> list[int]:
        """Piece ids of `text`, no BOS/EOS; characters outside the vocabulary become UNK."""
        return self.sp.encode(text, out_type=int)

    def piece_to_id(self, piece: str) -> int:
        """The id of `piece` (e.g. "<mask>"); UNK when the vocabulary lacks it."""
        return self.sp.piece_to_id(piece)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` for many lines at once (one call into SentencePiece, one thread: the
        number of processes encoding in parallel is chosen by the caller)."""
        return self.sp.encode(texts, out_type=int, num_threads=1)

    def encode_sampled(self, texts: list[str], alpha: float) -> list[list[int]]:
        """A segmentation of each line drawn at random instead of the best one (subword
        regularization): for a unigram model from all segmentations with probability
        proportional to P(segmentation)^alpha (smaller alpha, more varied), for a BPE model
        with each merge dropped with probability alpha. Seeded by `spm.set_random_generator_seed`."""
        return self.sp.encode(texts, out_type=int, enable_sampling=True, alpha=alpha, nbest_size=-1, num_threads=1)

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenized text of `ids`: stops at the first EOS, skips PAD and BOS."""
        return self.sp.decode(_content_ids(ids))

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """Surface pieces (e.g. '▁the'); specials as <pad> <unk> <s> </s>; unknown ids as <unk>."""
        out = []
        for i in ids:
            i = int(i)
            if i < len(SPECIAL_PIECES):
                out.append(SPECIAL_PIECES[i])
            elif i < self.vocab_size:
                out.append(self.sp.id_to_piece(i))
            else:
                out.append(SPECIAL_PIECES[UNK])
        return out


class WordTokenizer:
    """A word vocabulary for text that is already tokenized (tokens separated by spaces)."""

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[:4]) != SPECIAL_PIECES:
            raise UserError(f"word vocabulary must start with {' '.join(SPECIAL_PIECES)}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vocab_size: int = len(self.words)

    @classmethod
    def from_bytes(cls, data: bytes) -> "WordTokenizer":
        """Read a vocabulary file written by `to_bytes`: one 'word<TAB>count' line per id."""
        return cls([line.split("\t", 1)[0] for line in data.decode("utf-8").split("\n") if line])

    def to_bytes(self, counts: dict[str, int] | None = None) -> bytes:
        counts = counts or {}
        return "".join(f"{w}\t{counts.get(w, 0)}\n" for w in self.words).encode("utf-8")

    def encode(self, text: str) -> list[int]:
        """Ids of the space-separated tokens of `text`; unknown words become UNK."""
        get = self.index.get
        return [get(w, UNK) for w in text.split()]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        """Tokens joined by spaces: stops at the first EOS, skips PAD and BOS."""
        return " ".join(self.pieces(_content_ids(ids)))

    def pieces(self, ids: Sequence[int]) -> list[str]:
        n = self.vocab_size
        return [self.words[int(i)] if 0 <= int(i) < n else SPECIAL_PIECES[UNK] for i in ids]


AnyTokenizer = Union[SentencePieceTokenizer, WordTokenizer]


def build_word_vocab(counts: Counter, vocab_size: int) -> tuple[list[str], dict[str, int]]:
    """Specials then the most frequent words (ties in string order), `vocab_size` entries at most."""
    ranked = sorted((w for w in counts if w not in SPECIAL_PIECES), key=lambda w: (-counts[w], w))
    words = list(SPECIAL_PIECES) + ranked[: max(0, vocab_size - len(SPECIAL_PIECES))]
    return words, {w: counts[w] for w in words[len(SPECIAL_PIECES) :]}


def train_sentencepiece(
    inputs: Iterable[str],
    model_prefix: str,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    input_sentence_size: int = 1_000_000,
    seed: int = 1,
    num_threads: int | None = None,
    user_defined_symbols: Sequence[str] = (),
) -> None:
    """Train a SentencePiece model on text files; writes MODEL_PREFIX.model and .vocab.

    Specials get the fixed ids; `user_defined_symbols` (e.g. "<mask>") follow them, each always one
    piece. At most `input_sentence_size` lines (a seeded sample) are used,
    so memory does not grow with the corpus. An unreachable vocabulary size raises UserError.
    """
    spm.set_min_log_level(2)  # SentencePiece logs every step to stderr otherwise
    spm.set_random_generator_seed(seed)  # makes the input sample reproducible
    try:
        spm.SentencePieceTrainer.train(
            input=list(inputs),
            model_prefix=model_prefix,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            num_threads=num_threads or os.cpu_count() or 1,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            user_defined_symbols=list(user_defined_symbols),
        )
    except RuntimeError as e:
        raise UserError(_explain_spm_error(str(e), vocab_size)) from None


def _explain_spm_error(msg: str, vocab_size: int) -> str:
    """One actionable line for a SentencePiece training error."""
    high = re.search(r"Vocabulary size too high.*<= (\d+)", msg)
    if high:
        return (
            f"--vocab-size {vocab_size} is too large for this training data: SentencePiece can build "
            f"at most {high.group(1)} pieces; use --vocab-size {high.group(1)} or less"
        )
    low = re.search(r"smaller than required_chars\. \d+ vs (\d+)", msg)
    if low:
        return (
            f"--vocab-size {vocab_size} is too small: the training data needs {low.group(1)} pieces for its "
            f"characters and the 4 special symbols; use --vocab-size {low.group(1)} or more"
        )
    last = msg.strip().splitlines()[-1] if msg.strip() else "unknown error"
    return f"SentencePiece training failed: {last}"


def load_tokenizers(meta: dict, blobs: dict[str, bytes]) -> tuple[AnyTokenizer, AnyTokenizer]:
    """(source, target) tokenizers described by a data dir's meta.json, built from file bytes."""
    tok = meta["tokenizer"]
    files = tok["files"]

    def build(lang: str) -> AnyTokenizer:
        name = files[lang]
        if name not in blobs:
            raise UserError(f"tokenizer file {name!r} for {lang!r} is missing")
        if tok["type"] == "sentencepiece":
            return SentencePieceTokenizer(blobs[name])
        if tok["type"] == "word":
            return WordTokenizer.from_bytes(blobs[name])
        raise UserError(f"unknown tokenizer type {tok['type']!r} (valid: sentencepiece, word)")

    src = build(meta["source_lang"])
    tgt = src if files[meta["target_lang"]] == files[meta["source_lang"]] else build(meta["target_lang"])
    return src, tgt


def read_blobs(data_dir: str, meta: dict) -> dict[str, bytes]:
    """The tokenizer files of a data directory, by file name."""
    blobs = {}
    for name in sorted(set(meta["tokenizer"]["files"].values())):
        path = os.path.join(data_dir, name)
        try:
            with open(path, "rb") as f:
                blobs[name] = f.read()
        except OSError:
            raise UserError(f"tokenizer file {path} is missing or unreadable") from None
    return blobs
