"""The cell protocol shared by every recurrence, and the helpers the runner needs.

A *cell* is the recurrence equation for one time step. It is split in two so that a runner can
hoist the time-parallel work out of the loop:

* ``project_input(x)``: ``[..., I] -> [..., G]``, the input projection ``W_ih x + b_ih`` for
  every step at once (one large GEMM over ``B * T`` rows);
* ``step(xp_t, state)``: ``[B, G], state -> (out_t [B, O], new state)``, the part that reads
  ``h_{t-1}``.

``forward(x_t, state)`` keeps PyTorch's cell semantics (``torch.nn.LSTMCell`` and friends), so a
cell is also a drop-in for the torch cell of the same family.

A state is a tensor ``[B, H]`` or a named tuple of tensors (e.g. :class:`LSTMState`). The helpers
below map functions over either form, so the runner never needs to know which cell it runs.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["Cell", "LSTMState", "State", "lstm_initial_state", "state_map", "state_tensors",
           "uniform_init_"]


class LSTMState(NamedTuple):
    """State of an LSTM: hidden ``h`` ``[..., O]`` and cell ``c`` ``[..., H]``.

    A tuple subclass, so ``h, c = state`` works as with ``torch.nn.LSTM``.
    """

    h: Tensor
    c: Tensor


State = Tensor | tuple


def state_map(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` component-wise to one or more states of the same structure.

    >>> s = LSTMState(torch.ones(2, 3), torch.zeros(2, 4))
    >>> state_map(lambda t: t * 2, s).h[0, 0].item()
    2.0
    """
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    parts = [fn(*components) for components in zip(*states)]
    return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)


def state_tensors(state: State) -> tuple[Tensor, ...]:
    """The tensors of a state, in order: ``(h,)`` or ``(h, c)``."""
    return (state,) if isinstance(state, Tensor) else tuple(state)


def lstm_initial_state(cell: Cell, batch: int, *, device: Any = None,
                       dtype: torch.dtype | None = None) -> LSTMState:
    """Zero state of an LSTM-family cell: ``h [batch, O]``, ``c [batch, H]``; LSTM cells use it
    as their ``initial_state`` (``initial_state = lstm_initial_state``)."""
    h = torch.zeros(batch, cell.output_size, device=device, dtype=dtype)
    c = torch.zeros(batch, cell.hidden_size, device=device, dtype=dtype)
    return LSTMState(h, c)


def uniform_init_(module: nn.Module, hidden_size: int) -> None:
    """PyTorch's RNN initialization: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class Cell(nn.Module):
    """Base class of all cells. Subclasses set the sizes and implement the protocol.

    Required: :meth:`project_input` and :meth:`step` (and :meth:`initial_state` for a state
    other than one ``[B, H]`` tensor). Optional hooks, declared here with defaults so that the
    runner and the backends read them as plain attributes and a custom cell needs none:
    :meth:`begin_sequence` (no-op), :meth:`scan` with :attr:`has_scan`, :attr:`zoneout`,
    :attr:`recurrent_dropout` and :attr:`proj_size` (all off).

    Attributes:
        input_size: features ``I`` of ``x_t``.
        hidden_size: size ``H`` of the recurrent state.
        output_size: size ``O`` of ``out_t`` (``H`` unless the cell projects, as LSTM with
            ``proj_size``).
        gate_size: width ``G`` of ``project_input``'s output.
        proj_size: size of the LSTM output projection ``weight_hr`` (``0``: none).
        zoneout: zoneout probability of the state (``0``: off; see
            :mod:`rnnkit.cells.regularization`).
        recurrent_dropout: variational dropout probability of ``h_{t-1}`` (``0``: off).
        has_scan: whether the cell implements :meth:`scan`; a subclass that defines ``scan``
            gets ``True`` without declaring it.
        feature_dims: rank of one step's features: ``1`` for vector cells (``x_t [B, I]``),
            ``3`` for spatial cells (``x_t [B, C, H, W]``, e.g. ConvLSTM), whose ``I``, ``H``
            and ``O`` count channels and whose :meth:`initial_state` takes the trailing sizes
            as ``spatial_size=(H, W)`` (the runner passes them; vector cells never get it).

    >>> from rnnkit.cells import get_cell
    >>> get_cell("mingru").has_scan, get_cell("lstm").has_scan, get_cell("gru")(2, 3).zoneout
    (True, False, 0.0)
    """

    input_size: int
    hidden_size: int
    output_size: int
    gate_size: int
    proj_size: int = 0
    zoneout: float = 0.0
    recurrent_dropout: float = 0.0
    has_scan: ClassVar[bool] = False
    feature_dims: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "scan" in cls.__dict__ and "has_scan" not in cls.__dict__:
            cls.has_scan = True

    def project_input(self, x: Tensor) -> Tensor:
        """``[..., I] -> [..., G]``: the part of the step that does not read the state. The
        default is the input GEMM ``W_ih x + b_ih`` of the cells that keep ``weight_ih [G, I]``
        and ``bias_ih [G]`` (or ``None``); cells with another input path override it."""
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def reset_parameters(self) -> None:
        """PyTorch's RNN initialization, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)); cells with
        another scheme override it."""
        uniform_init_(self, self.hidden_size)

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:  # pragma: no cover
        """``([B, G], state) -> (out_t [B, O], new_state)``: one step of the recurrence.

        ``xp_t`` is a view of :meth:`project_input`'s output (one of its ``unbind`` along
        time): read it, never modify it in place (autograd refuses in-place changes of such a
        view; ``xp_t = xp_t + ...`` is fine)."""
        raise NotImplementedError

    def initial_state(
        self, batch: int, *, device: Any = None, dtype: torch.dtype | None = None
    ) -> State:
        """Zero state for ``batch`` sequences: ``[batch, H]``."""
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    # -- optional hooks -------------------------------------------------------------------
    def begin_sequence(self) -> None:
        """Called by the backends before each direction runs over a sequence (per-sequence
        setup, e.g. drawing one recurrent-dropout mask); does nothing by default."""

    def scan(self, xp: Tensor, state: State, mask: Tensor | None = None
             ) -> tuple[Tensor, State]:
        """All steps of one direction at once (the ``scan`` backend; only for cells whose
        gates do not read ``h_{t-1}``): ``xp [B, T, G]`` from :meth:`project_input`, ``state``
        ``[B, H]``, ``mask [B, T, 1]`` (bool, false at padded steps: the state is kept there)
        -> ``(out [B, T, O], final state)``. Cells that implement it have :attr:`has_scan`."""
        raise NotImplementedError(f"{type(self).__name__} has no parallel form (scan)")

    def _init_biases(self, size: int, bias: bool, **kw: Any) -> None:
        """``bias_ih`` and ``bias_hh`` ``[size]`` (uninitialized), or both registered as
        ``None`` when ``bias`` is false."""
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, nn.Parameter(torch.empty(size, **kw)) if bias else None)

    # -- torch-cell semantics -------------------------------------------------------------
    def forward(self, input: Tensor, hx: State | None = None) -> State:
        """One step with torch's cell API (``torch.nn.RNNCell/LSTMCell/GRUCell``).

        ``input [B, I]`` or unbatched ``[I]``; ``hx`` as :meth:`initial_state` makes it (a plain
        ``(h, c)`` tuple is accepted for named-tuple states), zeros when omitted. Returns the new
        state: ``h'`` or ``(h', c')``.
        """
        return self.cell_forward(input, hx)

    #: constructor options shown by :meth:`extra_repr` when they differ from the default in the
    #: cell's own signature (IndRNN's nonlinearity defaults to relu, Elman's to tanh)
    _repr_options: tuple[str, ...] = ("bias", "nonlinearity", "proj_size", "recurrent_max",
                                      "zoneout", "recurrent_dropout")

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        params = inspect.signature(type(self)).parameters
        for name in self._repr_options:
            param = params.get(name)
            if param is None or param.default is param.empty:
                continue
            value = getattr(self, name, param.default)
            if value != param.default:
                s += f", {name}={value!r}"
        return s

    def _check_step_input(self, x: Tensor) -> None:
        if x.dim() not in (1, 2):
            raise ValueError(
                f"{type(self).__name__} expects input of shape [B, {self.input_size}] or "
                f"[{self.input_size}], got {list(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} was built for {self.input_size} input features, "
                f"got {x.shape[-1]} (input shape {list(x.shape)})"
            )

    def _check_step_state(self, state: State, batch: int, unbatched: bool) -> None:
        template = self.initial_state(batch, device="meta")
        expected, given = state_tensors(template), state_tensors(state)
        if isinstance(template, Tensor) != isinstance(state, Tensor) or \
                len(given) != len(expected):
            kind = "a tensor" if isinstance(template, Tensor) else f"a tuple of {len(expected)}"
            got = type(state).__name__
            raise ValueError(f"{type(self).__name__} expects the state as {kind}, got "
                             f"{got if isinstance(state, Tensor) else f'{got} of {len(given)}'}")
        for g, e in zip(given, expected):
            want = list(e.shape[1:]) if unbatched else list(e.shape)
            if not isinstance(g, Tensor) or list(g.shape) != want:
                raise ValueError(
                    f"{type(self).__name__} expects a state tensor of shape {want}, "
                    f"got {list(g.shape) if isinstance(g, Tensor) else type(g).__name__}"
                )

    def cell_forward(self, x: Tensor, state: State | None) -> State:
        """One step with torch's cell API: unbatched ``[I]`` or batched ``[B, I]`` input."""
        self._check_step_input(x)
        if state is not None and not isinstance(state, Tensor):
            template = self.initial_state(1, device="meta")
            if hasattr(template, "_fields") and type(state) is not type(template) \
                    and len(state) == len(template):
                state = type(template)(*state)  # e.g. a plain (h, c) tuple -> LSTMState
        unbatched = x.dim() == 1
        if unbatched:
            x = x.unsqueeze(0)
            if state is not None:
                self._check_step_state(state, 1, unbatched=True)
                state = state_map(lambda s: s.unsqueeze(0), state)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        elif not unbatched:
            self._check_step_state(state, x.shape[0], unbatched=False)
        _, new = self.step(self.project_input(x), state)
        if unbatched:
            new = state_map(lambda s: s.squeeze(0), new)
        return new
