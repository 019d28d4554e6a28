"""Efficiency comparison: quality against energy and FLOPs, and the Pareto front.

``rnnkit audit compare`` trains one task with several cells under one budget and hands the
results here: each row is a run with a quality to minimise (validation bits per character,
error) and its compute record (``compute.json``). A run is *Pareto-optimal* when no other run
is at least as good on both axes and better on one.

>>> pareto_front([1.0, 2.0, 3.0, 2.5], [3.0, 2.0, 1.0, 2.5])
[True, True, True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompareRow", "pareto_front", "plot_pareto", "table"]


@dataclass
class CompareRow:
    """One run of a comparison: its ``name`` (the cell), ``quality`` (lower is better, named
    ``metric``), the run's ``compute`` record (``compute.json``) and free ``details``
    (parameters, hidden size, ...)."""

    name: str
    quality: float
    metric: str
    compute: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """False for a run that stopped early (``details["note"]``): its compute record is
        partial, so it is drawn and listed but never Pareto-optimal."""
        return "note" not in self.details

    def get(self, axis: str) -> float | None:
        value = self.compute.get(axis)
        return None if value is None else float(value)

    def point(self, axis: str, scale: float = 1.0) -> float:
        """The run's value on ``axis`` for the Pareto front: NaN (never optimal) when
        missing or when the run is not :attr:`complete`."""
        value = self.get(axis)
        return value * scale if value is not None and self.complete else math.nan


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """For points ``(x, y)`` where lower is better on both axes, whether each is
    Pareto-optimal (no other point is ``<=`` on both and ``<`` on one). NaN points are
    never optimal."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    pts = list(zip(map(float, xs), map(float, ys)))
    out = []
    for i, (x, y) in enumerate(pts):
        if math.isnan(x) or math.isnan(y):
            out.append(False)
            continue
        dominated = any(j != i and a <= x and b <= y and (a < x or b < y)
                        for j, (a, b) in enumerate(pts) if not (math.isnan(a) or math.isnan(b)))
        out.append(not dominated)
    return out


def table(rows: Sequence[CompareRow]) -> str:
    """A Markdown table of the runs, best quality first, with the Pareto-optimal ones (on
    energy, else FLOPs) marked ``*``."""
    if not rows:
        return "(no runs)"
    axis = "energy_kwh" if all(r.get("energy_kwh") is not None for r in rows) else "flops_total"
    front = pareto_front([r.point(axis) for r in rows], [r.quality for r in rows])
    keys = sorted({k for r in rows for k in r.details})
    head = ["run", rows[0].metric, *keys, "FLOPs", "energy (Wh)", "wall (s)", f"Pareto ({axis})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, opt in sorted(zip(rows, front), key=lambda t: t[0].quality):
        flops, kwh, wall = r.get("flops_total"), r.get("energy_kwh"), r.get("wall_s")
        cells = [r.name, f"{r.quality:.4f}", *(str(r.details.get(k, "")) for k in keys),
                 f"{flops:.3g}" if flops is not None else "-",
                 f"{kwh * 1000:.3g}" if kwh is not None else "-",
                 f"{wall:.0f}" if wall is not None else "-", "*" if opt else ""]
        lines.append("| " + " | ".join(cells) + " |")
    methods = sorted({r.compute.get("energy_method", "not recorded") for r in rows})
    lines.append("")
    lines.append("energy: " + "; ".join(methods))
    return "\n".join(lines)


def plot_pareto(rows: Sequence[CompareRow], path: str, title: str = "") -> str:
    """Two panels, quality against energy (Wh) and against training FLOPs, each run a labelled
    point, the Pareto front drawn as a step line; written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..saving import atomic_write_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, axis, label, scale in ((axes[0], "energy_kwh", "energy (Wh)", 1000.0),
                                   (axes[1], "flops_total", "training FLOPs", 1.0)):
        pts = [(r.get(axis) * scale, r.quality, r.name) for r in rows if r.get(axis) is not None]
        if not pts:
            ax.text(0.5, 0.5, f"{label}: not recorded", ha="center", transform=ax.transAxes)
            continue
        complete = {r.name: r.complete for r in rows}
        front = pareto_front([p[0] if complete[p[2]] else math.nan for p in pts],
                             [p[1] for p in pts])
        for k, ((x, y, name), opt) in enumerate(zip(pts, front)):
            ax.scatter([x], [y], s=60 if opt else 30, color="C3" if opt else "C0", zorder=3,
                       marker="o" if complete[name] else "x")
            tag = name if complete[name] else f"{name} (stopped early)"
            ax.annotate(tag, (x, y), textcoords="offset points", fontsize=9,
                        xytext=(5, 4 if k % 2 == 0 else -11))
        best = sorted((p for p, o in zip(pts, front) if o), key=lambda p: p[0])
        if len(best) > 1:
            ax.step([p[0] for p in best], [p[1] for p in best], where="post", color="C3",
                    alpha=0.6, label="Pareto front")
            ax.legend(fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(rows[0].metric + " (lower is better)")
        ax.grid(alpha=0.3)
    methods = sorted({r.compute.get("energy_method", "not recorded") for r in rows})
    fig.suptitle((title + "\n" if title else "") + "energy " + "; ".join(methods)[:150],
                 fontsize=9)
    fig.tight_layout()
    atomic_write_figure(fig, path)
    plt.close(fig)
    return path
