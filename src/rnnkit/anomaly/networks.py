"""The networks the anomaly scorers train besides the forecasting wing's
:class:`~rnnkit.forecast.ForecastNet`: the (pooled, position-aware) LSTM autoencoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..recurrent import Recurrent
from ..train.protocol import LossOutput

__all__ = ["LSTMAutoencoder"]


class LSTMAutoencoder(nn.Module):
    r"""Sequence autoencoder: ``x [B, W, C]`` → average-pooled by ``pool`` to
    ``u [B, W/p, C]`` → encoder final output ``[B, H]`` repeated ``W/p`` times (with
    ``position``: and a last input column :math:`\tau` running from -1 to 1) → decoder
    ``[B, W/p, H]`` → linear ``[B, W/p, C]``, the reconstruction of ``u`` (:meth:`target`).
    A task model (``loss`` = MSE). ``pool=1, position=False`` is the plain recipe."""

    def __init__(self, n_features: int, hidden_size: int = 32, cell: str = "lstm",
                 num_layers: int = 1, pool: int = 1, position: bool = False) -> None:
        super().__init__()
        self.pool, self.position = pool, position
        self.encoder = Recurrent(cell, n_features, hidden_size, num_layers=num_layers)
        self.decoder = Recurrent(cell, hidden_size + int(position), hidden_size,
                                 num_layers=num_layers)
        self.out = nn.Linear(hidden_size, n_features)

    def target(self, x: Tensor) -> Tensor:
        """``x [B, W, C]`` average-pooled to ``[B, W/p, C]`` (what :meth:`forward` rebuilds)."""
        if self.pool == 1:
            return x
        B, W, C = x.shape
        return x.reshape(B, W // self.pool, self.pool, C).mean(2)

    def forward(self, x: Tensor) -> Tensor:
        u = self.target(x)                                       # [B, W/p, C]
        enc, _ = self.encoder(u)                                 # [B, W/p, H]
        z = enc[:, -1:].expand(-1, u.shape[1], -1)               # [B, W/p, H]
        if self.position:
            tau = torch.linspace(-1.0, 1.0, u.shape[1], device=u.device, dtype=u.dtype)
            z = torch.cat([z, tau.view(1, -1, 1).expand(u.shape[0], -1, 1)], -1)
        dec, _ = self.decoder(z)
        return self.out(dec)                                     # [B, W/p, C]

    def loss(self, batch: dict[str, Tensor], state: Any = None) -> LossOutput:
        x = batch["x"]
        loss = torch.mean((self(x) - self.target(x)) ** 2)
        return LossOutput(loss, None, {}, weight=int(x.shape[0]))
