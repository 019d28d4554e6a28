"""Energy and CO2 of a stretch of work, through codecarbon offline, always labelled with how
the number was obtained.

codecarbon reads power counters where the machine has them (RAPL on Intel/AMD CPUs, NVML on
NVIDIA GPUs) and otherwise *estimates*: CPU power from the CPU model's TDP times this process's
CPU load, RAM power from its size. It says which only in its logs (mlco2/codecarbon #244,
#304); :class:`EnergyMeter` reads its detected hardware and puts the method next to every
number: ``"measured (RAPL)"``, ``"estimated (codecarbon: CPU TDP 8 W x process CPU load; RAM
10 W model; no power counters)"``, or ``"not measured (why)"``.

CO2 uses the electricity mix of ``country`` (ISO 3166 alpha-3; ``"WLD"`` is codecarbon's world
average, 475 g CO2e/kWh). No network access: the offline tracker only.

>>> meter = EnergyMeter(enabled=False)
>>> meter.start(); reading = meter.stop()
>>> reading.energy_kwh is None, reading.method
(True, 'not measured (turned off)')
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["EnergyMeter", "EnergyReading", "check_country", "describe_method"]

WORLD = "WLD"


def check_country(code: str) -> str:
    """``code`` upper-cased if it looks like an ISO 3166 alpha-3 code, else a ValueError."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3}", code):
        raise ValueError(f"country must be an ISO 3166 alpha-3 code such as FRA, USA, DEU or "
                         f"WLD (world average), got {code!r}")
    return code.upper()


@dataclass
class EnergyReading:
    """Energy (kWh) and CO2-equivalent (kg) of the metered stretch, with the method that
    produced them; ``None`` values when not measured."""

    energy_kwh: float | None
    co2_kg: float | None
    method: str
    country: str = WORLD

    def describe(self, per: float | None = None, unit: str = "") -> str:
        """One line for people: ``"0.12 Wh, 0.06 g CO2e (estimated (...))"``; with ``per``,
        also the energy per ``unit`` (e.g. per 1,000 tokens)."""
        if self.energy_kwh is None:
            return f"energy {self.method}"
        wh, g = self.energy_kwh * 1000, (self.co2_kg or 0.0) * 1000
        line = f"{_si(wh, 'Wh')}, {g:.3g} g CO2e"
        if per:
            line += f" ({_si(wh / per, 'Wh')} per {unit})"
        return f"{line}, {self.method}"


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(value) >= scale or scale == 1e-6:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"  # pragma: no cover


def describe_method(hardware: list[Any]) -> str:
    """How codecarbon gets each component's power, from its detected hardware objects:
    ``"measured (RAPL, NVML)"`` when every component is read from counters, else
    ``"estimated (...)"`` naming the model behind each estimated part."""
    measured, estimated = [], []
    for h in hardware:
        kind = type(h).__name__
        if kind == "CPU":
            mode = getattr(h, "_mode", "")
            if mode in ("intel_rapl", "intel_power_gadget", "apple_powermetrics"):
                measured.append({"intel_rapl": "RAPL"}.get(mode, mode))
            else:
                tdp = getattr(h, "_tdp", None)
                generic = " (generic TDP: CPU model not in codecarbon's table)" \
                    if getattr(h, "_is_generic_tdp", False) else ""
                load = "process CPU load" if mode == "cpu_load" else "a constant 50% load"
                estimated.append(f"CPU TDP {tdp} W{generic} x {load}")
        elif kind == "GPU":
            measured.append("NVML")
        elif kind == "RAM":
            estimated.append("RAM power from its size")
        else:
            estimated.append(kind)
    if estimated:
        return f"estimated (codecarbon: {'; '.join(estimated)}" + \
            ("; no power counters)" if not measured else f"; measured: {', '.join(measured)})")
    return f"measured ({', '.join(measured)})" if measured else "not measured (no hardware)"


class EnergyMeter:
    """Meters energy between :meth:`start` and :meth:`stop` (and :meth:`read` in between)
    with codecarbon's offline tracker, following this process only.

    Args:
        country: ISO 3166 alpha-3 code of the electricity mix for CO2 (``"WLD"``: world
            average).
        enabled: ``False`` measures nothing (``method`` says so).
        interval: seconds between codecarbon's power samples.
    """

    def __init__(self, country: str = WORLD, *, enabled: bool = True,
                 interval: float = 15.0) -> None:
        self.country = check_country(country)
        self.enabled = enabled
        self.interval = interval
        self._tracker: Any = None
        self._why = "turned off" if not enabled else ""
        self.method = f"not measured ({self._why})" if self._why else ""

    def start(self) -> None:
        """Start metering. codecarbon's first probe of the hardware in a process takes about
        1.5 s (later ones are cached), so it runs in a background thread: the caller's work
        starts at once, and :meth:`read`/:meth:`stop` wait for it."""
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._start, name="rnnkit-energy", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            self._why = "codecarbon is not installed: pip install 'rnnkit[audit]'"
            self.method = f"not measured ({self._why})"
            return
        logging.getLogger("codecarbon").setLevel(logging.CRITICAL)
        try:
            tracker = OfflineEmissionsTracker(
                country_iso_code=self.country, output_methods=[], log_level="critical",
                measure_power_secs=self.interval, tracking_mode="process",
                allow_multiple_runs=True)
            tracker.start()
            self.method = describe_method(list(getattr(tracker, "_hardware", [])))
            self._tracker = tracker
        except Exception as err:  # codecarbon failing must never stop a training run
            self._why = f"codecarbon failed: {type(err).__name__}: {err}"
            self.method = f"not measured ({self._why})"

    def _wait(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join()
            self._thread = None

    def read(self) -> EnergyReading:
        """The totals so far (the tracker keeps running)."""
        self._wait()
        if self._tracker is None:
            return EnergyReading(None, None, self.method or "not measured (not started)",
                                 self.country)
        try:
            co2 = float(self._tracker.flush() or 0.0)
            kwh = float(self._tracker._total_energy.kWh)
        except Exception as err:
            return EnergyReading(None, None, f"not measured (codecarbon failed: {err})",
                                 self.country)
        return EnergyReading(kwh, co2, self.method, self.country)

    def stop(self) -> EnergyReading:
        """Stop and return the totals."""
        self._wait()
        if self._tracker is None:
            return self.read()
        tracker, self._tracker = self._tracker, None
        try:
            co2 = float(tracker.stop() or 0.0)
            data = tracker.final_emissions_data
            return EnergyReading(float(data.energy_consumed), co2, self.method, self.country)
        except Exception as err:
            return EnergyReading(None, None, f"not measured (codecarbon failed: {err})",
                                 self.country)
