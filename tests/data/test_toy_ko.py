"""The English<->Korean toy corpus: particles, verb endings, counters, pairs and `nmt toy-data --pair`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import cli

from nmt.config import TOY_PAIRS, ToyDataConfig
from nmt.data import toy_ko as K
from nmt.data.toy_data import grammar, toy_pairs, write_toy_data
from nmt.errors import UserError

# Written out by hand (not computed): the words whose last syllable ends in a consonant.
WITH_BATCHIM = {
    "말",
    "소년",
    "선생님",
    "집",
    "책",
    "공",
    "컵",
    "신발",
    "가방",
    "창문",
    "정원",
    "꽃",
    "명",
    "분",
    "척",
    "권",
    "짝",
    "통",
    "곳",
}
PARTICLE_FORMS = {"은": "topic", "는": "topic", "이": "subject", "가": "subject", "을": "object", "를": "object"}
FILES = [f"{s}.{lang}" for s in ("train", "valid", "test") for lang in ("en", "ko")]


def test_particles_agree_with_batchim_for_every_noun_and_counter() -> None:
    words = {w for pair in K.KO_NOUNS.values() for w in pair}
    assert WITH_BATCHIM <= words
    for word in words:
        consonant = word in WITH_BATCHIM
        assert K.has_batchim(word) == consonant, word
        got = [K.with_particle(word, kind)[len(word) :] for kind in ("topic", "subject", "object", "with")]
        assert got == (["은", "이", "을", "과"] if consonant else ["는", "가", "를", "와"]), word
        assert K.with_particle(word + "들", "object") == word + "들을"  # -들 ends in ㄹ
    assert [K.with_particle(p, "topic") for p, _ in K.PRONOUNS.values()] == [
        "저는",
        "그는",
        "그녀는",
        "저희는",
        "당신은",
        "그들은",
    ]


def test_particles_in_sentences_follow_the_word_they_attach_to() -> None:
    """Every noun or counter followed by a role particle in generated sentences carries the right form."""
    stems = {w for pair in K.KO_NOUNS.values() for w in pair} | {n + "들" for n, _ in K.KO_NOUNS.values()}
    checked = 0
    for _, ko in toy_pairs("en-ko", 2000, seed=3):
        for word in ko.rstrip(".").split():
            stem, particle = word[:-1], word[-1]
            if stem in stems and particle in PARTICLE_FORMS and word not in stems:
                assert word == K.with_particle(stem, PARTICLE_FORMS[particle]), (word, ko)
                checked += 1
    assert checked > 3000


def test_polite_present_endings() -> None:
    expected = {
        "보다": "봐요",  # ㅗ + 아요 contracts
        "찾다": "찾아요",  # closed syllable in ㅏ
        "팔다": "팔아요",
        "들다": "들어요",  # closed syllable, other vowel
        "씻다": "씻어요",
        "당기다": "당겨요",  # ㅣ + 어요 contracts
        "그리다": "그려요",
        "사다": "사요",  # ㅏ + 아요 merges
        "따라가다": "따라가요",
        "주다": "줘요",
        "쓰다": "써요",
        "청소하다": "청소해요",
        "좋아하다": "좋아해요",
    }
    assert {v: K.polite(v) for v in expected} == expected
    assert K.negative("보다", False) == "안 봐요" and K.negative("청소하다", True) == "청소 안 해요"
    with pytest.raises(ValueError):
        K.polite("see")


def test_counters_numbers_and_word_order() -> None:
    assert K.sentence_pair(random.Random(11)) == K.sentence_pair(random.Random(11))
    rng = random.Random(5)
    for _ in range(500):
        en, ko = K.noun_phrase(rng)
        en_w, ko_w = en.split(), ko.split()
        nums = [w for w in en_w if w in K.NUMBERS]
        sg = en_w[-1] if en_w[-1] in K.KO_NOUNS else {K.EN_PLURAL[s]: s for s in K.KO_NOUNS}[en_w[-1]]
        noun, counter = K.KO_NOUNS[sg]
        if nums:  # NOUN NUMBER COUNTER, the noun last of what precedes
            assert ko_w[-3:] == [noun, K.NUMBERS[nums[0]], counter]
        else:
            assert ko_w[-1] == (noun if sg == en_w[-1] else noun + "들")
    en, ko = "Those teachers find her pretty cat.", "그 선생님들이 그녀의 예쁜 고양이를 찾아요."
    assert (en, ko) in toy_pairs("en-ko", 5000, seed=1)


def test_pairs_are_one_to_one_and_ko_en_is_en_ko_swapped() -> None:
    en_ko = toy_pairs("en-ko", 3000, seed=2)
    assert toy_pairs("ko-en", 3000, seed=2) == [(ko, en) for en, ko in en_ko]
    assert len({en for en, _ in en_ko}) == len({ko for _, ko in en_ko}) == 3000
    for en, ko in en_ko:
        assert 3 <= len(en.split()) <= 15 and len(ko.split()) <= 15
        assert en[0].isupper() and en.endswith(".") and ko.endswith(".")
        assert ko.rstrip(".").split()[-1].endswith("요")  # the verb comes last, in polite speech
    assert TOY_PAIRS == ("en-fr", "en-ko", "ko-en") and all(grammar(p) for p in TOY_PAIRS)


def _read(d: Path) -> dict[str, bytes]:
    return {name: (d / name).read_bytes() for name in FILES}


def test_same_seed_same_files_and_disjoint_splits(tmp_path: Path) -> None:
    for name, seed, pair in (("a", 3, "en-ko"), ("b", 3, "en-ko"), ("c", 4, "en-ko"), ("d", 3, "ko-en")):
        sizes = write_toy_data(ToyDataConfig(out=str(tmp_path / name), pairs=600, seed=seed, pair=pair))
        assert sizes == {"train": 480, "valid": 60, "test": 60}
    a, b, c, d = (_read(tmp_path / n) for n in "abcd")
    assert a == b == d and all(a[name] != c[name] for name in FILES)
    for lang in ("en", "ko"):
        sets = [set(a[f"{s}.{lang}"].decode("utf-8").splitlines()) for s in ("train", "valid", "test")]
        assert sum(map(len, sets)) == 600  # no sentence twice, within or across splits


def test_unknown_pair_is_a_user_error_listing_the_valid_ones(tmp_path: Path, monkeypatch, capsys) -> None:
    with pytest.raises(UserError, match="--pair 'en-de' is not one of: en-fr, en-ko, ko-en"):
        write_toy_data(ToyDataConfig(out=str(tmp_path / "x"), pair="en-de"))
    code, _, err = cli(monkeypatch, capsys, "toy-data", "--out", str(tmp_path / "y"), "--pair", "ko-fr")
    assert code == 2 and "--pair 'ko-fr' is not one of: en-fr, en-ko, ko-en" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    code, _, err = cli(
        monkeypatch, capsys, "toy-data", "--out", str(tmp_path / "z"), "--pairs", "100", "--pair", "en-ko"
    )
    assert code == 0 and sorted(p.name for p in (tmp_path / "z").iterdir()) == sorted(FILES)
