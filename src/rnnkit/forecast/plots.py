"""Pictures of forecasts: :func:`plot_forecast` (needs matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data.timeseries import Series
from ..saving import atomic_write_figure
from .result import Forecast

__all__ = ["plot_forecast"]


def plot_forecast(history: Sequence[Series], forecast: Forecast, path: str = "forecast.png",
                  backtest: Any = None, last: int | None = 200, title: str = "") -> str:
    """PNG of each series' history (its ``last`` steps), the forecast and its prediction
    intervals, plus the window forecasts of a
    :class:`~rnnkit.forecast.backtest.BacktestResult` when given (one legend entry,
    "backtest"; a window that is ``forecast`` itself is drawn once, as the forecast). The PNG
    is written atomically to exactly ``path`` (no suffix is added; a failed write leaves no
    file). Returns ``path``."""
    atomic_write_figure(_figure(history, forecast, backtest, last, title), path)
    return path


def _figure(history: Sequence[Series], forecast: Forecast, backtest: Any, last: int | None,
            title: str):
    """The matplotlib figure of :func:`plot_forecast`: one axis per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(forecast.names)
    fig, axes = plt.subplots(n, 1, figsize=(11, 3.2 * n), squeeze=False)
    by_name = {s.name: s for s in history}
    windows = [fc for fc in (backtest.forecasts if backtest is not None else [])
               if fc is not forecast]
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
                            lw=0, label=f"{lv:g}% interval")
        label = "backtest"
        for fc in windows:
            if name in fc.names:
                j = fc.names.index(name)
                ax.plot(fc.time[j], fc.mean[j][:, 0], color="tab:orange", lw=1, label=label)
                label = "_nolegend_"  # one legend entry for all windows
        ax.set_title(f"{title} {name}: {forecast.target_names[0]}".strip())
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
