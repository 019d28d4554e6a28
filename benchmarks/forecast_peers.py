r"""darts and neuralforecast RNNs behind rnnkit's forecaster protocol, for side-by-side backtests.

Each wrapper has ``fit(data)`` (DataFrame / array / list of :class:`~rnnkit.data.timeseries.Series`)
and ``predict(history=[Series...], future=..., levels=...)`` returning a point
:class:`~rnnkit.forecast.result.Forecast` (``mean`` ``[H, 1]`` per series; no intervals), so
:func:`rnnkit.forecast.backtest.backtest` scores it like rnnkit's own models: fitted once on the
history before the first origin, then conditioned on each window's history without refitting
(``refit=False``, a global RNN's usual use). Horizon ``H`` and input length ``L`` are the ones
rnnkit's benchmark uses for the series (``benchmarks/forecast.py``: airpassengers 12 and 36).

* :class:`DartsRNN` — darts ``RNNModel`` (``block=False``: an autoregressive LSTM/GRU trained on
  ``training_length``-step sequences, forecasting one step at a time and feeding its forecasts
  back) or ``BlockRNNModel`` (``block=True``: encodes ``L`` steps, a linear head emits all ``H``).
  Defaults from darts' own examples (``RNNModel`` air-passengers notebook: ``hidden_dim=20``,
  ``batch_size=16``, ``n_epochs=300``, ``lr=1e-3``, ``dropout=0``, inputs scaled by darts'
  ``Scaler`` = per-series min-max fitted on the training history).
* :class:`NeuralForecastLSTM` — neuralforecast ``LSTM`` (an encoder LSTM with an MLP decoder
  emitting ``H`` steps). Defaults from its documentation's air-passengers example
  (2 x 128 encoder, 2 x 128 decoder, ``max_steps=200``, ``scaler_type="robust"``, MAE loss).

None of these settings were tuned; all runs are on the CPU with one thread, seeds fixed, and
lightning's progress bars, model summaries, loggers and checkpoints switched off. Each
wrapper records ``fit_seconds``.

Sanity check on a development series (never on the report set of
``rnnkit.data.datasets.REPORT_SET``)::

    python benchmarks/forecast_peers.py                      # airpassengers, H=12, 4 windows
    python benchmarks/forecast_peers.py --models darts_lstm nf_lstm --series wineind

Needs the ``forecast-peers`` extra (``pip install rnnkit[forecast-peers]``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.data.timeseries import Series, as_series, future_index  # noqa: E402
from rnnkit.forecast.result import Forecast  # noqa: E402

QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning_fabric", "pytorch_lightning",
                 "lightning.fabric", "darts", "neuralforecast", "torch", "ray")
# lightning trainer options that silence it: no bar, no model table, no logger, no files
QUIET_TRAINER = dict(accelerator="cpu", devices=1, enable_progress_bar=False,
                     enable_model_summary=False, logger=False, enable_checkpointing=False)


def quiet() -> None:
    """Silence lightning / darts / neuralforecast logging and their chatty warnings."""
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _univariate(series: Sequence[Series], who: str) -> None:
    for s in series:
        if s.target.shape[1] != 1:
            raise ValueError(f"{who} wraps a univariate peer model; series {s.name!r} has "
                             f"{s.target.shape[1]} target columns: pass one target column")


def _point_forecast(hs: Sequence[Series], H: int, means: list[np.ndarray]) -> Forecast:
    for s, m in zip(hs, means):
        if m.shape != (H, 1) or not np.isfinite(m).all():
            raise FloatingPointError(f"peer forecast for series {s.name!r} has shape "
                                     f"{m.shape} (expected {(H, 1)}) or non-finite values")
    return Forecast([s.name for s in hs], hs[0].target_names,
                    [future_index(s.time, H) for s in hs], means, {}, {})


class DartsRNN:
    """darts ``RNNModel`` / ``BlockRNNModel`` (LSTM or GRU) in rnnkit's protocol.

    Args:
        kind: ``"LSTM"`` or ``"GRU"``.
        horizon: ``H``, steps forecast; input_len: ``L``, steps the network reads.
        block: ``False``: ``RNNModel`` (autoregressive, ``training_length = L + H``);
            ``True``: ``BlockRNNModel`` (``output_chunk_length = H``).
        hidden_dim, n_rnn_layers, dropout, batch_size, n_epochs, lr: darts' arguments.
        seed: darts ``random_state``.
    """

    def __init__(self, kind: str = "LSTM", horizon: int = 12, input_len: int = 36,
                 block: bool = False, hidden_dim: int = 20, n_rnn_layers: int = 1,
                 dropout: float = 0.0, batch_size: int = 16, n_epochs: int = 300,
                 lr: float = 1e-3, seed: int = 42) -> None:
        if kind not in ("LSTM", "GRU"):
            raise ValueError(f"kind must be 'LSTM' or 'GRU', got {kind!r}")
        self.kind, self.horizon, self.input_len, self.block = kind, horizon, input_len, block
        self.kw = dict(hidden_dim=hidden_dim, n_rnn_layers=n_rnn_layers, dropout=dropout,
                       batch_size=batch_size, n_epochs=n_epochs,
                       optimizer_kwargs={"lr": lr}, random_state=seed,
                       pl_trainer_kwargs=dict(QUIET_TRAINER), save_checkpoints=False,
                       force_reset=True)
        self.model = None
        self.scalers: dict[str, object] = {}
        self.fit_seconds = float("nan")

    @staticmethod
    def _ts(s: Series):
        import pandas as pd
        from darts import TimeSeries

        values = s.target.astype(np.float32)
        if s.freq is None:
            return TimeSeries.from_values(values)
        return TimeSeries.from_times_and_values(pd.DatetimeIndex(s.time), values, freq=s.freq)

    def fit(self, data, **kw) -> DartsRNN:
        from darts.dataprocessing.transformers import Scaler
        from darts.models import BlockRNNModel, RNNModel

        quiet()
        series = as_series(data, **kw)
        _univariate(series, "DartsRNN")
        train = []
        for s in series:
            sc = Scaler()  # darts' default: min-max to [0, 1], fitted on the training part
            train.append(sc.fit_transform(self._ts(s)))
            self.scalers[s.name] = sc
        H, L = self.horizon, self.input_len
        if self.block:
            self.model = BlockRNNModel(input_chunk_length=L, output_chunk_length=H,
                                       model=self.kind, **self.kw)
        else:
            self.model = RNNModel(input_chunk_length=L, training_length=L + H,
                                  model=self.kind, **self.kw)
        t0 = time.perf_counter()
        self.model.fit(train, verbose=False)
        self.fit_seconds = time.perf_counter() - t0
        self.series = series
        return self

    def predict(self, history=None, future=None, levels=None) -> Forecast:
        """Point forecasts of ``H`` steps after each history (``future``, ``levels``: ignored;
        the peers are run as point models here)."""
        if self.model is None:
            raise RuntimeError("DartsRNN is not fitted; call fit(data) first")
        hs = self.series if history is None else as_series(history)
        scs = [self.scalers.get(s.name) for s in hs]
        if any(sc is None for sc in scs):
            raise KeyError("DartsRNN scales each series with the scaler fitted on it; "
                           f"unknown series in history: {[s.name for s in hs]}")
        inputs = [sc.transform(self._ts(s)) for sc, s in zip(scs, hs)]
        preds = self.model.predict(self.horizon, series=inputs, verbose=False,
                                   show_warnings=False)
        means = [np.asarray(sc.inverse_transform(p).values(), dtype=np.float64).reshape(-1, 1)
                 for sc, p in zip(scs, preds)]
        return _point_forecast(hs, self.horizon, means)


class NeuralForecastLSTM:
    """neuralforecast ``LSTM`` (via ``NeuralForecast``) in rnnkit's protocol.

    Args:
        horizon: ``H``; input_len: ``L`` (neuralforecast ``input_size``).
        encoder_n_layers, encoder_hidden_size, decoder_layers, decoder_hidden_size, max_steps,
        lr, batch_size, scaler_type: neuralforecast's arguments.
        seed: neuralforecast ``random_seed``.
    """

    def __init__(self, horizon: int = 12, input_len: int = 36, encoder_n_layers: int = 2,
                 encoder_hidden_size: int = 128, decoder_layers: int = 2,
                 decoder_hidden_size: int = 128, max_steps: int = 200, lr: float = 1e-3,
                 batch_size: int = 32, scaler_type: str = "robust", seed: int = 1) -> None:
        self.horizon, self.input_len = horizon, input_len
        self.kw = dict(encoder_n_layers=encoder_n_layers,
                       encoder_hidden_size=encoder_hidden_size, decoder_layers=decoder_layers,
                       decoder_hidden_size=decoder_hidden_size, max_steps=max_steps,
                       learning_rate=lr, batch_size=batch_size, scaler_type=scaler_type,
                       random_seed=seed, **QUIET_TRAINER)
        self.nf = None
        self.fit_seconds = float("nan")

    @staticmethod
    def _frame(series: Sequence[Series]):
        import pandas as pd

        return pd.concat([pd.DataFrame({"unique_id": s.name, "ds": s.time,
                                        "y": s.target[:, 0]}) for s in series],
                         ignore_index=True)

    def fit(self, data, **kw) -> NeuralForecastLSTM:
        quiet()
        from neuralforecast import NeuralForecast
        from neuralforecast.models import LSTM

        series = as_series(data, **kw)
        _univariate(series, "NeuralForecastLSTM")
        freq = series[0].freq or 1
        model = LSTM(h=self.horizon, input_size=self.input_len, **self.kw)
        self.nf = NeuralForecast(models=[model], freq=freq)
        t0 = time.perf_counter()
        self.nf.fit(df=self._frame(series))
        self.fit_seconds = time.perf_counter() - t0
        self.series = series
        return self

    def predict(self, history=None, future=None, levels=None) -> Forecast:
        """Point forecasts of ``H`` steps after each history, without refitting."""
        if self.nf is None:
            raise RuntimeError("NeuralForecastLSTM is not fitted; call fit(data) first")
        hs = self.series if history is None else as_series(history)
        out = self.nf.predict(df=self._frame(hs))
        col = [c for c in out.columns if c not in ("unique_id", "ds")][0]
        means = [out.loc[out["unique_id"] == s.name, col].to_numpy(np.float64).reshape(-1, 1)
                 for s in hs]
        return _point_forecast(hs, self.horizon, means)


PEERS = {
    "darts_lstm": lambda H, L, seed: DartsRNN("LSTM", H, L, seed=seed),
    "darts_gru": lambda H, L, seed: DartsRNN("GRU", H, L, seed=seed),
    "darts_block_lstm": lambda H, L, seed: DartsRNN("LSTM", H, L, block=True, seed=seed),
    "nf_lstm": lambda H, L, seed: NeuralForecastLSTM(H, L, seed=seed),
}
# development series only: name -> (horizon, windows, input_len), as in benchmarks/forecast.py
SERIES = {"airpassengers": (12, 4, 36), "wineind": (12, 4, 36), "elec_equip": (12, 4, 36)}


def main(argv: list[str] | None = None) -> int:
    import torch

    from rnnkit.data.datasets import dataset_info, load_dataset
    from rnnkit.data.timeseries import from_dataframe
    from rnnkit.forecast.backtest import backtest
    from rnnkit.forecast.baselines import SeasonalNaive

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", nargs="*", default=["airpassengers"], choices=list(SERIES))
    ap.add_argument("--models", nargs="*", default=["snaive", *PEERS],
                    choices=["snaive", *PEERS])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    print(f"{'series':14s} {'model':17s} {'MASE':>6s} {'sMAPE':>6s} {'fit s':>7s} {'total s':>8s}")
    for name in args.series:
        info = dataset_info(name)
        H, W, L = SERIES[name]
        series = from_dataframe(load_dataset(name), "time", info.target[0], info.series,
                                freq=info.freq)
        for model in args.models:
            made: list = []

            def factory(model=model, made=made, H=H, L=L, m=info.season):
                m = (SeasonalNaive(season=m, horizon=H) if model == "snaive"
                     else PEERS[model](H, L, args.seed + 1))
                made.append(m)
                return m

            t = time.perf_counter()
            res = backtest(factory, series, horizon=H, n_windows=W, season=info.season,
                           levels=())
            total = time.perf_counter() - t
            fit_s = getattr(made[0], "fit_seconds", float("nan"))
            s = res.summary()
            print(f"{name:14s} {model:17s} {s['mase']:6.3f} {s['smape']:6.2f} {fit_s:7.1f} "
                  f"{total:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
