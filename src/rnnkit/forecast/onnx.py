"""A forecaster's network as ONNX: scaled inputs in, the forecast's parameters out.

Graph (built on :mod:`rnnkit.export.onnx`), dynamic batch:
``x [B, L, C + P + K], fut [B, H, K] -> point [B, H, C]`` plus ``std [B, H, C]`` (gaussian
head) or ``quantiles [B, H, C, Q]`` (quantile head), in scaled units (``L = input_len``,
``H = horizon``; ``C`` targets, ``P`` past covariates, ``K`` known-future features, calendar
included) — :meth:`ForecastNet.predict_params`, with an autoregressive decoder unrolled over
the ``H`` steps. The description (``<file>.json``) holds what turns values into those inputs
and back: the per-series scaler and log transform, the sizes, the covariate names and their
per-series statistics, and the calendar features and holidays. :class:`rnnkit.onnx.OnnxForecaster`
forecasts a target-only model (no covariates, ``calendar=()``) from raw values with onnxruntime
alone; for the others, the calendar features of the forecast's dates are
:func:`rnnkit.data.timeseries.calendar_features` (pandas) and the graph runs as an
:class:`rnnkit.onnx.OnnxGraph`.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
from torch import Tensor, nn

from ..export.onnx import (
    ExportReport,
    _backend,
    check_destination,
    export_checked,
    write_metadata,
)
from .forecaster import Forecaster
from .network import ForecastNet

__all__ = ["export_forecaster"]


class _ForecastGraph(nn.Module):
    def __init__(self, net: ForecastNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, fut: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.net.predict_params(x, fut).values())


def export_forecaster(forecaster: Forecaster, path: str, *,
                      tolerance: float = 1e-4) -> ExportReport:
    """Write ``forecaster``'s network as ONNX (see the module docstring), check it with
    onnxruntime at batch sizes 1 and 5 against torch, and describe it."""
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"expected a Forecaster, got {type(forecaster).__name__}")
    forecaster._check_fitted()
    net = forecaster.net
    c = net.config
    check_destination(path)
    gen = torch.Generator().manual_seed(0)
    width = net.C + net.P + net.K

    def inputs(batch: int, steps: int) -> dict[str, Tensor]:
        return {"x": torch.randn(batch, steps, width, generator=gen),
                "fut": torch.randn(batch, c.horizon, net.K, generator=gen)}

    outputs = ["point"] + (["std"] if c.head == "gaussian" else
                           ["quantiles"] if c.head == "quantile" else [])
    dyn = {n: {0: "batch"} for n in ["x", "fut", *outputs]}
    was = net.training
    net.eval()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_backend(net.encoder, "fused"))
            if c.decoder != "direct":
                stack.enter_context(_backend(net.decoder, "loop"))
            report = export_checked(_ForecastGraph(net), os.fspath(path),
                                    inputs(3, c.input_len), outputs, dyn, inputs, "forecast",
                                    tolerance=tolerance,
                                    shapes=((1, c.input_len), (5, c.input_len)))
    finally:
        net.train(was)
    s0 = forecaster.series[0]
    write_metadata(path, "forecaster", report.graph, inputs=report.inputs, outputs=outputs,
                   input_len=c.input_len, horizon=c.horizon, head=c.head,
                   quantiles=list(c.quantiles or ()), log=bool(forecaster.log),
                   n_targets=net.C, n_past=net.P, n_future=net.K,
                   calendar=list(forecaster.calendar), freq=s0.freq,
                   targets=list(s0.target_names),
                   series=[s.name for s in forecaster.series],
                   scaler={"mean": forecaster.scaler.mean.tolist(),
                           "std": forecaster.scaler.std.tolist()},
                   past_covariates=list(s0.past_names), future_covariates=list(s0.future_names),
                   covariate_scaler=[{"past_mean": np.asarray(m[0]).tolist(),
                                      "past_std": np.asarray(sd[0]).tolist(),
                                      "future_mean": np.asarray(m[1]).tolist(),
                                      "future_std": np.asarray(sd[1]).tolist()}
                                     for m, sd in zip(forecaster._cov_mean,
                                                      forecaster._cov_std)],
                   holidays=[str(h) for h in (c.holidays or ())])
    return report
