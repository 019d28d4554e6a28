"""Transcript normalisation and CTC alphabets (rnnkit.speech.text)."""

from __future__ import annotations

import pytest

from rnnkit.speech.text import ENGLISH_ALPHABET, alphabet_from_texts, normalize_transcript

pytest.importorskip("num2words")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Press 1, then the pound key.", "press one then the pound key"),
        ("the 21st of 1,000", "the twenty first of one thousand"),
        ("2.5% more", "two point five percent more"),
        ("3D audio enabled", "three d audio enabled"),
        ("press 1,2 or 3", "press one two or three"),
        ("Dial 105 now", "dial one hundred and five now"),
    ],
)
def test_english_numbers(raw, expected):
    assert normalize_transcript(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Het is 21 uur.", "het is eenentwintig uur"),
        ("2,5 kilo", "twee komma vijf kilo"),
        ("de 3e keer", "de derde keer"),
        ("1.000 vissen", "duizend vissen"),
    ],
)
def test_dutch_numbers(raw, expected):
    assert normalize_transcript(raw, language="nl") == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("[ascending tones]", ""),
        ("(2 seconds of silence)", ""),
        ("<beep ascending>", ""),
        ("at [@]", "at"),
        ("IAX (note: does not say \"2\")", "iax"),
        ("Please leave your message. (simple tone sound plays)", "please leave your message"),
    ],
)
def test_bracketed_non_speech_is_removed(raw, expected):
    assert normalize_transcript(raw) == expected


def test_apostrophes_only_inside_words():
    assert normalize_transcript("Don't 'quote' me, it's the callers' turn") == (
        "don't quote me it's the callers turn"
    )
    assert normalize_transcript("We\u2019re here") == "we're here"  # curly apostrophe
    # Dutch clitics keep their leading apostrophe
    assert normalize_transcript("'s Avonds z'n programma's, 't is laat.", "nl") == (
        "'s avonds z'n programma's 't is laat"
    )


def test_dutch_keeps_diacritics_english_folds_them():
    assert normalize_transcript("Één ruïne, Café Ëlla!", "nl") == "één ruïne café ëlla"
    assert normalize_transcript("Café naïve", "en") == "cafe naive"


def test_abbreviations_ampersand_and_punctuation():
    assert normalize_transcript("A.M.") == "a m"
    assert normalize_transcript("P.M. & A.M.") == "p m and a m"
    assert normalize_transcript("vis & chips", "nl") == "vis en chips"
    assert normalize_transcript("Call-Forward on  No Answer...") == "call forward on no answer"
    assert normalize_transcript("naar \\/etc om", "nl") == "naar etc om"


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="language"):
        normalize_transcript("hallo", language="xx")


def test_alphabets():
    assert ENGLISH_ALPHABET[:3] == ["<blank>", " ", "'"]
    assert ENGLISH_ALPHABET[3:] == list("abcdefghijklmnopqrstuvwxyz")
    assert alphabet_from_texts(["één zee", "z'n"]) == ["<blank>", " ", "'", "e", "n", "z", "é"]
    for raw in ["Press 1 & 2, then #.", "It's 3 A.M."]:
        assert set(normalize_transcript(raw)) <= set(ENGLISH_ALPHABET)
