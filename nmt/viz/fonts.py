"""Fonts for any script in the figures: the labels' characters choose the font they are drawn in.

matplotlib draws every text in one default font (DejaVu Sans), which has no Hangul, Han, kana,
Devanagari, ... glyphs: Korean pieces become empty boxes and each one warns "Glyph ... missing".
Here the characters a figure draws choose its font:

- matplotlib's default when it covers every character (Latin, Greek, Cyrillic, ...: nothing changes);
- else an installed font that covers them all, Noto Sans CJK first (the KR, JP or SC face to match
  Hangul, kana or Han), regular sans faces before bold, serif and mono ones;
- else the one covering the most, and ONE log line naming the scripts left out (from
  unicodedata names: "Hangul", "Han", "Hiragana/Katakana", "Arabic", ...) and how to install a font.

Candidates are matplotlib's font list plus the system's font files it has not listed (its list is
a cache built once, so a font installed afterwards would otherwise stay unseen). A font's coverage
(its cmap, read with FT2Font) is read once per file: `font_coverage` is an lru_cache on the path.
`choose_font` is a pure function of (characters, fonts, coverage); `FontPicker` is the small object
a figure writer carries: it lists the system's fonts only when the default falls short and
remembers which scripts it already reported.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Iterable, Optional, Sequence

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

log = logging.getLogger("nmt.viz")

INSTALL_HINT = (
    "install a font that has them, e.g. Noto CJK for Korean, Chinese and Japanese "
    "(`apt-get install fonts-noto-cjk` on Debian/Ubuntu; fonts-noto for other scripts)"
)
# unicodedata name prefixes whose first word is not the script's usual name
SCRIPT_PREFIXES = (
    ("HALFWIDTH HANGUL", "Hangul"),
    ("HALFWIDTH KATAKANA", "Hiragana/Katakana"),
    ("HANGUL", "Hangul"),
    ("CJK", "Han"),
    ("KANGXI", "Han"),
    ("HIRAGANA", "Hiragana/Katakana"),
    ("KATAKANA", "Hiragana/Katakana"),
)
REGION_OF_SCRIPT = (("Hangul", "KR"), ("Hiragana/Katakana", "JP"))  # else SC: Han alone


@dataclass(frozen=True)
class FontFile:
    """One installed font face: its family name, its file, and whether it is the plain (regular) face."""

    name: str
    path: str
    regular: bool = True


@dataclass(frozen=True)
class FontChoice:
    """The font for a set of characters (None: matplotlib's default) and the characters it lacks."""

    font: Optional[FontFile]
    missing: frozenset[str]


# ----------------------------------------------------------------------------- pure functions
def drawn_chars(texts: Iterable[str]) -> frozenset[str]:
    """The characters that need a glyph: no whitespace, controls or format characters."""
    return frozenset(ch for text in texts for ch in text if not ch.isspace() and unicodedata.category(ch)[0] != "C")


def script_of(ch: str) -> str:
    """A reader's name for the script of a character: '한' -> 'Hangul', '中' -> 'Han', 'ب' -> 'Arabic'."""
    name = unicodedata.name(ch, "")
    for prefix, script in SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    if not name:
        return f"U+{ord(ch):04X}"
    return "symbols" if unicodedata.category(ch) == "So" else name.split()[0].title()


def scripts_of(chars: Iterable[str]) -> list[str]:
    """Distinct scripts of `chars`, sorted."""
    return sorted({script_of(ch) for ch in chars})


def _rank(font: FontFile, region: str) -> tuple:
    """Sort key of the candidates: Noto Sans CJK (the wanted region first), other Noto Sans, the rest;
    regular sans faces before bold, serif and mono ones; then by name and path (deterministic)."""
    noto = 0 if font.name.startswith("Noto Sans CJK") else 1 if font.name.startswith("Noto Sans") else 2
    plain = (not font.regular, "Serif" in font.name, "Mono" in font.name)
    return (noto, not font.name.endswith(" " + region), *plain, font.name, font.path)


def choose_font(
    chars: AbstractSet[str],
    default: FontFile,
    fonts: Sequence[FontFile],
    coverage: Callable[[str], AbstractSet[int]],
) -> FontChoice:
    """The font to draw `chars` in: `default` when it covers them all, else the best ranked of
    `fonts` that does, else the one covering the most (when it beats the default); `coverage(path)`
    gives the code points a font file has."""
    need = {ord(ch) for ch in chars}
    lacking = need - set(coverage(default.path))
    if not lacking:
        return FontChoice(None, frozenset())
    scripts = {script_of(chr(c)) for c in lacking}
    region = next((r for script, r in REGION_OF_SCRIPT if script in scripts), "SC")
    best, best_missing = None, lacking
    for font in sorted(fonts, key=lambda f: _rank(f, region)):
        missing = need - set(coverage(font.path))
        if len(missing) < len(best_missing):
            best, best_missing = font, missing
            if not missing:
                break
    return FontChoice(best, frozenset(chr(c) for c in best_missing))


def missing_message(missing: AbstractSet[str]) -> str:
    """The one line telling which scripts no installed font has, and what to do about it."""
    examples = ", ".join(sorted(missing)[:3])
    return (
        f"no installed font has the {' and '.join(scripts_of(missing))} characters of these labels "
        f"(e.g. {examples}): they are drawn as empty boxes; {INSTALL_HINT}"
    )


# ----------------------------------------------------------------------------- the system's fonts
def font_properties(choice: FontChoice, size: float) -> font_manager.FontProperties:
    """A Text's font: the chosen file (by path, so no family name needs registering) or the default."""
    if choice.font is None:
        return font_manager.FontProperties(size=size)
    return font_manager.FontProperties(fname=choice.font.path, size=size)


@functools.lru_cache(maxsize=None)
def font_coverage(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (empty when the file cannot be read)."""
    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@functools.lru_cache(maxsize=None)
def _font_file(path: str) -> Optional[FontFile]:
    """A font file matplotlib has not listed, named by its own family and style names."""
    try:
        face = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return None
    return FontFile(face.family_name, path, face.style_name in ("Regular", "Book", "Normal"))


def default_font() -> FontFile:
    """matplotlib's default font (DejaVu Sans unless rcParams say otherwise)."""
    path = str(font_manager.findfont(font_manager.FontProperties()))  # a plain path (3.11 returns a FontPath)
    return _font_file(path) or FontFile("default", path)


def system_fonts() -> list[FontFile]:
    """matplotlib's font list, plus the system's font files installed after it was built."""
    fonts = [
        FontFile(f.name, f.fname, f.style == "normal" and f.weight in (400, "normal", "regular", "book"))
        for f in font_manager.fontManager.ttflist
    ]
    known = {f.path for f in fonts}
    extra = (_font_file(path) for path in sorted(font_manager.findSystemFonts()) if path not in known)
    return fonts + [f for f in extra if f is not None]


@dataclass
class FontPicker:
    """Chooses the font of a figure's texts; lists the system's fonts only when the default falls
    short, and reports each script that no font has once (the set of reported scripts is its state)."""

    fonts: Optional[Sequence[FontFile]] = None  # None: system_fonts(), listed when first needed
    default: FontFile = field(default_factory=default_font)
    coverage: Callable[[str], AbstractSet[int]] = font_coverage
    reported: set[str] = field(default_factory=set)

    def choose(self, texts: Iterable[str]) -> FontChoice:
        """The font for `texts`; logs one warning line when some of their scripts have no font."""
        chars = drawn_chars(texts)
        if {ord(ch) for ch in chars} <= self.coverage(self.default.path):  # the common case: no font search
            return FontChoice(None, frozenset())
        if self.fonts is None:
            self.fonts = system_fonts()
        choice = choose_font(chars, self.default, self.fonts, self.coverage)
        new = {ch for ch in choice.missing if script_of(ch) not in self.reported}
        if new:
            log.warning(missing_message(new))
            self.reported.update(script_of(ch) for ch in new)
        return choice
