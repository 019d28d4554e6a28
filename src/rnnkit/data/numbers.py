"""Number-to-words translation pairs, written offline by ``num2words``.

Real language, made on the spot: an integer in 0..999,999 spelled in English is the source and
the same integer spelled in French or German the target, e.g.

    "one thousand, nine hundred and eighty-seven"  ->  "mille neuf cent quatre-vingt-sept"

The split is by number, so no test number (and thus no test sentence) is seen in training.
Numbers are drawn stratified by digit count (1-6 digits, equally many of each where the class
is large enough), so short and long sentences are both represented.

>>> number_to_words(71, "fr"), number_to_words(71, "de")
('soixante et onze', 'einundsiebzig')
>>> s = split_numbers(n_train=60, n_valid=12, n_test=12, seed=0)
>>> len(s["train"]), len(set(s["train"]) & set(s["test"]))
(60, 0)
"""

from __future__ import annotations

import random

__all__ = ["LANGUAGES", "number_pairs", "number_to_words", "split_capacity", "split_numbers",
           "write_pairs_tsv"]

LANGUAGES = ("en", "fr", "de", "es", "it")
MAX_NUMBER = 999_999


def number_to_words(n: int, lang: str = "en") -> str:
    """``n`` spelled out in ``lang`` by num2words."""
    try:
        from num2words import num2words
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("number pairs need num2words: `pip install rnnkit[text]`") from err
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return num2words(int(n), lang=lang)


def _magnitude_classes(max_number: int) -> list[range]:
    classes, lo = [], 0
    for d in range(1, len(str(max_number)) + 1):
        hi = min(10**d - 1, max_number)
        classes.append(range(lo, hi + 1))
        lo = hi + 1
    return classes


def split_capacity(split: str, max_number: int = MAX_NUMBER) -> int:
    """The most numbers :func:`split_numbers` can put in ``split`` ("train", "valid" or
    "test") when each other split holds one: all of ``[0, max_number]`` but those two for
    train, at most 10% of each digit-count class (at least one) for valid and test.

    >>> split_capacity("train"), split_capacity("test")
    (999998, 100000)
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    if split == "train":
        return max_number + 1 - 2
    return sum(max(1, len(c) // 10) for c in _magnitude_classes(max_number))


def split_numbers(n_train: int = 30_000, n_valid: int = 600, n_test: int = 3_000,
                  seed: int = 0, max_number: int = MAX_NUMBER) -> dict[str, list[int]]:
    """Disjoint ``train`` / ``valid`` / ``test`` lists of integers in ``[0, max_number]``.

    Each digit-count class gives an equal share of every split; a small class (1-3 digits)
    gives at most 10% of its numbers to valid and to test and the rest to train.
    """
    if min(n_train, n_valid, n_test) < 1:
        raise ValueError("every split needs at least one number")
    if n_train + n_valid + n_test > max_number + 1:
        raise ValueError(f"asked for {n_train + n_valid + n_test} numbers but only "
                         f"{max_number + 1} exist in [0, {max_number}]")
    rng = random.Random(seed)
    classes = _magnitude_classes(max_number)
    most = sum(max(1, len(c) // 10) for c in classes)  # valid and test: <= 10% of each class
    for name, n in (("n_valid", n_valid), ("n_test", n_test)):
        if n > most:  # would silently come back shorter
            raise ValueError(f"{name}={n} is more than the {most} numbers in [0, {max_number}] "
                             f"a valid or test split holds (at most 10% of each digit count)")
    out: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    k = len(classes)
    for i, cls in enumerate(classes):
        remaining = k - i
        want = {s: -(-(n - len(out[s])) // remaining) for s, n in
                (("train", n_train), ("valid", n_valid), ("test", n_test))}
        size = len(cls)
        cap = max(1, size // 10)
        nv, nt = min(want["valid"], cap), min(want["test"], cap)
        ntr = min(want["train"], size - nv - nt)
        picked = rng.sample(cls, nv + nt + ntr)
        out["valid"] += picked[:nv]
        out["test"] += picked[nv : nv + nt]
        out["train"] += picked[nv + nt :]
    for s, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        out[s] = out[s][:n]
        rng.shuffle(out[s])
    return out


def number_pairs(numbers: list[int], src_lang: str = "en",
                 tgt_lang: str = "fr") -> list[tuple[str, str]]:
    """``(source sentence, target sentence)`` for every number."""
    return [(number_to_words(n, src_lang), number_to_words(n, tgt_lang)) for n in numbers]


def write_pairs_tsv(pairs: list[tuple[str, str]], path: str) -> None:
    """Write ``source<TAB>target`` lines (the format ``rnnkit translate train`` reads),
    atomically."""
    from ..saving import atomic_write_text

    atomic_write_text("".join(f"{src}\t{tgt}\n" for src, tgt in pairs), path)
