"""Scenes: captions round-trip through the fact parser, the compositional split holds, facts
are judged right, rendering puts pictograms where the graph says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnkit.vision.scenes import (
    BACKGROUNDS,
    CLASSES,
    PREFIXES,
    RELATIONS,
    CaptionParseError,
    Scene,
    SceneConfig,
    SceneObject,
    caption_scene,
    fact_report,
    make_splits,
    parse_caption,
    render,
    scene_facts,
)


@pytest.fixture(scope="module")
def splits():
    return make_splits(SceneConfig(n_train=600, n_valid=50, n_test=150, seed=3))


def test_every_caption_parses_back_to_its_facts(splits):
    rng = np.random.default_rng(11)
    seen: set[str] = set()
    texts: list[str] = []
    for scene in splits.train[:300] + splits.test[:100]:
        for _ in range(8):
            text, facts = caption_scene(scene, rng)
            assert parse_caption(text) == facts, text
            assert facts <= scene_facts(scene), text  # only true facts are generated
            assert fact_report(text, scene)["correct"], text  # and every object is named
            seen.update(text.split())
            texts.append(f" {text} ")
    # every template piece was exercised: relation phrases, prefixes, adjectives, synonyms
    for _, _, phrases in RELATIONS.values():
        for p in phrases:
            assert any(f" {p} " in t for t in texts), p
    for p in PREFIXES:
        assert any(t.startswith(f" {p} ") for t in texts), p
    for w in ("there", "is", "are", "small", "little", "big", "large", "background", "puppy",
              "two", "three", "four", "one", "an"):
        assert w in seen, w


def test_stored_reference_captions_are_true_and_complete(splits):
    for scene in splits.train + splits.valid + splits.test + splits.dev:
        assert len(scene.captions) == 5
        for c in scene.captions:
            assert fact_report(c, scene)["correct"], c


def test_compositional_split(splits):
    held = splits.heldout_pairs
    assert len(held) == 24
    for scene in splits.train + splits.valid:
        assert not scene.pairs() & held
    for scene in splits.test:
        assert scene.pairs() & held
    train_classes = {n for s in splits.train for n in s.counts()}
    assert train_classes == set(CLASSES)  # every class is seen, only the pairs are new
    # and the held-out pairs really do occur in test
    assert len(set().union(*(s.pairs() & held for s in splits.test))) > len(held) // 2


def test_dev_split_is_compositional_with_its_own_pairs(splits):
    held, dev = splits.heldout_pairs, splits.dev_pairs
    assert len(dev) == 12 and not held & dev
    assert len(splits.dev) == 300
    for scene in splits.train + splits.valid:
        assert not scene.pairs() & dev
    for scene in splits.dev:
        assert scene.pairs() & dev and not scene.pairs() & held
    assert len(set().union(*(s.pairs() & dev for s in splits.dev))) == len(dev)
    # each class is in at most three held-out pairs of the two kinds together
    uses = {}
    for p in held | dev:
        for c in p:
            uses[c] = uses.get(c, 0) + 1
    assert max(uses.values()) <= 3
    # the test split does not depend on whether there is a dev split
    no_dev = make_splits(SceneConfig(n_train=600, n_valid=50, n_test=150, n_dev=0, seed=3))
    assert no_dev.dev == [] and no_dev.heldout_pairs == held
    assert [s.to_dict() for s in no_dev.test] == [s.to_dict() for s in splits.test]


def test_deterministic_from_seed():
    a = make_splits(SceneConfig(n_train=20, n_valid=5, n_test=5, seed=7))
    b = make_splits(SceneConfig(n_train=20, n_valid=5, n_test=5, seed=7))
    c = make_splits(SceneConfig(n_train=20, n_valid=5, n_test=5, seed=8))
    assert [s.to_dict() for s in a.train + a.test] == [s.to_dict() for s in b.train + b.test]
    assert [s.captions for s in a.train] != [s.captions for s in c.train]
    assert Scene.from_dict(a.test[0].to_dict()) == a.test[0]


def _scene() -> Scene:
    # two dogs in the top row, a pizza bottom right
    return Scene((SceneObject("dog", 0, 0, "small"), SceneObject("dog", 0, 1, "small"),
                  SceneObject("pizza", 2, 2, "large")), "blue")


@pytest.mark.parametrize("caption,parsed,true,complete", [
    ("two dogs above a pizza", True, True, True),
    ("two puppies to the left of a big pizza slice on a blue background", True, True, True),
    ("a pizza is beneath two little dogs", True, True, True),
    ("two dogs below a pizza", True, False, True),            # wrong relation
    ("two dogs above a small pizza", True, False, True),      # wrong size
    ("a dog and a pizza", True, False, False),                # wrong count
    ("two dogs", True, True, False),                          # misses the pizza
    ("two dogs and a pizza on a green background", True, False, True),
    ("two dogs left of a pizza", True, True, True),
    ("a dogs above a pizza", False, False, False),            # grammar: number disagrees
    ("two zebras", False, False, False),
])
def test_fact_report(caption, parsed, true, complete):
    r = fact_report(caption, _scene())
    assert (r["parsed"], r["true"], r["complete"]) == (parsed, true, complete)
    assert r["correct"] == (parsed and true and complete)


def test_scene_facts_by_brute_force():
    s = _scene()
    facts = scene_facts(s)
    assert ("rel", "dog", "above", "pizza") in facts
    assert ("rel", "dog", "left of", "pizza") in facts
    assert ("rel", "pizza", "above", "dog") not in facts
    # a relation holds only if it holds for every pair of members
    s2 = Scene((SceneObject("dog", 0, 0, "small"), SceneObject("dog", 2, 2, "small"),
                SceneObject("cat", 1, 1, "large")), "white")
    assert not any(f[0] == "rel" for f in scene_facts(s2))
    for a, b in itertools.permutations(range(3), 2):  # vs the cells directly
        oa, ob = s.objects[a], s.objects[b]
        if oa.noun != ob.noun and oa.row < ob.row and s.counts()[oa.noun] == 1:
            assert ("rel", oa.noun, "above", ob.noun) in facts


@pytest.mark.parametrize("bad", ["", "the dog", "two zebras left of a dog", "a dog left of",
                                 "a dog on a purple background", "dog"])
def test_parse_errors(bad):
    with pytest.raises(CaptionParseError):
        parse_caption(bad)


def test_parse_rejects_non_text():
    with pytest.raises(TypeError):
        parse_caption(None)


def test_render_places_pictograms():
    s = Scene((SceneObject("dog", 0, 0, "large"),), "green")
    img = render(s, 96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    bg = np.array(BACKGROUNDS["green"])
    assert (img[80:, 80:] == bg).all()  # the empty bottom-right cell is background
    assert np.abs(img[:32, :32].astype(int) - bg).sum(-1).mean() > 30  # the dog is there


@pytest.mark.parametrize("kw", [dict(n_train=0), dict(max_objects=5), dict(max_objects=1),
                                dict(heldout_pairs=0), dict(heldout_pairs=10_000),
                                dict(dev_pairs=0), dict(heldout_pairs=60, dev_pairs=10),
                                dict(n_dev=-1),
                                dict(image_size=8), dict(captions_per_image=0)])
def test_bad_config(kw):
    with pytest.raises(ValueError):
        SceneConfig(**kw)


def test_more_held_out_pairs_than_the_classes_allow_is_refused():
    # each class may be in at most two test pairs: 24 classes hold 24 pairs, not 40
    with pytest.raises(ValueError, match="could not hold out 40 class pairs"):
        make_splits(SceneConfig(n_train=2, n_valid=1, n_test=1, n_dev=0, heldout_pairs=40))
    with pytest.raises(ValueError, match="set n_dev=0"):
        SceneConfig(heldout_pairs=40)
