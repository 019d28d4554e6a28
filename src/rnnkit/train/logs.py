"""The run's record: ``log.jsonl`` (one JSON object per line, appended as training goes),
``log.csv`` (the same records as a table) and ``curves.png`` (learning curves).

Every record has ``split`` (``"train"`` or ``"val"``), ``step``, ``epoch`` and ``loss``; train
records add ``lr``, ``grad_norm`` (mean pre-clip global norm over the record's steps),
``grad_norm_max``, ``grad_norms`` (every step's pre-clip norm), ``items_per_s``, ``time``
and the model's metrics.

>>> import tempfile
>>> log = RunLog(tempfile.mkdtemp())
>>> log.append({"split": "train", "step": 10, "epoch": 0, "loss": 2.5})
>>> log.append({"split": "val", "step": 10, "epoch": 0, "loss": 2.7})
>>> [r["split"] for r in RunLog.read(log.jsonl_path)]
['train', 'val']
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

from ..saving import atomic_write_bytes, atomic_write_figure

__all__ = ["RunLog", "plot_curves"]


class RunLog:
    """Keeps the records in memory and, with an ``out_dir``, appends them to ``log.jsonl``."""

    def __init__(self, out_dir: str | None) -> None:
        self.out_dir = out_dir
        self.records: list[dict[str, Any]] = []

    @property
    def jsonl_path(self) -> str | None:
        return os.path.join(self.out_dir, "log.jsonl") if self.out_dir else None

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(self.jsonl_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=float) + "\n")

    def restore(self, up_to_step: int) -> None:
        """On resume: keep the records of steps up to the checkpoint (those after it will be
        redone) and rewrite ``log.jsonl`` with them."""
        path = self.jsonl_path
        records = self.read(path) if path and os.path.exists(path) else []
        self.records = [r for r in records if r.get("step", 0) <= up_to_step]
        if path:
            text = "".join(json.dumps(r) + "\n" for r in self.records)
            atomic_write_bytes(text.encode("utf-8"), path)

    @staticmethod
    def read(path: str) -> list[dict[str, Any]]:
        """Records of a ``log.jsonl``; a torn last line (the process was killed mid-write) is
        skipped."""
        records = []
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break
                raise ValueError(f"{path}: line {i + 1} is not valid JSON; the log is "
                                 f"corrupt, delete it to start a fresh one") from None
        return records

    def write_csv(self) -> None:
        """``log.csv``: one row per record, a column per key (lists left out)."""
        if not self.out_dir or not self.records:
            return
        columns: list[str] = []
        for r in self.records:
            for k, v in r.items():
                if k not in columns and not isinstance(v, (list, dict)):
                    columns.append(k)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.records)
        atomic_write_bytes(buf.getvalue().encode("utf-8"), os.path.join(self.out_dir, "log.csv"))

    def plot(self) -> str | None:
        """Write ``curves.png``; returns its path (``None`` without an ``out_dir``)."""
        if not self.out_dir or not self.records:
            return None
        path = os.path.join(self.out_dir, "curves.png")
        plot_curves(self.records, path)
        return path


def plot_curves(records: list[dict[str, Any]], path: str) -> None:
    """Learning curves (train and validation loss per step) and the pre-clip gradient norm
    (log scale) as a PNG. Uses matplotlib's Agg canvas, no display or global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_norm = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.25)
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    if val:
        ax_loss.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation")
    ax_loss.set(xlabel="optimizer step", ylabel="loss", title="Learning curves")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    steps, norms = [], []
    for r in train:
        per_step = r.get("grad_norms") or [r.get("grad_norm")]
        first = r["step"] - len(per_step) + 1
        for i, n in enumerate(per_step):
            if n is not None and math.isfinite(n) and n > 0:
                steps.append(first + i)
                norms.append(n)
    if norms:
        ax_norm.plot(steps, norms, lw=0.8, color="tab:red")
        ax_norm.set_yscale("log")
    ax_norm.set(xlabel="optimizer step", ylabel="global gradient norm (pre-clip)",
                title="Gradient norm")
    ax_norm.grid(alpha=0.3, which="both")
    atomic_write_figure(fig, path)
