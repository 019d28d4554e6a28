"""Pictures of forecasts: :func:`plot_forecast` (needs matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data.timeseries import Series
from .result import Forecast

__all__ = ["plot_forecast"]


def plot_forecast(history: Sequence[Series], forecast: Forecast, path: str = "forecast.png",
                  backtest: Any = None, last: int | None = 200, title: str = "") -> str:
    """PNG of each series' history (its ``last`` steps), the forecast and its prediction
    intervals, plus the backtest forecasts of a
    :class:`~rnnkit.forecast.backtest.BacktestResult` when given. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(forecast.names)
    fig, axes = plt.subplots(n, 1, figsize=(11, 3.2 * n), squeeze=False)
    by_name = {s.name: s for s in history}
    for i, (ax, name) in enumerate(zip(axes[:, 0], forecast.names)):
        s = by_name.get(name)
        if s is not None:
            k = slice(-last, None) if last else slice(None)
            ax.plot(s.time[k], s.target[k, 0], color="black", lw=1, label="history")
        ax.plot(forecast.time[i], forecast.mean[i][:, 0], color="tab:blue", lw=1.5,
                label="forecast")
        for lv, alpha in zip(sorted(forecast.lower, reverse=True), (0.15, 0.3, 0.45)):
            ax.fill_between(forecast.time[i], forecast.lower[lv][i][:, 0],
                            forecast.upper[lv][i][:, 0], color="tab:blue", alpha=alpha,
                            lw=0, label=f"{lv}% interval")
        if backtest is not None:
            for w, fc in enumerate(backtest.forecasts):
                if name in fc.names:
                    j = fc.names.index(name)
                    ax.plot(fc.time[j], fc.mean[j][:, 0], color="tab:orange", lw=1,
                            label="backtest" if w == 0 else None)
        ax.set_title(f"{title} {name}: {forecast.target_names[0]}".strip())
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
