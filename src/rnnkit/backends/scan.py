"""The parallel-scan backend, for cells whose gates read only ``x_t`` (minGRU, minLSTM).

Such a cell implements :meth:`~rnnkit.cells.Cell.scan` (so its ``has_scan`` is true), which
computes every state of one direction at once (see :mod:`rnnkit.cells.minimal`). Layers,
directions, lengths and inter-layer dropout are the runner's, as for every backend.

>>> import torch
>>> from rnnkit import Recurrent
>>> layer = Recurrent("mingru", 3, 8, num_layers=2, backend="scan")
>>> out, h = layer(torch.randn(2, 50, 3), lengths=[50, 20])
>>> bool(out[1, 20:].eq(0).all())
True
"""

from __future__ import annotations

from torch import Tensor

from ..cells import Cell, State
from .base import Backend

__all__ = ["ScanBackend", "scan_direction"]


def scan_direction(cell: Cell, x: Tensor, state: State, mask: Tensor | None
                   ) -> tuple[Tensor, State]:
    """One direction of one layer by the cell's parallel scan: ``x [B, T, I]`` ->
    ``(out [B, T, O], final state)``; ``mask [B, T, 1]`` zeroes padded outputs and freezes the
    state there, as in :func:`~rnnkit.backends.loop.run_direction`."""
    out, final = cell.scan(cell.project_input(x), state, mask=mask)
    if mask is not None:
        out = out.masked_fill(~mask, 0.0)
    return out, final


class ScanBackend(Backend):
    """Runs every direction with ``cell.scan``; serves layers whose cells all have one."""

    name = "scan"
    direction = staticmethod(scan_direction)

    def unsupported(self, rnn) -> str | None:
        kind = type(rnn.cells[0])
        if not all(c.has_scan for c in rnn.cells):
            return (f"{kind.__name__} has no parallel form (its gates read h_(t-1)); the scan "
                    f"backend runs cells with a scan() method, e.g. 'mingru' and 'minlstm'")
        return None
