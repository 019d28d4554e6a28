"""The layout reader and the scene constraints of caption decoding: layouts give exactly the
facts the scene graph gives, the mask against the rules written out word by word, decoding
under a reading states only facts of that reading, and a reader learns layouts of class
combinations it never saw."""

from __future__ import annotations

import functools

import pytest
import torch

from rnnkit.vision.captioner import BOS, EOS, PAD, UNK
from rnnkit.vision.layout import (
    RELATION_ORDER,
    LayoutReader,
    SceneConstraint,
    layout_facts,
    layout_scene,
    reading_scores,
    scene_layouts,
    scene_word_tables,
)
from rnnkit.vision.scenes import (
    CLASSES,
    GRID,
    SceneConfig,
    _relations,
    _uniform_size,
    fact_report,
    make_splits,
    parse_caption,
    scene_facts,
)

K = len(CLASSES)


def _seed() -> int:
    return int(torch.randint(0, 2**31, ()))


def test_layout_facts_equal_the_scene_graphs():
    splits = make_splits(SceneConfig(n_train=150, n_valid=2, n_test=40, n_dev=0,
                                     seed=_seed() % 10_000))
    scenes = splits.train + splits.test
    cells, sizes, bg = scene_layouts(scenes)
    got = layout_facts(cells, sizes, bg, K, GRID)
    nouns = list(CLASSES)
    for i, s in enumerate(scenes):  # the reference: the scene module's own functions
        counts = s.counts()
        assert got["counts"][i].tolist() == [counts.get(n, 0) for n in nouns]
        for k, n in enumerate(nouns):
            want = {None: 0, "small": 1, "large": 2}[_uniform_size(s, n) if n in counts
                                                     else None]
            assert int(got["uniform"][i, k]) == want
        for a in range(K):
            for c in range(K):
                rels = _relations(s, nouns[a], nouns[c]) if a != c and nouns[a] in counts \
                    and nouns[c] in counts else []
                for r, name in enumerate(RELATION_ORDER):
                    assert bool(got["relations"][i, r, a, c]) == (name in rels), (s, a, c, r)
        assert scene_facts(layout_scene(cells[i], sizes[i], bg[i])) == scene_facts(s)


# a vocabulary of the scene grammar's words
WORDS = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "an", "one", "two", "three", "dog",
         "puppies", "cat", "cats", "apple", "apples", "left", "right", "above", "over", "top",
         "below", "under", "beneath", "small", "little", "large", "big", "blue", "white", "of",
         "the", "to", "on", "and", "background", "there", "is", "are", "picture", "image",
         "red", "pizza", "pizzas", "slice", "slices"]


def _constraint() -> SceneConstraint:
    from rnnkit.vision.captioner import _word_lexicon

    return SceneConstraint(*_word_lexicon(WORDS), eos=EOS, **scene_word_tables(WORDS))


def _random_state(n, g):
    """Random constraint states over the first five classes (dog, cat, apple, banana,
    pizza; no word names bananas)."""
    rem = torch.zeros(n, K, dtype=torch.long)
    rem[:, :5] = torch.randint(0, 4, (n, 5), generator=g)
    prev2 = torch.randint(1, len(WORDS), (n,), generator=g)
    return {"remaining": rem, "pending": torch.randint(0, 4, (n,), generator=g),
            "last": torch.randint(-1, 5, (n,), generator=g),
            "rel": torch.randint(-1, 4, (n,), generator=g),
            "rel_from": torch.randint(-1, 5, (n,), generator=g),
            # often first ("a picture of")
            "prev2": torch.where(torch.rand(n, generator=g) < 0.2, BOS, prev2),
            "last_n": torch.randint(0, 4, (n,), generator=g),
            "agree": torch.randint(0, 3, (n,), generator=g),
            "clause": torch.randint(0, 3, (n,), generator=g),
            "there": torch.randint(0, 2, (n,), generator=g),
            "size": torch.randint(0, 3, (n,), generator=g),
            "relations": torch.rand(n, 4, K, K, generator=g) < 0.4,
            "uniform": torch.randint(0, 3, (n, K), generator=g),
            "background": torch.randint(0, 7, (n,), generator=g),
            "prev": torch.randint(1, len(WORDS), (n,), generator=g)}


@functools.lru_cache(maxsize=1)
def _follows() -> torch.Tensor:
    from rnnkit.vision.layout import scene_grammar

    return scene_grammar(WORDS)


def _grammar_allowed(word: str, s: dict, b: int) -> bool:
    from rnnkit.vision.scenes import BACKGROUNDS, noun_words

    prev = WORDS[int(s["prev"][b])]
    if not _follows()[int(s["prev"][b]), WORDS.index(word)]:  # the word-pair grammar
        return False
    rem, last, R = s["remaining"][b].tolist(), int(s["last"][b]), s["relations"][b]
    done = all(r == 0 for r in rem)
    can = [last >= 0 and int(s["clause"][b]) == 1
           and any(rem[k] > 0 and bool(R[r, last, k]) for k in range(K)) for r in range(4)]
    colour = list(BACKGROUNDS)[int(s["background"][b])] in WORDS
    np_end = prev in noun_words() or prev in ("slice", "slices")
    rules = {"to": can[0] or can[1], "the": can[0] or can[1],
             "on": can[0] or can[1] or can[2] or (done and colour), "and": not done,
             "there": not done, "background": done, "is": any(can) if np_end else not done,
             "a": prev != "on" or done}
    rules["are"], rules["an"] = rules["is"], rules["a"]
    if word in BACKGROUNDS:
        return done
    return rules.get(word, True)


def _fact_allowed(word: str, s: dict, b: int) -> bool:
    from rnnkit.vision.scenes import BACKGROUNDS, noun_words, number_words

    t = scene_word_tables([word])
    rem = s["remaining"][b].tolist()
    pend, last, rel, frm, size, last_n, agree, clause, there = (
        int(s[k][b]) for k in ("pending", "last", "rel", "rel_from", "size", "last_n",
                               "agree", "clause", "there"))
    R, uni = s["relations"][b], s["uniform"][b].tolist()
    prev, prev2 = WORDS[int(s["prev"][b])], WORDS[int(s["prev2"][b])]

    def related(k):
        return rel < 0 or frm < 0 or bool(R[rel, frm, k])

    nouns, numbers = noun_words(), number_words()
    order = list(CLASSES)
    plural = {"puppies", "cats", "apples", "pizzas", "slices"}
    can = [last >= 0 and clause == 1 and any(rem[k] > 0 and bool(R[r, last, k])
                                             for k in range(K)) for r in range(4)]
    # "pizza" when there are several: only as "pizza slices"
    if prev == "pizza" and last_n > 1:
        return word == "slices"
    # after "<noun> is" / "<noun> are" a relation follows, not another noun phrase
    if prev in ("is", "are") and (prev2 in nouns or prev2 in ("slice", "slices")) and (
            word in nouns or word in numbers or word == "red" or t["word_size"][0]):
        return False
    if word in nouns or word == "red":  # "red" of "red apple": if "apple" would pass
        k = order.index(nouns["apple" if word == "red" else word])
        agrees = word == "red" or (word in plural) == (rem[k] > 1) or word == "pizza"
        return rem[k] > 0 and pend in (0, rem[k]) and related(k) and size in (0, uni[k]) \
            and agrees
    if word in ("slice", "slices"):  # the number of the pizza just named
        return (word == "slices") == (last_n > 1)
    if word in ("is", "are"):
        if prev in nouns or prev in ("slice", "slices"):  # a relation follows; not after
            return (last_n > 1) == (word == "are") and any(can) and not there  # "there"
        if prev == "there":
            return any((r > 1) == (word == "are") for r in rem if r > 0)
        return True
    if word in ("picture", "image"):
        return prev2 == "<bos>"
    if word in ("a", "an"):  # an article, not a number, first or after "on"
        return prev in ("<bos>", "on") or \
            (agree != 2 and any(rem[k] == 1 and related(k) for k in range(K)))
    if word in numbers:
        if agree and (agree == 1) != (numbers[word] == 1):  # "there is one", "there are two"
            return False
        return any(rem[k] == numbers[word] and related(k) for k in range(K))
    if t["word_size"][0]:
        return any(rem[k] > 0 and related(k) and pend in (0, rem[k])
                   and uni[k] == t["word_size"][0] for k in range(K))
    if t["word_relation"][0] >= 0:  # one relation per clause, after its first noun
        return can[t["word_relation"][0]]
    if word in BACKGROUNDS:
        return list(BACKGROUNDS).index(word) == int(s["background"][b])
    if word == "<eos>":
        return all(r == 0 for r in rem)
    return True


def test_mask_follows_the_rules():
    g = torch.Generator().manual_seed(_seed())
    con = _constraint()
    state = _random_state(600, g)
    lp = torch.log_softmax(torch.randn(600, len(WORDS), generator=g), -1)
    masked = con.mask(lp, state)
    ok = torch.isfinite(masked)
    stuck = 0
    for b in range(600):
        # the module docstring's rules and the grammar's; where the grammar leaves no word,
        # the facts alone; where they leave none either, the caption ends
        fact = [_fact_allowed(word, state, b) for word in WORDS]
        want = [f and _grammar_allowed(word, state, b) for f, word in zip(fact, WORDS)]
        if not any(want):
            want = fact
            stuck += 1
        if not any(want):  # at the model's price for ending, not for free
            want[EOS] = True
            assert masked[b, EOS] == lp[b, EOS]
        assert ok[b].tolist() == want, ({k: v[b] for k, v in state.items()},
                                        [w for w, o, x in zip(WORDS, ok[b], want) if o != x])
    # every rule refuses something somewhere, every word is allowed somewhere, and most
    # states have a word that fits
    assert (~ok[:, 4:]).any(0).all() and ok.any(0)[4:].all() and stuck < 300


def test_agreement_clauses_and_the_opening():
    con = _constraint()
    cells = torch.full((1, GRID * GRID), K, dtype=torch.long)
    cells[0, 0] = cells[0, 3] = list(CLASSES).index("dog")  # two dogs, left column
    cells[0, 1] = list(CLASSES).index("cat")  # a cat, middle column
    cells[0, 2] = list(CLASSES).index("apple")  # an apple, right column
    reading = layout_facts(cells, torch.zeros_like(cells), torch.tensor([2]), K, GRID)
    ix = {w: i for i, w in enumerate(WORDS)}

    def allowed(prefix: str, *words: str) -> list[bool]:
        st = con.init_state(reading)
        for w in ["<bos>", *prefix.split()]:
            st = con.update(torch.tensor([ix[w]]), st)
        lp = con.mask(torch.zeros(1, len(WORDS)), st)
        return torch.isfinite(lp[0, [ix[w] for w in words]]).tolist()

    assert allowed("there", "is", "are") == [True, True]  # one cat, two dogs
    assert allowed("there is", "a", "one", "two") == [True, True, False]
    assert allowed("there are", "a", "one", "two") == [False, False, True]
    assert allowed("two", "puppies", "dog") == [True, False]
    assert allowed("two puppies", "are", "is") == [True, False]
    assert allowed("a cat", "is", "are") == [True, False]
    # "<noun> is" goes on with a relation, not a noun phrase ("two puppies are a cat")
    assert allowed("two puppies are", "to", "a", "one", "cat", "small") == \
        [True, False, False, False, False]
    # one relation a clause: the cat is left of the apple, but this clause has its two
    # noun phrases; after "and" a new clause may relate
    assert allowed("a cat", "left") == [True]
    assert allowed("two puppies to the left of a cat", "left", "and") == [False, True]
    assert allowed("a picture of", "a", "two") == [True, True]
    assert allowed("a picture of a", "picture", "image", "cat") == [False, False, True]
    assert allowed("a", "picture", "cat") == [True, True]
    # where no word fits (two dogs pending, one left), the caption ends at the model's
    # price for ending: a free end would let a beam prefer getting stuck to finishing
    from rnnkit.vision.captioner import _word_lexicon

    tiny = ["<pad>", "<bos>", "<eos>", "<unk>", "dog", "cat"]
    con = SceneConstraint(*_word_lexicon(tiny), eos=EOS, **scene_word_tables(tiny))
    st = con.init_state(reading)
    st["pending"] = torch.tensor([3])
    lp = torch.log_softmax(torch.randn(1, len(tiny)), -1)
    lp[:, [PAD, BOS, UNK]] = float("-inf")  # as the captioner's step refuses them
    out = con.mask(lp, st)
    assert torch.isinf(out[0, 4:]).all() and out[0, EOS] == lp[0, EOS]


def test_update_tracks_the_clause():
    con = _constraint()
    cells = torch.full((1, GRID * GRID), K, dtype=torch.long)
    cells[0, 0] = cells[0, 3] = list(CLASSES).index("dog")  # two dogs in the left column
    cells[0, 2] = list(CLASSES).index("cat")  # a cat on the right
    reading = layout_facts(cells, torch.zeros_like(cells), torch.tensor([2]), K, GRID)
    st = con.init_state(reading)
    ix = {w: i for i, w in enumerate(WORDS)}
    trace = []
    for w in "<bos> two puppies to the left of a small cat".split():
        st = con.update(torch.tensor([ix[w]]), st)
        trace.append((w, int(st["last"]), int(st["rel"]), int(st["rel_from"]),
                      int(st["size"])))
        lp = con.mask(torch.zeros(1, len(WORDS)), st)
        if w == "of":  # one cat is right of the dogs: "a" / "one", not "two"
            assert torch.isfinite(lp[0, [ix["a"], ix["one"], ix["two"]]]).tolist() == \
                [True, True, False]
        if w == "a":  # the cat is small
            assert torch.isfinite(lp[0, [ix["small"], ix["large"], ix["cat"]]]).tolist() == \
                [True, False, True]
        if w == "puppies":  # the dogs are left of the cat, not right of it or above it
            assert torch.isfinite(lp[0, [ix["left"], ix["right"], ix["above"]]]).tolist() == \
                [True, False, False]
    assert trace[2] == ("puppies", 0, -1, -1, 0)
    assert trace[4] == ("the", 0, -1, -1, 0)
    assert trace[5] == ("left", 0, 0, 0, 0)
    assert trace[8] == ("small", 0, 0, 0, 1)
    assert trace[9] == ("cat", 1, -1, 0, 0)
    assert int(st["remaining"].sum()) == 0
    # "a" is one object until "picture" / "image" / a colour shows it was an article
    st, pend = con.init_state(reading), []
    for w in "<bos> a picture of two puppies and a cat on a blue".split():
        st = con.update(torch.tensor([ix[w]]), st)
        pend.append(int(st["pending"]))
    assert pend == [0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="LayoutReader.predict"):
        con.init_state(reading["counts"])


def _bigram(captions, words):
    ix = {w: i for i, w in enumerate(words)}
    table = torch.full((len(words), len(words)), 0.01)
    for c in captions:
        toks = [BOS, *(ix[w] for w in c.split()), EOS]
        for a, b in zip(toks, toks[1:]):
            table[a, b] += 1
    table[:, [PAD, BOS, UNK]] = 0
    return table.log() - table.sum(1, keepdim=True).log()


def _sample(step_fn, state, n, max_len, g):
    tokens, out, done = torch.full((n,), BOS), [[] for _ in range(n)], [False] * n
    for _ in range(max_len):
        lp, state = step_fn(tokens, state)
        tokens = torch.multinomial(lp.exp(), 1, generator=g).squeeze(1)
        for b in range(n):
            if not done[b]:
                done[b] = int(tokens[b]) == EOS
                if not done[b]:
                    out[b].append(int(tokens[b]))
    return out, done


def _disagrees(caption: str) -> bool:
    """A number word and its noun, or a noun and "is" / "are", disagree in number."""
    singular = {f.split()[-1] for n, (_, p, syn) in CLASSES.items() for f, _ in ((n, p), *syn)}
    plural = {f.split()[-1] for n, (_, p, syn) in CLASSES.items() for _, f in ((n, p), *syn)}
    w = caption.split()
    for a, b, c in zip(w, w[1:], [*w[2:], ""]):
        if b == "pizza" and c in ("slice", "slices"):  # the tail carries the number
            b = c
        if (a in ("two", "three", "four") and b in singular) or \
                (a in ("a", "an", "one") and b in plural) or \
                (a in singular and b == "are") or (a in plural and b == "is"):
            return True
    return False


def test_decoding_under_a_reading_states_only_its_facts():
    # a bigram language model of the training captions writes; the constraint keeps it to
    # the reading (here the scenes' true layouts): nearly every caption ends and parses, and
    # each that does is true, complete and agrees in number, which the same model without
    # the constraint is not (before the agreement and "picture" rules, a quarter parsed: the
    # bigram wrote "a picture of a picture of ...")
    from rnnkit.vision.captioner import _vocabulary, _word_lexicon

    g = torch.Generator().manual_seed(_seed())
    splits = make_splits(SceneConfig(n_train=300, n_valid=2, n_test=60, n_dev=0,
                                     seed=_seed() % 10_000))
    words = _vocabulary(c for s in splits.train for c in s.captions)
    table = _bigram([c for s in splits.train for c in s.captions], words)
    con = SceneConstraint(*_word_lexicon(words), eos=EOS, **scene_word_tables(words))
    scenes = splits.test * 4
    reading = layout_facts(*scene_layouts(scenes), K, GRID)
    reading["counts"] = con.nameable(reading["counts"])

    def lm(tokens, state):
        return table[tokens], state

    results = {}
    for name, fn, st in (("constrained", con.wrap(lm), con.init_state(reading)),
                         ("free", lm, {})):
        caps, ended = _sample(fn, st, len(scenes), 40, g)
        texts = [(" ".join(words[t] for t in c), s) for c, e, s in zip(caps, ended, scenes)
                 if e]
        reports = [{**fact_report(c, s), "caption": c, "want": s.captions[0]} for c, s in texts]
        results[name] = [r for r in reports if r["parsed"]]
    assert len(results["constrained"]) >= 0.9 * len(scenes)
    bad = [r for r in results["constrained"] if not r["correct"] or _disagrees(r["caption"])]
    assert not bad, [(r["caption"], r["want"]) for r in bad[:4]]
    free = results["free"]
    assert sum(not r["correct"] for r in free) > len(free) / 2


def test_every_reference_caption_passes_under_its_scenes_layout():
    # the constraint must not refuse what the scene grammar writes: each reference caption
    # of each scene, fed word by word under that scene's true layout, is allowed at every
    # word and may end where it ends
    from rnnkit.vision.captioner import _vocabulary, _word_lexicon

    splits = make_splits(SceneConfig(n_train=200, n_valid=2, n_test=100, n_dev=0,
                                     seed=_seed() % 10_000))
    scenes = [*splits.train, *splits.test]
    words = _vocabulary(c for s in scenes for c in s.captions)
    ix = {w: i for i, w in enumerate(words)}
    con = SceneConstraint(*_word_lexicon(words), eos=EOS, **scene_word_tables(words))
    pairs = [(i, c) for i, s in enumerate(scenes) for c in s.captions]
    reading = layout_facts(*scene_layouts(scenes), K, GRID)
    reading["counts"] = con.nameable(reading["counts"])
    rows = torch.tensor([i for i, _ in pairs])
    st = con.init_state({k: v[rows] for k, v in reading.items()})
    seqs = [[ix[w] for w in c.split()] + [EOS] for _, c in pairs]
    T = max(map(len, seqs))
    toks = torch.tensor([q + [PAD] * (T - len(q)) for q in seqs])
    prev = torch.full((len(pairs),), BOS)
    for t in range(T):
        st = con.update(prev, st)
        lp = con.mask(torch.zeros(len(pairs), len(words)), st)
        live = toks[:, t] != PAD
        refused = live & torch.isinf(lp[torch.arange(len(pairs)), toks[:, t]])
        assert not refused.any(), [(pairs[b][1], words[int(toks[b, t])])
                                   for b in refused.nonzero().squeeze(1)[:4].tolist()]
        prev = toks[:, t]
    assert any("pizza slices" in c for _, c in pairs)  # the multi-word forms were checked


def test_reader_reads_layouts_of_combinations_it_never_saw():
    # features: each layout cell (2 x 2 grid cells) holds a class code plus a size code, or
    # nothing, plus noise; training scenes never hold classes 0 and 1 together, test
    # scenes always do
    g = torch.Generator().manual_seed(_seed())
    codes, size_code, bg_codes = (torch.randn(4, 16, generator=g), torch.randn(16, generator=g),
                                  torch.randn(3, 16, generator=g))

    def scenes(n, pair):
        feats = torch.randn(n, 16, 6, 6, generator=g) * 0.3
        cells = torch.full((n, 9), 4, dtype=torch.long)
        sizes = torch.zeros(n, 9, dtype=torch.long)
        bg = torch.randint(0, 3, (n,), generator=g)
        feats += bg_codes[bg][:, :, None, None]
        for i in range(n):
            where = torch.randperm(9, generator=g)[: int(torch.randint(2, 5, (), generator=g))]
            for j, cell in enumerate(where.tolist()):
                k = j % 2 if pair and j < 2 else int(torch.randint(0, 4, (), generator=g))
                if not pair and k in (0, 1) and (cells[i] == 1 - k).any():
                    k = 2 + k
                big = int(torch.randint(0, 2, (), generator=g))
                r, c = cell // 3, cell % 3
                feats[i, :, 2 * r:2 * r + 2, 2 * c:2 * c + 2] += \
                    (codes[k] + big * size_code)[:, None, None]
                cells[i, cell], sizes[i, cell] = k, big
        return feats, cells, sizes, bg

    train = scenes(600, False)
    assert not ((train[1] == 0).any(1) & (train[1] == 1).any(1)).any()
    test = scenes(100, True)
    assert ((test[1] == 0).any(1) & (test[1] == 1).any(1)).all()
    reader = LayoutReader(16, 4, 3, grid=3, hidden_size=32, dropout=0.0)
    flat = train[0].transpose(0, 1).flatten(1)
    reader.set_stats(flat.mean(1), flat.std(1))
    opt = torch.optim.Adam(reader.parameters(), 1e-2)
    for _ in range(300):
        loss = reader.loss(train).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = reader.predict(test[0])
    occupied = test[1] < 4
    exact = (pred["cells"] == test[1]).all(1) & ((pred["sizes"] == test[2]) | ~occupied).all(1)
    assert exact.float().mean() >= 0.95
    assert (pred["background"] == test[3]).float().mean() >= 0.95
    true_counts = torch.stack([(test[1] == k).sum(1) for k in range(4)], 1)
    assert (pred["counts"] == true_counts).all(1).float().mean() >= 0.95


def test_a_pooled_reader_sees_only_the_mean_of_the_grid():
    # pooled=True (the no-attention ablation): the hand formula on the mean feature vector,
    # so shuffling the grid positions changes nothing; the spatial reader's cells follow them
    torch.manual_seed(_seed())
    pooled = LayoutReader(6, 3, 2, grid=3, hidden_size=5, pooled=True).eval()
    spatial = LayoutReader(6, 3, 2, grid=3, hidden_size=5).eval()
    for r in (pooled, spatial):
        r.set_stats(torch.randn(6), torch.rand(6) + 0.5)
    x = torch.randn(4, 6, 6, 6)
    cells, sizes, bg = pooled(x)
    m = ((x - pooled.feat_mean[:, None, None]) / pooled.feat_std[:, None, None]).mean((2, 3))
    u = torch.relu(m @ pooled.body[1].weight.T + pooled.body[1].bias)
    out = (u @ pooled.cell_head.weight.T + pooled.cell_head.bias).view(4, 9, 6)
    assert torch.allclose(cells, out[..., :4], atol=1e-5)
    assert torch.allclose(sizes, out[..., 4:], atol=1e-5)
    assert torch.allclose(bg, pooled.background_head(u), atol=1e-5)
    perm = torch.randperm(36)
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(pooled(shuffled), pooled(x)))
    assert not torch.allclose(spatial(shuffled)[0], spatial(x)[0], atol=1e-3)


def test_reading_scores_count_what_was_read_right():
    # the true layouts score 1; one scene's cell moved (its counts still right), another's
    # class changed (its counts wrong), a third's background: exactly those fail
    scenes = make_splits(SceneConfig(n_train=40, n_valid=2, n_test=2, n_dev=0,
                                     seed=_seed() % 10_000)).train
    cells, sizes, bg = scene_layouts(scenes)
    truth = layout_facts(cells, sizes, bg, K, GRID)
    assert reading_scores(truth, scenes) == {"counts_exact": 1.0, "layout_exact": 1.0}
    assert reading_scores(truth["counts"], scenes) == {"counts_exact": 1.0}
    cells, bg = cells.clone(), bg.clone()
    j = int((cells[0] < K).nonzero()[0])
    empty = int((cells[0] == K).nonzero()[0])
    cells[0, empty], cells[0, j] = cells[0, j], K  # moved: same counts, facts differ
    cells[1, int((cells[1] < K).nonzero()[0])] = K  # an object missed
    bg[2] = (bg[2] + 1) % 2
    moved = layout_facts(cells, sizes, bg, K, GRID)
    scores = reading_scores(moved, scenes)
    expect_layout = 1 - (3 - (scene_facts(layout_scene(cells[0], sizes[0], bg[0]))
                              == scene_facts(scenes[0]))) / 40
    assert scores == {"counts_exact": pytest.approx(39 / 40),
                      "layout_exact": pytest.approx(expect_layout)}
    with pytest.raises(ValueError, match=r"counts \[N, K\]"):
        reading_scores(truth["counts"][:5], scenes)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="hidden_size"):
        LayoutReader(8, 3, 2, hidden_size=0)
    with pytest.raises(ValueError, match=r"features \[B, 8"):
        LayoutReader(8, 3, 2)(torch.randn(2, 5, 3, 3))
    with pytest.raises(ValueError, match="one entry per word"):
        SceneConstraint([0, 1], [0, 0], word_relation=[-1], word_size=[0, 0],
                        word_background=[-1, -1])
    with pytest.raises(ValueError, match="count_objects=False"):
        scene_layouts(["a caption, not a scene"])
    assert parse_caption("two dogs below a cat")  # the grammar the tables come from
