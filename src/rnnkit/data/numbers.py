"""Number-to-words translation pairs, written offline by ``num2words``.

Real language, made on the spot: an integer in 0..999,999 spelled in English is the source and
the same integer spelled in French or German the target, e.g.

    "one thousand, nine hundred and eighty-seven"  ->  "mille neuf cent quatre-vingt-sept"

The split is by number, so no test number (and thus no test sentence) is seen in training, and
a number's split is a function of the number (and the seed) alone: pairs of the test split of
any size never meet the train split of any other size.
Numbers are drawn stratified by digit count (1-6 digits, equally many of each where the class
is large enough), so short and long sentences are both represented.

>>> number_to_words(71, "fr"), number_to_words(71, "de")
('soixante et onze', 'einundsiebzig')
>>> s = split_numbers(n_train=60, n_valid=12, n_test=12, seed=0)
>>> len(s["train"]), len(set(s["train"]) & set(s["test"]))
(60, 0)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where used: `rnnkit --help` reads LANGUAGES from here
    import numpy as np

__all__ = ["LANGUAGES", "number_pairs", "number_to_words", "numbers_in_split", "split_capacity",
           "split_key", "split_numbers", "write_pairs_tsv"]

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


_SPLITS = ("train", "valid", "test")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on ``uint64`` (wrapping arithmetic: the same on every machine)."""
    import numpy as np

    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def split_key(numbers: Sequence[int] | np.ndarray, seed: int = 0) -> np.ndarray:
    """A stable 64-bit hash of each number under ``seed``: the order in which
    :func:`split_numbers` hands a digit-count class out (the lowest keys to valid, the next to
    test, the rest to train), so a number's split depends only on the number and the seed."""
    import numpy as np

    with np.errstate(over="ignore"):
        s = _mix(np.array([seed % 2**64], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        return _mix(np.asarray(numbers, dtype=np.int64).astype(np.uint64) ^ s)


@functools.lru_cache(maxsize=4)
def _split_pools(seed: int, max_number: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Per split, per digit-count class, the split's numbers in key order: of each class the
    ``max(1, size // 10)`` lowest keys are valid, the next as many test, the rest train."""
    import numpy as np

    pools: dict[str, list[np.ndarray]] = {s: [] for s in _SPLITS}
    for cls in _magnitude_classes(max_number):
        nums = np.arange(cls.start, cls.stop, dtype=np.int64)
        ordered = nums[np.argsort(split_key(nums, seed), kind="stable")]
        cap = max(1, len(cls) // 10)
        pools["valid"].append(ordered[:cap])
        pools["test"].append(ordered[cap:2 * cap])
        pools["train"].append(ordered[2 * cap:])
    return {s: tuple(p) for s, p in pools.items()}


def split_capacity(split: str, max_number: int = MAX_NUMBER) -> int:
    """The most numbers :func:`split_numbers` can put in ``split`` ("train", "valid" or
    "test"): 10% of each digit-count class (at least one) for valid and for test, the rest of
    ``[0, max_number]`` for train.

    >>> split_capacity("train"), split_capacity("valid"), split_capacity("test")
    (800000, 100000, 100000)
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    held = sum(max(1, len(c) // 10) for c in _magnitude_classes(max_number))
    return max_number + 1 - 2 * held if split == "train" else held


def numbers_in_split(split: str, n: int, seed: int = 0,
                     max_number: int = MAX_NUMBER) -> list[int]:
    """``n`` numbers of ``split``, an equal share from each digit-count class where the class
    is large enough. Which split a number belongs to depends only on the number and ``seed``
    (:func:`split_key`), never on ``n``: any two calls with different splits are disjoint,
    and a smaller ``n`` takes a subset of each class's share of a larger one.

    >>> a, b = numbers_in_split("test", 50), numbers_in_split("train", 5000)
    >>> len(a), len(set(a) & set(b))
    (50, 0)
    """
    import numpy as np

    most = split_capacity(split, max_number)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a number of numbers >= 0, got {n!r}")
    if n > most:  # would silently come back shorter
        raise ValueError(f"n_{split}={n} is more than the {most} numbers in [0, {max_number}] "
                         f"a {split} split holds ("
                         + ("10% of each digit count" if split != "train" else
                            "all but the 20% of each digit count held out for valid and test")
                         + ")")
    pools = _split_pools(seed, max_number)[split]
    picked = []
    for i, pool in enumerate(pools):
        remaining = len(pools) - i
        want = -(-(n - sum(len(p) for p in picked)) // remaining)
        picked.append(pool[:want])
    out = np.concatenate(picked)  # the classes grow 10-fold, so the last absorbs any rest
    return out[np.argsort(split_key(out, seed), kind="stable")].tolist()  # classes mixed


def split_numbers(n_train: int = 30_000, n_valid: int = 600, n_test: int = 3_000,
                  seed: int = 0, max_number: int = MAX_NUMBER) -> dict[str, list[int]]:
    """Disjoint ``train`` / ``valid`` / ``test`` lists of integers in ``[0, max_number]``
    (:func:`numbers_in_split` of each).

    Each digit-count class gives an equal share of every split where it is large enough; each
    class holds 10% of its numbers (at least one) for valid, as many for test, and the rest for
    train. A number's split is fixed by the number and ``seed`` alone, so the splits of two
    calls with different sizes never overlap either.
    """
    return {s: numbers_in_split(s, n, seed, max_number)
            for s, n in (("train", n_train), ("valid", n_valid), ("test", n_test))}


def number_pairs(numbers: list[int], src_lang: str = "en",
                 tgt_lang: str = "fr") -> list[tuple[str, str]]:
    """``(source sentence, target sentence)`` for every number."""
    return [(number_to_words(n, src_lang), number_to_words(n, tgt_lang)) for n in numbers]


def write_pairs_tsv(pairs: list[tuple[str, str]], path: str) -> None:
    """Write ``source<TAB>target`` lines (the format ``rnnkit translate train`` reads),
    atomically."""
    from ..saving import atomic_write_text

    atomic_write_text("".join(f"{src}\t{tgt}\n" for src, tgt in pairs), path)
