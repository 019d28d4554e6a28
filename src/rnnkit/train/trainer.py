r"""The training loop: full or truncated BPTT, clipping, schedules, logs, checkpoints, DDP.

**Full BPTT** (any re-iterable of batches: a ``DataLoader``, a list): every batch holds whole
sequences; ``model.loss(batch)`` unrolls them and the gradient flows back through every step.

**Truncated BPTT** (a :class:`~rnnkit.train.BPTTStream`): a long stream in ``B`` contiguous
rows is fed chunk after chunk. The state at the end of chunk ``j`` starts chunk ``j + 1``,
detached, so the forward pass sees the whole past while backward stops at the chunk edge::

    chunk 1            chunk 2            chunk 3
    x1 → x2 → x3  ─h3─► x4 → x5 → x6  ─h6─► x7 → ...      forward: state carried
    ◄──────────   ╳     ◄──────────   ╳                   backward: k2 = k1 = 3 steps
                detach             detach

The state is reset (``None``) at the start of every epoch and of every evaluation.
With ``BPTTStream(..., overlap=o)`` the gradient reaches ``k2 = k1 + o`` steps back.

Each optimizer step: forward (under bf16 autocast if asked) → backward → pre-clip global
gradient norm (logged) → clip by value and/or norm → optimizer step → lr schedule. A step
whose gradient is not finite is skipped (and logged); a non-finite loss stops training with
an error.

**Exact resume.** ``last.pt`` holds, besides weights and optimizer/scheduler state, the RNG
states at the checkpoint and at the start of its epoch, the batches done in the epoch and the
carried BPTT state. Resuming restores the epoch-start RNG, re-creates the data iterator (so a
shuffling ``DataLoader`` draws the same order), skips the batches already done, then restores
the checkpoint's RNG for dropout: the run continues bit for bit. Evaluation forks the RNG
streams, so how often it runs never changes training.

>>> import torch
>>> from torch import nn
>>> from rnnkit.train import LossOutput
>>> class Regressor(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.lin = nn.Linear(3, 1)
...     def loss(self, batch, state=None):
...         x, y = batch
...         return LossOutput(nn.functional.mse_loss(self.lin(x), y), weight=len(x))
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(64, 3, generator=g)
>>> data = [(x[i:i + 16], x[i:i + 16].sum(1, keepdim=True)) for i in range(0, 64, 16)]
>>> cfg = TrainConfig(epochs=40, lr=0.05, progress=False)
>>> trainer = Trainer(Regressor(), cfg, data, val_data=data)
>>> history = trainer.fit()
>>> trainer.evaluate(data)["loss"] < 1e-3, trainer.step
(True, 160)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .callbacks import Callback
from .checkpoint import (
    FORMAT,
    decode_tree,
    encode_tree,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig
from .distributed import DistContext, share_batch, split_batch
from .interrupt import StopSignals, TrainingInterrupted
from .logs import RunLog
from .protocol import LossOutput, TaskModel
from .schedules import build_optimizer, build_scheduler, is_plateau, trainable
from .stream import IGNORE_INDEX, BPTTStream

__all__ = ["NonFiniteLossError", "Trainer", "resolve_device"]

#: Config fields that may change between a run and its resume without breaking exactness
#: of the steps already planned.
RESUME_FREE = {"epochs", "max_steps", "max_time", "out_dir", "log_every", "progress",
               "save_every", "device", "early_stop_patience", "plot", "compute", "country",
               "card"}


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite."""


class Trainer:
    """Trains a task model (an ``nn.Module`` with ``loss(batch, state=None) -> LossOutput``).

    Args:
        model: the task model; moved to the device. ``trainer.model`` stays this module (under
            DDP the trainer runs it through a ``DistributedDataParallel`` wrapper that calls its
            ``loss``).
        config: a :class:`~rnnkit.train.TrainConfig` (defaults if ``None``).
        train_data: a re-iterable of batches (``DataLoader``, list, ...) for full BPTT, or a
            :class:`~rnnkit.train.BPTTStream` for truncated BPTT. A batch is a tensor or a
            tuple/list/dict of tensors (moved to the device; under DDP cut into per-rank rows).
        val_data: the same kinds, evaluated every ``eval_every`` steps or once per epoch.
        callbacks: :class:`~rnnkit.train.Callback` instances.
        extra_state: a JSON-able dict saved in every checkpoint (e.g. model config, vocabulary)
            so an application can rebuild its model from the checkpoint alone.

    Attributes: ``model``, ``optimizer``, ``scheduler``, ``step`` (optimizer steps done),
    ``epoch`` (epochs completed), ``best_metric`` (lowest validation loss, or ``None``),
    ``history`` (the log records), ``should_stop`` (set it to stop cleanly), ``device``,
    ``rank``, ``world_size``.

    Files (``config.out_dir``, rank 0 only): ``last.pt`` (every ``save_every`` steps, after
    every evaluation and at the end), ``best.pt`` (lowest validation loss), ``log.jsonl``,
    ``log.csv``, ``curves.png``. ``fit(resume=True)`` continues from ``last.pt`` so that the
    final weights are bit-identical to an uninterrupted run (same machine and thread count).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        train_data: Iterable | None = None,
        val_data: Iterable | None = None,
        callbacks: Iterable[Callback] = (),
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}; "
                            f"build one with TrainConfig(...) or TrainConfig.from_dict(d)")
        if not isinstance(model, nn.Module) or not isinstance(model, TaskModel):
            raise TypeError(f"model must be an nn.Module with a loss(batch, state=None) -> "
                            f"LossOutput method, got {type(model).__name__}; add such a method "
                            f"(see rnnkit.train.protocol)")
        if train_data is None:
            raise ValueError("train_data is required: pass a DataLoader, a list of batches or "
                             "a BPTTStream")
        _check_reiterable(train_data, "train_data")
        if val_data is not None:
            _check_reiterable(val_data, "val_data")
        if extra_state is not None:
            try:
                json.dumps(extra_state)
            except (TypeError, ValueError) as err:
                raise TypeError(f"extra_state must be JSON-able (dicts, lists, strings, "
                                f"numbers) so checkpoints load with weights_only=True: "
                                f"{err}") from None
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be rnnkit.train.Callback instances, got "
                                f"{type(cb).__name__}; subclass Callback")
        if val_data is None and (config.early_stop_patience or config.scheduler == "plateau"):
            raise ValueError("early_stop_patience and scheduler='plateau' watch the validation "
                             "loss: pass val_data, or turn them off")
        self.compute = None  # the run's ComputeMeter (config.compute)
        if config.compute:
            from ..audit.compute import ComputeMeter

            self.compute = ComputeMeter(country=config.country,
                                        item_name=getattr(model, "item_name", "items"))
            callbacks.append(self.compute)
        self.config = config
        self.train_data = train_data
        self.val_data = val_data
        self.callbacks = callbacks
        self.extra_state = extra_state
        self.device = resolve_device(config.device)
        self.dist = DistContext.from_env(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        for data in (train_data, val_data):
            sampler = getattr(data, "sampler", None)
            if self.dist.enabled and isinstance(sampler, torch.utils.data.DistributedSampler):
                raise ValueError("the DataLoader already uses a DistributedSampler, but the "
                                 "Trainer shares every batch's rows between processes itself; "
                                 "use a plain (shuffled) DataLoader with the global batch size")
        self.model = model.to(self.device)
        self._engine: nn.Module = _LossModule(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._engine = DistributedDataParallel(self._engine, device_ids=ids)
        self.optimizer = build_optimizer(trainable(self.model), config)
        self.total_steps = self._total_steps()
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps)
        self.step = 0
        self.epoch = 0
        self.best_metric: float | None = None
        self.should_stop = False
        self.metrics: dict[str, float] = {}  # latest validation metrics
        self._bad_evals = 0
        self._watch_best: float | None = None
        self._stopped_early = False
        self._last_eval_step = -1
        self._batch_in_epoch = 0
        self._carry: Any = None
        self._epoch_rng: dict[str, Any] | None = None
        self._bar: Any = None
        self._t_start = time.perf_counter()
        self._elapsed_before = 0.0  # seconds trained by earlier fits of this run (resume)
        self._window = _Window()
        self._signals = StopSignals()
        self._log = RunLog(config.out_dir if self.dist.is_main else None)

    # -- public ------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.dist.rank

    @property
    def world_size(self) -> int:
        return self.dist.world

    @property
    def elapsed(self) -> float:
        """Seconds of training in this run, over every fit (a resumed run continues the
        clock of the checkpoint, so ``max_time`` is the budget of the whole run)."""
        return self._elapsed_before + time.perf_counter() - self._t_start

    @property
    def history(self) -> list[dict[str, Any]]:
        """Log records so far (see :mod:`rnnkit.train.logs`)."""
        return self._log.records

    def fit(self, resume: bool | str = False) -> list[dict[str, Any]]:
        """Train until ``epochs`` (or ``max_steps``) are done, early stopping fires,
        ``max_time`` runs out or a callback sets ``should_stop``; returns :attr:`history`.

        Ctrl-C (SIGINT) or SIGTERM stops after the step in flight: ``last.pt`` is written
        (when ``out_dir`` is set) and :class:`~rnnkit.train.TrainingInterrupted` is raised;
        ``fit(resume=True)`` then continues exactly. A second Ctrl-C stops at once.

        ``resume=True`` continues exactly from ``out_dir/last.pt``; ``"auto"`` does so when
        that file exists and starts afresh otherwise. A fresh run seeds Python, NumPy and torch
        with ``config.seed`` first (seed the model's initialization yourself, before building
        it). Under DDP only rank 0 keeps the history.
        """
        cfg = self.config
        if resume not in (True, False, "auto"):
            raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
        last = os.path.join(cfg.out_dir, "last.pt") if cfg.out_dir else None
        if resume == "auto":
            resume = last is not None and os.path.exists(last)
        self._window = _Window()
        if resume:
            if last is None:
                raise ValueError("resume=True needs config.out_dir, the folder with last.pt")
            self._restore(last)
        else:
            _seed_everything(cfg.seed)
            self._elapsed_before = 0.0
            if self.dist.is_main and cfg.out_dir:  # a fresh run starts a fresh log and best
                for name in (self._log.jsonl_path, os.path.join(cfg.out_dir, "best.pt")):
                    if name and os.path.exists(name):
                        os.remove(name)
        self.should_stop = self._stopped_early
        for cb in self.callbacks:
            cb.on_fit_start(self)
        self._t_start = time.perf_counter()
        self._window.t0 = self._t_start
        bar = self._progress_bar()
        try:
            with StopSignals() as self._signals:
                while not self._finished():
                    if not self._run_epoch(bar):
                        break
                interrupted = self._signals.received
                if not interrupted and self.val_data is not None and \
                        self._last_eval_step != self.step:
                    self._evaluate_and_track(scheduled=False)
                self._save()
        except BaseException as err:  # a failed step (NaN loss, out of memory), a 2nd Ctrl-C
            self._stopped(err)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._log.write_csv()
        if interrupted:  # last.pt holds this step: say so, and let the caller say how to resume
            last = os.path.join(cfg.out_dir, "last.pt") if cfg.out_dir else None
            err = TrainingInterrupted(self.step, last, interrupted)
            self._stopped(err)
            raise err
        if cfg.plot:
            self._log.plot()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        if cfg.card and cfg.out_dir and self.dist.is_main:
            write_card(cfg.out_dir)
        return self.history

    def _stopped(self, err: BaseException) -> None:
        """Tell the callbacks the fit ends with ``err``; their own failures are warnings, so
        the caller sees the error that stopped training."""
        for cb in self.callbacks:
            try:
                cb.on_fit_stopped(self, err)
            except Exception as cb_err:  # pragma: no cover - a broken callback
                warnings.warn(f"{type(cb).__name__}.on_fit_stopped failed: {cb_err}",
                              stacklevel=2)

    def restore_best(self) -> dict[str, float] | None:
        """Load ``out_dir/best.pt``'s weights into :attr:`model` and return the validation
        metrics that made it best (the ones to report: evaluating again would print a second,
        different number for a model the user does not have); ``None`` (weights untouched)
        when the run wrote no ``best.pt``. Rank 0 reads the file; under DDP call it on
        rank 0 only."""
        path = os.path.join(self.config.out_dir, "best.pt") if self.config.out_dir else None
        if path is None or not os.path.exists(path):
            return None
        ckpt = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(ckpt["model"])
        return {**ckpt["metrics"], "step": ckpt["step"]}

    def best_metrics(self) -> dict[str, float]:
        """The weights and validation metrics to report at the end of a run: those of
        ``best.pt`` (:meth:`restore_best`), else the current weights, evaluated. Under DDP
        every rank calls it: rank 0 reads ``best.pt`` and every rank gets its weights and
        metrics, so all ranks return the same."""
        best = self.restore_best() if self.dist.is_main else None
        best = self.dist.broadcast_object(best)
        if best is None:
            return self.evaluate()
        self.dist.broadcast_module(self.model)
        return best

    def evaluate(self, data: Iterable | None = None) -> dict[str, float]:
        """Mean loss and metrics over ``data`` (default: ``val_data``), weighted by each
        batch's ``weight`` and combined over processes. Does not touch the training RNG
        streams, so evaluating more or less often never changes the training trajectory."""
        data = self.val_data if data is None else data
        if data is None:
            raise ValueError("nothing to evaluate: pass data or give the Trainer val_data")
        rng = get_rng_state()
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        carry = None
        stream = _carries_state(data)
        try:
            with torch.no_grad(), self._autocast():
                for i, batch in enumerate(data):
                    rows, borrowed = self._prepare(batch, stream)
                    out = _run_parts(self.model, rows, carry, _split_point(data, i))
                    if stream:
                        carry = _detach(out.state)
                    w = 0.0 if borrowed else _num(out.weight)  # a borrowed row: not ours
                    for k, v in {"loss": out.loss, **out.metrics}.items():
                        sums[k] = sums.get(k, 0.0) + _num(v) * w
                    sums["__weight__"] = sums.get("__weight__", 0.0) + w
        finally:
            set_rng_state(rng)
            self.model.train(was_training)
        keys = sorted(sums)
        if self.dist.enabled:  # every rank must have the same metric names
            sums = dict(zip(keys, self.dist.all_sum([sums[k] for k in keys], self.device)))
        total = sums.pop("__weight__", 0.0)
        if total <= 0:
            raise ValueError("the evaluation data yielded no batches (or only zero weights); "
                             "give at least one batch")
        return {k: sums[k] / total for k in ["loss", *sorted(k for k in sums if k != "loss")]}

    # -- the loop ----------------------------------------------------------------------------
    def _finished(self) -> bool:
        cfg = self.config
        if self.should_stop:
            return True
        if cfg.max_steps is not None:
            return self.step >= cfg.max_steps
        return self.epoch >= cfg.epochs

    def _run_epoch(self, bar: Any) -> bool:
        """One (rest of an) epoch; returns False if training should stop."""
        gen = _generator(self.train_data)
        if self._batch_in_epoch > 0:  # resuming mid-epoch: replay the data order, then skip
            now = get_rng_state(gen)
            set_rng_state(self._epoch_rng, gen)
            it = iter(self.train_data)
            for _ in range(self._batch_in_epoch):
                next(it, None)
            set_rng_state(now, gen)
        else:
            self._epoch_rng = get_rng_state(gen)
            self._carry = None
            it = iter(self.train_data)
        steps_before = self.step
        stopped = False
        for batch in it:
            self._train_step(batch)
            if bar is not None:
                self._advance(bar)
            evaluated = False
            if self.config.eval_every and self.step % self.config.eval_every == 0 \
                    and self.val_data is not None:
                self._evaluate_and_track()
                evaluated = True
            stop = self._should_stop_now()
            if evaluated or (self.config.save_every and self.step % self.config.save_every == 0):
                self._save()
            if stop:
                stopped = True
                if not _consumed(self.train_data, self._batch_in_epoch):
                    return False
                break  # stopped on the epoch's last batch: finish the epoch as usual
        # the epoch is complete
        if self.step == steps_before and self._batch_in_epoch == 0:
            raise ValueError("train_data yielded no batches in an epoch; give it at least one "
                             "batch (is the dataset smaller than a drop_last batch?)")
        self.epoch += 1
        self._batch_in_epoch = 0
        self._carry = None
        if not self.config.eval_every and self.val_data is not None:
            self._evaluate_and_track()
        for cb in self.callbacks:
            cb.on_epoch_end(self, self.epoch - 1)
        self._save()
        return not stopped and not self._should_stop_now(check_time=False)

    def _should_stop_now(self, check_time: bool = True) -> bool:
        cfg = self.config
        stop = self.should_stop
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            stop = True
        if check_time and cfg.max_time is not None and self.elapsed >= cfg.max_time:
            stop = True
        if self._signals.received:  # Ctrl-C or kill: stop after this step, then save
            stop = True
        if self.dist.enabled:  # one rank's clock or callback stops everyone at the same step
            stop = self.dist.all_sum([float(stop)], self.device)[0] > 0
        if stop:
            self.should_stop = True
        return stop

    def _train_step(self, batch: Any) -> None:
        cfg = self.config
        self.model.train()
        stream = _carries_state(self.train_data)
        with contextlib.ExitStack() as hooks:
            for cb in self.callbacks:
                context = cb.step_context(self)
                if context is not None:
                    hooks.enter_context(context)
            out = self._forward_backward(batch, stream)
        out, sums, names = out
        total, loss_value = sums[0], sums[1] / sums[0]
        if stream:
            self._carry = _detach(out.state)
        params = trainable(self.model)
        lr = self.optimizer.param_groups[0]["lr"]  # the lr this step uses
        grad_norm = float(_clip(params, cfg.clip_norm, cfg.clip_value))
        skipped = not math.isfinite(grad_norm)
        if skipped:
            warnings.warn(f"step {self.step + 1}: the gradient norm is {grad_norm}; the update "
                          f"was skipped (lower the lr or set clip_norm)", stacklevel=2)
        else:
            self.optimizer.step()
            if self.scheduler is not None and not is_plateau(self.scheduler):
                self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self._batch_in_epoch += 1
        metrics = {k: v / total for k, v in zip(names, sums[2:])}
        logs = {"loss": loss_value, "grad_norm": grad_norm, "lr": lr, "items": total,
                "skipped": skipped, **metrics}
        self._window.add(loss_value, total, grad_norm, metrics)
        if self.step % cfg.log_every == 0:
            self._write_train_record(lr)
        for cb in self.callbacks:
            cb.on_step_end(self, self.step, logs)

    def _forward_backward(self, batch: Any, stream: bool) -> tuple[LossOutput, list, list]:
        """The step's loss and gradients: ``(out, sums over processes [weight, weighted loss,
        weighted metrics...], metric names)``."""
        rows, borrowed = self._prepare(batch, stream)
        with self._autocast():
            out = self._engine(rows, self._carry if stream else None,
                               _split_point(self.train_data, self._batch_in_epoch))
        # a borrowed row (a batch smaller than the world) runs for DDP's sake, weighing 0
        weight = 0.0 if borrowed else _num(out.weight)
        names = sorted(out.metrics)
        local = [weight, float(out.loss.detach()) * weight,
                 *(_num(out.metrics[k]) * weight for k in names)]
        sums = self.dist.all_sum(local, self.device)
        total = sums[0]
        if not total > 0:
            raise ValueError(f"the batch of step {self.step + 1} has LossOutput.weight "
                             f"{total}; return the number of items the loss averages over "
                             f"(at least 1)")
        loss_value = sums[1] / total
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"the training loss is {loss_value} at step {self.step + 1}; lower the lr, "
                f"keep gradient clipping on (clip_norm), use amp='none', or check the data "
                f"for NaN/inf (last.pt holds the last good state)")
        # Rescale so the averaged gradient is that of the global weighted mean loss.
        scale = weight * self.dist.world / total
        (out.loss * scale if self.dist.enabled else out.loss).backward()
        return out, sums, names

    def _write_train_record(self, lr: float) -> None:
        w = self._window
        record = {"split": "train", "step": self.step, "epoch": self.epoch, **w.means(),
                  "lr": lr, "grad_norm": w.norm_mean(), "grad_norm_max": max(w.norms),
                  "grad_norms": list(w.norms), "items_per_s": w.rate(),
                  "time": round(self.elapsed, 3)}
        self._log.append(record)
        if self._bar is not None:
            post = {**({"step": self.step} if self._timed() else {}),
                    "loss": f"{record['loss']:.4f}"}
            extra = [k for k in w.metric_sums if k != "loss"]
            if extra:
                post[extra[0]] = f"{record[extra[0]]:.4g}"
            if self.best_metric is not None:
                post["val"] = f"{self.best_metric:.4f}"
            post["items/s"] = f"{record['items_per_s']:.0f}"
            self._bar.set_postfix(post, refresh=False)
        self._window = _Window()

    def _evaluate_and_track(self, scheduled: bool = True) -> None:
        """Evaluate, log, keep ``best.pt``. Only scheduled evaluations (every ``eval_every``
        steps or epoch) drive the plateau schedule and early stopping; the extra one when a run
        stops between them (``max_steps``, ``max_time``, a callback) must not, or a resumed run
        would drift from an uninterrupted one."""
        metrics = self.evaluate(self.val_data)
        self.metrics = metrics
        self._last_eval_step = self.step
        self._log.append({"split": "val", "step": self.step, "epoch": self.epoch, **metrics,
                          "time": round(self.elapsed, 3)})
        loss = metrics["loss"]
        if scheduled:
            if is_plateau(self.scheduler):
                self.scheduler.step(loss)
            if self._watch_best is None or loss < self._watch_best:
                self._watch_best = loss
                self._bad_evals = 0
            else:
                self._bad_evals += 1
                patience = self.config.early_stop_patience
                if patience is not None and self._bad_evals >= patience:
                    self.should_stop = True
                    self._stopped_early = True
        for cb in self.callbacks:
            cb.on_eval_end(self, self.step, metrics)
        if self.best_metric is None or loss < self.best_metric:
            self.best_metric = loss
            self._save(best=True)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The checkpoint of this moment (on rank 0; ``None`` on other ranks). Under DDP every
        rank must call it (it gathers each rank's RNG and carried state)."""
        gen = _generator(self.train_data)
        mine = {"rng": get_rng_state(gen), "epoch_rng": self._epoch_rng,
                "carry": encode_tree(self._carry)}
        ranks = self.dist.all_gather(mine)
        if not self.dist.is_main:
            return None
        return {
            "format": FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "config": self.config.to_dict(),
            "extra_state": self.extra_state,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self._batch_in_epoch,
            "best_metric": self.best_metric,
            "metrics": dict(self.metrics),
            "bad_evals": self._bad_evals,
            "watch_best": self._watch_best,
            "stopped_early": self._stopped_early,
            "last_eval_step": self._last_eval_step,
            "world_size": self.dist.world,
            "ranks": ranks,
            "log_window": self._window.state_dict(),
            "elapsed": self.elapsed,
        }

    def _save(self, best: bool = False) -> None:
        if not self.config.out_dir:
            return
        ckpt = self.state_dict()
        if ckpt is None:
            return
        save_checkpoint(ckpt, os.path.join(self.config.out_dir, "best.pt" if best else "last.pt"))

    def _restore(self, path: str) -> None:
        # on the CPU: the RNG states must stay host tensors (numpy's, torch's CPU generator);
        # load_state_dict moves weights and optimizer state to the model's device
        ckpt = load_checkpoint(path, map_location="cpu")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if (self.scheduler is None) != (ckpt["scheduler"] is None):
            raise ValueError(f"{path} was written with scheduler={ckpt['config']['scheduler']!r}"
                             f" but this run uses {self.config.scheduler!r}; resume with the "
                             f"same scheduler")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        changed = sorted(k for k, v in ckpt["config"].items()
                         if k not in RESUME_FREE and getattr(self.config, k, v) != v)
        if changed:
            warnings.warn(f"resuming with changed settings ({', '.join(changed)}); the run will "
                          f"not match an uninterrupted one", stacklevel=3)
        self.step = ckpt["step"]
        self.epoch = ckpt["epoch"]
        self._batch_in_epoch = ckpt["batch_in_epoch"]
        self.best_metric = ckpt["best_metric"]
        self.metrics = dict(ckpt["metrics"])
        self._bad_evals = ckpt["bad_evals"]
        self._watch_best = ckpt["watch_best"]
        self._stopped_early = ckpt["stopped_early"]
        self._last_eval_step = ckpt["last_eval_step"]
        self._elapsed_before = float(ckpt.get("elapsed", 0.0))  # older checkpoints: none
        ranks = ckpt["ranks"]
        if len(ranks) != self.dist.world:
            if self._batch_in_epoch:
                raise ValueError(f"{path} was written by {len(ranks)} process(es) in the middle "
                                 f"of an epoch; resume it with {len(ranks)} process(es)")
            warnings.warn(f"resuming a {len(ranks)}-process run with {self.dist.world}; the "
                          f"result will not be bit-identical", stacklevel=3)
        mine = ranks[self.dist.rank % len(ranks)]
        gen = _generator(self.train_data)
        set_rng_state(mine["rng"], gen)
        self._epoch_rng = mine["epoch_rng"]
        self._carry = decode_tree(mine["carry"], self.device)
        self._log.restore(self.step)
        self._window.load_state_dict(ckpt["log_window"])

    # -- helpers -----------------------------------------------------------------------------
    def _prepare(self, batch: Any, stream: bool) -> tuple[Any, bool]:
        """This rank's rows of ``batch`` on the device, and whether they are borrowed (see
        :func:`~rnnkit.train.distributed.share_batch`; a stream's rows carry state, so they
        are never borrowed)."""
        if stream:
            rows, borrowed = split_batch(batch, self.dist.rank, self.dist.world), False
        else:
            rows, borrowed = share_batch(batch, self.dist.rank, self.dist.world)
        return _to_device(rows, self.device), borrowed

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.amp != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _total_steps(self) -> int | None:
        if self.config.max_steps is not None:
            return self.config.max_steps
        try:
            return self.config.epochs * len(self.train_data)  # type: ignore[arg-type]
        except TypeError:
            return None

    def _progress_bar(self) -> Any:
        self._bar = None
        if not (self.config.progress and self.dist.is_main):
            return None
        from tqdm.auto import tqdm

        if self._timed():  # the budget, not the epochs, says when training ends
            self._bar = tqdm(total=float(self.config.max_time), initial=min(
                round(self.elapsed, 1), self.config.max_time), unit="s", dynamic_ncols=True,
                desc="train (time budget)", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s "
                "[{elapsed}<{remaining}{postfix}]")
        else:
            self._bar = tqdm(total=self.total_steps, initial=self.step, unit="step",
                             dynamic_ncols=True, desc="train")
        return self._bar

    def _timed(self) -> bool:
        """Whether ``max_time`` ends training before the step count would (as far as known)."""
        cfg = self.config
        return cfg.max_time is not None and cfg.max_steps is None

    def _advance(self, bar: Any) -> None:
        if self._timed():
            bar.update(max(0.0, min(round(self.elapsed, 1), bar.total) - bar.n))
        else:
            bar.update(1)


class _LossModule(nn.Module):
    """Calls the task model's ``loss`` inside ``forward``, so DDP sees (and syncs) it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, state: Any, split_at: int | None) -> LossOutput:
        return _run_parts(self.model, batch, state, split_at)


def _run_parts(model: nn.Module, batch: Any, state: Any, split_at: int | None) -> LossOutput:
    """One batch or chunk. With an overlapping BPTT stream the chunk runs as two calls in one
    graph: ``[:, :split_at]`` (its final state is where the next chunk starts) and the rest;
    the loss is their mean weighted by scored (non-ignored) targets."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if split_at is None or batch[0].shape[1] <= split_at:
        return _as_loss_output(model.loss(batch, _cast(state, dtype)))
    x, y = batch
    a = _as_loss_output(model.loss((x[:, :split_at], y[:, :split_at]), _cast(state, dtype)))
    b = _as_loss_output(model.loss((x[:, split_at:], y[:, split_at:]), _cast(a.state, dtype)))
    wa = float((y[:, :split_at] != IGNORE_INDEX).sum())
    wb = float((y[:, split_at:] != IGNORE_INDEX).sum())
    total = wa + wb
    metrics = {k: (_num(a.metrics[k]) * wa + _num(b.metrics.get(k, 0.0)) * wb) / total
               for k in a.metrics}
    return LossOutput((a.loss * wa + b.loss * wb) / total, a.state, metrics, int(total))


def _as_loss_output(out: Any) -> LossOutput:
    if not isinstance(out, LossOutput):
        raise TypeError(f"model.loss() must return rnnkit.train.LossOutput(loss, state, "
                        f"metrics, weight), got {type(out).__name__}")
    if not isinstance(out.loss, Tensor) or out.loss.dim() != 0:
        raise ValueError(f"LossOutput.loss must be a scalar tensor (the mean loss), got "
                         f"{type(out.loss).__name__} of shape "
                         f"{list(getattr(out.loss, 'shape', []))}; reduce it with .mean()")
    return out


def _num(value: Any) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def _split_point(data: Any, index: int) -> int | None:
    return data.split_point(index) if isinstance(data, BPTTStream) else None


def _carries_state(data: Any) -> bool:
    return isinstance(data, BPTTStream) or bool(getattr(data, "carry_state", False))


def _consumed(data: Any, batches: int) -> bool:
    """Whether ``batches`` batches are the whole epoch (``False`` if ``data`` has no len)."""
    try:
        return batches >= len(data)
    except TypeError:
        return False


def _generator(data: Any) -> torch.Generator | None:
    gen = getattr(data, "generator", None)
    return gen if isinstance(gen, torch.Generator) else None


def _map_tensors(fn: Callable[[Tensor], Tensor], obj: Any) -> Any:
    """``fn`` applied to every tensor of a nested state or batch (named tuples, tuples, lists,
    dicts keep their types); other leaves are returned as they are."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map_tensors(fn, o) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(fn, v) for k, v in obj.items()}
    return obj


def _detach(state: Any) -> Any:
    return _map_tensors(Tensor.detach, state)


def _cast(state: Any, dtype: torch.dtype | None) -> Any:
    """Floating tensors of a carried state in the parameters' dtype: under bf16 autocast the
    state comes out in bfloat16 but the next chunk's input (e.g. an embedding) is float32."""
    if dtype is None or state is None:
        return state
    return _map_tensors(lambda t: t.to(dtype) if t.is_floating_point() else t, state)


def _to_device(batch: Any, device: torch.device) -> Any:
    return _map_tensors(lambda t: t.to(device, non_blocking=True), batch)


def _clip(params: list[Tensor], clip_norm: float | None, clip_value: float | None) -> Tensor:
    """Clip by value, then by global norm; returns the global norm *before* any clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads]))
    if clip_value is not None:
        nn.utils.clip_grad_value_(params, clip_value)
    if clip_norm is not None and torch.isfinite(norm):
        nn.utils.clip_grad_norm_(params, clip_norm)
    return norm


def write_card(path: str) -> str | None:
    """Write the model card of a run folder or model file (:mod:`rnnkit.audit.card`); a card
    that cannot be written is a warning, never a lost run. Returns its path."""
    from ..audit.card import write_model_card

    try:
        return write_model_card(path)
    except Exception as err:  # the model is saved; its report must not break the run
        warnings.warn(f"the model card of {path} was not written: {type(err).__name__}: "
                      f"{err}", stacklevel=2)
        return None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def resolve_device(name: str) -> torch.device:
    """The torch device of ``TrainConfig.device``: ``"auto"`` is CUDA when there is a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA GPU is available; use device='cpu' or "
                         "'auto'")
    return torch.device(name)


def _check_reiterable(data: Any, name: str) -> None:
    if not isinstance(data, Iterable):
        raise TypeError(f"{name} must be an iterable of batches (DataLoader, list, "
                        f"BPTTStream), got {type(data).__name__}")
    if iter(data) is data:
        raise TypeError(f"{name} is a one-shot iterator (e.g. a generator); pass something "
                        f"that can be iterated every epoch, such as a list or a DataLoader")


class _Window:
    """Running sums between two train log records."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.loss_sum = 0.0
        self.weight = 0.0
        self.metric_sums: dict[str, float] = {}
        self.norms: list[float] = []

    def add(self, loss: float, weight: float, norm: float, metrics: dict[str, float]) -> None:
        self.loss_sum += loss * weight
        self.weight += weight
        for k, v in metrics.items():
            self.metric_sums[k] = self.metric_sums.get(k, 0.0) + v * weight
        self.norms.append(norm)

    def means(self) -> dict[str, float]:
        w = max(self.weight, 1e-12)
        return {"loss": self.loss_sum / w, **{k: v / w for k, v in self.metric_sums.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "weight": self.weight,
                "metric_sums": dict(self.metric_sums), "norms": list(self.norms)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss_sum, self.weight = state["loss_sum"], state["weight"]
        self.metric_sums, self.norms = dict(state["metric_sums"]), list(state["norms"])

    def norm_mean(self) -> float:
        return sum(self.norms) / len(self.norms)

    def rate(self) -> float:
        return self.weight / max(time.perf_counter() - self.t0, 1e-9)
