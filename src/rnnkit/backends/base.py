"""The backend contract: how a runner's time loop is executed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..cells import State

if TYPE_CHECKING:  # pragma: no cover
    from ..recurrent import Recurrent


class Backend:
    """A way to run a :class:`~rnnkit.Recurrent` over a whole sequence.

    Subclasses implement :meth:`unsupported` (why this backend cannot run a layer, or ``None``)
    and :meth:`run`. The runner validates inputs before calling :meth:`run`, so backends keep
    their hot path free of checks.
    """

    name: str = ""

    def unsupported(self, rnn: Recurrent) -> str | None:
        """``None`` if this backend can run ``rnn``, else the reason it cannot."""
        return None

    def auto_unsupported(self, rnn: Recurrent) -> str | None:
        """Why ``backend="auto"`` should not pick this backend for ``rnn`` (default: the same
        as :meth:`unsupported`); a backend can be stricter for ``auto`` than when named."""
        return self.unsupported(rnn)

    def run(
        self, rnn: Recurrent, x: Tensor, state: State, lengths: Tensor | None
    ) -> tuple[Tensor, State]:
        """Run all layers and directions.

        Args:
            rnn: the layer (its ``cells``, ``num_layers``, ``num_directions``, ``dropout``).
            x: ``[B, T, I]`` batch-first input.
            state: initial state in torch layout, ``[L * D, B, H]`` per state tensor.
            lengths: ``[B]`` int64 on the CPU, each in ``[1, T]``, or ``None`` (all ``T``).

        Returns:
            ``out [B, T, D * O]`` (zeros at padded steps) and the final state in torch layout,
            taken at each sequence's last valid step.
        """
        raise NotImplementedError
