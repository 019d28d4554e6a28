r"""RNN forecaster: an encoder :class:`~rnnkit.Recurrent` over the last ``L`` steps and either a
direct multi-output head or an autoregressive decoder, with point, Gaussian or quantile
outputs.

Given past inputs :math:`x_{t-L+1..t}` (scaled targets, past covariates, known-future
covariates) the encoder gives :math:`h_t`. With ``decoder="direct"`` one linear layer maps
:math:`[h_t; u_{t+1..t+H}]` (flattened known-future covariates) to all :math:`H` steps at once;
with ``decoder="autoregressive"`` a second recurrent layer starts from the encoder state and
steps :math:`s_k = \mathrm{cell}([\hat y_{t+k-1}; u_{t+k}], s_{k-1})`, feeding back its own
point forecast at inference (the true value in training: teacher forcing).

The input's target channels are taken relative to the last observed value :math:`y_t`, and
the network outputs corrections to a baseline forecast :math:`b_{t+k}` (``baseline="last"``:
:math:`y_t`; ``"seasonal"``: the seasonal naive :math:`y_{t+k-m\lceil k/m\rceil}`;
``"seasonal_mean"``: the mean of that value over the :math:`n = \lfloor L/m \rfloor` seasons in
the input, shifted to the level of the last season,

.. math::
    b_{t+k} = \frac1n \sum_{j=0}^{n-1} y_{t+k-m\lceil k/m\rceil - jm}
              + \bar y_{\text{last } m} - \bar y_{\text{last } nm},

which equals the seasonal naive forecast on a noiseless linear trend plus a fixed pattern but
averages the noise of ``n`` seasons away (:math:`n = 1`: the seasonal naive); ``"none"``:
0). So a trending series never leaves the range seen in training, and an untrained network
(zero-initialised head) starts as the naive / seasonal naive forecast.

``ar_window=p > 0`` adds LSTNet's linear autoregressive "highway" (Lai et al., 2018) to the
baseline: :math:`b_{t+k} \mathrel{+}= \sum_{j<p} a_{kj}\,(y_{t-j} - y_t) + c_k`, one linear map
from the last ``p`` level-relative values (raw scaled values with ``baseline="none"``) to the
``H`` steps, shared by the target columns and zero-initialised. It gives the network the
linear AR structure an ARIMA model fits (e.g. the damped cycle of sunspots) so the recurrent
part only learns what is not linear.

``transform="log"`` (or ``"auto"``: log when every training value is positive) models
:math:`\log y`, which makes multiplicative seasonality additive.

Heads (per step and target): ``"point"`` (L1 or MSE loss), ``"gaussian"`` (mean and standard
deviation, Gaussian negative log-likelihood) and ``"quantile"`` (one output per quantile,
pinball loss; sorted at prediction so quantiles never cross).

Shapes: batch ``x [B, L, C+P+K]``, ``y [B, H, C]``, ``fut [B, H, K]``; network output
``[B, H, C, O]`` with ``O`` = 1, 2 or the number of quantiles.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .config import ForecasterConfig

__all__ = ["ForecastNet"]


class ForecastNet(nn.Module):
    """The network behind :class:`Forecaster`; a task model for :class:`rnnkit.train.Trainer`.

    Args:
        config: a :class:`ForecasterConfig`.
        n_targets: ``C``; n_past: ``P`` past-covariate features; n_future: ``K`` known-future
            features (calendar included). The input has ``C + P + K`` features per step.
    """

    def __init__(self, config: ForecasterConfig, n_targets: int, n_past: int = 0,
                 n_future: int = 0) -> None:
        super().__init__()
        self.config, self.C, self.P, self.K = config, n_targets, n_past, n_future
        c = config
        self.n_out = {"point": 1, "gaussian": 2, "quantile": len(c.quantiles)}[c.head]
        self.register_buffer("q", torch.tensor(c.quantiles or (0.5,)), persistent=False)
        self.encoder = Recurrent(c.cell, n_targets + n_past + n_future, c.hidden_size,
                                 num_layers=c.num_layers, dropout=c.dropout)
        if c.decoder == "direct":
            self.head = nn.Linear(c.hidden_size + c.horizon * n_future,
                                  c.horizon * n_targets * self.n_out)
        else:
            self.decoder = Recurrent(c.cell, n_targets + n_future, c.hidden_size,
                                     num_layers=c.num_layers, dropout=c.dropout)
            self.head = nn.Linear(c.hidden_size, n_targets * self.n_out)
        # start as the naive forecast: a zero change from the last value
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.ar = nn.Linear(c.ar_window, c.horizon) if c.ar_window else None
        if self.ar is not None:
            nn.init.zeros_(self.ar.weight)
            nn.init.zeros_(self.ar.bias)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: Tensor, fut: Tensor, y_teacher: Tensor | None = None) -> Tensor:
        """Raw outputs ``[B, H, C, O]`` in scaled units (level added back for means and
        quantiles). ``y_teacher [B, H, C]`` enables teacher forcing (autoregressive only)."""
        B, C, H = x.shape[0], self.C, self.config.horizon
        base, level = self._baseline(x)                         # [B, H, C], [B, 1, C]
        x = torch.cat([x[..., :C] - level, x[..., C:]], dim=-1)  # [B, L, C+P+K]
        if self.ar is not None:                                  # linear AR highway
            p = self.config.ar_window
            base = base + self.ar(x[:, -p:, :C].transpose(1, 2)).transpose(1, 2)
        enc, state = self.encoder(x)                                        # [B, L, Hd]
        if self.config.decoder == "direct":
            z = torch.cat([enc[:, -1], fut.reshape(B, -1)], dim=-1)
            out = self.head(z).view(B, H, C, self.n_out)
        elif y_teacher is not None:
            prev = torch.cat([x[:, -1:, :C], y_teacher[:, :-1] - level], dim=1)  # [B, H, C]
            dec, _ = self.decoder(torch.cat([prev, fut], dim=-1), state)
            out = self.head(dec).view(B, H, C, self.n_out)
        else:
            prev, outs = x[:, -1, :C], []
            for k in range(H):
                h, state = self.decoder.step(torch.cat([prev, fut[:, k]], dim=-1), state)
                o = self.head(h).view(B, C, self.n_out)
                outs.append(o)
                step = self._add_base(o.unsqueeze(1), base[:, k:k + 1])          # [B, 1, C, O]
                prev = self._point(step)[:, 0] - level[:, 0]
            out = torch.stack(outs, dim=1)
        return self._add_base(out, base)

    def _baseline(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Baseline forecast ``b [B, H, C]`` the network corrects, and the input level
        ``[B, 1, C]`` subtracted from the target channels."""
        c, C, L = self.config, self.C, x.shape[1]
        last = x[:, -1:, :C]
        if c.baseline == "none":
            zero = torch.zeros_like(last)
            return zero.expand(-1, c.horizon, -1), zero
        if c.baseline == "last" or c.season == 1:
            return last.expand(-1, c.horizon, -1), last
        m = c.season
        idx = L - m + torch.arange(c.horizon, device=x.device) % m           # y_{t+k-m⌈k/m⌉}
        if c.baseline == "seasonal":
            return x[:, idx, :C], last
        n = L // m                                                # full seasons in the input
        past = torch.stack([x[:, idx - j * m, :C] for j in range(n)]).mean(0)   # [B, H, C]
        shift = x[:, L - m:, :C].mean(1, keepdim=True) - x[:, L - n * m:, :C].mean(1, keepdim=True)
        return past + shift, last

    def _add_base(self, out: Tensor, base: Tensor) -> Tensor:
        if self.config.head == "gaussian":
            return torch.stack([out[..., 0] + base, out[..., 1]], dim=-1)
        return out + base.unsqueeze(-1)

    def _point(self, out: Tensor) -> Tensor:
        """Point forecast ``[B, H, C]`` from raw outputs: mean, median or mid quantile."""
        if self.config.head == "quantile":
            return out.sort(dim=-1).values.gather(
                -1, torch.full_like(out[..., :1], self._mid(), dtype=torch.long))[..., 0]
        return out[..., 0]

    def _mid(self) -> int:
        return int(torch.argmin((self.q - 0.5).abs()))

    @staticmethod
    def _std(raw: Tensor) -> Tensor:
        return F.softplus(raw) + 1e-3

    # -- training -----------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor], state: Any = None) -> LossOutput:
        """Training loss on a :class:`~rnnkit.data.timeseries.WindowDataset` batch."""
        x, y, fut = batch["x"], batch["y"], batch["fut"]
        out = self(x, fut, y_teacher=y if self.config.decoder == "autoregressive" else None)
        point = self._point(out)
        head = self.config.head
        if head == "point":
            loss = F.l1_loss(point, y) if self.config.point_loss == "mae" else \
                F.mse_loss(point, y)
        elif head == "gaussian":
            loss = F.gaussian_nll_loss(out[..., 0], y, self._std(out[..., 1]) ** 2, full=True)
        else:
            diff = y.unsqueeze(-1) - out                                     # [B, H, C, Q]
            loss = torch.maximum(self.q * diff, (self.q - 1) * diff).mean()
        mae = (point - y).abs().mean().detach()
        return LossOutput(loss, None, {"mae": mae}, weight=int(y.shape[0]))

    @torch.no_grad()
    def predict_params(self, x: Tensor, fut: Tensor) -> dict[str, Tensor]:
        """``{"point": [B, H, C]}`` plus ``"std"`` (gaussian) or ``"quantiles" [B, H, C, Q]``."""
        out = self(x, fut)
        res = {"point": self._point(out)}
        if self.config.head == "gaussian":
            res["std"] = self._std(out[..., 1])
        elif self.config.head == "quantile":
            res["quantiles"] = out.sort(dim=-1).values
        return res


