"""The trainer's settings: one dataclass, every field with a sensible default.

>>> cfg = TrainConfig(epochs=3, lr=3e-3, scheduler="cosine", warmup_steps=100)
>>> cfg.clip_norm
1.0
>>> TrainConfig(optimizer="rmsprop")
Traceback (most recent call last):
...
ValueError: optimizer must be one of 'adamw', 'adam', 'sgd', got 'rmsprop'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["TrainConfig"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("none", "cosine", "plateau")
AMP_MODES = ("none", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """How :class:`~rnnkit.train.Trainer` trains.

    Attributes:
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps (overrides ``epochs``).
        max_time: wall-clock training budget of the run in seconds (a resumed run continues
            the clock of its checkpoint); training stops cleanly after the step that crosses
            it, evaluates and saves. The progress bar then counts seconds of the budget.
        lr: peak learning rate.
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        weight_decay: L2 (Adam, SGD) or decoupled (AdamW) weight decay.
        momentum: SGD momentum.
        scheduler: ``"none"`` (constant after warm-up), ``"cosine"`` (linear warm-up over
            ``warmup_steps``, then cosine decay to ``min_lr`` at the last step) or
            ``"plateau"`` (multiply the lr by ``plateau_factor`` after ``plateau_patience``
            evaluations without a lower validation loss).
        warmup_steps: linear warm-up steps (``"none"`` and ``"cosine"``).
        clip_norm: clip the global gradient norm to this value (``None``: no clipping). The
            pre-clip norm is logged at every step either way.
        clip_value: clip every gradient element to ``[-clip_value, clip_value]``.
        eval_every: optimizer steps between evaluations; ``0`` evaluates once per epoch.
        early_stop_patience: stop after this many evaluations without a lower validation
            loss (``None``: never).
        seed: seeds Python, NumPy and torch at the start of training.
        out_dir: where ``last.pt``, ``best.pt``, ``log.jsonl``, ``log.csv`` and
            ``curves.png`` go (``None``: write nothing).
        amp: ``"bf16"`` runs the forward pass under bfloat16 autocast.
        log_every: steps per training log record (its loss and metrics are means over
            those steps; it also lists every step's pre-clip gradient norm).
        progress: show a tqdm progress bar with loss, metric and items/s.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        save_every: also write ``last.pt`` every this many steps (``0``: only at evaluations,
            epoch ends and the end of training).
        min_lr: final learning rate of the cosine schedule, and the floor of ``"plateau"``.
        plateau_factor: lr multiplier of the ``"plateau"`` schedule.
        plateau_patience: evaluations without improvement before ``"plateau"`` lowers the lr.
        plot: write ``curves.png`` at the end (needs matplotlib).
        compute: record what training cost in ``compute.json`` (wall and CPU time, peak
            memory, FLOPs, items/s, energy and CO2 through codecarbon when installed, each
            labelled measured or estimated); see :mod:`rnnkit.audit.compute`.
        country: electricity mix for the CO2 figure, an ISO 3166 alpha-3 code (``"WLD"``:
            codecarbon's world average, 475 g CO2e/kWh).
        card: write ``model_card.md`` in ``out_dir`` at the end (:mod:`rnnkit.audit.card`:
            the sections of Mitchell et al. 2019, filled from the checkpoint, the log and
            ``compute.json``).
    """

    epochs: int = 10
    max_steps: int | None = None
    max_time: float | None = None
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    warmup_steps: int = 0
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    eval_every: int = 0
    early_stop_patience: int | None = None
    seed: int = 0
    out_dir: str | None = None
    amp: str = "none"
    log_every: int = 10
    progress: bool = True
    device: str = "auto"
    save_every: int = 0
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    plot: bool = True
    compute: bool = True
    country: str = "WLD"
    card: bool = True

    def __post_init__(self) -> None:
        for name, choices in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS),
                              ("amp", AMP_MODES), ("device", DEVICES)):
            value = getattr(self, name)
            if value not in choices:
                options = ", ".join(repr(c) for c in choices)
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        from ..audit.energy import check_country

        self.country = check_country(self.country)
        _check_int(self, "epochs", 1)
        _check_int(self, "warmup_steps", 0)
        _check_int(self, "eval_every", 0)
        _check_int(self, "log_every", 1)
        _check_int(self, "save_every", 0)
        _check_int(self, "seed", 0)
        _check_int(self, "plateau_patience", 0)
        _check_int(self, "max_steps", 1, optional=True)
        _check_int(self, "early_stop_patience", 1, optional=True)
        _check_float(self, "lr", positive=True)
        _check_float(self, "weight_decay")
        _check_float(self, "momentum")
        _check_float(self, "min_lr")
        _check_float(self, "max_time", positive=True, optional=True)
        _check_float(self, "clip_norm", positive=True, optional=True)
        _check_float(self, "clip_value", positive=True, optional=True)
        _check_float(self, "plateau_factor", positive=True)
        if self.plateau_factor >= 1:
            raise ValueError(f"plateau_factor must be below 1 (it lowers the lr), "
                             f"got {self.plateau_factor}")
        if self.scheduler == "plateau" and self.warmup_steps:
            raise ValueError("warmup_steps works with scheduler 'none' or 'cosine', not "
                             "'plateau'; set warmup_steps=0 or use scheduler='cosine'")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, e.g. a TOML table or a checkpoint's ``config``; unknown keys
        are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}; "
                             f"known fields: {', '.join(sorted(known))}")
        return cls(**values)


def _check_int(cfg: TrainConfig, name: str, low: int, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}"
                         f"{' or None' if optional else ''}, got {value!r}")


def _check_float(cfg: TrainConfig, name: str, positive: bool = False,
                 optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if ok and positive:
        ok = value > 0
    if not ok or value != value or value == float("inf"):
        kind = "a positive number" if positive else "a number >= 0"
        raise ValueError(f"{name} must be {kind}{' or None' if optional else ''}, "
                         f"got {value!r}")
