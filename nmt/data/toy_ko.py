"""The embedded English<->Korean toy corpus: a small template grammar, like the English->French one.

English sentences are SUBJECT [not] VERB OBJECT [PREPOSITION NOUN-PHRASE] [again] [TIME]; the
Korean side is what a learner's textbook writes for them, in polite present speech (해요체):

    [TIME] SUBJECT-은/는|이/가 [NOUN-PHRASE POSTPOSITION] OBJECT-을/를 [다시] [안] VERB-아요/어요/해요.

Korean puts the verb last (SOV), marks roles with particles whose form depends on whether the
preceding syllable ends in a consonant (batchim: 은/는, 이/가, 을/를, 과/와), counts with a counter
word after the noun ("two cats" -> "고양이 두 마리"), marks plurals with -들, puts adjectives and
determiners before the noun ("these small cats" -> "이 작은 고양이들") and time words first.
Pronoun subjects take the topic particle (저는), noun subjects the subject particle (고양이가).
Nouns and English forms are shared with nmt.data.toy; every English sentence has exactly one
Korean translation and no two English sentences share one, so both directions are learnable.
"""

from __future__ import annotations

import random

from nmt.data.toy import MAX_WORDS, MIN_WORDS, NOUNS

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3  # precomposed syllables: (initial * 21 + vowel) * 28 + final
VOWEL_A, VOWEL_AE, VOWEL_EO, VOWEL_E, VOWEL_YEO = 0, 1, 4, 5, 6
VOWEL_O, VOWEL_WA, VOWEL_OE, VOWEL_WAE, VOWEL_U, VOWEL_WO, VOWEL_EU, VOWEL_I = 8, 9, 11, 10, 13, 14, 18, 20

# English singular (the key into nmt.data.toy.NOUNS) -> (Korean noun, counter word used with numbers).
KO_NOUNS = {
    "cat": ("고양이", "마리"),
    "dog": ("개", "마리"),
    "duck": ("오리", "마리"),
    "horse": ("말", "마리"),
    "boy": ("소년", "명"),
    "girl": ("소녀", "명"),
    "woman": ("여자", "명"),
    "teacher": ("선생님", "분"),  # the honorific counter for a teacher
    "doctor": ("의사", "명"),
    "baby": ("아기", "명"),
    "mouse": ("쥐", "마리"),
    "car": ("자동차", "대"),
    "bike": ("자전거", "대"),
    "boat": ("배", "척"),
    "train": ("기차", "대"),
    "house": ("집", "채"),
    "table": ("탁자", "개"),
    "chair": ("의자", "개"),
    "book": ("책", "권"),
    "ball": ("공", "개"),
    "box": ("상자", "개"),
    "cup": ("컵", "개"),
    "key": ("열쇠", "개"),
    "hat": ("모자", "개"),
    "shoe": ("신발", "짝"),  # one shoe of a pair; 켤레 would count pairs
    "letter": ("편지", "통"),
    "bag": ("가방", "개"),
    "window": ("창문", "개"),
    "garden": ("정원", "곳"),
    "flower": ("꽃", "송이"),
}
EN_PLURAL = {sg: pl for sg, pl, *_ in NOUNS}

# Native Korean numbers in their form before a counter ("두 마리", not "둘 마리").
NUMBERS = {
    "two": "두",
    "three": "세",
    "four": "네",
    "five": "다섯",
    "six": "여섯",
    "seven": "일곱",
    "eight": "여덟",
    "nine": "아홉",
    "ten": "열",
    "eleven": "열한",
    "twelve": "열두",
    "twenty": "스무",
}
# Adjectives in their attributive form; size ones come before colours in both languages.
SIZE_ADJ = {"small": "작은", "big": "큰", "pretty": "예쁜", "new": "새", "bad": "나쁜"}
COLOUR_ADJ = {"red": "빨간", "black": "검은", "white": "하얀", "blue": "파란", "heavy": "무거운", "round": "둥근"}
# Determiners: "the" is left unsaid in Korean; the plural adds -들 to the noun.
DET_SG = {"the": "", "this": "이", "that": "그", "my": "제", "our": "저희", "his": "그의", "her": "그녀의"}
DET_PL = {"the": "", "these": "이", "those": "그", "my": "제", "our": "저희", "their": "그들의"}
# Pronoun subjects: English -> (Korean, English verb form: 0 base, 1 third person singular). Humble 저/저희.
PRONOUNS = {
    "I": ("저", 0),
    "he": ("그", 1),
    "she": ("그녀", 1),
    "we": ("저희", 0),
    "you": ("당신", 0),
    "they": ("그들", 0),
}
# (English base, third person), Korean dictionary form, whether it is NOUN + 하다 ("청소 안 해요").
VERBS = [
    (("see", "sees"), "보다", False),
    (("watch", "watches"), "지켜보다", False),
    (("find", "finds"), "찾다", False),
    (("carry", "carries"), "들다", False),
    (("push", "pushes"), "밀다", False),
    (("pull", "pulls"), "당기다", False),
    (("wash", "washes"), "씻다", False),
    (("draw", "draws"), "그리다", False),
    (("sell", "sells"), "팔다", False),
    (("buy", "buys"), "사다", False),
    (("catch", "catches"), "잡다", False),
    (("open", "opens"), "열다", False),
    (("follow", "follows"), "따라가다", False),
    (("like", "likes"), "좋아하다", False),
    (("paint", "paints"), "칠하다", True),
    (("clean", "cleans"), "청소하다", True),
    (("love", "loves"), "사랑하다", True),
]
# Prepositions -> (particle kind or None, postposition word): "in the house" -> "집 안에서".
POSTPOSITIONS = {
    "in": (None, "안에서"),
    "on": (None, "위에서"),
    "under": (None, "아래에서"),
    "behind": (None, "뒤에서"),
    "in front of": (None, "앞에서"),
    "with": ("with", "함께"),  # 개와 함께, 책과 함께
    "for": ("object", "위해"),  # 고양이를 위해, 선생님을 위해
    "without": (None, "없이"),
}
TIME_WORDS = {
    "today": "오늘",
    "now": "지금",
    "tonight": "오늘 밤",
    "every morning": "매일 아침",
    "every evening": "매일 저녁",
    "on Sundays": "일요일마다",
}
# Particle kind -> (after a consonant, after a vowel).
PARTICLES = {"topic": ("은", "는"), "subject": ("이", "가"), "object": ("을", "를"), "with": ("과", "와")}


def _split(syllable: str) -> tuple[int, int, int]:
    """A precomposed Hangul syllable -> (initial, vowel, final) indices; final 0 = no batchim."""
    code = ord(syllable) - HANGUL_FIRST
    if not 0 <= code <= HANGUL_LAST - HANGUL_FIRST:
        raise ValueError(f"{syllable!r} is not a Hangul syllable")
    return code // 588, code // 28 % 21, code % 28


def _join(initial: int, vowel: int, final: int = 0) -> str:
    return chr(HANGUL_FIRST + (initial * 21 + vowel) * 28 + final)


def has_batchim(word: str) -> bool:
    """Whether the last syllable of a Korean word ends in a consonant (받침): 책 yes, 개 no."""
    return _split(word[-1])[2] != 0


def with_particle(word: str, kind: str) -> str:
    """The word with its particle, chosen by batchim: ('책', 'object') -> '책을', ('개', 'object') -> '개를'."""
    after_consonant, after_vowel = PARTICLES[kind]
    return word + (after_consonant if has_batchim(word) else after_vowel)


def polite(verb: str) -> str:
    """Polite present (해요체) of a dictionary form: 하다 -> 해요; stems in ㅏ/ㅗ take -아요, others -어요,
    with the usual contractions of an open last syllable (보아요 -> 봐요, 가아요 -> 가요, 그리어요 -> 그려요).
    The toy's verbs are regular; irregular stems (돕다, 듣다, 짓다, 르-verbs) are not handled."""
    if not verb.endswith("다") or len(verb) < 2:
        raise ValueError(f"{verb!r} is not a dictionary form ending in 다")
    stem = verb[:-1]
    if stem.endswith("하"):
        return stem[:-1] + "해요"
    initial, vowel, final = _split(stem[-1])
    if final:
        return stem + ("아요" if vowel in (VOWEL_A, VOWEL_O) else "어요")
    if vowel in (VOWEL_A, VOWEL_EO, VOWEL_AE, VOWEL_E, VOWEL_YEO):  # the ending's vowel merges into the stem's
        return stem + "요"
    merged = {VOWEL_O: VOWEL_WA, VOWEL_U: VOWEL_WO, VOWEL_I: VOWEL_YEO, VOWEL_EU: VOWEL_EO, VOWEL_OE: VOWEL_WAE}
    if vowel in merged:
        return stem[:-1] + _join(initial, merged[vowel]) + "요"
    return stem + "어요"


def negative(verb: str, noun_hada: bool) -> str:
    """Short negation: 안 before the verb (안 봐요), or before 해요 of a NOUN + 하다 verb (청소 안 해요)."""
    if noun_hada:
        return verb[:-2] + " 안 " + polite("하다")
    return "안 " + polite(verb)


def noun_phrase(rng: random.Random) -> tuple[str, str]:
    """(English, Korean without particle) of DET [NUMBER] [SIZE] [COLOUR] NOUN.

    Korean: DET [SIZE] [COLOUR] NOUN(-들) or DET [SIZE] [COLOUR] NOUN NUMBER COUNTER.
    """
    en_sg = rng.choice(list(KO_NOUNS))
    ko_noun, counter = KO_NOUNS[en_sg]
    plural = rng.random() < 0.35
    size = rng.choice(list(SIZE_ADJ)) if rng.random() < 0.3 else None
    colour = rng.choice(list(COLOUR_ADJ)) if rng.random() < 0.35 else None
    num = None
    if plural:
        det = rng.choice(list(DET_PL) + [""])  # "" = a bare number: "two cats"
        # "the two cats" would read like "two cats" in Korean: numbers go with no determiner or a marked one
        if det == "" or (det != "the" and rng.random() < 0.4):
            num = rng.choice(list(NUMBERS))
        ko_det = DET_PL.get(det, "")
    else:
        det = rng.choice(list(DET_SG))
        ko_det = DET_SG[det]
    en = [w for w in (det, num, size, colour, EN_PLURAL[en_sg] if plural else en_sg) if w]
    ko = [w for w in (ko_det, SIZE_ADJ.get(size or ""), COLOUR_ADJ.get(colour or "")) if w]
    if num:
        ko += [ko_noun, NUMBERS[num], counter]  # the particle then attaches to the counter: 고양이 두 마리가
    else:
        ko.append(ko_noun + "들" if plural else ko_noun)
    return " ".join(en), " ".join(ko)


def _is_plural(en_phrase: str) -> bool:
    return en_phrase.split()[-1] not in KO_NOUNS


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """One (English, Korean) pair; English capitalized, both ending with a full stop."""
    while True:
        if rng.random() < 0.35:
            subj_en = rng.choice(list(PRONOUNS))
            subj_ko, en_form = PRONOUNS[subj_en]
            subj_ko = with_particle(subj_ko, "topic")
        else:
            subj_en, ko = noun_phrase(rng)
            en_form = 0 if _is_plural(subj_en) else 1
            subj_ko = with_particle(ko, "subject")
        (en_forms, ko_verb, noun_hada) = rng.choice(VERBS)
        if rng.random() < 0.15:
            verb_en = ("does not " if en_form else "do not ") + en_forms[0]
            verb_ko = negative(ko_verb, noun_hada)
        else:
            verb_en, verb_ko = en_forms[en_form], polite(ko_verb)
        obj_en, obj_ko = noun_phrase(rng)
        en, ko_middle = [subj_en, verb_en, obj_en], []
        if rng.random() < 0.4:
            prep = rng.choice(list(POSTPOSITIONS))
            np_en, np_ko = noun_phrase(rng)
            kind, word = POSTPOSITIONS[prep]
            en += [prep, np_en]
            ko_middle += [with_particle(np_ko, kind) if kind else np_ko, word]
        again = rng.random() < 0.1
        if again:
            en.append("again")
        time = rng.choice(list(TIME_WORDS)) if rng.random() < 0.25 else None
        if time:
            en.append(time)
        ko = [TIME_WORDS[time]] if time else []
        ko += [subj_ko, *ko_middle, with_particle(obj_ko, "object")] + (["다시"] if again else []) + [verb_ko]
        en_text, ko_text = " ".join(en), " ".join(ko)
        if MIN_WORDS <= len(en_text.split()) <= MAX_WORDS and len(ko_text.split()) <= MAX_WORDS:
            return en_text[0].upper() + en_text[1:] + ".", ko_text + "."
