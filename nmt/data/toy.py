"""The embedded English->French toy corpus: a small grammar, so everything works offline.

Sentences are SUBJECT [not] VERB OBJECT [PREPOSITION NOUN-PHRASE] [ADVERB], with noun phrases
DET [NUMBER] [ADJ] NOUN [ADJ]. The French side needs what real translation needs, in miniature:
gender and number agreement (determiners, adjectives, nouns), subject-verb agreement, colour
adjectives moving after the noun ("the red car" -> "la voiture rouge"), negation around the verb
("does not see" -> "ne voit pas") and a few many-to-one phrases ("look for" -> "cherche").
Every English sentence has exactly one French translation, the vocabulary is about 150 words a
side and sentences have 3 to 15 words, so a tiny Transformer learns it in minutes on a CPU.
"""

from __future__ import annotations

import os
import random
from typing import Callable

from nmt.errors import UserError
from nmt.fileio import check_output

# (en singular, en plural, fr singular, fr plural, gender); every French noun starts with a consonant,
# so no elision (l', cet) is needed.
NOUNS = [
    ("cat", "cats", "chat", "chats", "m"),
    ("dog", "dogs", "chien", "chiens", "m"),
    ("duck", "ducks", "canard", "canards", "m"),
    ("horse", "horses", "cheval", "chevaux", "m"),
    ("boy", "boys", "garçon", "garçons", "m"),
    ("girl", "girls", "fille", "filles", "f"),
    ("woman", "women", "femme", "femmes", "f"),
    ("teacher", "teachers", "professeur", "professeurs", "m"),
    ("doctor", "doctors", "médecin", "médecins", "m"),
    ("baby", "babies", "bébé", "bébés", "m"),
    ("mouse", "mice", "souris", "souris", "f"),
    ("car", "cars", "voiture", "voitures", "f"),
    ("bike", "bikes", "vélo", "vélos", "m"),
    ("boat", "boats", "bateau", "bateaux", "m"),
    ("train", "trains", "train", "trains", "m"),
    ("house", "houses", "maison", "maisons", "f"),
    ("table", "tables", "table", "tables", "f"),
    ("chair", "chairs", "chaise", "chaises", "f"),
    ("book", "books", "livre", "livres", "m"),
    ("ball", "balls", "balle", "balles", "f"),
    ("box", "boxes", "boîte", "boîtes", "f"),
    ("cup", "cups", "tasse", "tasses", "f"),
    ("key", "keys", "clé", "clés", "f"),
    ("hat", "hats", "chapeau", "chapeaux", "m"),
    ("shoe", "shoes", "chaussure", "chaussures", "f"),
    ("letter", "letters", "lettre", "lettres", "f"),
    ("bag", "bags", "sac", "sacs", "m"),
    ("window", "windows", "fenêtre", "fenêtres", "f"),
    ("garden", "gardens", "jardin", "jardins", "m"),
    ("flower", "flowers", "fleur", "fleurs", "f"),
]

# Adjectives: en -> French (m sg, f sg, m pl, f pl). PRE_ADJ stay before the noun in French too.
PRE_ADJ = {
    "small": ("petit", "petite", "petits", "petites"),
    "big": ("grand", "grande", "grands", "grandes"),
    "pretty": ("joli", "jolie", "jolis", "jolies"),
    "old": ("vieux", "vieille", "vieux", "vieilles"),
    "new": ("nouveau", "nouvelle", "nouveaux", "nouvelles"),
    "bad": ("mauvais", "mauvaise", "mauvais", "mauvaises"),
}
POST_ADJ = {
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "green": ("vert", "verte", "verts", "vertes"),
    "black": ("noir", "noire", "noirs", "noires"),
    "white": ("blanc", "blanche", "blancs", "blanches"),
    "blue": ("bleu", "bleue", "bleus", "bleues"),
    "grey": ("gris", "grise", "gris", "grises"),
    "round": ("rond", "ronde", "ronds", "rondes"),
    "heavy": ("lourd", "lourde", "lourds", "lourdes"),
    "broken": ("cassé", "cassée", "cassés", "cassées"),
    "happy": ("heureux", "heureuse", "heureux", "heureuses"),
}

# Determiners: en -> (fr masculine, fr feminine).
DET_SG = {
    "the": ("le", "la"),
    "a": ("un", "une"),
    "this": ("ce", "cette"),
    "my": ("mon", "ma"),
    "your": ("votre", "votre"),
    "his": ("son", "sa"),
    "her": ("son", "sa"),
    "our": ("notre", "notre"),
    "their": ("leur", "leur"),
}
DET_PL = {
    "the": "les",
    "these": "ces",
    "my": "mes",
    "your": "vos",
    "his": "ses",
    "her": "ses",
    "our": "nos",
    "their": "leurs",
    "some": "des",
}
NUMBERS = {
    "two": "deux",
    "three": "trois",
    "four": "quatre",
    "five": "cinq",
    "six": "six",
    "seven": "sept",
    "eight": "huit",
    "nine": "neuf",
    "ten": "dix",
    "eleven": "onze",
    "twelve": "douze",
    "twenty": "vingt",
}

# Pronoun subjects: en -> (fr, person index into a verb's French forms, English verb form).
# French forms are (je, il/elle, nous, vous, ils); English forms are (base, third person singular).
PRONOUNS = {
    "I": ("je", 0, 0),
    "he": ("il", 1, 1),
    "she": ("elle", 1, 1),
    "we": ("nous", 2, 0),
    "you": ("vous", 3, 0),
    "they": ("ils", 4, 0),
}
VERBS = [
    (("see", "sees"), ("vois", "voit", "voyons", "voyez", "voient")),
    (("watch", "watches"), ("regarde", "regarde", "regardons", "regardez", "regardent")),
    (("find", "finds"), ("trouve", "trouve", "trouvons", "trouvez", "trouvent")),
    (("carry", "carries"), ("porte", "porte", "portons", "portez", "portent")),
    (("push", "pushes"), ("pousse", "pousse", "poussons", "poussez", "poussent")),
    (("pull", "pulls"), ("tire", "tire", "tirons", "tirez", "tirent")),
    (("wash", "washes"), ("lave", "lave", "lavons", "lavez", "lavent")),
    (("draw", "draws"), ("dessine", "dessine", "dessinons", "dessinez", "dessinent")),
    (("take", "takes"), ("prends", "prend", "prenons", "prenez", "prennent")),
    (("sell", "sells"), ("vends", "vend", "vendons", "vendez", "vendent")),
    (("follow", "follows"), ("suis", "suit", "suivons", "suivez", "suivent")),
    (("paint", "paints"), ("peins", "peint", "peignons", "peignez", "peignent")),
    (("want", "wants"), ("veux", "veut", "voulons", "voulez", "veulent")),
    (("look for", "looks for"), ("cherche", "cherche", "cherchons", "cherchez", "cherchent")),
]
PREPOSITIONS = {
    "in": "dans",
    "on": "sur",
    "under": "sous",
    "behind": "derrière",
    "with": "avec",
    "for": "pour",
    "without": "sans",
    "in front of": "devant",
}
ADVERBS = {
    "today": "aujourd'hui",
    "now": "maintenant",
    "tonight": "ce soir",
    "every morning": "chaque matin",
    "again": "encore",
}
MIN_WORDS, MAX_WORDS = 3, 15


def noun_phrase(rng: random.Random) -> tuple[str, str, bool]:
    """(English, French, plural) of DET [NUMBER] [ADJ] NOUN [ADJ]."""
    en_sg, en_pl, fr_sg, fr_pl, gender = rng.choice(NOUNS)
    plural = rng.random() < 0.35
    g = 0 if gender == "m" else 1
    form = g + (2 if plural else 0)
    pre = rng.choice(list(PRE_ADJ)) if rng.random() < 0.3 else None
    post = rng.choice(list(POST_ADJ)) if rng.random() < 0.4 else None
    en, fr = [], []
    if plural:
        det = rng.choice(list(DET_PL) + [""])  # "" = a bare number: "two cats"
        num = rng.choice(list(NUMBERS)) if det == "" or (det != "some" and rng.random() < 0.4) else None
        if det:
            en.append(det)
            # French "des" becomes "de" before an adjective: "de petites voitures"
            fr.append("de" if det == "some" and pre else DET_PL[det])
        if num:
            en.append(num)
            fr.append(NUMBERS[num])
    else:
        det = rng.choice(list(DET_SG))
        en.append(det)
        fr.append(DET_SG[det][g])
    if pre:
        en.append(pre)
        fr.append(PRE_ADJ[pre][form])
    if post:
        en.append(post)
    en.append(en_pl if plural else en_sg)
    fr.append(fr_pl if plural else fr_sg)
    if post:
        fr.append(POST_ADJ[post][form])
    if en[0] == "a" and en[1][0] in "aeiou":
        en[0] = "an"
    return " ".join(en), " ".join(fr), plural


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """One (English, French) pair, capitalized, ending with a full stop."""
    while True:
        if rng.random() < 0.35:
            subj_en = rng.choice(list(PRONOUNS))
            subj_fr, fr_person, en_form = PRONOUNS[subj_en]
        else:
            subj_en, subj_fr, plural = noun_phrase(rng)
            fr_person, en_form = (4, 0) if plural else (1, 1)
        (en_forms, fr_forms) = rng.choice(VERBS)
        if rng.random() < 0.15:  # negation: "does not see" -> "ne voit pas"
            verb_en = ("does not " if en_form else "do not ") + en_forms[0]
            verb_fr = f"ne {fr_forms[fr_person]} pas"
        else:
            verb_en, verb_fr = en_forms[en_form], fr_forms[fr_person]
        obj_en, obj_fr, _ = noun_phrase(rng)
        en, fr = [subj_en, verb_en, obj_en], [subj_fr, verb_fr, obj_fr]
        if rng.random() < 0.4:
            prep = rng.choice(list(PREPOSITIONS))
            np_en, np_fr, _ = noun_phrase(rng)
            en += [prep, np_en]
            fr += [PREPOSITIONS[prep], np_fr]
        if rng.random() < 0.25:
            adv = rng.choice(list(ADVERBS))
            en.append(adv)
            fr.append(ADVERBS[adv])
        en_text, fr_text = " ".join(en), " ".join(fr)
        if MIN_WORDS <= len(en_text.split()) <= MAX_WORDS and len(fr_text.split()) <= MAX_WORDS:
            return en_text[0].upper() + en_text[1:] + ".", fr_text[0].upper() + fr_text[1:] + "."


def generate_pairs(
    n: int, seed: int, make: Callable[[random.Random], tuple[str, str]] = sentence_pair
) -> list[tuple[str, str]]:
    """`n` distinct pairs of a grammar's `make` (no first sentence twice), deterministic in `seed`."""
    rng = random.Random(seed)
    seen: set[str] = set()
    pairs = []
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise UserError(f"the toy grammar cannot produce {n} distinct sentences")
        en, fr = make(rng)
        if en not in seen:
            seen.add(en)
            pairs.append((en, fr))
    return pairs


def split_sizes(pairs: int, valid: int | None = None, test: int | None = None) -> dict[str, int]:
    """Train/valid/test sizes: by default 1% each for evaluation, but at least min(300, 10%)."""
    if pairs < 3:
        raise UserError(f"--pairs must be at least 3, got {pairs}")
    default = max(pairs // 100, min(300, pairs // 10), 1)
    valid = default if valid is None else valid
    test = valid if test is None else test
    if valid < 0 or test < 0 or valid + test >= pairs:
        raise UserError(f"--valid {valid} and --test {test} leave no training pairs out of --pairs {pairs}")
    return {"train": pairs - valid - test, "valid": valid, "test": test}


def _write_lines(path: str, lines: list[str]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def check_out_dir(out: str) -> None:
    """UserError (naming --out) unless `out` can be written as a directory."""
    check_output(out, "--out", "dir")


def write_splits(out: str, data: list[tuple[str, str]], langs: tuple[str, str], sizes: dict[str, int]) -> None:
    """Write OUT/{valid,test,train}.{LANG} from `data` in that order (`sizes` from split_sizes)."""
    os.makedirs(out, exist_ok=True)
    start = 0
    for split in ("valid", "test", "train"):
        part = data[start : start + sizes[split]]
        start += sizes[split]
        for side, lang in enumerate(langs):
            _write_lines(os.path.join(out, f"{split}.{lang}"), [pair[side] for pair in part])


def write_toy_corpus(
    out: str, pairs: int = 50000, seed: int = 1, valid: int | None = None, test: int | None = None
) -> dict[str, int]:
    """Write OUT/{train,valid,test}.{en,fr}; the splits share no sentence. Returns the split sizes."""
    sizes = split_sizes(pairs, valid, test)
    check_out_dir(out)
    write_splits(out, generate_pairs(pairs, seed), ("en", "fr"), sizes)
    return sizes
