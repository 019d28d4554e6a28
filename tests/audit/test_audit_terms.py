"""Identity word lists and counterfactual swaps (rnnkit.audit.terms).

What is an exact inverse, as these tests pin it down:
- every swap built from a term list's *pairs* (or from ``(a, b)`` tuples) is an involution:
  ``swap(swap(t)) == t`` for every string when ``one_way=False``, and for every string without a
  token ``him``/``hers`` when ``one_way=True`` (the default);
- ``him -> her`` and ``hers -> his`` are one-way (English ``her`` is both ``him`` and ``his``):
  ``swap(swap("him")) == "his"``, ``swap(swap("hers")) == "her"``; not inverses, by design;
- a ``{a: b}`` mapping is one-way only.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rnnkit.audit.terms import (
    DEFAULT_LISTS,
    GENDER,
    NAMES_GENDER,
    NAMES_RACE,
    RELIGION,
    TermList,
    count_terms,
    find_groups,
    swap,
    tokenize,
)

SWAPPABLE = [t for t in DEFAULT_LISTS if t.swappable]
ONE_WAY = {"him", "hers"}
# words that contain a gender term as a substring, or join one with a hyphen: never touched
TRAPS = ["heather", "shell", "manager", "hermit", "sheet", "history", "mankind", "human",
         "theme", "ushers", "x-men", "he-man", "she-devil", "sons-of", "hisself", "herd",
         "Heathers", "SHELLS", "Hermione", "boyish-looking", "the", "a", "film", "2", "it's"]
SEPARATORS = [" ", "  ", " . ", ", ", "'s ", "' ", "! ", "\n", " (", ") ", "/", " -- ", "? ",
              "\"", "'s. ", " ; ", "\t"]


def forms(word: str) -> dict[str, str]:
    """The three casings swap handles, written out from the spec."""
    return {"lower": word.lower(), "cap": word[0].upper() + word[1:], "upper": word.upper()}


def mixed(word: str) -> str:
    """A casing swap must leave alone: lower case with the second character upper."""
    low = word.lower()
    return low[0] + low[1].upper() + low[2:]


def partners(tl: TermList) -> dict[str, str]:
    out = {}
    for a, b in tl.pairs:
        out[a] = b
        out[b] = a
    return out


def random_text(rng: random.Random, tl: TermList, n: int = 30) -> tuple[str, str, int]:
    """A random text of list words (random casing), traps and separators, with the text swap
    must give (written from the pairs, not from swap) and the number of swapped words."""
    pair_of = partners(tl)
    words = sorted(pair_of)
    traps = [w for w in TRAPS if w.lower() not in tl.vocabulary]  # "heather" is a WEAT name
    text, expected, count = [], [], 0
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            w = rng.choice(words)
            kind = rng.choice(["lower", "cap", "upper", "mixed"])
            if kind == "mixed":
                text.append(mixed(w))
                expected.append(mixed(w))
            else:
                text.append(forms(w)[kind])
                expected.append(forms(pair_of[w])[kind])
                count += 1
        else:
            w = rng.choice(traps)
            text.append(w)
            expected.append(w)
        sep = rng.choice(SEPARATORS)
        text.append(sep)
        expected.append(sep)
    return "".join(text), "".join(expected), count


# --- the lists -------------------------------------------------------------------------------

def test_lists_are_documented_and_one_to_one():
    for tl in DEFAULT_LISTS:
        assert tl.source, tl.name
        vocab = tl.vocabulary
        assert sum(len(tl.terms[g]) for g in tl.groups) == len(vocab)  # one group per term
        if tl.swappable:
            lefts = [a.lower() for a, _ in tl.pairs]
            rights = [b.lower() for _, b in tl.pairs]
            assert len(set(lefts + rights)) == 2 * len(tl.pairs)
            assert all(vocab[a] == tl.groups[0] for a in lefts)
            assert all(vocab[b] == tl.groups[1] for b in rights)
    assert not RELIGION.swappable


def test_weat_names_as_published():
    assert NAMES_GENDER.terms["male"] == ("John", "Paul", "Mike", "Kevin", "Steve", "Greg",
                                          "Jeff", "Bill")
    assert NAMES_GENDER.terms["female"] == ("Amy", "Joan", "Lisa", "Sarah", "Diana", "Kate",
                                            "Ann", "Donna")
    assert NAMES_GENDER.pairs[0] == ("John", "Amy") and NAMES_GENDER.pairs[-1] == ("Bill", "Donna")
    ea, aa = NAMES_RACE.terms["european_american"], NAMES_RACE.terms["african_american"]
    assert len(ea) == len(aa) == 50 and len(NAMES_RACE.pairs) == 50
    # paired in order, 25 male names then 25 female on both sides
    assert NAMES_RACE.pairs[0] == ("Adam", "Alonzo") and NAMES_RACE.pairs[24] == ("Wilbur",
                                                                                   "Wardell")
    assert NAMES_RACE.pairs[25] == ("Amanda", "Aiesha")
    assert NAMES_RACE.pairs[-1] == ("Wendy", "Yvette")


def test_gender_pairs_from_the_brief_present():
    pairs = {(a, b) for a, b in GENDER.pairs}
    for p in [("he", "she"), ("his", "her"), ("himself", "herself"), ("man", "woman"),
              ("men", "women"), ("boy", "girl"), ("father", "mother"), ("son", "daughter"),
              ("brother", "sister"), ("husband", "wife"), ("king", "queen"), ("mr", "mrs"),
              ("uncle", "aunt"), ("nephew", "niece"), ("male", "female"),
              ("gentleman", "lady"), ("gentlemen", "ladies"),
              ("grandfather", "grandmother"), ("boyfriend", "girlfriend"),
              ("actor", "actress")]:
        assert p in pairs
    assert GENDER.group_of("HIM") == "male" and GENDER.group_of("hers") == "female"


# --- swap: every pair, every casing ----------------------------------------------------------

@pytest.mark.parametrize("tl", SWAPPABLE, ids=lambda t: t.name)
def test_every_pair_swaps_both_ways_in_every_casing(tl):
    for a, b in tl.pairs:
        fa, fb = forms(a), forms(b)
        for kind in ("lower", "cap", "upper"):
            assert swap(fa[kind], tl) == (fb[kind], 1)
            assert swap(fb[kind], tl) == (fa[kind], 1)
            # in context: possessive, punctuation, other words
            text = f"({fa[kind]}'s) and {fb[kind]}, the film."
            assert swap(text, tl) == (f"({fb[kind]}'s) and {fa[kind]}, the film.", 2)
            assert swap(swap(text, tl)[0], tl)[0] == text
        assert swap(mixed(a), tl) == (mixed(a), 0)


@pytest.mark.parametrize("tl", SWAPPABLE, ids=lambda t: t.name)
@pytest.mark.parametrize("seed", range(5))
def test_random_texts_swap_to_the_hand_built_counterfactual_and_back(tl, seed):
    rng = random.Random(1000 * seed + len(tl.name))
    for _ in range(40):
        text, expected, count = random_text(rng, tl)
        got, n = swap(text, tl)
        assert (got, n) == (expected, count), text
        assert swap(got, tl) == (text, count)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(sorted(GENDER.vocabulary)),
                          st.sampled_from(["He", "HIS", "Him", "HERS", "Mrs", "Bobbie-Sue"])),
                max_size=12))
def test_swap_is_an_involution_on_any_string_without_one_way(pieces):
    text = "".join(pieces)
    for tl in SWAPPABLE:
        once, n = swap(text, tl, one_way=False)
        assert swap(once, tl, one_way=False) == (text, n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(sorted(GENDER.vocabulary))),
                max_size=12))
def test_default_swap_is_an_involution_without_him_or_hers(pieces):
    text = "".join(pieces)
    assume(not any(t.lower() in ONE_WAY for t in tokenize(text)))
    once, n = swap(text)
    assert swap(once) == (text, n)


def test_one_way_swaps_are_documented_non_inverses():
    assert swap("I saw him") == ("I saw her", 1)
    assert swap("I saw her") == ("I saw his", 1)  # her -> his: the pair
    assert swap(swap("I saw him")[0])[0] == "I saw his"  # not an inverse, by design
    assert swap("It is HERS") == ("It is HIS", 1)
    assert swap(swap("It is hers")[0])[0] == "It is her"
    # without the one-way swaps him/hers stay, and the swap is an exact involution
    assert swap("him and hers and his", one_way=False) == ("him and hers and her", 1)


def test_substrings_and_compounds_untouched():
    text = "Heather's shell manager hermit sheet history mankind x-men he-man USHERS"
    assert swap(text) == (text, 0)
    assert swap("his/her father-in-law") == ("her/his mother-in-law", 3)
    assert swap("Heather", NAMES_RACE) == ("Nichelle", 1)
    assert swap("bobbie-sue BOBBIE-SUE Bobbie-Sue Bobbie-sue", NAMES_RACE) == (
        "lakisha LAKISHA Lakisha Bobbie-sue", 3)


def test_rt_polarity_and_normal_text():
    assert swap("it's a film about his father .") == ("it's a film about her mother .", 2)
    assert swap("Her father's car.") == ("His mother's car.", 2)
    assert swap("he's the king's man") == ("she's the queen's woman", 3)
    assert swap("john and mike", NAMES_GENDER) == ("amy and lisa", 2)


def test_swap_pairs_and_mappings():
    assert swap("cats and dogs", [("cats", "dogs")]) == ("dogs and cats", 2)
    assert swap("Cat cat", {"cat": "dog"}) == ("Dog dog", 2)
    with pytest.raises(ValueError, match="one at a time"):
        swap("Greg", [NAMES_GENDER, NAMES_RACE])  # Greg has two partners
    with pytest.raises(ValueError, match="count only"):
        swap("church", RELIGION)
    with pytest.raises(TypeError):
        swap(3)
    with pytest.raises(ValueError, match="one word token"):
        swap("x", [("a b", "c")])


# --- finding and counting --------------------------------------------------------------------

def brute_force_counts(texts, tl):
    """Term counts with a separate, plain tokeniser: ASCII letter runs joined by hyphens."""
    lookup = {t.lower(): (g, t) for g in tl.groups for t in tl.terms[g]}
    out = {g: {} for g in tl.groups}
    for text in texts:
        for tok in re.findall(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", text):
            if tok.lower() in lookup:
                g, t = lookup[tok.lower()]
                out[g][t] = out[g].get(t, 0) + 1
    return out


def test_find_groups_and_count_terms_by_hand():
    texts = ["He met his sister.", "SHE and her MOTHER's car", "the film", "Jamel and John",
             "manager's shell"]
    assert find_groups(texts[0]) == {"gender": {"male", "female"}, "names_gender": set(),
                                     "names_race": set(), "religion": set()}
    assert find_groups(texts[3])["names_race"] == {"african_american"}
    assert find_groups(texts[3])["names_gender"] == {"male"}
    assert find_groups(texts[4]) == {t.name: set() for t in DEFAULT_LISTS}
    # "heather" is no gender word, but it is a WEAT name (names match case-insensitively)
    assert find_groups("heather's shell") == {"gender": set(), "names_gender": set(),
                                             "names_race": {"european_american"},
                                             "religion": set()}
    counts = count_terms(texts)
    assert dict(counts["gender"]["male"]) == {"he": 1, "his": 1}
    assert dict(counts["gender"]["female"]) == {"sister": 1, "she": 1, "her": 1, "mother": 1}
    assert dict(counts["names_race"]["african_american"]) == {"Jamel": 1}
    assert dict(counts["religion"]["muslim"]) == {}


@pytest.mark.parametrize("seed", range(3))
def test_count_terms_matches_brute_force_on_random_texts(seed):
    rng = random.Random(seed)
    vocab = sorted(GENDER.vocabulary) + [n for n in NAMES_RACE.vocabulary] + TRAPS
    texts = [" ".join(rng.choice([w, w.upper(), w.title()]) for w in rng.choices(vocab, k=15))
             for _ in range(50)]
    for tl in (GENDER, NAMES_RACE):
        got = count_terms(texts, tl)[tl.name]
        assert {g: dict(c) for g, c in got.items()} == brute_force_counts(texts, tl)


def test_term_list_validation():
    with pytest.raises(ValueError, match="listed twice"):
        TermList("x", ("a", "b"), {"a": ("ox",), "b": ("ox",)})
    with pytest.raises(ValueError, match="must be a a term"):
        TermList("x", ("a", "b"), {"a": ("ox",), "b": ("cow",)}, pairs=(("cow", "ox"),))
    with pytest.raises(ValueError, match="reserved"):
        TermList("x", ("a", "both"), {"a": ("ox",), "both": ("cow",)})
    with pytest.raises(ValueError, match="one word token"):
        TermList("x", ("a", "b"), {"a": ("ox cart",), "b": ("cow",)})
    with pytest.raises(TypeError):
        count_terms("a single string")
