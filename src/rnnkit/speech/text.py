"""Transcript normalisation and character alphabets for CTC speech recognition.

A normalised transcript is what a listener hears written in one case with one kind of
separator: lowercase letters, single spaces between words, apostrophes only inside words
(``don't``, ``programma's``), numbers spelled out (num2words), ``&`` spoken as a word and
bracketed non-speech (``[ascending tones]``, ``(2 seconds of silence)``, ``<beep>``) removed.

>>> normalize_transcript("Press 1, then the pound key & wait.")
'press one then the pound key and wait'
>>> normalize_transcript("[ascending tones]")
''
>>> normalize_transcript("Het is 21 uur, dat wéét ik.", language="nl")
'het is eenentwintig uur dat wéét ik'
>>> normalize_transcript("A.M.")
'a m'
>>> alphabet_from_texts(["ab a", "ba"])
['<blank>', ' ', 'a', 'b']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["BLANK", "ENGLISH_ALPHABET", "alphabet_from_texts", "normalize_transcript"]

BLANK = "<blank>"
#: CTC label set for normalised English: blank (index 0), space (1), apostrophe (2), a..z.
ENGLISH_ALPHABET: list[str] = [BLANK, " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]

_AND = {"en": "and", "nl": "en"}
_PERCENT = {"en": "percent", "nl": "procent"}
# Bracketed asides are stage directions, not speech: [tones], (silence), <beep>, {noise}.
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>|\{[^}]*\}")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
# A number: digits with group separators or a decimal part, and any letters glued to it
# (an ordinal suffix 1st/3e/2de, or a unit read apart: 3D -> three d).
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)([^\W\d_]*)")
_POINT = {"en": "point", "nl": "komma"}
_ORDINAL_SUFFIX = {"en": {"st", "nd", "rd", "th"}, "nl": {"e", "de", "ste"}}
# Dutch clitics written with a leading apostrophe: 's avonds, 't is, 'n beetje, 'k weet.
_NL_CLITIC = re.compile(r"(?:(?<=\s)|^)'(?=[stnkmr](?:\s|$))")


def _spell_number(token: str, ordinal: bool, language: str) -> str:
    from num2words import num2words  # rnnkit[text]

    def spell(n: int, to: str = "cardinal") -> str:
        return num2words(n, lang=language, to=to).replace("-", " ").replace(",", " ")

    thousands, decimal = (",", ".") if language == "en" else (".", ",")
    if re.fullmatch(rf"\d{{1,3}}(?:\{thousands}\d{{3}})+", token):  # 1,000 (en) / 1.000 (nl)
        return spell(int(token.replace(thousands, "")), "ordinal" if ordinal else "cardinal")
    whole, _, frac = token.partition(decimal)
    whole_ok = re.fullmatch(rf"\d{{1,3}}(?:\{thousands}\d{{3}})*", whole) is not None
    if frac and whole_ok and frac.isdigit():  # 2.5 (en) / 2,5 (nl): digits read one by one
        digits = " ".join(spell(int(d)) for d in frac)
        return f"{spell(int(whole.replace(thousands, '')))} {_POINT[language]} {digits}"
    if not token.isdigit():  # 1,2 or 10.30.5: read the pieces one by one
        return " ".join(spell(int(p)) for p in re.split(r"[.,]", token))
    return spell(int(token), "ordinal" if ordinal else "cardinal")


def normalize_transcript(text: str, language: str = "en") -> str:
    """``text`` as a CTC target: lowercase words separated by single spaces.

    Rules, in order:

    * bracketed non-speech (``[...]``, ``(...)``, ``<...>``, ``{...}``) is removed; a text that
      is only non-speech becomes ``""``;
    * numbers are spelled out by num2words in ``language`` (``"en"`` or ``"nl"``): ``1,000`` ->
      ``one thousand``, ``2.5`` -> ``two point five`` (Dutch reads ``.`` as the thousands and
      ``,`` as the decimal separator), ``3rd``/``3e`` -> ordinal, ``3D`` -> ``three d``;
    * ``&`` -> ``and``/``en``, ``%`` -> ``percent``/``procent``;
    * lowercase; English folds accented letters to ASCII (``café`` -> ``cafe``) so every
      character is in :data:`ENGLISH_ALPHABET`; other languages keep them (``wéét``, ``ruïne``);
    * every other character is a separator: punctuation, hyphens and dots become spaces, so
      abbreviations are spelled letter by letter (``A.M.`` -> ``a m``, ``e-mail`` -> ``e mail``);
    * apostrophes survive only inside a word (``don't``, ``programma's``), and in Dutch before
      the clitics ``'s 't 'n 'k 'm 'r`` (``'s avonds``).
    """
    if language not in _AND:
        raise ValueError(f"language must be one of {sorted(_AND)}, got {language!r}")
    s = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    s = _BRACKETS.sub(" ", s)
    s = s.replace("&", f" {_AND[language]} ").replace("%", f" {_PERCENT[language]} ")

    def number(m: re.Match) -> str:
        token, letters = m.group(1), m.group(2)
        if letters.lower() in _ORDINAL_SUFFIX[language] and token.isdigit():
            return f" {_spell_number(token, True, language)} "
        return f" {_spell_number(token, False, language)} {letters} "

    s = _NUMBER.sub(number, s).lower()
    if language == "en":
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
        s = unicodedata.normalize("NFC", s)
    # letters and apostrophes stay; everything else separates words
    s = "".join(c if (c.isalpha() or c == "'") else " " for c in s)
    s = " ".join(s.split())
    keep_clitic = _NL_CLITIC if language == "nl" else None
    out = []
    for i, c in enumerate(s):
        if c == "'":
            before = s[i - 1] if i > 0 else " "
            after = s[i + 1] if i + 1 < len(s) else " "
            inside = before.isalpha() and after.isalpha()
            clitic = keep_clitic is not None and keep_clitic.match(s, i) is not None
            if not (inside or clitic):
                out.append(" ")
                continue
        out.append(c)
    return " ".join("".join(out).split())


def alphabet_from_texts(texts: Iterable[str]) -> list[str]:
    """CTC label set for normalised ``texts``: ``"<blank>"`` first (index 0), ``" "`` second,
    then every other character seen, sorted by code point."""
    seen: set[str] = set()
    for t in texts:
        seen.update(t)
    seen.discard(" ")
    seen.discard(BLANK)
    return [BLANK, " "] + sorted(seen)
