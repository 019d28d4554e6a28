"""Identity word lists and exact counterfactual swaps for auditing text data and models.

Four lists ship as Python data; each is a :class:`TermList` (groups, their terms, and for the
swappable lists a one-to-one pairing between the first two groups):

``gender`` (:data:`GENDER`, groups ``male`` / ``female``, swappable)
    Definitional gender word pairs. The core is the ten definitional pairs of Bolukbasi et al.
    (2016), "Man is to computer programmer as woman is to homemaker? Debiasing word embeddings"
    (NeurIPS; she-he, her-his, woman-man, herself-himself, daughter-son, mother-father, gal-guy,
    girl-boy, female-male; their Mary-John pair is left to the name lists), extended with
    kinship, title and role pairs from the line-aligned male/female word lists of Zhao et al.
    (2018), "Learning gender-neutral word embeddings" (EMNLP; ``wordlist/`` of the GN-GloVe
    release), keeping pairs whose words are plainly gendered and have exactly one partner (so
    not their god/goddess, host/hostess, hero/heroine, lord/lady, bachelor/spinster), plus the
    in-law compounds and a few derived forms (marked in the source).
``names_gender`` (:data:`NAMES_GENDER`, groups ``male`` / ``female``, swappable)
    The male and female first names of WEAT 6 of Caliskan, Bryson & Narayanan (2017),
    "Semantics derived automatically from language corpora contain human-like biases"
    (Science 356:183-186), paired in the order given there (John-Amy, ..., Bill-Donna).
``names_race`` (:data:`NAMES_RACE`, groups ``european_american`` / ``african_american``,
swappable)
    The European-American and African-American first names of WEAT 3 of Caliskan et al. (2017),
    which are the names of Greenwald, McGhee & Schwartz (1998), "Measuring individual
    differences in implicit cognition: the implicit association test" (JPSP 74:1464). The full
    50 + 50 list of the paper's appendix is shipped (the embedding test itself dropped
    names too rare in its corpus; counting in text needs no such cut). Both sides list 25 male
    then 25 female names, so pairing one-to-one in the order given keeps the perceived gender
    of every swapped name. (WEAT 4's names come from Bertrand & Mullainathan 2004 and overlap
    these; they are not shipped, to keep one name one partner.)
``religion`` (:data:`RELIGION`, groups ``jewish`` / ``christian`` / ``muslim``, count only)
    The religion word triples of Manzini et al. (2019), "Black is to criminal as caucasian is to
    police" (NAACL): judaism/christianity/islam, jew/christian/muslim, synagogue/church/mosque,
    torah/bible/quran, rabbi/priest/imam, with plurals.

Words are tokens of letters and digits, joined by single hyphens: ``"Her father's car."`` has
the tokens ``Her``, ``father``, ``s``, ``car``, so the possessive ``'s`` stays attached to
whatever replaces ``father``; a hyphenated compound is one token and is a term only when listed
whole (``father-in-law`` is, ``x-men`` and ``he-man`` are not, so they are never touched).
Counting is case-insensitive. Names are matched as words too, so in lower-cased text such as
rt-polarity a name that is also a common word (``frank``, ``jack``, ``bill``, ``chip``) is counted
as a name; :attr:`TermList.ambiguous` lists those and reports mark them.

:func:`swap` maps every listed term to its partner and back, preserving case (``he``/``He``/
``HE`` become ``she``/``She``/``SHE``; other casings such as ``hE`` are left alone). It is an
exact involution: ``swap(swap(t)[0])[0] == t``, with one deliberate exception. English ``her``
is both the object (``him``) and the possessive (``his``) form. The pairing is ``his <-> her``;
``him -> her`` and ``hers -> his`` are *one-way* (:attr:`TermList.one_way`), so a text containing
``him`` or ``hers`` comes back with ``his`` where it had ``him``/``hers``. With
``one_way=False`` those two words are left alone and ``swap`` is an exact involution on every
string; with the default ``one_way=True`` it is one on every string that has no token ``him`` or
``hers`` (in any casing).

>>> swap("Her father's car.")
("His mother's car.", 2)
>>> swap("it's a film about his father .")
("it's a film about her mother .", 2)
>>> swap(swap("HE told Mr. Smith she saw herself")[0])[0]
'HE told Mr. Smith she saw herself'
>>> swap("I saw him")  # one-way: him -> her, and her -> his on the way back
('I saw her', 1)
>>> sorted(find_groups("He met his sister and Lakisha")["gender"])
['female', 'male']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_LISTS", "GENDER", "NAMES_GENDER", "NAMES_RACE", "RELIGION", "TermList",
           "WORD_RE", "count_terms", "find_groups", "swap", "tokenize"]

#: one word: letters/digits, with single inner hyphens (``father-in-law``); apostrophes split
#: (``father's`` -> ``father``, ``s``)
WORD_RE = re.compile(r"[^\W_]+(?:-[^\W_]+)*")

#: names a list may not give a group: the audit reports use them for combined rows
RESERVED_GROUPS = frozenset({"both", "any", "none", "all"})


def tokenize(text: str) -> list[str]:
    """The word tokens of ``text`` (case kept), as :data:`WORD_RE` finds them.

    >>> tokenize("Her father's car -- a mother-in-law's 2 cents.")
    ['Her', 'father', 's', 'car', 'a', 'mother-in-law', 's', '2', 'cents']
    """
    return WORD_RE.findall(text)


def _cap(term: str) -> str:
    return term[:1].upper() + term[1:]


def _check_word(word: object, where: str) -> str:
    if not isinstance(word, str) or WORD_RE.fullmatch(word) is None or len(word) < 2:
        raise ValueError(f"{where}: {word!r} is not one word token of 2+ characters "
                         f"(letters/digits with inner hyphens)")
    if not word[0].isalpha() or _cap(word) in (word.lower(), word.upper()):
        raise ValueError(f"{where}: {word!r} must start with a letter and have distinct lower / "
                         f"Capitalised / UPPER forms")
    return word


@dataclass(frozen=True, eq=False)
class TermList:
    """A documented word list: ``groups`` (labels, e.g. ``("male", "female")``), ``terms`` (group
    -> its words, canonical spelling: lower case for words, capitalised for names), ``pairs``
    (a one-to-one pairing of ``terms[groups[0]]`` with ``terms[groups[1]]``; empty for count-only
    lists), ``one_way`` (extra swaps that have no inverse, e.g. ``him -> her``), ``source`` (the
    citation) and ``ambiguous`` (terms that are also common words, for reports).

    Terms are matched case-insensitively as whole tokens (see :func:`tokenize`); a term belongs
    to one group only. The constructor checks all of that and raises ``ValueError`` otherwise.

    >>> t = TermList("toy", ("a", "b"), {"a": ("ox",), "b": ("cow",)}, pairs=(("ox", "cow"),))
    >>> t.group_of("OX"), t.swappable, t.mapping()
    ('a', True, {'ox': 'cow', 'cow': 'ox'})
    """

    name: str
    groups: tuple[str, ...]
    terms: Mapping[str, tuple[str, ...]]
    pairs: tuple[tuple[str, str], ...] = ()
    one_way: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    ambiguous: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        where = f"term list {self.name!r}"
        if len(self.groups) < 2 or len(set(self.groups)) != len(self.groups):
            raise ValueError(f"{where}: needs two or more distinct groups, got {self.groups}")
        if RESERVED_GROUPS & set(self.groups):
            raise ValueError(f"{where}: group names {sorted(RESERVED_GROUPS)} are reserved for "
                             f"report rows; rename {sorted(RESERVED_GROUPS & set(self.groups))}")
        if set(self.terms) != set(self.groups):
            raise ValueError(f"{where}: terms must have one entry per group {self.groups}, "
                             f"got {sorted(self.terms)}")
        lookup: dict[str, str] = {}
        canonical: dict[str, str] = {}
        for g in self.groups:
            for t in self.terms[g]:
                key = _check_word(t, f"{where}: term").lower()
                if key in lookup:
                    raise ValueError(f"{where}: term {t!r} is listed twice (groups "
                                     f"{lookup[key]!r} and {g!r}); a term has one group")
                lookup[key] = g
                canonical[key] = t
        mapping: dict[str, str] = {}
        if self.pairs:
            if len(self.groups) != 2:
                raise ValueError(f"{where}: pairs need exactly two groups, got {self.groups}")
            for a, b in self.pairs:
                ka, kb = a.lower(), b.lower()
                if lookup.get(ka) != self.groups[0] or lookup.get(kb) != self.groups[1]:
                    raise ValueError(f"{where}: pair ({a!r}, {b!r}) must be a {self.groups[0]} "
                                     f"term then a {self.groups[1]} term of this list")
                if ka in mapping or kb in mapping:
                    raise ValueError(f"{where}: pair ({a!r}, {b!r}) reuses a term; pairs must "
                                     f"be one-to-one")
                mapping[ka], mapping[kb] = canonical[kb], canonical[ka]
        one_way: dict[str, str] = {}
        for a, b in self.one_way.items():
            ka, kb = a.lower(), b.lower()
            if ka not in lookup or ka in mapping or kb not in mapping:
                raise ValueError(f"{where}: one-way swap {a!r} -> {b!r} must map an unpaired "
                                 f"term of the list to a paired one")
            one_way[ka] = canonical[kb]
        bad = {a.lower() for a in self.ambiguous} - set(lookup)
        if bad:
            raise ValueError(f"{where}: ambiguous terms {sorted(bad)} are not in the list")
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_canonical", canonical)
        object.__setattr__(self, "_pairs", mapping)
        object.__setattr__(self, "_one_way", one_way)
        object.__setattr__(self, "_tables", {})  # swap tables, filled by swap()

    @property
    def swappable(self) -> bool:
        """Whether the list has a pairing, i.e. :func:`swap` can use it."""
        return bool(self.pairs)

    @property
    def vocabulary(self) -> dict[str, str]:
        """Lower-cased term -> its group, for every term of the list."""
        return dict(self._lookup)

    def group_of(self, word: str) -> str | None:
        """The group of ``word`` (any casing), or ``None`` if it is not a term of the list."""
        return self._lookup.get(word.lower())

    def canonical(self, word: str) -> str:
        """The listed spelling of term ``word`` (any casing); ``KeyError`` if not a term."""
        return self._canonical[word.lower()]

    def mapping(self, one_way: bool = False) -> dict[str, str]:
        """Lower-cased term -> canonical partner for every paired term (both directions), plus
        the one-way swaps when ``one_way``; empty for count-only lists."""
        out = dict(self._pairs)
        if one_way:
            out.update(self._one_way)
        return out


# --- the lists -------------------------------------------------------------------------------

_GENDER_PAIRS = (
    # Bolukbasi et al. (2016) definitional pairs (his/her: see the module docstring)
    ("he", "she"), ("his", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("fathers", "mothers"),
    ("son", "daughter"), ("sons", "daughters"), ("guy", "gal"), ("guys", "gals"),
    ("male", "female"), ("males", "females"),
    # Zhao et al. (2018) gender word lists (GN-GloVe wordlist/*_word_file.txt): kinship
    ("brother", "sister"), ("brothers", "sisters"), ("husband", "wife"), ("husbands", "wives"),
    ("uncle", "aunt"), ("uncles", "aunts"), ("nephew", "niece"), ("nephews", "nieces"),
    ("grandfather", "grandmother"), ("grandfathers", "grandmothers"),
    ("grandson", "granddaughter"), ("grandsons", "granddaughters"), ("grandpa", "grandma"),
    ("dad", "mom"), ("dads", "moms"), ("daddy", "mommy"), ("papa", "mama"),
    ("stepfather", "stepmother"), ("stepson", "stepdaughter"), ("godfather", "godmother"),
    ("boyfriend", "girlfriend"), ("boyfriends", "girlfriends"), ("groom", "bride"),
    ("fiance", "fiancee"), ("widower", "widow"), ("brotherhood", "sisterhood"),
    ("fatherhood", "motherhood"), ("paternal", "maternal"), ("paternity", "maternity"),
    # titles, address, nobility
    ("mr", "mrs"), ("sir", "madam"), ("gentleman", "lady"), ("gentlemen", "ladies"),
    ("king", "queen"), ("kings", "queens"), ("prince", "princess"), ("princes", "princesses"),
    ("duke", "duchess"), ("emperor", "empress"), ("lad", "lass"), ("monk", "nun"),
    ("monks", "nuns"),
    # gendered occupation and role nouns
    ("actor", "actress"), ("actors", "actresses"), ("waiter", "waitress"),
    ("waiters", "waitresses"), ("steward", "stewardess"), ("stewards", "stewardesses"),
    ("businessman", "businesswoman"), ("businessmen", "businesswomen"),
    ("spokesman", "spokeswoman"), ("spokesmen", "spokeswomen"), ("chairman", "chairwoman"),
    ("chairmen", "chairwomen"), ("congressman", "congresswoman"),
    ("councilman", "councilwoman"), ("policeman", "policewoman"), ("salesman", "saleswoman"),
    ("salesmen", "saleswomen"), ("cameraman", "camerawoman"), ("statesman", "stateswoman"),
    ("countryman", "countrywoman"), ("headmaster", "headmistress"),
    ("landlord", "landlady"), ("heir", "heiress"), ("baron", "baroness"),
    ("sorcerer", "sorceress"), ("schoolboy", "schoolgirl"), ("boyhood", "girlhood"),
    ("fraternity", "sorority"), ("patriarch", "matriarch"), ("grooms", "brides"),
    ("widowers", "widows"), ("fiances", "fiancees"), ("stepfathers", "stepmothers"),
    ("stepsons", "stepdaughters"), ("emperors", "empresses"), ("dukes", "duchesses"),
    ("lads", "lasses"),
    # in neither source: in-law compounds and a few derived forms
    ("father-in-law", "mother-in-law"), ("son-in-law", "daughter-in-law"),
    ("brother-in-law", "sister-in-law"), ("sportsman", "sportswoman"),
    ("manhood", "womanhood"), ("masculine", "feminine"), ("masculinity", "femininity"),
    ("boyish", "girlish"),
)


def _paired(name: str, groups: tuple[str, str], pairs: Sequence[tuple[str, str]],
            source: str, extra: Mapping[str, Sequence[str]] | None = None,
            one_way: Mapping[str, str] | None = None,
            ambiguous: Iterable[str] = ()) -> TermList:
    extra = extra or {}
    terms = {groups[0]: tuple(a for a, _ in pairs) + tuple(extra.get(groups[0], ())),
             groups[1]: tuple(b for _, b in pairs) + tuple(extra.get(groups[1], ()))}
    return TermList(name, groups, terms, pairs=tuple(pairs), one_way=dict(one_way or {}),
                    source=source, ambiguous=frozenset(ambiguous))


#: gender words, swappable; ``him -> her`` and ``hers -> his`` are one-way
GENDER = _paired(
    "gender", ("male", "female"), _GENDER_PAIRS,
    "Bolukbasi et al. 2016 (NeurIPS) definitional pairs; Zhao et al. 2018 (EMNLP) gender word "
    "lists",
    extra={"male": ("him",), "female": ("hers",)}, one_way={"him": "her", "hers": "his"},
    ambiguous=("guy", "guys", "actor", "actors", "groom", "king", "queen", "prince", "duke",
               "godfather"))

_WEAT6_MALE = ("John", "Paul", "Mike", "Kevin", "Steve", "Greg", "Jeff", "Bill")
_WEAT6_FEMALE = ("Amy", "Joan", "Lisa", "Sarah", "Diana", "Kate", "Ann", "Donna")

#: WEAT 6 first names (Caliskan et al. 2017), paired in order
NAMES_GENDER = _paired(
    "names_gender", ("male", "female"), tuple(zip(_WEAT6_MALE, _WEAT6_FEMALE)),
    "Caliskan, Bryson & Narayanan 2017 (Science 356:183), WEAT 6 male/female names",
    ambiguous=("Mike", "Bill"))

_EA_NAMES = (
    "Adam", "Chip", "Harry", "Josh", "Roger", "Alan", "Frank", "Ian", "Justin", "Ryan", "Andrew",
    "Fred", "Jack", "Matthew", "Stephen", "Brad", "Greg", "Jed", "Paul", "Todd", "Brandon",
    "Hank", "Jonathan", "Peter", "Wilbur",
    "Amanda", "Courtney", "Heather", "Melanie", "Sara", "Amber", "Crystal", "Katie", "Meredith",
    "Shannon", "Betsy", "Donna", "Kristin", "Nancy", "Stephanie", "Bobbie-Sue", "Ellen",
    "Lauren", "Peggy", "Sue-Ellen", "Colleen", "Emily", "Megan", "Rachel", "Wendy")
_AA_NAMES = (
    "Alonzo", "Jamel", "Lerone", "Percell", "Theo", "Alphonse", "Jerome", "Leroy", "Rasaan",
    "Torrance", "Darnell", "Lamar", "Lionel", "Rashaun", "Tyree", "Deion", "Lamont", "Malik",
    "Terrence", "Tyrone", "Everol", "Lavon", "Marcellus", "Terryl", "Wardell",
    "Aiesha", "Lashelle", "Nichelle", "Shereen", "Temeka", "Ebony", "Latisha", "Shaniqua",
    "Tameisha", "Teretha", "Jasmine", "Latonya", "Shanise", "Tanisha", "Tia", "Lakisha",
    "Latoya", "Sharise", "Tashika", "Yolanda", "Lashandra", "Malika", "Shavonn", "Tawanda",
    "Yvette")

#: WEAT 3 first names (Caliskan et al. 2017, from Greenwald et al. 1998), paired in order
NAMES_RACE = _paired(
    "names_race", ("european_american", "african_american"), tuple(zip(_EA_NAMES, _AA_NAMES)),
    "Caliskan et al. 2017 (Science 356:183) WEAT 3 names, from Greenwald, McGhee & Schwartz "
    "1998 (JPSP 74:1464); full 50 + 50 list, paired in order (25 male, then 25 female)",
    ambiguous=("Chip", "Frank", "Jack", "Hank", "Amber", "Crystal", "Shannon", "Ebony",
               "Jasmine", "Peggy"))

#: religion words (Manzini et al. 2019), count only
RELIGION = TermList(
    "religion", ("jewish", "christian", "muslim"),
    {"jewish": ("judaism", "jew", "jews", "jewish", "synagogue", "synagogues", "torah", "rabbi",
                "rabbis"),
     "christian": ("christianity", "christian", "christians", "church", "churches", "bible",
                   "priest", "priests"),
     "muslim": ("islam", "muslim", "muslims", "islamic", "mosque", "mosques", "quran", "imam",
                "imams")},
    source="Manzini et al. 2019 (NAACL) religion triples, with plurals",
    ambiguous=frozenset({"church", "bible"}))

#: the lists :func:`find_groups`, :func:`count_terms` and the data audit use by default
DEFAULT_LISTS: tuple[TermList, ...] = (GENDER, NAMES_GENDER, NAMES_RACE, RELIGION)


# --- swapping and counting -------------------------------------------------------------------

def _as_lists(lists: TermList | Iterable[TermList]) -> tuple[TermList, ...]:
    if isinstance(lists, TermList):
        return (lists,)
    out = tuple(lists)
    for t in out:
        if not isinstance(t, TermList):
            raise TypeError(f"expected TermList objects, got {type(t).__name__}; use "
                            f"rnnkit.audit.terms.GENDER etc. or build a TermList")
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"term lists need distinct names, got {names}")
    return out


_Pairs = TermList | Iterable[TermList] | Iterable[tuple[str, str]] | Mapping[str, str]


def _swap_table(pairs: _Pairs, one_way: bool) -> dict[str, tuple[str, str]]:
    """Lower-cased term -> (its canonical spelling, its replacement's), checked consistent."""
    table: dict[str, tuple[str, str]] = {}
    if isinstance(pairs, Mapping):
        for a, b in pairs.items():
            _merge(table, _check_word(a, "mapping"), _check_word(b, "mapping"), "mapping")
        return table
    if isinstance(pairs, TermList):
        cached = pairs._tables.get(one_way)
        if cached is None:
            cached = pairs._tables[one_way] = _swap_table([pairs], one_way)
        return cached
    seq = list(pairs)
    if seq and all(isinstance(p, TermList) for p in seq):
        for t in seq:
            if not t.swappable:
                raise ValueError(f"term list {t.name!r} has no pairing (count only); swap "
                                 f"needs a swappable list such as GENDER")
            for a, b in t.mapping(one_way=one_way).items():
                _merge(table, t.canonical(a), b, t.name)
        return table
    for p in seq:
        if isinstance(p, (TermList, str)) or len(p) != 2:
            raise TypeError("pairs must be TermList(s), (a, b) tuples or an {a: b} mapping, "
                            f"got an item {p!r}")
        a, b = (_check_word(w, f"pair {p!r}") for w in p)
        _merge(table, a, b, "pairs")
        _merge(table, b, a, "pairs")
    return table


def _merge(table: dict[str, tuple[str, str]], word: str, partner: str, where: str) -> None:
    old = table.get(word.lower())
    if old is not None and (old[0], old[1].lower()) != (word, partner.lower()):
        raise ValueError(f"{where}: {word!r} would map to both {old[1]!r} and {partner!r}; swap "
                         f"lists whose terms overlap (names_gender and names_race share Greg, "
                         f"Paul, Donna) one at a time")
    table[word.lower()] = (word, partner)


def swap(text: str, pairs: _Pairs = GENDER, *, one_way: bool = True) -> tuple[str, int]:
    """``(new_text, n_swapped)``: every token of ``text`` that is a term of ``pairs`` replaced by
    its partner, keeping its case, and how many tokens were replaced.

    A token is replaced when it is the term in lower case, Capitalised (its listed spelling with
    the first letter upper: ``He``, ``Bobbie-Sue``) or UPPER case, and the partner is written in
    the same form; any other casing (``hE``) is left alone. ``pairs`` is a swappable
    :class:`TermList` (default :data:`GENDER`), several with disjoint terms, ``(a, b)`` tuples
    (swapped both ways) or an ``{a: b}`` mapping (one way only). ``one_way`` includes a list's
    one-way swaps (``him -> her``, ``hers -> his``). Only whole tokens (see :func:`tokenize`)
    are replaced: ``heather``, ``shell``, ``manager`` stay. For term lists and tuples,
    ``swap(swap(t)[0])[0] == t`` for every ``t`` without a one-way token (``him``, ``hers``), and
    for every ``t`` when ``one_way=False``.

    >>> swap("SHE and He and hE")
    ('HE and She and hE', 2)
    >>> swap("the king and the queen", [("king", "queen")])
    ('the queen and the king', 2)
    """
    if not isinstance(text, str):
        raise TypeError(f"swap needs a str, got {type(text).__name__}")
    table = _swap_table(pairs, one_way)
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        tok = m.group(0)
        entry = table.get(tok.lower())
        if entry is None:
            return tok
        word, partner = entry
        if tok == word.lower():
            out = partner.lower()
        elif tok == _cap(word):
            out = _cap(partner)
        elif tok == word.upper():
            out = partner.upper()
        else:
            return tok
        count += 1
        return out

    return WORD_RE.sub(repl, text), count


def _hits(tokens: Iterable[str], lists: Sequence[TermList]) -> dict[str, Counter[str]]:
    """List name -> Counter of (group, canonical term) keys ``"group\\tterm"`` in ``tokens``."""
    out: dict[str, Counter[str]] = {t.name: Counter() for t in lists}
    for tok in tokens:
        low = tok.lower()
        for t in lists:
            g = t._lookup.get(low)
            if g is not None:
                out[t.name][g + "\t" + t._canonical[low]] += 1
    return out


def find_groups(text: str, lists: TermList | Iterable[TermList] = DEFAULT_LISTS
                ) -> dict[str, set[str]]:
    """List name -> the set of groups whose terms ``text`` mentions (empty set if none), one
    entry per list, matching whole tokens case-insensitively.

    >>> found = find_groups("his sister, Jamel", [GENDER, NAMES_RACE])
    >>> sorted(found["gender"]), found["names_race"]
    (['female', 'male'], {'african_american'})
    """
    lists = _as_lists(lists)
    if not isinstance(text, str):
        raise TypeError(f"find_groups needs a str, got {type(text).__name__}")
    hits = _hits(tokenize(text), lists)
    return {name: {k.split("\t", 1)[0] for k in c} for name, c in hits.items()}


def count_terms(texts: Iterable[str], lists: TermList | Iterable[TermList] = DEFAULT_LISTS
                ) -> dict[str, dict[str, Counter[str]]]:
    """List name -> group -> ``Counter`` of term occurrences (canonical spelling) over
    ``texts``; every group is present, with an empty ``Counter`` if unmentioned.

    >>> count_terms(["He and he", "HER"], GENDER)["gender"]
    {'male': Counter({'he': 2}), 'female': Counter({'her': 1})}
    """
    lists = _as_lists(lists)
    if isinstance(texts, str):
        raise TypeError("count_terms needs an iterable of str, got one str; wrap it in a list")
    out = {t.name: {g: Counter() for g in t.groups} for t in lists}
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        for name, c in _hits(tokenize(text), lists).items():
            for key, n in c.items():
                g, term = key.split("\t", 1)
                out[name][g][term] += n
    return out
