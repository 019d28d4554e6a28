r"""Captioned scenes of real pictograms, with a compositional test split and a fact parser.

A *scene* is 1 to ``max_objects`` real Noto emoji pictograms (:func:`~rnnkit.vision.datasets.
pictograms`, e.g. "dog face", "red apple") of :data:`CLASSES`, each in its own cell of a
3 x 3 layout (jittered inside the cell), small or large, on a coloured background. Its
*scene graph* (:class:`Scene`) holds the objects (class, row, column, size) and the
background; every fact a caption can state is decided from it:

* ``("count", noun, n)``: the scene holds exactly ``n`` objects of that class;
* ``("size", noun, s)``: every object of that class is ``s`` ("small" / "large");
* ``("rel", a, r, b)``, ``r`` in ``{"left of", "above"}`` (right of / below are stored
  swapped): every ``a`` lies in a column left of (a row above) every ``b``;
* ``("background", colour)``.

*Captions* (several per image, :func:`caption_scene`) are drawn from templates with synonyms
("dog" / "puppy", "to the left of" / "left of" / "on the left of", "below" / "under" /
"beneath") and orderings ("a dog left of two cats", "there are two cats right of a dog", "a
picture of a small dog and a pizza on a blue background"). Every caption mentions every
object class with its count; relations are stated only when they hold for every member of
both groups. :func:`parse_caption` maps any caption of this grammar back to its set of facts
(``parse_caption(c) == facts`` for every generated ``(c, facts)``, which the tests check);
:func:`facts_true` and :func:`fact_report` judge a caption's facts against a scene.

**Splits** (:func:`make_splits`): ``heldout_pairs`` unordered class pairs never co-occur in a
``train`` or ``valid`` scene; every ``test`` scene contains at least one of them (the
*compositional* split: known objects in unseen combinations, so in unseen relations too);
``valid`` is drawn i.i.d. from the training distribution. ``dev_pairs`` further pairs are kept
out of ``train`` and ``valid`` too, and every ``dev`` scene holds one of them and none of the
test pairs: a compositional split of its own for every modelling choice, so the test split
is read once. Everything is deterministic given the seed.

>>> splits = make_splits(SceneConfig(n_train=20, n_valid=4, n_test=4, seed=1))
>>> s = splits.test[0]
>>> bool(s.pairs() & splits.heldout_pairs), len(s.captions)
(True, 5)
>>> sorted(parse_caption("there are two dogs to the left of a red apple"))
[('count', 'apple', 1), ('count', 'dog', 2), ('rel', 'dog', 'left of', 'apple')]
>>> render(s, 64).shape
(64, 64, 3)
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BACKGROUNDS", "CLASSES", "CaptionParseError", "Scene", "SceneConfig",
           "SceneObject", "SceneSplits", "caption_scene", "fact_report", "facts_true",
           "make_splits", "noun_words", "number_words", "parse_caption", "render",
           "render_batch", "scene_facts"]

#: canonical noun -> (emoji Unicode name, plural, synonyms as (singular, plural) pairs)
CLASSES: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "dog": ("dog face", "dogs", (("puppy", "puppies"),)),
    "cat": ("cat face", "cats", (("kitten", "kittens"),)),
    "apple": ("red apple", "apples", (("red apple", "red apples"),)),
    "banana": ("banana", "bananas", ()),
    "pizza": ("slice of pizza", "pizzas", (("pizza slice", "pizza slices"),)),
    "rocket": ("rocket", "rockets", ()),
    "car": ("automobile", "cars", (("automobile", "automobiles"),)),
    "bicycle": ("bicycle", "bicycles", (("bike", "bikes"),)),
    "ball": ("soccer ball", "balls", (("football", "footballs"),)),
    "umbrella": ("umbrella", "umbrellas", ()),
    "house": ("house building", "houses", ()),
    "tree": ("deciduous tree", "trees", ()),
    "frog": ("frog face", "frogs", ()),
    "penguin": ("penguin", "penguins", ()),
    "snail": ("snail", "snails", ()),
    "octopus": ("octopus", "octopuses", ()),
    "mushroom": ("mushroom", "mushrooms", ()),
    "strawberry": ("strawberry", "strawberries", ()),
    "hamburger": ("hamburger", "hamburgers", (("burger", "burgers"),)),
    "guitar": ("guitar", "guitars", ()),
    "key": ("key", "keys", ()),
    "ghost": ("ghost", "ghosts", ()),
    "tomato": ("tomato", "tomatoes", ()),
    "crab": ("crab", "crabs", ()),
}
#: background colour name -> RGB
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245), "black": (25, 25, 25), "blue": (70, 110, 220),
    "green": (70, 170, 90), "yellow": (240, 215, 60), "pink": (240, 160, 200),
    "gray": (140, 140, 140)}
GRID = 3  # the layout is GRID x GRID cells
SIZES = {"small": 0.62, "large": 0.95}  # object side as a fraction of a cell

NUMBERS = {1: ("a", "one"), 2: ("two",), 3: ("three",), 4: ("four",)}
ADJECTIVES = {"small": ("small", "little"), "large": ("large", "big")}
#: relation as generated -> (stored relation, swap the two groups?, phrases)
RELATIONS = {
    "left of": ("left of", False, ("to the left of", "left of", "on the left of")),
    "right of": ("left of", True, ("to the right of", "right of", "on the right of")),
    "above": ("above", False, ("above", "over", "on top of")),
    "below": ("above", True, ("below", "under", "beneath")),
}
PREFIXES = ("a picture of", "an image of", "an image with")


class CaptionParseError(ValueError):
    """A caption outside the scene grammar (unknown word, missing noun, ...)."""


@dataclass(frozen=True)
class SceneObject:
    """One pictogram: its class (a key of :data:`CLASSES`), layout cell ``(row, col)`` (0 =
    top / left), ``size`` ("small" / "large") and the pixel offset of its centre inside the
    cell, as a fraction of the free space (``jitter`` in [-0.5, 0.5]^2)."""

    noun: str
    row: int
    col: int
    size: str
    jitter: tuple[float, float] = (0.0, 0.0)


@dataclass
class Scene:
    """A scene graph and its reference captions (see the module docstring)."""

    objects: tuple[SceneObject, ...]
    background: str
    captions: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """``{noun: number of objects}``."""
        out: dict[str, int] = {}
        for o in self.objects:
            out[o.noun] = out.get(o.noun, 0) + 1
        return out

    def pairs(self) -> set[frozenset[str]]:
        """The unordered pairs of distinct classes that co-occur in the scene."""
        return {frozenset(p) for p in itertools.combinations(sorted(self.counts()), 2)}

    def to_dict(self) -> dict[str, Any]:
        return {"objects": [dataclasses.asdict(o) for o in self.objects],
                "background": self.background, "captions": list(self.captions)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        objs = tuple(SceneObject(o["noun"], o["row"], o["col"], o["size"],
                                 tuple(o["jitter"])) for o in d["objects"])
        return cls(objs, d["background"], list(d["captions"]))


@dataclass
class SceneConfig:
    """How :func:`make_splits` builds the data set.

    Attributes:
        n_train: training scenes.
        n_valid: i.i.d. validation scenes (same distribution as train).
        n_test: compositional test scenes (each holds a held-out class pair).
        n_dev: compositional development scenes (each holds a development pair).
        heldout_pairs: unordered class pairs kept out of train and valid (the test pairs).
        dev_pairs: further pairs kept out of train and valid (the development pairs).
        max_objects: most pictograms per scene (1 to 4).
        captions_per_image: reference captions per scene.
        image_size: rendered side in pixels (the encoder grid is ``ceil(size / 32)``; at 256,
            8 x 8, a per-cell count probe of the frozen encoder's features gets 91% of the dev
            scenes' counts exact, against 33% at 128).
        seed: the one seed of classes, layouts, captions and the held-out pairs.
    """

    n_train: int = 4000
    n_valid: int = 400
    n_test: int = 500
    n_dev: int = 300
    heldout_pairs: int = 24
    dev_pairs: int = 12
    max_objects: int = 4
    captions_per_image: int = 5
    image_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_valid", "n_test", "captions_per_image"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.max_objects, int) or not 1 <= self.max_objects <= 4:
            raise ValueError(f"max_objects must be 1 to 4 (one per layout cell, numbers up "
                             f"to four), got {self.max_objects!r}")
        n_pairs = len(CLASSES) * (len(CLASSES) - 1) // 2
        if not isinstance(self.heldout_pairs, int) or not 1 <= self.heldout_pairs <= n_pairs // 4:
            raise ValueError(f"heldout_pairs must be 1 to {n_pairs // 4} (a quarter of the "
                             f"{n_pairs} class pairs), got {self.heldout_pairs!r}")
        if not isinstance(self.n_dev, int) or isinstance(self.n_dev, bool) or self.n_dev < 0:
            raise ValueError(f"n_dev must be an integer >= 0, got {self.n_dev!r}")
        # each class in at most 3 held-out pairs of the two kinds: 3 K / 2 pairs in all
        room = min(n_pairs // 4, 3 * len(CLASSES) // 2) - self.heldout_pairs
        if self.n_dev and room < 1:
            raise ValueError(f"heldout_pairs={self.heldout_pairs} leaves no class pairs for "
                             f"the dev split: lower heldout_pairs or set n_dev=0")
        if not isinstance(self.dev_pairs, int) or not (self.n_dev == 0 or 1 <= self.dev_pairs
                                                       <= room):
            raise ValueError(f"dev_pairs must be 1 to {room} (held-out pairs of both kinds: "
                             f"at most a quarter of the {n_pairs} class pairs and three per "
                             f"class), got {self.dev_pairs!r}; or set n_dev=0")
        if not isinstance(self.image_size, int) or not 32 <= self.image_size <= 512:
            raise ValueError(f"image_size must be 32 to 512 pixels, got {self.image_size!r}")
        if self.max_objects < 2:
            raise ValueError("max_objects must be at least 2: every test scene holds a "
                             "held-out pair of classes")


@dataclass
class SceneSplits:
    """``train``, ``valid`` (i.i.d.), ``test`` (compositional) and ``dev`` (compositional,
    other pairs) scenes, and the held-out class pairs of each compositional split."""

    train: list[Scene]
    valid: list[Scene]
    test: list[Scene]
    heldout_pairs: set[frozenset[str]]
    config: SceneConfig
    dev: list[Scene] = field(default_factory=list)
    dev_pairs: set[frozenset[str]] = field(default_factory=set)


# -- sampling ----------------------------------------------------------------------------------
def _pick_heldout(rng: np.random.Generator, n: int, taken: set[frozenset[str]] = frozenset(),
                  most: int = 2) -> set[frozenset[str]]:
    """``n`` class pairs outside ``taken``, each class in at most ``most`` of these and the
    ``taken`` ones together (so each is still seen with most others in training)."""
    nouns = list(CLASSES)
    pairs = [frozenset(p) for p in itertools.combinations(nouns, 2)]
    best: set[frozenset[str]] = set()
    for _ in range(200):  # greedy over a random order; a new order if it falls short
        order = rng.permutation(len(pairs))
        used: dict[str, int] = {}
        for p in taken:
            for c in p:
                used[c] = used.get(c, 0) + 1
        out: set[frozenset[str]] = set()
        for i in order:
            p = pairs[i]
            if p not in taken and all(used.get(c, 0) < most for c in p):
                out.add(p)
                for c in p:
                    used[c] = used.get(c, 0) + 1
            if len(out) == n:
                return out
        best = max(best, out, key=len)
    raise ValueError(f"could not hold out {n} class pairs with each class in at most {most} "
                     f"(found {len(best)}): ask for fewer held-out pairs")


def _sample_scene(rng: np.random.Generator, cfg: SceneConfig, heldout: set[frozenset[str]],
                  test: bool, avoid: set[frozenset[str]] = frozenset()) -> Scene:
    """One scene outside ``heldout`` (``test=False``), or holding one of ``heldout`` and
    none of ``avoid`` (``test=True``)."""
    nouns = list(CLASSES)
    for _ in range(1000):
        n = int(rng.integers(2 if test else 1, cfg.max_objects + 1))
        k = int(rng.integers(2 if test else 1, min(n, 3) + 1))
        if test:
            pair = sorted(sorted(heldout, key=sorted)[int(rng.integers(len(heldout)))])
            rest = [c for c in nouns if c not in pair]
            classes = pair + [rest[i] for i in rng.choice(len(rest), k - 2, replace=False)]
            if any(frozenset(p) in avoid for p in itertools.combinations(classes, 2)):
                continue
        else:
            classes = [nouns[i] for i in rng.choice(len(nouns), k, replace=False)]
            if any(frozenset(p) in heldout for p in itertools.combinations(classes, 2)):
                continue
        counts = [1] * k
        for _ in range(n - k):
            counts[int(rng.integers(k))] += 1
        cells = rng.choice(GRID * GRID, n, replace=False)
        objs, j = [], 0
        for c, m in zip(classes, counts):
            for _ in range(m):
                cell = int(cells[j])
                j += 1
                objs.append(SceneObject(c, cell // GRID, cell % GRID,
                                        ("small", "large")[int(rng.integers(2))],
                                        (float(rng.uniform(-0.5, 0.5)),
                                         float(rng.uniform(-0.5, 0.5)))))
        bg = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
        scene = Scene(tuple(objs), bg)
        scene.captions = [caption_scene(scene, rng)[0] for _ in range(cfg.captions_per_image)]
        return scene
    raise RuntimeError("could not sample a scene outside the held-out pairs")  # pragma: no cover


def make_splits(config: SceneConfig | None = None) -> SceneSplits:
    """Train / valid / compositional test / compositional dev scenes (see the module
    docstring); the test pairs and scenes do not depend on ``n_dev`` or ``dev_pairs``."""
    cfg = config or SceneConfig()
    seq = np.random.SeedSequence(cfg.seed)
    r_pairs, r_train, r_valid, r_test, r_dev = (np.random.default_rng(s) for s in seq.spawn(5))
    heldout = _pick_heldout(r_pairs, cfg.heldout_pairs)
    dev_pairs = _pick_heldout(r_pairs, cfg.dev_pairs, heldout, most=3) if cfg.n_dev else set()
    out_of_train = heldout | dev_pairs
    train = [_sample_scene(r_train, cfg, out_of_train, False) for _ in range(cfg.n_train)]
    valid = [_sample_scene(r_valid, cfg, out_of_train, False) for _ in range(cfg.n_valid)]
    test = [_sample_scene(r_test, cfg, heldout, True) for _ in range(cfg.n_test)]
    dev = [_sample_scene(r_dev, cfg, dev_pairs, True, heldout) for _ in range(cfg.n_dev)]
    return SceneSplits(train, valid, test, heldout, cfg, dev, dev_pairs)


# -- scene graph -> facts and captions -----------------------------------------------------------
def _relations(scene: Scene, a: str, b: str) -> list[str]:
    """Generated relations (``"left of"``, ...) that hold from every ``a`` to every ``b``."""
    A = [o for o in scene.objects if o.noun == a]
    B = [o for o in scene.objects if o.noun == b]
    out = []
    if max(o.col for o in A) < min(o.col for o in B):
        out.append("left of")
    if min(o.col for o in A) > max(o.col for o in B):
        out.append("right of")
    if max(o.row for o in A) < min(o.row for o in B):
        out.append("above")
    if min(o.row for o in A) > max(o.row for o in B):
        out.append("below")
    return out


def _uniform_size(scene: Scene, noun: str) -> str | None:
    sizes = {o.size for o in scene.objects if o.noun == noun}
    return sizes.pop() if len(sizes) == 1 else None


def scene_facts(scene: Scene) -> frozenset[tuple]:
    """Every fact true of ``scene`` that the grammar can state (counts, uniform sizes, all
    stored relations between distinct classes, the background)."""
    facts: set[tuple] = {("background", scene.background)}
    counts = scene.counts()
    for noun, n in counts.items():
        facts.add(("count", noun, n))
        size = _uniform_size(scene, noun)
        if size:
            facts.add(("size", noun, size))
    for a, b in itertools.permutations(counts, 2):
        for r in _relations(scene, a, b):
            stored, swap, _ = RELATIONS[r]
            facts.add(("rel", b, stored, a) if swap else ("rel", a, stored, b))
    return frozenset(facts)


def noun_words() -> dict[str, str]:
    """Every one-word form of a class noun (singular, plural, synonyms) -> its class:
    ``{"dog": "dog", "puppies": "dog", ...}``. Multi-word forms ("red apple", "pizza
    slice") are left out: their class noun is a one-word form already, and the other word
    ("red", "slice") names no class on its own.

    >>> w = noun_words(); w["puppies"], w["tomatoes"], "red" in w
    ('dog', 'tomato', False)
    """
    out: dict[str, str] = {}
    for noun, (_, plural, syn) in CLASSES.items():
        for form in ((noun, plural), *syn):
            for word in form:
                if " " not in word:
                    out[word] = noun
    return out


def number_words() -> dict[str, int]:
    """Every word the grammar writes for a count, with its value (the articles "a" / "an"
    are 1): ``{"a": 1, "an": 1, "one": 1, "two": 2, ...}``."""
    return dict(_NUMBER_WORDS)


def _noun_phrase(rng: np.random.Generator, noun: str, n: int, size: str | None,
                 facts: set[tuple]) -> str:
    facts.add(("count", noun, n))
    _, plural, syn = CLASSES[noun]
    forms = [(noun, plural), *syn]
    # the canonical noun half the time, so the commonest caption is the plainest one
    sing, plur = forms[0] if rng.random() < 0.5 else forms[int(rng.integers(len(forms)))]
    words = [plur if n > 1 else sing]
    if size is not None and rng.random() < 0.3:
        facts.add(("size", noun, size))
        words.insert(0, ADJECTIVES[size][int(rng.integers(2))])
    num = NUMBERS[n][int(rng.integers(len(NUMBERS[n])))] if n == 1 else NUMBERS[n][0]
    if num == "a" and words[0][0] in "aeiou":
        num = "an"
    return " ".join([num, *words])


def caption_scene(scene: Scene, rng: np.random.Generator) -> tuple[str, frozenset[tuple]]:
    """One random caption of ``scene`` and the set of facts it states (what
    :func:`parse_caption` returns for it)."""
    facts: set[tuple] = set()
    counts = scene.counts()
    groups = list(counts)
    groups = [groups[i] for i in rng.permutation(len(groups))]
    clauses, i = [], 0
    while i < len(groups):
        a = groups[i]
        np_a = _noun_phrase(rng, a, counts[a], _uniform_size(scene, a), facts)
        rels = _relations(scene, a, groups[i + 1]) if i + 1 < len(groups) else []
        there = "there are" if counts[a] > 1 else "there is"
        if rels and rng.random() < 0.9:
            b = groups[i + 1]
            np_b = _noun_phrase(rng, b, counts[b], _uniform_size(scene, b), facts)
            r = rels[int(rng.integers(len(rels)))]
            stored, swap, phrases = RELATIONS[r]
            facts.add(("rel", b, stored, a) if swap else ("rel", a, stored, b))
            phrase = phrases[int(rng.integers(len(phrases)))]
            form = int(rng.integers(3))
            verb = "are" if counts[a] > 1 else "is"
            clauses.append([f"{np_a} {phrase} {np_b}", f"{np_a} {verb} {phrase} {np_b}",
                            f"{there} {np_a} {phrase} {np_b}"][form])
            i += 2
        else:
            clauses.append(np_a if rng.random() < 0.5 else f"{there} {np_a}")
            i += 1
    text = " and ".join(clauses)
    if not text.startswith("there") and rng.random() < 0.3:
        text = f"{PREFIXES[int(rng.integers(len(PREFIXES)))]} {text}"
    if rng.random() < 0.3:
        facts.add(("background", scene.background))
        text += f" on a {scene.background} background"
    return text, frozenset(facts)


# -- caption -> facts ------------------------------------------------------------------------------
def _lexicon() -> tuple[dict[tuple[str, ...], tuple[str, bool]], int]:
    """Noun word sequences -> (canonical noun, plural?), and the longest sequence."""
    lex: dict[tuple[str, ...], tuple[str, bool]] = {}
    for noun, (_, plural, syn) in CLASSES.items():
        for s, p in [(noun, plural), *syn]:
            lex[tuple(s.split())] = (noun, False)
            lex[tuple(p.split())] = (noun, True)
    return lex, max(len(k) for k in lex)


_LEX, _LEX_MAX = _lexicon()
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_ADJ_WORDS = {w: s for s, ws in ADJECTIVES.items() for w in ws}
_REL_PHRASES = sorted(((tuple(p.split()), r) for r, (_, _, ps) in RELATIONS.items()
                       for p in ps), key=lambda x: -len(x[0]))


def _parse_np(words: list[str], facts: set[tuple], caption: str) -> str:
    if not words or words[0] not in _NUMBER_WORDS:
        raise CaptionParseError(f"expected a number word (a, two, ...) in {caption!r}, got "
                                f"{' '.join(words) or 'nothing'!r}")
    n, rest = _NUMBER_WORDS[words[0]], words[1:]
    size = None
    if rest and rest[0] in _ADJ_WORDS:
        size, rest = _ADJ_WORDS[rest[0]], rest[1:]
    hit = _LEX.get(tuple(rest))
    if hit is None:
        raise CaptionParseError(f"unknown object {' '.join(rest)!r} in {caption!r}")
    noun, plural = hit
    if plural != (n > 1):
        raise CaptionParseError(f"number and noun disagree in {' '.join(words)!r} of "
                                f"{caption!r}")
    facts.add(("count", noun, n))
    if size:
        facts.add(("size", noun, size))
    return noun


def parse_caption(caption: str) -> frozenset[tuple]:
    """A caption of the scene grammar -> its set of facts (see the module docstring);
    anything else raises :class:`CaptionParseError` naming the word it stopped at."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}")
    words = caption.lower().replace(",", " ").replace(".", " ").split()
    if not words:
        raise CaptionParseError("the caption is empty")
    facts: set[tuple] = set()
    for p in PREFIXES:
        if words[:len(p.split())] == p.split():
            words = words[len(p.split()):]
            break
    if len(words) >= 4 and words[-1] == "background" and words[-4:-2] == ["on", "a"]:
        if words[-2] not in BACKGROUNDS:
            raise CaptionParseError(f"unknown background colour {words[-2]!r} in {caption!r}")
        facts.add(("background", words[-2]))
        words = words[:-4]
    clauses: list[list[str]] = [[]]
    for w in words:
        if w == "and":
            clauses.append([])
        else:
            clauses[-1].append(w)
    for clause in clauses:
        if clause[:2] in (["there", "is"], ["there", "are"]):
            clause = clause[2:]
        for i in range(len(clause)):
            rel = next(((p, r) for p, r in _REL_PHRASES if tuple(clause[i:i + len(p)]) == p),
                       None)
            if rel is not None:
                phrase, r = rel
                left = clause[:i]
                if left and left[-1] in ("is", "are"):
                    left = left[:-1]
                a = _parse_np(left, facts, caption)
                b = _parse_np(clause[i + len(phrase):], facts, caption)
                stored, swap, _ = RELATIONS[r]
                facts.add(("rel", b, stored, a) if swap else ("rel", a, stored, b))
                break
        else:
            _parse_np(clause, facts, caption)
    return frozenset(facts)


def facts_true(facts: frozenset[tuple], scene: Scene) -> bool:
    """Whether every fact of ``facts`` holds in ``scene``."""
    return facts <= scene_facts(scene)


def fact_report(caption: str, scene: Scene) -> dict[str, Any]:
    """How a caption fares against its scene: ``parsed`` (in the grammar), ``true`` (every
    stated fact holds), ``complete`` (every class named with its right count), ``correct``
    (all three), and the object multisets ``predicted`` / ``actual`` ``{noun: count}`` (the
    caption's counts; several counts for one noun add up)."""
    actual = scene.counts()
    try:
        facts = parse_caption(caption)
    except CaptionParseError:
        return {"parsed": False, "true": False, "complete": False, "correct": False,
                "predicted": {}, "actual": actual}
    predicted: dict[str, int] = {}
    for f in facts:
        if f[0] == "count":
            predicted[f[1]] = predicted.get(f[1], 0) + f[2]
    true = facts_true(facts, scene)
    complete = all(("count", noun, n) in facts for noun, n in actual.items())
    return {"parsed": True, "true": true, "complete": complete, "correct": true and complete,
            "predicted": predicted, "actual": actual}


# -- rendering -----------------------------------------------------------------------------------
def render(scene: Scene, size: int = 128) -> np.ndarray:
    """The scene as ``uint8 [size, size, 3]`` RGB: each pictogram alpha-blended onto the
    background in its cell (side ``SIZES[size] x cell``, centre jittered in the free space)."""
    from .datasets import pictograms

    img = np.empty((size, size, 3), np.float32)
    img[:] = BACKGROUNDS[scene.background]
    cell = size / GRID
    for o in scene.objects:
        side = max(4, int(round(SIZES[o.size] * cell)))
        glyph = pictograms(side)[CLASSES[o.noun][0]].astype(np.float32)
        free = cell - side
        x0 = int(round(o.col * cell + free / 2 + o.jitter[1] * free))
        y0 = int(round(o.row * cell + free / 2 + o.jitter[0] * free))
        x0, y0 = min(max(x0, 0), size - side), min(max(y0, 0), size - side)
        alpha = glyph[..., 3:] / 255.0
        patch = img[y0:y0 + side, x0:x0 + side]
        img[y0:y0 + side, x0:x0 + side] = alpha * glyph[..., :3] + (1 - alpha) * patch
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_batch(scenes: list[Scene], size: int = 128) -> Any:
    """Scenes -> float tensor ``[B, 3, size, size]`` in [0, 1] (the encoder's input)."""
    import torch

    arr = np.stack([render(s, size) for s in scenes])  # [B, S, S, 3]
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0
