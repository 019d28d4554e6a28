r"""SeriesClassifier: FCN / LSTM-FCN / GRU-FCN with the recipe chosen by cross-validation.

:meth:`SeriesClassifier.fit` takes ``N`` series (arrays or tensors ``[T_i, C]``) and their
labels, and

1. (``norm`` "auto": "series+log" when the per-series standard deviations spread by more
   than 10 times between their 10th and 90th percentiles, else "global"; "log": maps every
   value to :math:`\operatorname{asinh}(x_{tc} / s_c)`, ``s_c``
   the median absolute deviation of channel ``c`` over all training steps, so that series
   whose magnitudes differ by orders keep their shapes; "series+log": also the series
   z-normalised on its own, as extra channels), standardises every channel with the mean and
   standard deviation over all training steps,
   :math:`\tilde x_{tc} = (x_{tc} - \mu_c) / \sigma_c` (stored with the model), and pools
   each series longer than ``max_steps`` over windows of ``f_i = ceil(T_i / max_steps)``
   steps (``pool``: mean, max, or both as two channels per channel); a series of at most
   ``max_steps`` steps is never shrunk;
2. trains every candidate recipe (``models`` x dimension shuffle, :mod:`rnnkit.series.fcn`)
   on ``cv_folds`` stratified folds of the training data for ``E = max(epochs, ceil(min_steps /
   ceil(N / batch_size)))`` epochs, recording the held-out accuracy after every epoch;
3. gives every recipe the epoch with its best mean held-out accuracy, averaged over 5
   epochs around each (ties: lower held-out loss, then the earlier epoch), and ranks the
   recipes by that accuracy ``a_r`` (ties: lower held-out loss, then the earlier candidate);
4. ``combine``: "best" keeps the top recipe alone; "band" keeps every recipe whose ``a_r``
   lies within one binomial standard error of the top one's, and at least one series,
   :math:`a_r \ge a_1 - \max(\sqrt{a_1 (1 - a_1) / N}, 1 / N)`: recipes the folds cannot
   tell apart; "auto" keeps the band when the average of its members'
   held-out probabilities (each at its own epoch, on the same folds) is at least as accurate
   as the top recipe's alone, else the top recipe;
5. refits each kept recipe on all the training data for exactly its epochs (same schedule
   and batch size), ``ensemble`` times with seeds ``seed, seed + 1, ...``;
   :meth:`predict_proba` averages all their probabilities,
   :math:`p(y \mid x) = \frac{1}{M} \sum_m p_m(y \mid x)`.

No data beyond what ``fit`` is given is ever looked at: a test split stays out of every choice.
Training uses Adam with a cosine learning-rate decay over ``epochs`` and cross-entropy loss.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> xs = [rng.normal(size=(12, 1)) + (i % 2) * np.linspace(0, 3, 12)[:, None] for i in range(24)]
>>> ys = ["flat" if i % 2 == 0 else "rising" for i in range(24)]
>>> clf = SeriesClassifier(SeriesClassifierConfig(models="fcn", epochs=4, min_steps=1,
...                                               width=0.125, cv_folds=2)).fit(xs, ys)
>>> clf.predict_proba(xs[:3]).shape, clf.classes
(torch.Size([3, 2]), ['flat', 'rising'])
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..data.batching import pad_sequences
from ..saving import Savable
from .config import MODELS, SeriesClassifierConfig
from .fcn import FCN

__all__ = ["SeriesClassifier", "SeriesClassifierConfig"]

def _as_tensors(series: Sequence[Any], where: str = "series") -> list[Tensor]:
    out = []
    for i, s in enumerate(series):
        t = torch.as_tensor(np.asarray(s, dtype=np.float32))
        if t.dim() == 1:
            t = t[:, None]
        if t.dim() != 2 or t.shape[0] < 1:
            raise ValueError(f"{where} {i}: expected an array [T, C] (steps by channels) with "
                             f"T >= 1, got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{where} {i} has missing or infinite values; fill them first")
        out.append(t)
    return out


def _pad(series: list[Tensor], T: int = 0) -> tuple[Tensor, Tensor]:
    """``[B, max(T, T_max), C]`` zero-padded batch and ``lengths [B]``; training pads every
    batch to one length ``T`` (see :func:`~rnnkit.data.batching.pad_sequences`)."""
    return pad_sequences(series, min_length=T)


def _reduce(series: list[Tensor], max_steps: int, pool: str) -> list[Tensor]:
    """Pool each series longer than ``max_steps`` over windows of ``ceil(T / max_steps)``
    steps (the last window may be shorter); shorter series are kept whole. ``pool`` "mean",
    "max" or "mean+max" (``[T', 2C]``: the means, then the maxima; a kept series repeats).

    >>> [s.flatten().tolist() for s in _reduce([torch.arange(5.0)[:, None],
    ...                                         torch.ones(2, 1)], 2, "max")]
    [[2.0, 4.0], [1.0, 1.0]]
    >>> _reduce([torch.arange(5.0)[:, None]], 2, "mean+max")[0].tolist()
    [[1.0, 2.0], [3.5, 4.0]]
    """
    out = []
    for s in series:
        T, C = s.shape
        f = max(1, math.ceil(T / max_steps))
        if f == 1:
            out.append(torch.cat([s, s], 1) if pool == "mean+max" else s)
            continue
        pad = (-T) % f
        n = T + pad
        parts = []
        if pool in ("mean", "mean+max"):
            sums = F.pad(s.T, (0, pad)).reshape(C, n // f, f).sum(-1)  # [C, T']
            counts = torch.full((n // f,), float(f))
            counts[-1] = f - pad
            parts.append((sums / counts).T)
        if pool in ("max", "mean+max"):
            parts.append(F.pad(s.T, (0, pad), value=-math.inf).reshape(C, n // f, f)
                         .amax(-1).T)
        out.append(torch.cat(parts, 1))
    return out


def _folds(labels: list[int], k: int, seed: int) -> list[list[int]]:
    """``k`` stratified folds: each class's indices shuffled and dealt round-robin."""
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    start = 0
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(start + j) % k].append(i)
        start += len(idx)
    return [sorted(f) for f in folds if f]


def _smooth(curve: np.ndarray, width: int = 5) -> np.ndarray:
    """Centered moving average over ``width`` epochs (fewer at the ends): the choice of epoch
    then follows a plateau of the held-out curve rather than one lucky epoch.

    >>> _smooth(np.array([0.0, 1.0, 0.0, 1.0, 1.0]), 3).round(3).tolist()
    [0.5, 0.333, 0.667, 0.667, 1.0]
    """
    half = width // 2
    return np.array([curve[max(0, e - half): e + half + 1].mean() for e in range(len(curve))])


class SeriesClassifier(Savable):
    """Classify series ``[T_i, C]``; see the module docstring for the recipe.

    After :meth:`fit`: ``classes`` (names in label order), ``recipe`` (the top ``model``,
    ``shuffle`` and ``epochs``, its smoothed ``cv_accuracy``, the kept recipes as ``members``
    and, when cross-validation ran, the held-out accuracy at the chosen epochs of the top
    recipe alone and of the band's average as ``cv_top`` and ``cv_band``), ``members``
    (``(model, shuffle, epochs)`` per kept recipe), ``cv`` (every candidate's mean held-out
    accuracy per epoch).
    """

    # 2: one file may hold several recipes (recipe["members"]); 1 is read as one recipe
    KIND, VERSION = "rnnkit.series_classifier", 2

    def __init__(self, config: SeriesClassifierConfig | None = None) -> None:
        self.config = config or SeriesClassifierConfig()
        self.nets: list[FCN] = []
        self.members: list[tuple[str, bool, int]] = []  # (model, shuffle, epochs) refit
        self.classes: list[str] = []
        self.recipe: dict[str, Any] = {}
        self.cv: list[dict[str, Any]] = []
        self.mean = self.std = self.scale = torch.zeros(0)
        self.factor, self.max_len, self.input_size = 1, 0, 0
        self.fit_seconds = 0.0
        self.norm = self.config.norm  # "auto" resolved by fit
        self.legacy = False  # loaded from a model saved before per-series pooling

    # -- features -------------------------------------------------------------------------------
    def _transform(self, s: Tensor) -> Tensor:
        """``[T, C]`` -> the ``norm`` features before standardisation (``[T, 2C]`` for
        "series+log": the series z-normalised on its own, then the signed log)."""
        if self.norm == "global":
            return s
        log = torch.asinh(s / self.scale)  # ~ x / scale near 0, ~ sign(x) log(2|x| / scale)
        if self.norm == "log":
            return log
        z = (s - s.mean(0)) / s.std(0, unbiased=False).clamp_min(1e-8)
        return torch.cat([z, log], 1)

    def channels(self) -> int:
        """Input channels of the networks."""
        c = self.input_size * (2 if self.norm == "series+log" else 1)
        return c * (2 if self.config.pool == "mean+max" and not self.legacy else 1)

    def _features(self, series: list[Tensor]) -> list[Tensor]:
        if series[0].shape[1] != self.input_size:
            raise ValueError(f"the series have {series[0].shape[1]} channels but the model was "
                             f"trained on {self.input_size}; give series of the same channels")
        xs = [(self._transform(s) - self.mean) / self.std for s in series]
        if self.legacy:  # one averaging factor for every series, as such models were trained
            from ..data.ucr import downsample

            return downsample(xs, self.factor)
        return _reduce(xs, self.config.max_steps, self.config.pool)

    # -- training -------------------------------------------------------------------------------
    def candidates(self, steps: int) -> list[tuple[str, bool]]:
        """``(model, shuffle)`` pairs to cross-validate for series of ``steps`` steps."""
        shuffles = {"on": [True], "off": [False], "both": [True, False],
                    "auto": [True, False] if steps <= self.config.rnn_max_steps else [True]}
        out = []
        for m in self.config.model_list():
            out += [(m, False)] if MODELS[m] is None else [(m, s) for s in
                                                           shuffles[self.config.shuffle]]
        return out

    def fit(self, series: Sequence[Any], labels: Sequence[Any], verbose: bool = False,
            progress: str | os.PathLike | None = None) -> SeriesClassifier:
        """Choose the recipe by cross-validation on ``series``/``labels`` and refit on all.

        ``progress``: a file that keeps every finished training run (a fold of a candidate's
        cross-validation, a refit network; :mod:`rnnkit.series.progress`). When it exists, the
        fit continues from it (same data and settings, else
        :class:`~rnnkit.series.progress.ProgressMismatch`) and gives the same networks as an
        uninterrupted fit. With it, Ctrl-C or SIGTERM stop the fit after the optimizer step in
        flight and raise :class:`~rnnkit.train.TrainingInterrupted`; call ``fit`` again with
        the same file to continue.
        """
        t0 = time.perf_counter()
        cfg = self.config
        xs = _as_tensors(series)
        names = [str(y) for y in labels]
        if len(names) != len(xs):
            raise ValueError(f"got {len(xs)} series but {len(names)} labels; give one label "
                             f"per series")
        from ..train.resumable import Stopped
        from .files import natural_key
        from .progress import FitProgress, fingerprint

        self.classes = sorted(set(names), key=natural_key)
        if len(self.classes) < 2:
            raise ValueError(f"all series have the label {self.classes}; a classifier needs "
                             f"at least 2 classes")
        if len({x.shape[1] for x in xs}) > 1:
            raise ValueError("the series have different numbers of channels; give every "
                             "series the same channels")
        run = FitProgress(progress, asdict(cfg), fingerprint(xs, names))
        index = {c: k for k, c in enumerate(self.classes)}
        ys = [index[n] for n in names]
        allv = torch.cat(xs, 0)
        self.input_size = xs[0].shape[1]
        self.scale = (allv - allv.median(0).values).abs().median(0).values.clamp_min(1e-8)
        self.norm = cfg.norm
        if cfg.norm == "auto":
            sd = torch.stack([x.std(0, unbiased=False) for x in xs]).clamp_min(1e-8)  # [N, C]
            spread = (sd.quantile(0.9, 0) / sd.quantile(0.1, 0)).max()
            self.norm = "series+log" if spread > 10 else "global"
        allv = torch.cat([self._transform(x) for x in xs], 0)
        self.mean, self.std = allv.mean(0), allv.std(0, unbiased=False).clamp_min(1e-8)
        self.factor = max(1, math.ceil(max(x.shape[0] for x in xs) / cfg.max_steps))
        feats = self._features(xs)
        self.max_len = max(x.shape[0] for x in feats)
        cands = self.candidates(self.max_len)
        epochs = max(cfg.epochs, math.ceil(cfg.min_steps / math.ceil(len(xs) / cfg.batch_size)))
        folds = _folds(ys, cfg.cv_folds, cfg.seed) if cfg.cv_folds > 1 else []
        cv_runs = len(cands) * len(folds) if len(folds) > 1 else 0
        total = [cv_runs + cfg.ensemble * (1 if cv_runs == 0 else len(cands))]  # at most
        if verbose and run.resumed:
            print(f"    continuing the fit saved in {run.path}", flush=True)
        try:
            with run:
                members, top, extra = self._choose(cands, feats, ys, folds, epochs, run,
                                                   verbose, t0)
                total[0] = cv_runs + len(members) * cfg.ensemble
                nets = []
                for m, sh, e in members:
                    for k in range(cfg.ensemble):
                        key = f"net/{m}/{int(sh)}/{e}/{cfg.seed + k}"
                        state = run.get(key)
                        if state is None:
                            net = self._train(m, sh, feats, ys, epochs, None, stop=e,
                                              seed=cfg.seed + k, check=run.check)[0]
                            run.put(key, net.state_dict())
                        else:
                            net = self._build(m, sh)
                            net.load_state_dict(state)
                        nets.append(net.eval())
        except (Stopped, KeyboardInterrupt):  # KeyboardInterrupt: a second Ctrl-C
            if run.path is None:
                raise
            raise run.interrupted(total[0]) from None
        model, shuffle, chosen = members[0] if top else (*cands[0], epochs)
        self.members, self.nets = members, nets
        self.recipe = {"model": model, "shuffle": shuffle, "epochs": chosen,
                       "cv_accuracy": top["accuracy"][chosen - 1] if top else None,
                       "members": [{"model": m, "shuffle": sh, "epochs": e}
                                   for m, sh, e in members], **extra}
        if verbose and top:
            print(f"    kept {len(members)} recipe(s) x {cfg.ensemble} seed(s) ({cfg.combine}; "
                  f"held-out accuracy of the top recipe {extra['cv_top']:.4f}, of the band's "
                  f"average {extra['cv_band']:.4f})", flush=True)
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _choose(self, cands: list[tuple[str, bool]], feats: list[Tensor], ys: list[int],
                folds: list[list[int]], epochs: int, run: Any, verbose: bool, t0: float,
                ) -> tuple[list[tuple[str, bool, int]], dict[str, Any] | None, dict[str, float]]:
        """Cross-validate every candidate (steps 2-4 of the module docstring), each fold a
        unit of ``run``; the kept ``(model, shuffle, epochs)`` (the top one first), the top
        candidate's ``cv`` entry and the combine statistics. Fills ``self.cv``."""
        self.cv = []
        if len(folds) <= 1:
            return [(*cands[0], epochs)], None, {}
        held: list[Tensor] = []  # per candidate: held-out probabilities [N, K]
        for model, shuffle in cands:
            key = f"cand/{model}/{int(shuffle)}"
            summary = run.get(key)
            if summary is None:
                accs = np.zeros(epochs)
                losses = np.zeros(epochs)
                probs = torch.zeros(epochs, len(ys), len(self.classes))
                for k, fold in enumerate(folds):
                    fkey = f"{key}/fold{k}"
                    unit = run.get(fkey)
                    if unit is None:
                        rest = [i for j, f in enumerate(folds) if j != k for i in f]
                        _, curve, p = self._train(
                            model, shuffle, [feats[i] for i in rest], [ys[i] for i in rest],
                            epochs, ([feats[i] for i in fold], [ys[i] for i in fold]),
                            check=run.check)
                        unit = {"curve": curve, "probs": p}
                        run.put(fkey, unit)
                    accs += np.array([a for a, _ in unit["curve"]]) * len(fold) / len(ys)
                    losses += np.array([loss for _, loss in unit["curve"]]) * len(fold) / len(ys)
                    probs[:, fold] = unit["probs"]
                accs, losses = _smooth(accs), _smooth(losses)
                best = max(range(epochs), key=lambda e: (round(accs[e], 6), -losses[e], -e))
                summary = {"cv": {"model": model, "shuffle": shuffle,
                                  "accuracy": accs.tolist(), "loss": losses.tolist(),
                                  "best_epoch": best + 1},
                           "held": probs[best].clone(),  # [N, K] at the chosen epoch
                           "runs": len(folds)}
                run.drop([f"{key}/fold{k}" for k in range(len(folds))])
                run.put(key, summary)
            entry = summary["cv"]
            held.append(summary["held"])
            self.cv.append(entry)
            if verbose:
                best = entry["best_epoch"] - 1
                print(f"    {model} shuffle={shuffle}: CV accuracy "
                      f"{entry['accuracy'][best]:.4f} at epoch {best + 1} (loss "
                      f"{entry['loss'][best]:.4f}; {time.perf_counter() - t0:.0f} s)",
                      flush=True)
        order = sorted(range(len(self.cv)), key=lambda r: (
            -round(self.cv[r]["accuracy"][self.cv[r]["best_epoch"] - 1], 6),
            self.cv[r]["loss"][self.cv[r]["best_epoch"] - 1]))
        kept, extra = self._combine(order, held, torch.tensor(ys))
        members = [(self.cv[r]["model"], self.cv[r]["shuffle"], self.cv[r]["best_epoch"])
                   for r in kept]
        return members, self.cv[order[0]], extra

    def _combine(self, order: list[int], held: list[Tensor], ys: Tensor,
                 ) -> tuple[list[int], dict[str, float]]:
        """Indices (into ``self.cv``) of the recipes to refit, by ``config.combine``, and the
        held-out accuracies that decided (``cv_top``, ``cv_band``); ``order`` ranks the
        candidates, ``held[r]`` their held-out probabilities at their chosen epochs ``[N, K]``.
        """
        n = len(ys)
        acc = [self.cv[r]["accuracy"][self.cv[r]["best_epoch"] - 1] for r in range(len(held))]
        a = acc[order[0]]
        width = max(math.sqrt(a * (1 - a) / n), 1 / n)  # one standard error, one series at least
        band = [r for r in order if acc[r] >= a - width - 1e-6]  # float32 accuracies

        def held_out(rs: list[int]) -> float:
            p = torch.stack([held[r] for r in rs]).mean(0)
            return float((p.argmax(-1) == ys).float().mean())

        extra = {"cv_top": held_out(order[:1]), "cv_band": held_out(band)}
        mode = self.config.combine
        if mode == "band" or (mode == "auto" and extra["cv_band"] >= extra["cv_top"]):
            return band, extra
        return order[:1], extra

    def _build(self, model: str, shuffle: bool) -> FCN:
        cfg = self.config
        return FCN(self.channels(), len(self.classes), MODELS[model], cfg.hidden_size, shuffle,
                   self.max_len, cfg.dropout, cfg.width)

    def _train(self, model: str, shuffle: bool, xs: list[Tensor], ys: list[int], epochs: int,
               val: tuple[list[Tensor], list[int]] | None, stop: int | None = None,
               seed: int | None = None, check: Callable[[], None] | None = None,
               ) -> tuple[FCN, list[tuple[float, float]], Tensor | None]:
        """Train one recipe for ``stop`` (default ``epochs``) epochs of an ``epochs``-long
        cosine schedule; with ``val``, the held-out ``(accuracy, loss)`` after every epoch and
        the held-out probabilities ``[epochs, len(val), K]``. ``check`` runs after every
        optimizer step (it raises to stop the run)."""
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        torch.manual_seed(seed)
        net = self._build(model, shuffle)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(len(xs) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / (epochs * steps_per_epoch))))
        rng = random.Random(seed)
        y_all = torch.tensor(ys)
        vx = vl = vy = None
        if val is not None:
            (vx, vl), vy = _pad(val[0], self.max_len), torch.tensor(val[1])
        curve, probs = [], []
        for _ in range(stop or epochs):
            net.train()
            order = list(range(len(xs)))
            rng.shuffle(order)
            for b in range(0, len(order), cfg.batch_size):
                idx = order[b: b + cfg.batch_size]
                if len(idx) == 1 and len(order) > 1:  # batch norm needs two series
                    idx = order[b - 1: b + 1]
                x, lengths = _pad([xs[i] for i in idx], self.max_len)
                loss = F.cross_entropy(net(x, lengths), y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if check is not None:
                    check()
            if val is not None:
                net.eval()
                with torch.no_grad():
                    logits = net(vx, vl)
                curve.append((float((logits.argmax(-1) == vy).float().mean()),
                              float(F.cross_entropy(logits, vy))))
                probs.append(torch.softmax(logits, -1))
        return net, curve, torch.stack(probs) if probs else None

    # -- prediction -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.nets:
            raise RuntimeError("this SeriesClassifier is not trained; call fit(series, labels) "
                               "or SeriesClassifier.load(path)")

    def predict_proba(self, series: Sequence[Any], batch_size: int = 64) -> Tensor:
        """Class probabilities ``[N, K]`` (columns in the order of ``classes``)."""
        self._check_fitted()
        feats = self._features(_as_tensors(series))
        out = []
        with torch.no_grad():
            for b in range(0, len(feats), batch_size):
                x, lengths = _pad(feats[b: b + batch_size])  # [B, T, C], [B]
                out.append(sum(torch.softmax(net.eval()(x, lengths), -1) for net in self.nets)
                           / len(self.nets))  # [B, K]
        return torch.cat(out)

    def predict(self, series: Sequence[Any]) -> list[str]:
        """The most probable class name of every series."""
        return [self.classes[k] for k in self.predict_proba(series).argmax(-1).tolist()]

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"config": asdict(self.config), "recipe": dict(self.recipe),
                "classes": list(self.classes), "mean": self.mean, "std": self.std,
                "scale": self.scale, "norm": self.norm,
                "factor": self.factor, "max_len": self.max_len, "input_size": self.input_size,
                "cv": self.cv, "state_dicts": [net.state_dict() for net in self.nets]}

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> SeriesClassifier:
        legacy = "pool" not in blob["config"]  # saved before per-series pooling and norm
        self = cls(SeriesClassifierConfig(**{"pool": "mean", "norm": "global", "combine": "best",
                                             **blob["config"]}))
        self.legacy = legacy
        self.scale = blob.get("scale", torch.ones(int(blob["input_size"])))
        self.norm = blob.get("norm", "global")
        self.classes, self.recipe, self.cv = list(blob["classes"]), blob["recipe"], blob["cv"]
        self.mean, self.std = blob["mean"], blob["std"]
        self.factor, self.max_len = int(blob["factor"]), int(blob["max_len"])
        self.input_size = int(blob["input_size"])
        if "members" not in self.recipe:  # version 1: one recipe
            self.recipe["members"] = [{k: self.recipe[k] for k in ("model", "shuffle",
                                                                   "epochs")}]
        self.members = [(m["model"], bool(m["shuffle"]), int(m["epochs"]))
                        for m in self.recipe["members"]]
        per = self.config.ensemble if len(self.members) > 1 else len(blob["state_dicts"])
        if not self.members or per < 1 or len(blob["state_dicts"]) != per * len(self.members):
            raise ValueError(f"the file holds {len(blob['state_dicts'])} networks for "
                             f"{len(self.members)} recipe(s) x {per} seed(s); it is damaged: "
                             f"train the classifier again")
        self.nets = []
        for i, sd in enumerate(blob["state_dicts"]):
            model, shuffle, _ = self.members[i // per]
            net = self._build(model, shuffle)
            net.load_state_dict(sd)
            self.nets.append(net.eval())
        return self
