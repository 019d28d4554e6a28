"""What a training run or an inference call cost: time, memory, FLOPs, energy and CO2.

:class:`ComputeMeter` is a Trainer callback, on by default (``TrainConfig.compute``): per epoch
and in total it records wall time, process CPU time, peak memory, FLOPs, items (tokens,
examples) per second, and energy/CO2 from :class:`~rnnkit.audit.energy.EnergyMeter`, and writes
them to ``compute.json`` in the run folder (also kept as ``meter.report``).

FLOPs: one training step runs under :class:`~rnnkit.audit.flops.FlopMeter` (forward and
backward, recurrent layers by formula, the rest by ``FlopCounterMode``); every step is credited
``flops_per_item x items`` (exact when batches have one shape, as the language model's;
proportional to the items otherwise). PyTorch's dispatch modes import ``torch._dynamo`` on first
use (about 1.5 s of CPU), so that import runs in a background thread from the start of the fit
and the first step after it finishes is the one counted; nothing waits for it. Energy metering
starts in the background the same way (:class:`~rnnkit.audit.energy.EnergyMeter`).

:func:`measure` does the same around inference: ``with measure("tokens") as m: ...;
m.add(n)`` and ``m.summary()`` gives time and energy per 1,000 tokens (or per forecast, per
audio minute, ...).

>>> from rnnkit.audit.compute import measure
>>> with measure("texts", energy=False) as m:
...     m.add(3)
>>> m.report["items"], m.report["energy_method"]
(3, 'not measured (turned off)')
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..train.callbacks import Callback
from .energy import EnergyMeter, EnergyReading

__all__ = ["ComputeMeter", "Measurement", "measure", "peak_memory_mb"]

FLOPS_METHOD = ("step 1 counted (recurrent layers by formula, the rest by FlopCounterMode), "
                "later steps scaled by their items")


def peak_memory_mb(device: torch.device | str | None = None) -> float:
    """Peak memory in MiB: CUDA's peak allocation on a GPU, else this process's peak resident
    set size (``getrusage``)."""
    if device is not None and torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


class _Clock:
    """Wall and process-CPU time since :meth:`reset`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


class ComputeMeter(Callback):
    """Records the compute of a :class:`~rnnkit.train.Trainer` fit (see the module docstring).

    Args:
        energy: meter energy with codecarbon (when installed).
        country: electricity mix for CO2 (ISO 3166 alpha-3; ``"WLD"``: world average).
        item_name: what the model's loss weight counts (``"tokens"``, ``"examples"``, ...).
        flops: count FLOPs on the first step.

    After the fit, ``report`` holds the ``compute.json`` dict: ``wall_s``, ``cpu_s``,
    ``peak_memory_mb``, ``steps``, ``items``, ``items_per_s``, ``flops_per_step`` (of the
    counted step), ``flops_per_item``, ``flops_total``, ``energy_kwh``, ``co2_kg``,
    ``energy_method``, ``country``, ``device``, ``world_size`` and ``epochs`` (the same per
    epoch). A resumed run adds to the totals in ``compute.json``.
    """

    def __init__(self, *, energy: bool = True, country: str = "WLD", item_name: str = "items",
                 flops: bool = True) -> None:
        self.energy = EnergyMeter(country, enabled=energy)
        self.item_name = item_name
        self.count_flops = flops
        self.report: dict[str, Any] = {}

    # -- trainer hooks -----------------------------------------------------------------------
    def on_fit_start(self, trainer: Any) -> None:
        self._before = self._previous(trainer) if trainer.step > 0 else {}
        self._clock, self._epoch_clock = _Clock(), _Clock()
        self._steps = self._items = self._epoch_items = self._epoch_steps = 0
        self._flops_per_item: float | None = None
        self._flops_per_step: int | None = None
        self._epoch_energy = EnergyReading(0.0, 0.0, "")
        self._epochs: list[dict[str, Any]] = list(self._before.get("epochs", []))
        self._counting = self.count_flops
        self._ready = _prepare_counter() if self.count_flops else None
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        self.energy.start()

    @contextmanager
    def step_context(self, trainer: Any) -> Iterator[None]:
        """Counts the FLOPs of one step (forward and backward): the first one after the
        counter's imports are ready."""
        if not self._counting or not self._ready.is_set():
            yield
            return
        from .flops import FlopMeter

        self._counting = False
        with FlopMeter(trainer.model) as meter:
            yield
        self._flops_per_step = meter.count.total * trainer.world_size

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        items = int(round(float(logs.get("items", 0))))
        if self._flops_per_step is not None and self._flops_per_item is None and items:
            self._flops_per_item = self._flops_per_step / items
        self._steps += 1
        self._epoch_steps += 1
        self._items += items
        self._epoch_items += items

    def on_epoch_end(self, trainer: Any, epoch: int) -> None:
        wall, cpu = self._epoch_clock.read()
        now = self._read_energy(trainer)
        kwh = _minus(now.energy_kwh, self._epoch_energy.energy_kwh)
        co2 = _minus(now.co2_kg, self._epoch_energy.co2_kg)
        self._epochs.append({"epoch": epoch, "wall_s": wall, "cpu_s": cpu,
                             "steps": self._epoch_steps, "items": self._epoch_items,
                             "flops": self._flops(self._epoch_items),
                             "energy_kwh": kwh, "co2_kg": co2})
        self._epoch_energy = now
        self._epoch_clock.reset()
        self._epoch_items = self._epoch_steps = 0
        self._write(trainer, now)

    def on_fit_end(self, trainer: Any) -> None:
        if self._epoch_steps:  # stopped inside an epoch (max_steps, max_time, early stop)
            self.on_epoch_end(trainer, trainer.epoch)
            self._epochs[-1]["partial"] = True
        reading = self.energy.stop()
        if trainer.dist.enabled:
            reading = self._summed(trainer, reading)
        self._write(trainer, reading)

    def on_fit_stopped(self, trainer: Any, error: BaseException) -> None:
        """An interrupted or failed fit still records what it spent (this process's energy:
        no collective operations here), with ``stopped`` saying why."""
        if self._epoch_steps:
            wall, cpu = self._epoch_clock.read()
            self._epochs.append({"epoch": trainer.epoch, "wall_s": wall, "cpu_s": cpu,
                                 "steps": self._epoch_steps, "items": self._epoch_items,
                                 "flops": self._flops(self._epoch_items), "energy_kwh": None,
                                 "co2_kg": None, "partial": True})
            self._epoch_steps = self._epoch_items = 0
        why = str(error).splitlines()[0] if str(error) else ""
        self._write(trainer, self.energy.stop(), stopped=f"{type(error).__name__}: {why}")

    # -- helpers -----------------------------------------------------------------------------
    def _flops(self, items: int) -> int | None:
        return None if self._flops_per_item is None else int(round(self._flops_per_item * items))

    def _read_energy(self, trainer: Any) -> EnergyReading:
        reading = self.energy.read()
        return self._summed(trainer, reading) if trainer.dist.enabled else reading

    @staticmethod
    def _summed(trainer: Any, r: EnergyReading) -> EnergyReading:
        """Every process meters itself; the run's energy is the sum (every rank calls)."""
        if r.energy_kwh is None:
            return r
        kwh, co2 = trainer.dist.all_sum([r.energy_kwh, r.co2_kg or 0.0], trainer.device)
        return EnergyReading(kwh, co2, r.method, r.country)

    def _previous(self, trainer: Any) -> dict[str, Any]:
        path = _path(trainer)
        if path is None or not os.path.exists(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _write(self, trainer: Any, reading: EnergyReading, stopped: str | None = None) -> None:
        wall, cpu = self._clock.read()
        b = self._before
        items = self._items + int(b.get("items", 0))
        wall_total = wall + float(b.get("wall_s", 0.0))
        flops_now = self._flops(self._items)
        flops_before = b.get("flops_total")
        self.report = {
            "wall_s": wall_total,
            "cpu_s": cpu + float(b.get("cpu_s", 0.0)),
            "peak_memory_mb": max(peak_memory_mb(trainer.device),
                                  float(b.get("peak_memory_mb", 0.0))),
            "device": str(trainer.device), "world_size": trainer.world_size,
            "steps": self._steps + int(b.get("steps", 0)), "items": items,
            "item_name": self.item_name,
            "items_per_s": items / wall_total if wall_total > 0 else None,
            "flops_per_step": self._flops_per_step or b.get("flops_per_step"),
            "flops_per_item": self._flops_per_item or b.get("flops_per_item"),
            "flops_total": None if flops_now is None else
            flops_now + int(flops_before or 0),
            "flops_method": FLOPS_METHOD if self.count_flops else "not counted",
            "energy_kwh": _plus(reading.energy_kwh, b.get("energy_kwh")),
            "co2_kg": _plus(reading.co2_kg, b.get("co2_kg")),
            "energy_method": reading.method or self.energy.method,
            "country": reading.country,
            "epochs": self._epochs,
        }
        if stopped:
            self.report["stopped"] = stopped
        path = _path(trainer)
        if path is not None and trainer.dist.is_main:
            from ..saving import atomic_write_text

            atomic_write_text(json.dumps(self.report, indent=1) + "\n", path)


_COUNTER_READY = threading.Event()


def _prepare_counter() -> threading.Event:
    """An event set once ``torch._dynamo`` (which ``FlopCounterMode`` imports on first use) is
    imported; the import runs in a daemon thread, started once per process."""
    if "torch._dynamo" in sys.modules:
        _COUNTER_READY.set()
    elif not getattr(_prepare_counter, "started", False):
        _prepare_counter.started = True  # type: ignore[attr-defined]

        def work() -> None:
            import torch._dynamo  # noqa: F401

            _COUNTER_READY.set()

        threading.Thread(target=work, name="rnnkit-flops", daemon=True).start()
    return _COUNTER_READY


def _path(trainer: Any) -> str | None:
    out = trainer.config.out_dir
    return os.path.join(out, "compute.json") if out else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None else a - (b or 0.0)


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None else a + float(b or 0.0)


class Measurement:
    """The running record of :func:`measure`: call :meth:`add` with the units produced; after
    the block, ``report`` has ``wall_s``, ``cpu_s``, ``items``, ``energy_kwh``, ``co2_kg``,
    ``energy_method`` and the per-unit values."""

    def __init__(self, unit: str, per: float, energy: EnergyMeter) -> None:
        self.unit, self.per, self.energy = unit, per, energy
        self.items = 0.0
        self.report: dict[str, Any] = {}
        self._reading: EnergyReading | None = None

    def add(self, n: float = 1) -> None:
        """Credit ``n`` units (tokens, forecasts, audio minutes, ...) to this measurement."""
        self.items += n

    def summary(self) -> str:
        """One line: time, energy and the energy per ``per`` units."""
        r = self.report
        label = f"{self.per:g} {self.unit}" if self.per != 1 else self.unit.rstrip("s")
        per = self.items / self.per if self.items else None
        line = f"compute: {r['wall_s']:.3g} s wall, {r['cpu_s']:.3g} s CPU"
        if per:
            line += f", {r['wall_s'] / per:.3g} s per {label}"
        return f"{line}; {self._reading.describe(per, label) if self._reading else ''}"


@contextmanager
def measure(unit: str = "items", *, per: float = 1000, energy: bool = True,
            country: str = "WLD") -> Iterator[Measurement]:
    """Meter an inference block; ``per`` sets the reporting unit (1,000 tokens, 1 forecast,
    1 audio minute)."""
    m = Measurement(unit, per, EnergyMeter(country, enabled=energy))
    clock = _Clock()
    m.energy.start()
    try:
        yield m
    finally:
        wall, cpu = clock.read()
        m._reading = m.energy.stop()
        items = int(m.items) if float(m.items).is_integer() else m.items
        m.report = {"wall_s": wall, "cpu_s": cpu, "items": items, "unit": unit,
                    "energy_kwh": m._reading.energy_kwh, "co2_kg": m._reading.co2_kg,
                    "energy_method": m._reading.method, "country": m._reading.country,
                    "peak_memory_mb": peak_memory_mb()}
