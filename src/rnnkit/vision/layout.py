r"""Reading a scene's layout from an encoder's feature grid, and the caption constraints it gives.

**LayoutReader.** A scene (:mod:`rnnkit.vision.scenes`) places each object in its own cell of
a ``G x G`` layout. The reader judges every layout cell ``j`` on the features under it (a
``pooled`` reader, the no-attention ablation, reads every cell from the mean feature instead):

.. math::
    u_i = \mathrm{ReLU}(W_1 \hat f_i + b_1), \qquad
    \bar u_j = \mathrm{avgpool}_{G \times G}(u)_j, \qquad
    (c_j, s_j) = W_2 \bar u_j + b_2, \qquad g = W_g \tfrac1{hw} \textstyle\sum_i u_i + b_g,

with :math:`\hat f_i` the standardised features of grid cell ``i`` (1 x 1 convolutions, as the
:class:`~rnnkit.vision.counter.ObjectCounter`: a cell is judged on its own features, so the
reading holds for objects never seen together), ``c_j`` the logits of the cell's class
(``K`` classes, or ``K`` = empty), ``s_j`` of its size (small / large) and ``g`` of the
background colour; cross-entropy on each (sizes only at occupied cells). From a layout follow
the counts (cells per class), each class' uniform size, and the four relations the captions
state, decided exactly as :func:`rnnkit.vision.scenes.scene_facts` decides them: class ``a``
is *left of* class ``b`` when every ``a`` lies in a column left of every ``b`` (likewise
right of, above, below).

**SceneConstraint** extends :class:`~rnnkit.vision.counter.CountConstraint` (counts) with
what the layout tells. Besides ``remaining`` / ``pending`` it tracks the class last named
(``last``), a pending relation (its keyword: "left", "right", "above" / "over" / "top",
"below" / "under" / "beneath") and a pending size adjective. Then

* a relation keyword ``r`` only if some class ``b`` still to be named has ``last r b``;
* a size adjective ``s`` only if some class still to be named (with the pending count, and
  in the pending relation) is all ``s``;
* a class noun only if, besides the count checks, the pending relation holds from ``last``
  to it and the pending size is its size ("red" of "red apple" only if "apple" would pass);
  a number word only for a class that passes the relation check;
* "a" / "an" is the number one (some class the relation allows has one object left) but
  first in the caption ("a picture of") and after "on" ("on a blue background");
* a background colour only if it is the predicted one;
* agreement: a noun's number is its class' count ("two dogs", "a dog"; "two pizza" only
  as "two pizza slices", "slice" / "slices" the count of the pizza just named), "is" /
  "are" after a noun its count (and a relation must follow, and not in a clause "there"
  opened), after "there" some class left has one / several, and the number word after
  "there is" / "there are" agrees;
* one relation per clause (a keyword only after the clause's first noun phrase; "and" opens
  the next), and after "<noun> is" a relation, not another noun phrase ("a dog is a cat");
* "picture" / "image" only as the second word ("a picture of", never "... of a picture of").

With a word-pair grammar (``follows``, :func:`scene_grammar`) a word must also follow the
previous one as in the scene grammar's captions, and a word that opens a phrase only if the
phrase can end: "to" / "the" only if some class left is left or right of the last one, "on"
only for such a relation, "on top of", or the background once every object is named (and
the predicted colour has a word); "and", "there" only while objects are left; "is" / "are"
after a noun only if a relation can follow. Where the grammar leaves no word, the fact
checks alone decide; where they leave none either, ``<eos>`` (at the model's own
log-probability of ending: a free end would let a beam prefer getting stuck). So a caption
the decoder finishes states only what the reading says and names every object: its facts
are true whenever the reading is.

Shapes: ``features [B, C, h, w]``; layout ``cells [B, G*G]`` (class id, ``K`` = empty),
``sizes [B, G*G]`` (0 small, 1 large), ``background [B]``; ``relations [B, 4, K, K]`` (order
:data:`RELATION_ORDER`), ``uniform [B, K]`` (0: absent or mixed, 1 small, 2 large).

>>> torch.manual_seed(0) and None
>>> reader = LayoutReader(feature_size=8, n_classes=3, n_backgrounds=2, hidden_size=5)
>>> cells, sizes, bg = reader(torch.randn(2, 8, 8, 8))
>>> tuple(cells.shape), tuple(sizes.shape), tuple(bg.shape)
((2, 9, 4), (2, 9, 2), (2, 2))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..train.protocol import LossOutput
from .cnn import StandardisedFeatures
from .counter import CountConstraint

__all__ = ["LayoutReader", "RELATION_ORDER", "SceneConstraint", "layout_facts",
           "layout_scene", "reading_scores", "scene_layouts"]

#: the generated relations, in the order of ``relations[:, r]``
RELATION_ORDER = ("left of", "right of", "above", "below")


class LayoutReader(StandardisedFeatures):
    """Each layout cell's class and size, and the background, from a feature grid (see the
    module docstring).

    Args:
        feature_size: encoder channels ``C``.
        n_classes: ``K`` (the empty cell is class ``K``).
        n_backgrounds: background colours.
        grid: the layout side ``G``.
        hidden_size: width of the hidden layer (per grid cell; one vector when pooled).
        dropout: on the standardised features in training.
        pooled: read the layout from the mean-pooled features alone (the no-attention
            ablation): ``u = ReLU(W1 mean_i(f_i) + b1)`` over the standardised features,
            every cell's logits from ``u`` by one linear layer ``[G*G (K + 3), H]``. What it
            knows of positions is what survives the pooling.
    """

    def __init__(self, feature_size: int, n_classes: int, n_backgrounds: int, grid: int = 3,
                 hidden_size: int = 256, dropout: float = 0.2, pooled: bool = False) -> None:
        super().__init__()
        for name, v in (("feature_size", feature_size), ("n_classes", n_classes),
                        ("n_backgrounds", n_backgrounds), ("grid", grid),
                        ("hidden_size", hidden_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.n_classes, self.grid = n_classes, grid
        self._init_stats(feature_size)
        self.pooled = bool(pooled)
        if self.pooled:
            self.body = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_size, hidden_size),
                                      nn.ReLU())
            self.cell_head = nn.Linear(hidden_size, grid * grid * (n_classes + 1 + 2))
        else:
            self.body = nn.Sequential(nn.Dropout(dropout),
                                      nn.Conv2d(feature_size, hidden_size, 1), nn.ReLU())
            self.cell_head = nn.Conv2d(hidden_size, n_classes + 1 + 2, 1)
        self.background_head = nn.Linear(hidden_size, n_backgrounds)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, C, h, w]`` -> logits ``(cells [B, G*G, K + 1], sizes [B, G*G, 2],
        background [B, n_backgrounds])``."""
        K = self.n_classes
        x = self.standardise(features)
        if self.pooled:
            u = self.body(x.mean((2, 3)))  # [B, H]
            out = self.cell_head(u).view(len(u), self.grid * self.grid, K + 3)
            return out[..., :K + 1], out[..., K + 1:], self.background_head(u)
        u = self.body(x)  # [B, H, h, w]
        out = self.cell_head(F.adaptive_avg_pool2d(u, self.grid)).flatten(2).transpose(1, 2)
        return out[..., :K + 1], out[..., K + 1:], self.background_head(u.mean((2, 3)))

    @torch.no_grad()
    def predict(self, features: Tensor) -> dict[str, Tensor]:
        """``[B, C, h, w]`` -> ``{"cells", "sizes", "background"}`` (long; see the module
        docstring) plus what follows from them: ``"counts" [B, K]``, ``"relations"
        [B, 4, K, K]`` (bool), ``"uniform" [B, K]``."""
        was = self.training
        self.eval()
        cells, sizes, bg = (t.argmax(-1) for t in self(features))
        self.train(was)
        return layout_facts(cells, sizes, bg, self.n_classes, self.grid)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Trainer protocol: ``batch = (features, cells [B, G*G], sizes [B, G*G],
        background [B])``."""
        features, cells, sizes, bg = batch
        c, s, g = self(features)
        occupied = cells < self.n_classes
        loss = F.cross_entropy(c.reshape(-1, c.shape[-1]), cells.reshape(-1)) \
            + F.cross_entropy(g, bg)
        if occupied.any():
            loss = loss + F.cross_entropy(s[occupied], sizes[occupied])
        exact = ((c.detach().argmax(-1) == cells)
                 & ((s.detach().argmax(-1) == sizes) | ~occupied)).all(1).float().mean()
        return LossOutput(loss, None, {"exact": exact}, len(features))


def layout_facts(cells: Tensor, sizes: Tensor, background: Tensor, n_classes: int,
                 grid: int) -> dict[str, Tensor]:
    """A layout -> itself with its ``counts [B, K]``, ``relations [B, 4, K, K]`` (``[b, r,
    a, c]``: every ``a`` is :data:`RELATION_ORDER` ``[r]`` of every ``c``; ``a != c``, both
    present) and ``uniform [B, K]`` sizes (0 absent or mixed, 1 small, 2 large)."""
    K = n_classes
    onehot = F.one_hot(cells.clamp_max(K), K + 1)[..., :K].bool()  # [B, G*G, K]
    counts = onehot.sum(1)  # [B, K]
    j = torch.arange(grid * grid, device=cells.device)
    row, col = (j // grid)[None, :, None], (j % grid)[None, :, None]
    big = grid + 1

    def lo(v: Tensor) -> Tensor:  # [B, K]: smallest row / column of each class
        return torch.where(onehot, v, big).amin(1)

    def hi(v: Tensor) -> Tensor:
        return torch.where(onehot, v, -big).amax(1)

    present = counts > 0
    both = present[:, :, None] & present[:, None, :] & ~torch.eye(K, dtype=torch.bool,
                                                                  device=cells.device)
    left = hi(col)[:, :, None] < lo(col)[:, None, :]
    right = lo(col)[:, :, None] > hi(col)[:, None, :]
    above = hi(row)[:, :, None] < lo(row)[:, None, :]
    below = lo(row)[:, :, None] > hi(row)[:, None, :]
    relations = torch.stack([left, right, above, below], 1) & both[:, None]
    large = (onehot & (sizes == 1)[..., None]).sum(1)  # [B, K]
    uniform = torch.where(~present, 0, torch.where(large == 0, 1,
                                                   torch.where(large == counts, 2, 0)))
    return {"cells": cells, "sizes": sizes, "background": background, "counts": counts,
            "relations": relations, "uniform": uniform.long()}


def scene_layouts(scenes: Sequence[Any]) -> tuple[Tensor, Tensor, Tensor]:
    """Scenes -> their true layouts ``(cells [N, G*G], sizes [N, G*G], background [N])``
    in :data:`~rnnkit.vision.scenes.CLASSES` / ``BACKGROUNDS`` order."""
    from .scenes import BACKGROUNDS, CLASSES, GRID

    order, bgs = {n: i for i, n in enumerate(CLASSES)}, {b: i for i, b in enumerate(BACKGROUNDS)}
    cells = torch.full((len(scenes), GRID * GRID), len(CLASSES), dtype=torch.long)
    sizes = torch.zeros(len(scenes), GRID * GRID, dtype=torch.long)
    bg = torch.zeros(len(scenes), dtype=torch.long)
    for i, s in enumerate(scenes):
        objects = getattr(s, "objects", None)
        if objects is None or getattr(s, "background", None) not in bgs or \
                any(o.noun not in order for o in objects):
            raise ValueError(f"a layout reader trains on rnnkit.vision.scenes Scene objects; "
                             f"item {i} is {type(s).__name__}: give scenes or set "
                             f"count_objects=False")
        bg[i] = bgs[s.background]
        for o in objects:
            cells[i, o.row * GRID + o.col] = order[o.noun]
            sizes[i, o.row * GRID + o.col] = int(o.size == "large")
    return cells, sizes, bg


def reading_scores(reading: Tensor | dict[str, Tensor], scenes: Sequence[Any]
                   ) -> dict[str, float]:
    """How well a reading matches ``scenes``: ``counts_exact`` (the share of scenes with every
    class count right) and, for a :meth:`LayoutReader.predict` dict, ``layout_exact`` (the
    share with every fact right: :func:`~rnnkit.vision.scenes.scene_facts` of
    :func:`layout_scene` equal to the scene's). ``reading``: that dict, or counts ``[N, K]``
    (an :class:`~rnnkit.vision.counter.ObjectCounter`'s)."""
    from .scenes import CLASSES, GRID, scene_facts

    counts = reading["counts"] if isinstance(reading, dict) else reading
    if counts.dim() != 2 or counts.shape != (len(scenes), len(CLASSES)):
        raise ValueError(f"expected counts [N, K] = [{len(scenes)}, {len(CLASSES)}] for "
                         f"{len(scenes)} scenes, got {list(counts.shape)}")
    true = layout_facts(*scene_layouts(scenes), len(CLASSES), GRID)["counts"]
    out = {"counts_exact": float((counts.long() == true).all(1).float().mean())}
    if isinstance(reading, dict):
        out["layout_exact"] = sum(
            scene_facts(layout_scene(reading["cells"][i], reading["sizes"][i],
                                     reading["background"][i])) == scene_facts(s)
            for i, s in enumerate(scenes)) / len(scenes)
    return out


def layout_scene(cells: Tensor, sizes: Tensor, background: Tensor | int) -> Any:
    """One layout (``cells [G*G]``, ``sizes [G*G]``, a background id) -> a
    :class:`~rnnkit.vision.scenes.Scene` (no captions, no jitter): what the reader saw."""
    from .scenes import BACKGROUNDS, CLASSES, GRID, Scene, SceneObject

    nouns, K = list(CLASSES), len(CLASSES)
    objs = tuple(SceneObject(nouns[int(c)], j // GRID, j % GRID,
                             ("small", "large")[int(sizes[j])])
                 for j, c in enumerate(cells.tolist()) if c < K)
    return Scene(objs, list(BACKGROUNDS)[int(background)])


class SceneConstraint(CountConstraint):
    """Decoding constraints from a predicted layout (see the module docstring).

    Args:
        word_class, word_number, article, eos: as :class:`~rnnkit.vision.counter.
            CountConstraint`.
        word_relation: each word's relation (index into :data:`RELATION_ORDER`; ``-1``: not
            a relation keyword).
        word_size: 1 "small" / "little", 2 "large" / "big", 0 otherwise.
        word_background: each word's background colour id (``-1``: not a colour).
        word_modifies: the class whose noun a word opens ("red" of "red apple"; ``-1``).
        word_plural: the number a noun's last word carries (1 plural, 0 singular; ``-1``:
            not a noun's last word, e.g. "slice" of "pizza slice" is 0).
        word_opens: 1 for a noun that also opens a longer form of its class ("pizza" of
            "pizza slices": after it, a tail of the count's number), else 0.
        follows: the word-pair grammar ``[V, V]`` (:func:`scene_grammar`; ``None``: none).
        glue: ids of the words the rules name ("to", "on", "is", "picture", ...).
    """

    def __init__(self, word_class: Sequence[int], word_number: Sequence[int],
                 article: Sequence[int] = (), eos: int = 2, *,
                 word_relation: Sequence[int], word_size: Sequence[int],
                 word_background: Sequence[int], word_modifies: Sequence[int] | None = None,
                 word_plural: Sequence[int] | None = None,
                 word_opens: Sequence[int] | None = None, follows: Tensor | None = None,
                 glue: dict[str, int] | None = None) -> None:
        super().__init__(word_class, word_number, article, eos)
        V = len(self.word_class)
        self.word_relation = torch.as_tensor(list(word_relation), dtype=torch.long)
        self.word_size = torch.as_tensor(list(word_size), dtype=torch.long)
        self.word_background = torch.as_tensor(list(word_background), dtype=torch.long)
        self.word_modifies = torch.as_tensor(
            [-1] * V if word_modifies is None else list(word_modifies), dtype=torch.long)
        self.word_plural = torch.as_tensor(
            [-1] * V if word_plural is None else list(word_plural), dtype=torch.long)
        self.word_opens = torch.as_tensor(
            [0] * V if word_opens is None else list(word_opens), dtype=torch.bool)
        if any(len(t) != V for t in (self.word_relation, self.word_size, self.word_background,
                                     self.word_modifies, self.word_plural, self.word_opens)):
            raise ValueError("word_relation, word_size, word_background, word_modifies, "
                             "word_plural and word_opens must have one entry per word")
        self.numbered = (self.word_plural >= 0) & (self.word_class >= 0)  # nouns with a number
        self.tails = (self.word_plural >= 0) & (self.word_class < 0)  # "slice(s)" of "pizza"
        self.np_end = (self.word_class >= 0) | self.tails  # words that end a noun phrase
        #: whether a singular / a plural tail is in the vocabulary (an opener whose own
        #: number is not the count needs one)
        self._tail_of = tuple(bool((self.tails & (self.word_plural == n)).any())
                              for n in (0, 1))
        self.modifiers = (self.word_modifies >= 0).nonzero().squeeze(1)
        if follows is not None and tuple(follows.shape) != (V, V):
            raise ValueError(f"follows must be [V, V] = [{V}, {V}], got {list(follows.shape)}")
        self.follows = None if follows is None else follows.bool()
        self.glue = dict(glue or {})
        self.rel_words = (self.word_relation >= 0).nonzero().squeeze(1)
        #: words after which an article was not a number ("picture", "image", colours)
        self._not_np = torch.tensor([self.glue[w] for w in ("picture", "image")
                                     if w in self.glue] + (self.word_background >= 0)
                                    .nonzero().squeeze(1).tolist(), dtype=torch.long)
        self.size_words = (self.word_size > 0).nonzero().squeeze(1)
        self.bg_words = (self.word_background >= 0).nonzero().squeeze(1)

    def init_state(self, reading: Any) -> dict[str, Tensor]:
        """A :meth:`LayoutReader.predict` dict (``counts`` with unnameable classes set to
        0 by :meth:`nameable`) -> the constraint's state entries."""
        if not isinstance(reading, dict) or not {"counts", "relations", "uniform",
                                                  "background"} <= set(reading):
            raise ValueError("SceneConstraint needs a LayoutReader.predict(...) reading "
                             "(counts, relations, uniform, background)")
        counts = reading["counts"]
        B = counts.shape[0]
        neg = counts.new_full((B,), -1, dtype=torch.long)
        return {**super().init_state(counts), "last": neg, "rel": neg.clone(),
                "prev": torch.zeros_like(neg), "prev2": torch.zeros_like(neg),
                "last_n": torch.zeros_like(neg), "agree": torch.zeros_like(neg),
                "clause": torch.zeros_like(neg), "there": torch.zeros_like(neg),
                "rel_from": neg.clone(), "size": torch.zeros_like(neg),
                "relations": reading["relations"], "uniform": reading["uniform"],
                "background": reading["background"].long()}

    def update(self, tokens: Tensor, state: dict[str, Tensor]) -> dict[str, Tensor]:
        out = super().update(tokens, state)
        dev = tokens.device
        cls = self.word_class.to(dev)[tokens]
        rel = self.word_relation.to(dev)[tokens]
        size = self.word_size.to(dev)[tokens]
        named = cls >= 0
        is_rel = rel >= 0
        # "a" / "an" is one object unless "picture" / "image" / a colour follows ("a picture
        # of", "on a blue background"): pending as one until then
        reset = torch.isin(tokens, self._not_np.to(dev))
        pending = torch.where(self.article.to(dev)[tokens], 1,
                              torch.where(reset, 0, out["pending"]))
        # how many the class just named has (for "is" / "are", "slice" / "slices"), the
        # noun phrases of this clause ("and" starts the next), and the number "there is" /
        # "there are" asks of the next noun phrase (1 one, 2 several; a number word answers)
        g = self.glue
        rows = torch.arange(len(tokens), device=dev)
        had = state["remaining"][rows, cls.clamp_min(0)]
        be = (tokens == g.get("is", -1)) | (tokens == g.get("are", -1))
        agree = torch.where(be & (state["prev"] == g.get("there", -1)),
                            torch.where(tokens == g.get("is", -1), 1, 2), state["agree"])
        agree = torch.where(self.word_number.to(dev)[tokens] > 0, 0, agree)
        new_clause = tokens == g.get("and", -1)
        clause = torch.where(named, state["clause"] + 1,
                             torch.where(new_clause, 0, state["clause"]))
        there = torch.where(tokens == g.get("there", -1), 1,
                            torch.where(new_clause, 0, state["there"]))
        return {**out, "prev": tokens, "prev2": state["prev"], "pending": pending,
                "last_n": torch.where(named, had, state["last_n"]), "agree": agree,
                "clause": clause, "there": there,
                "last": torch.where(named, cls, state["last"]),
                "rel": torch.where(named, -1, torch.where(is_rel, rel, state["rel"])),
                "rel_from": torch.where(is_rel, state["last"], state["rel_from"]),
                "size": torch.where(named, 0, torch.where(size > 0, size, state["size"]))}

    def _related(self, state: dict[str, Tensor]) -> Tensor:
        """``[N, K]``: classes the pending relation allows (all when none is pending)."""
        rel, frm, R = state["rel"], state["rel_from"], state["relations"]
        N = rel.shape[0]
        rows = torch.arange(N, device=rel.device)
        ok = R[rows, rel.clamp_min(0), frm.clamp_min(0)]  # [N, K]
        return torch.where(((rel >= 0) & (frm >= 0))[:, None], ok, torch.ones_like(ok))

    def mask(self, log_probs: Tensor, state: dict[str, Tensor]) -> Tensor:
        out = super().mask(log_probs, state)
        dev = log_probs.device
        remaining, uniform = state["remaining"], state["uniform"]
        related = self._related(state)  # [N, K]
        sized = (state["size"][:, None] == 0) | (uniform == state["size"][:, None])
        last = state["last"]
        rows = torch.arange(len(last), device=dev)
        R = state["relations"][rows, :, last.clamp_min(0)]  # [N, 4, K]: last r each class
        # [N, 4]: relation r can be stated now: from the class last named to some class still
        # to name, one per clause ("a dog left of a cat", not "... of a cat above a ball":
        # whose "above"?)
        can = (R & (remaining > 0)[:, None]).any(2) \
            & ((last >= 0) & (state["clause"] == 1))[:, None]
        self._noun_rules(out, state, related, sized)
        self._agreement(out, state, can)
        rw = self.rel_words.to(dev)
        out[:, rw] = out[:, rw].masked_fill(~can[:, self.word_relation.to(dev)[rw]],
                                            float("-inf"))
        # size adjectives: some class to name (with the pending count, in the pending
        # relation) is all of that size
        pending = state["pending"]
        cand = (remaining > 0) & related & ((pending[:, None] == 0)
                                            | (pending[:, None] == remaining))
        sw = self.size_words.to(dev)
        has = ((uniform[:, :, None] == self.word_size.to(dev)[sw][None, None])
               & cand[:, :, None]).any(1)
        out[:, sw] = out[:, sw].masked_fill(~has, float("-inf"))
        # background colours: the predicted one only
        bw = self.bg_words.to(dev)
        colour = self.word_background.to(dev)[bw][None] == state["background"][:, None]
        out[:, bw] = out[:, bw].masked_fill(~colour, float("-inf"))
        if self.follows is not None:  # where the grammar leaves no word, the facts alone
            gm = self._grammar(out, state, can, remaining, colour.any(1))
            stuck = torch.isinf(gm).all(1, keepdim=True)
            out = torch.where(stuck, out, gm)
        # no word fits: end the caption rather than loop, at the model's own price for
        # ending (free, a beam would prefer getting stuck to finishing)
        stuck = torch.isinf(out).all(1)
        eos = log_probs[:, self.eos]
        out[stuck, self.eos] = torch.where(torch.isfinite(eos), eos, 0.0)[stuck]
        return out

    def _noun_rules(self, out: Tensor, state: dict[str, Tensor], related: Tensor,
                    sized: Tensor) -> None:
        """Nouns, the words that open them and number words, in place on ``out``."""
        dev = out.device
        remaining, pending = state["remaining"], state["pending"]
        wc, plural = self.word_class.to(dev), self.word_plural.to(dev)
        # nouns: the pending relation and size must hold for the noun's class, and its
        # number is the count ("two dogs", "a dog"; "two pizza" only as "two pizza slices")
        nouns = self.nouns.to(dev)
        several = remaining[:, wc[nouns]] > 1
        agrees = several == (plural[nouns] == 1)
        singular_tail, plural_tail = self._tail_of
        opens = self.word_opens.to(dev)[nouns] & ((several & plural_tail)
                                                  | (~several & singular_tail))
        ok = (related & sized)[:, wc[nouns]] & (~self.numbered.to(dev)[nouns] | agrees | opens)
        out[:, nouns] = out[:, nouns].masked_fill(~ok, float("-inf"))
        # a tail ("slice" / "slices" after "pizza") carries the number of the class just
        # named; after an opener whose own number is not the count, only a tail
        tails = self.tails.nonzero().squeeze(1).to(dev)
        ok = (state["last_n"][:, None] > 1) == (plural[tails] == 1)[None]
        out[:, tails] = out[:, tails].masked_fill(~ok, float("-inf"))
        prev = state["prev"]
        need = self.word_opens.to(dev)[prev] & ((state["last_n"] > 1) != (plural[prev] == 1))
        keep = torch.zeros(out.shape[1], dtype=torch.bool, device=dev)
        keep[tails] = True
        out.masked_fill_(need[:, None] & ~keep[None], float("-inf"))
        # a word that only starts a noun ("red" of "red apple") needs that noun to pass
        mods = self.modifiers.to(dev)
        named = (remaining > 0) & ((pending[:, None] == 0) | (pending[:, None] == remaining))
        ok = (named & related & sized)[:, self.word_modifies.to(dev)[mods]]
        out[:, mods] = out[:, mods].masked_fill(~ok, float("-inf"))
        # number words: only for a class the pending relation allows; after "there is": one,
        # after "there are": several
        numbers = self.numbers.to(dev)
        values = self.word_number.to(dev)[numbers]
        has = ((remaining[:, :, None] == values[None, None]) & related[:, :, None]).any(1)
        agree = state["agree"][:, None]
        has &= (agree == 0) | ((agree == 1) == (values[None] == 1))
        out[:, numbers] = out[:, numbers].masked_fill(~has, float("-inf"))
        # the articles "a" / "an" count as one object (some class the relation allows has
        # one left) but first in the caption ("a picture of") and after "on" ("on a blue
        # background")
        art = self.article.nonzero().squeeze(1).to(dev)
        if len(art):
            g = self.glue
            free = (prev == g.get("<bos>", -1)) | (prev == g.get("on", -1))
            one = (((remaining == 1) & related).any(1) & (state["agree"] != 2)) | free
            out[:, art] = out[:, art].masked_fill(~one[:, None], float("-inf"))

    def _agreement(self, out: Tensor, state: dict[str, Tensor], can: Tensor) -> None:
        """"is" / "are", what follows them, and "picture" / "image", in place on ``out``."""
        dev, g = out.device, self.glue
        remaining, prev, prev2 = state["remaining"], state["prev"], state["prev2"]
        np_end = self.np_end.to(dev)
        # "is" / "are" after a noun: its number, a relation must follow, and not in a clause
        # "there" opened ("there are two dogs are ..."); after "there": some class left has
        # one / several
        after_noun = np_end[prev]
        there = prev == g.get("there", -1)
        verb_ok = can.any(1) & (state["there"] == 0)
        for word, n_ok, left_ok in (("is", state["last_n"] <= 1, (remaining == 1).any(1)),
                                    ("are", state["last_n"] > 1, (remaining > 1).any(1))):
            if word in g:
                ok = torch.where(after_noun, n_ok & verb_ok, torch.where(there, left_ok, True))
                out[:, g[word]] = out[:, g[word]].masked_fill(~ok, float("-inf"))
        # "a dog is" goes on with a relation, not another noun phrase ("a dog is a cat")
        be = (prev == g.get("is", -1)) | (prev == g.get("are", -1))
        np_words = torch.cat([self.nouns, self.modifiers, self.numbers,
                              self.article.nonzero().squeeze(1), self.size_words]).to(dev)
        out[:, np_words] = out[:, np_words].masked_fill((be & np_end[prev2])[:, None],
                                                        float("-inf"))
        # "picture" / "image" only second ("a picture of"), never "a picture of a picture"
        second = prev2 == g.get("<bos>", -1)
        for word in ("picture", "image"):
            if word in g:
                out[:, g[word]] = out[:, g[word]].masked_fill(~second, float("-inf"))

    def _grammar(self, out: Tensor, state: dict[str, Tensor], can: Tensor, remaining: Tensor,
                 colour: Tensor) -> Tensor:
        """The word-pair grammar (``follows``) and its one-word look-ahead: a word that
        opens a phrase only if the phrase can be finished (see :func:`scene_grammar`).
        ``can [N, 4]``: each relation can be stated now; ``colour [N]``: the predicted
        background has a word."""
        dev, prev, g = out.device, state["prev"], self.glue
        out = out.masked_fill(~self.follows.to(dev)[prev], float("-inf"))
        done = (remaining == 0).all(1)
        sideways = can[:, 0] | can[:, 1]  # "to the left / right of", "on the ... of"
        noun_before = self.np_end.to(dev)[prev]
        need = {"to": sideways, "the": sideways,
                "on": sideways | can[:, 2] | (done & colour),
                "and": ~done, "there": ~done, "background": done,
                "is": torch.where(noun_before, can.any(1), ~done)}
        need["are"] = need["is"]
        for a in ("a", "an"):  # "on a <colour> background" ends the caption
            need[a] = ~(prev == g.get("on", -1)) | done
        for word, ok in need.items():
            if word in g:
                out[:, g[word]] = out[:, g[word]].masked_fill(~ok, float("-inf"))
        colours = self.bg_words.to(dev)
        out[:, colours] = out[:, colours].masked_fill(~done[:, None], float("-inf"))
        return out


def _category(word: str) -> str:
    """A word's slot in the caption grammar: class nouns by number, number words above one,
    size adjectives and colours by kind, "is" / "are" as one; every other word is its own
    slot. (The words of multi-word nouns, "red apple", "pizza slices", are placed by
    :func:`scene_grammar`.)"""
    from .scenes import _LEX, ADJECTIVES, BACKGROUNDS

    if (word,) in _LEX:  # the parser's lexicon: noun forms -> (class, plural?)
        return "NOUNS" if _LEX[(word,)][1] else "NOUN"
    if word in ("two", "three", "four"):
        return "MANY"
    if word in ("is", "are"):  # the parser reads "there are a dog": agreement is not a fact
        return "BE"
    if any(word in ws for ws in ADJECTIVES.values()):
        return "ADJ"
    return "COLOUR" if word in BACKGROUNDS else word


@functools.lru_cache(maxsize=1)
def _slot_pairs() -> frozenset[tuple[str, str]]:
    """Every pair of adjacent slots in 8,000 captions of random scenes (a fixed seed; the
    set stops growing after ~4,000), a multi-word noun ("red apples") read as one noun."""
    import numpy as np

    from .scenes import _LEX, SceneConfig, _sample_scene, caption_scene

    rng = np.random.default_rng(20261205)
    cfg = SceneConfig(n_train=1, n_valid=1, n_test=1, captions_per_image=1)
    pairs: set[tuple[str, str]] = set()
    for _ in range(8000):
        words = caption_scene(_sample_scene(rng, cfg, set(), False), rng)[0].split()
        slots, i = [], 0
        while i < len(words):
            if tuple(words[i:i + 2]) in _LEX:
                slots.append("NOUNS" if _LEX[tuple(words[i:i + 2])][1] else "NOUN")
                i += 2
            else:
                slots.append(_category(words[i]))
                i += 1
        pairs.update(zip(["<bos>", *slots], [*slots, "<eos>"]))
    return frozenset(pairs)


def scene_grammar(words: Sequence[str]) -> Tensor:
    """``follows [V, V]`` (bool): word ``j`` may follow word ``i`` in the scene grammar's
    captions (``<bos>`` / ``<eos>`` included): the pairs of *slots* (:func:`_category`:
    "two" -> any plural noun or an adjective, ...) seen in captions of random scenes.
    A multi-word noun is one noun there; its words are placed here: a modifier ("red" of
    "red apple") stands where a noun may and is followed by a noun of its class; a tail
    ("slices" of "pizza slices") follows only its opener ("pizza", itself a noun, which may
    also stand where the plural form may) and is followed as a noun of its number.
    :class:`SceneConstraint` adds a one-word look-ahead, since a pair alone can walk into a
    phrase that cannot end ("to the" when no class is left or right of the last one; "on
    a" before every object is named: the background comes last).

    >>> w = ["<pad>", "<bos>", "<eos>", "<unk>", "two", "dogs", "dog", "and", "pizza",
    ...      "slices", "red", "apples", "left"]
    >>> f = scene_grammar(w)
    >>> bool(f[4, 5]), bool(f[4, 6]), bool(f[5, 7]), bool(f[1, 5])
    (True, False, True, False)
    >>> [w[j] for j in range(len(w)) if f[w.index("two"), j]]  # "two red apples"
    ['dogs', 'pizza', 'red', 'apples']
    >>> [w[j] for j in range(len(w)) if f[w.index("red"), j]], bool(f[9, 12])
    (['apples'], True)
    """
    t = _noun_word_tables(words)
    pairs = _slot_pairs()
    slots = [_category(w) for w in words]
    for j in range(len(words)):
        if t["plural"][j] >= 0 and t["class"][j] < 0:  # a tail: a noun of its number
            slots[j] = ("NOUN", "NOUNS")[t["plural"][j]]

    def noun_slot(a: str) -> bool:  # a noun (of either number) may follow slot a
        return (a, "NOUN") in pairs or (a, "NOUNS") in pairs

    out = torch.zeros(len(words), len(words), dtype=torch.bool)
    for i, a in enumerate(slots):
        for j, b in enumerate(slots):
            if t["modifies"][i] >= 0:  # "red" -> "apple(s)"
                ok = t["class"][j] == t["modifies"][i]
            elif t["plural"][j] >= 0 and t["class"][j] < 0:  # "pizza" -> "slice(s)"
                ok = bool(t["opens"][i]) and t["class_of_tail"][j] == t["class"][i]
            elif t["modifies"][j] >= 0 or t["opens"][j]:  # "two red", "two pizza"
                ok = noun_slot(a) or (a, b) in pairs
            else:
                ok = (a, b) in pairs
            out[i, j] = ok
    return out


def _noun_word_tables(words: Sequence[str]) -> dict[str, list[int]]:
    """Per word: its ``class`` (-1: not a one-word noun), the class it ``modifies`` ("red"
    of "red apple"; -1), its ``plural`` (the number a noun form's last word carries: 1, 0;
    -1: not a last word), whether it ``opens`` a longer form of its class ("pizza" of
    "pizza slices") and, for a tail ("slices"), its ``class_of_tail`` (-1 otherwise)."""
    from .scenes import CLASSES, noun_words

    nouns, order = noun_words(), {n: i for i, n in enumerate(CLASSES)}
    forms = [(order[n], k, form.split()) for n, (_, p, syn) in CLASSES.items()
             for f in ((n, p), *syn) for k, form in enumerate(f)]
    modifies = {w: c for c, _, ws in forms for w in ws[:-1] if w not in nouns}
    plural = {ws[-1]: k for _, k, ws in forms}
    opens = {ws[0] for _, _, ws in forms if len(ws) > 1 and ws[0] in nouns}
    tail = {ws[-1]: c for c, _, ws in forms if len(ws) > 1 and ws[-1] not in nouns}
    return {"class": [order[nouns[w]] if w in nouns else -1 for w in words],
            "modifies": [modifies.get(w, -1) for w in words],
            "plural": [plural.get(w, -1) for w in words],
            "opens": [int(w in opens) for w in words],
            "class_of_tail": [tail.get(w, -1) for w in words]}


def scene_word_tables(words: Sequence[str]) -> dict[str, list[int]]:
    """Each word's relation, size and background entries for :class:`SceneConstraint`
    (from :mod:`rnnkit.vision.scenes`' grammar), the word-pair grammar ``follows``
    (:func:`scene_grammar`) and the ids of the ``glue`` words its look-ahead checks.

    >>> t = scene_word_tables(["<pad>", "left", "beneath", "big", "blue", "red", "dog"])
    >>> t["word_relation"], t["word_size"]
    ([-1, 0, 3, -1, -1, -1, -1], [0, 0, 0, 2, 0, 0, 0])
    >>> t["word_background"], t["word_modifies"]  # "red" starts "red apple" (class 2)
    ([-1, -1, -1, -1, 2, -1, -1], [-1, -1, -1, -1, -1, 2, -1])
    >>> scene_word_tables(["dog", "puppies", "slice", "slices", "red"])["word_plural"]
    [0, 1, 0, 1, -1]
    """
    from .scenes import ADJECTIVES, BACKGROUNDS, RELATIONS

    glue = {"to", "the", "of", "on"}
    keyword: dict[str, int] = {}
    for r, (_, _, phrases) in RELATIONS.items():
        for p in phrases:
            (kw,) = [w for w in p.split() if w not in glue]
            keyword[kw] = RELATION_ORDER.index(r)
    size = {w: i + 1 for i, s in enumerate(("small", "large")) for w in ADJECTIVES[s]}
    bgs = {b: i for i, b in enumerate(BACKGROUNDS)}
    nw = _noun_word_tables(words)
    glue_words = ("to", "the", "on", "and", "there", "is", "are", "a", "an", "background",
                  "picture", "image", "<bos>")
    return {"word_relation": [keyword.get(w, -1) for w in words],
            "word_size": [size.get(w, 0) for w in words],
            "word_background": [bgs.get(w, -1) for w in words],
            "word_modifies": nw["modifies"], "word_plural": nw["plural"],
            "word_opens": nw["opens"],
            "follows": scene_grammar(words),
            "glue": {w: i for i, w in enumerate(words) if w in glue_words}}
