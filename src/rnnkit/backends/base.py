"""The backend contract: how one direction of one layer (or, optionally, a whole stack) runs.

The runner (:class:`~rnnkit.Recurrent`) owns the stack: it validates the inputs, builds the
padding mask, runs the layers and directions in order, reverses each sequence within its own
length for the reverse direction and applies inter-layer dropout. A backend only says how one
direction of one layer runs over time (:meth:`Backend.direction`), unless it claims the whole
stack (:meth:`Backend.run_stack`), as ``fused`` does because PyTorch's kernels run every layer
and direction in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from ..cells import Cell, State

if TYPE_CHECKING:  # pragma: no cover
    from ..recurrent import Recurrent


class Backend:
    """A way to run the time loop of a :class:`~rnnkit.Recurrent`.

    Subclasses implement :meth:`unsupported` (why this backend cannot run a layer, or ``None``)
    and :meth:`direction`; a backend whose kernels run the whole stack at once overrides
    :meth:`run_stack` instead. The runner validates inputs before calling either, so backends
    keep their hot path free of checks.
    """

    name: str = ""
    #: ranks of per-step features (:attr:`~rnnkit.cells.Cell.feature_dims`) that
    #: :meth:`direction` handles: ``(1,)``, vector cells ``[B, T, I]``, unless declared
    feature_dims: ClassVar[tuple[int, ...]] = (1,)

    def unsupported(self, rnn: Recurrent) -> str | None:
        """``None`` if this backend can run ``rnn``, else the reason it cannot."""
        return None

    def auto_unsupported(self, rnn: Recurrent) -> str | None:
        """Why ``backend="auto"`` should not pick this backend for ``rnn`` (default: the same
        as :meth:`unsupported`); a backend can be stricter for ``auto`` than when named."""
        return self.unsupported(rnn)

    def direction(self, cell: Cell, x: Tensor, state: State, mask: Tensor | None
                  ) -> tuple[Tensor, State]:
        """Run one direction of one layer over time.

        Args:
            cell: the cell of this layer and direction.
            x: ``[B, T, I]`` batch-first input, already reversed (within each sequence's length)
                for the reverse direction.
            state: the initial state of this cell, ``[B, H]`` per state tensor.
            mask: ``[B, T, 1]`` bool, false at padded steps, or ``None`` (no padding).

        Returns:
            ``out [B, T, O]`` (zeros at padded steps) and the final state, which padded steps
            leave unchanged (so it is the state at each sequence's last valid step).
        """
        raise NotImplementedError(f"backend {self.name!r} does not run single directions")

    def run_stack(
        self, rnn: Recurrent, x: Tensor, state: State, lengths: Tensor | None
    ) -> tuple[Tensor, State] | None:
        """Run all layers and directions at once, or return ``None`` (the default) to let the
        runner stack :meth:`direction` calls.

        Args:
            rnn: the layer (its ``cells``, ``num_layers``, ``num_directions``, ``dropout``,
                ``training``).
            x: ``[B, T, I]`` batch-first input.
            state: initial state in torch layout, ``[L * D, B, H]`` per state tensor.
            lengths: ``[B]`` int64 on the CPU, each in ``[1, T]``, or ``None`` (all ``T``).

        Returns:
            ``out [B, T, D * O]`` (zeros at padded steps) and the final state in torch layout,
            taken at each sequence's last valid step; or ``None``.
        """
        return None
