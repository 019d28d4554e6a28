"""The runner: a cell unrolled over time, stacked in layers, in one or two directions."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .backends import resolve_backend
from .backends.loop import reverse_padded
from .cells import Cell, State, available_cells, get_cell, state_map, state_tensors
from .checks import positive_ints, probabilities

__all__ = ["Recurrent"]


def all_finite(x: Tensor) -> bool:
    """Whether ``x`` has no NaN or infinite entry, in one pass: NaN and infinities propagate
    through a sum, so a finite sum proves it; a non-finite one (possibly an overflow of finite
    values) is confirmed element-wise. A quarter of the cost of ``torch.isfinite(x).all()``.

    >>> all_finite(torch.tensor([1.0, 3e38, 3e38])), all_finite(torch.tensor([1.0, float("nan")]))
    (True, False)
    """
    total = x.detach().sum()
    return bool(torch.isfinite(total)) or bool(torch.isfinite(x).all())


def _check_cell_options(cell_cls: type[Cell], options: dict[str, Any]) -> None:
    """Refuse options the cell's constructor does not take, naming those it does and the
    registered cells that take the unknown ones (instead of a bare ``__init__`` TypeError)."""
    params = inspect.signature(cell_cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    own = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
           and n not in ("input_size", "hidden_size", "device", "dtype")]
    unknown = [n for n in options if n not in own]
    if not unknown:
        return
    hints = []
    for name in unknown:
        takers = [c for c in available_cells(None)
                  if name in inspect.signature(get_cell(c)).parameters]
        hints.append(f"{name!r} is taken by: {', '.join(takers)}" if takers else
                     f"no registered cell takes {name!r}")
    raise TypeError(f"{cell_cls.__name__} has no option {', '.join(map(repr, unknown))}; its "
                    f"options are: {', '.join(own) or 'none'} ({'; '.join(hints)})")


class Recurrent(nn.Module):
    r"""A recurrent layer: ``cell`` run over a sequence, ``num_layers`` deep, optionally in both
    directions. Equal to ``torch.nn.RNN/LSTM/GRU`` for the standard cells, and runs any
    registered cell.

    For layer :math:`l` and direction :math:`d`, with :math:`x^{(0)}_t = x_t`:

    .. math::
        (y^{(l,d)}_t, s^{(l,d)}_t) = \mathrm{cell}^{(l,d)}(x^{(l)}_t, s^{(l,d)}_{t \mp 1}),
        \qquad x^{(l+1)}_t = \mathrm{dropout}([y^{(l,0)}_t ; y^{(l,1)}_t])

    where the reverse direction (``d = 1``) runs from each sequence's last valid step to its
    first. The same cell weights are shared by every time step.

    Args:
        cell: a registered cell name (``"lstm"``, ``"gru"``, ``"elman"``, ...) or a Cell class.
        input_size: features ``I`` of the input.
        hidden_size: state size ``H`` of each cell.
        num_layers: stacked layers ``L``.
        bidirectional: run a second, reversed direction (``D = 2``) and concatenate.
        dropout: dropout on the outputs of every layer but the last (training only).
        batch_first: ``[B, T, F]`` tensors if true (rnnkit's default), else ``[T, B, F]``.
        backend: ``"auto"``, ``"loop"``, ``"fused"`` or any registered backend; can be changed
            later through the ``backend`` attribute.
        device, dtype: where and in what type to create the parameters.
        check_finite: refuse inputs with NaN or infinite values (one reduction per call; turn
            it off for the last microseconds of streaming inference).
        **cell_options: passed to every cell (e.g. ``bias=False``, ``proj_size=64``,
            ``nonlinearity="relu"``).

    Shapes (``batch_first=True``):
        * input ``x``: ``[B, T, I]``, ``[T, I]`` (unbatched) or a ``PackedSequence``;
        * ``lengths``: ``[B]`` integers in ``[1, T]``; padded steps output zeros and the final
          state of each sequence is taken at its own last valid step;
        * ``state``: ``[L * D, B, H]``, or ``LSTMState(h [L * D, B, O], c [L * D, B, H])``;
        * output: ``[B, T, D * O]`` where ``O`` is the cell's output size (``H``, or
          ``proj_size``); a ``PackedSequence`` for packed input.

    Spatial cells (``feature_dims = 3``, e.g. ``"convlstm"``) take batched feature maps:
    input ``[B, T, C, H, W]`` with ``C = input_size``, state ``[L * D, B, H_c, H, W]`` per
    tensor, output ``[B, T, D * H_c, H, W]`` (directions concatenated on the channel axis);
    they run on the ``loop`` backend.

    >>> rnn = Recurrent("lstm", 8, 16, num_layers=2, bidirectional=True)
    >>> out, (h, c) = rnn(torch.randn(4, 10, 8), lengths=[10, 7, 3, 1])
    >>> tuple(out.shape), tuple(h.shape)
    ((4, 10, 32), (4, 4, 16))
    """

    def __init__(
        self,
        cell: str | type[Cell],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        backend: str = "auto",
        device: Any = None,
        dtype: torch.dtype | None = None,
        check_finite: bool = True,
        **cell_options: Any,
    ) -> None:
        super().__init__()
        cell_cls = get_cell(cell) if isinstance(cell, str) else cell
        if not (isinstance(cell_cls, type) and issubclass(cell_cls, Cell)):
            raise TypeError(f"cell must be a registered name or a Cell subclass, got {cell!r}")
        positive_ints(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        _check_cell_options(cell_cls, cell_options)
        probabilities(dropout=dropout)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.check_finite = check_finite
        self.feature_dims = cell_cls.feature_dims  # rank of one step's features (cells.base)
        cells = []
        layer_input = input_size
        for _ in range(num_layers):
            for _ in range(self.num_directions):
                cells.append(cell_cls(layer_input, hidden_size, device=device, dtype=dtype,
                                      **cell_options))
            layer_input = self.num_directions * cells[-1].output_size
        self.cells = nn.ModuleList(cells)
        self.output_size = cells[-1].output_size * self.num_directions
        self.backend = backend

    # -- backend ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the backend that runs :meth:`forward` (``"auto"`` picks per call)."""
        return self._backend

    @backend.setter
    def backend(self, name: str) -> None:
        # resolving raises at once if the name is unknown or cannot serve this layer
        self._resolved = resolve_backend(name, self)
        self._backend = name

    @property
    def active_backend(self) -> str:
        """The backend ``auto`` resolves to for this layer (or the explicit choice)."""
        return self._resolved.name

    def _apply(self, fn, *args, **kwargs):
        # moving or casting the parameters can change which backend serves best
        result = super()._apply(fn, *args, **kwargs)
        if "_backend" in self.__dict__:
            self.backend = self._backend
        return result

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor | PackedSequence,
        state: State | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the layer over ``x``; see the class docstring for shapes."""
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise ValueError("pass either a PackedSequence or lengths, not both")
            return self._forward_packed(x, state)
        x = self._from_autocast(x)
        self._check_input(x)
        unbatched = x.dim() == 1 + self.feature_dims
        if unbatched:
            xb = x.unsqueeze(0)  # [1, T, I]
        else:
            xb = x if self.batch_first else x.transpose(0, 1)  # [B, T, I] (or [B, T, C, H, W])
        B, T = xb.shape[:2]
        lengths = self._check_lengths(lengths, B, T, unbatched)
        state = self._check_state(state, xb, unbatched)
        out, final = self._run(xb, state, lengths)
        if unbatched:
            return out.squeeze(0), state_map(lambda s: s.squeeze(1), final)
        return (out if self.batch_first else out.transpose(0, 1)), final

    def _run(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """Validated ``x [B, T, I]``, state in torch layout, ``lengths [B]`` (CPU int64) or
        ``None`` -> ``(out [B, T, D * O], final state)``: the backend's whole-stack kernel if it
        has one for this call, else :meth:`_run_stack` over its single directions."""
        backend = self._resolved
        result = backend.run_stack(self, x, state, lengths)
        if result is None:
            result = self._run_stack(backend.direction, x, state, lengths)
        return result

    def _run_stack(self, direction, x: Tensor, state: State, lengths: Tensor | None
                   ) -> tuple[Tensor, State]:
        """The stack: every layer and direction through ``direction(cell, x, state, mask)``
        (a backend's :meth:`~rnnkit.backends.Backend.direction`), the reverse direction on
        each sequence reversed within its own length, inter-layer dropout while training.

        ``x [B, T, I]``, ``state`` ``[L * D, B, H]`` per tensor, ``lengths [B]`` or ``None``
        -> ``(out [B, T, D * O], final state [L * D, B, H] per tensor)``.
        """
        B, T = x.shape[:2]
        mask = None
        if lengths is not None:
            mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(x.device)
            mask = mask.view(B, T, *[1] * self.feature_dims)  # [B, T, 1] (or [B, T, 1, 1, 1])
        D = self.num_directions
        finals = []
        inp = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                s0 = state_map(lambda s, k=k: s[k], state)
                seq = inp if d == 0 else reverse_padded(inp, lengths)
                out, s = direction(self.cells[k], seq, s0, mask)
                outs.append(out if d == 0 else reverse_padded(out, lengths))
                finals.append(s)
            # [B, T, D * O] (spatial cells: [B, T, D * O, H, W], on the channel axis)
            inp = outs[0] if D == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, training=True)
        final = state_map(lambda *s: torch.stack(s, dim=0), *finals)
        return inp, final

    def _forward_packed(self, x: PackedSequence, state: State | None):
        padded, lengths = pad_packed_sequence(x, batch_first=True)  # original batch order
        padded = self._from_autocast(padded)
        self._check_input(padded)
        state = self._check_state(state, padded, unbatched=False)
        out, final = self._run(padded, state, lengths)
        order = x.sorted_indices
        if order is not None:
            out, lengths = out.index_select(0, order), lengths.index_select(0, order.cpu())
        data = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=True).data
        return PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices), final

    # -- streaming -------------------------------------------------------------------------
    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One time step through all layers, for streaming inference.

        ``x_t [B, I]`` (or ``[I]``), state as in :meth:`forward` -> ``(out_t [B, O], state)``;
        spatial cells take ``x_t [B, C, H, W]`` -> ``out_t [B, O, H, W]``.
        Calling it for t = 1..T equals one :meth:`forward` over the whole sequence.
        Unidirectional layers only: a reverse direction needs the future.
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional layer: the reverse direction reads "
                             "the whole sequence; use forward() instead")
        fd = self.feature_dims
        if fd > 1:
            if not isinstance(x_t, Tensor) or x_t.dim() != 1 + fd:
                raise ValueError(f"step() expects x_t of shape [B, {self.input_size}, H, W], "
                                 f"got {_shape(x_t)}")
            out, state = self.forward(x_t.unsqueeze(1), state)  # T = 1
            return out.squeeze(1), state
        if not isinstance(x_t, Tensor) or x_t.dim() not in (1, 2):
            raise ValueError(f"step() expects x_t of shape [B, {self.input_size}] or "
                             f"[{self.input_size}], got {_shape(x_t)}")
        unbatched = x_t.dim() == 1
        out, state = self.forward(x_t.unsqueeze(-2), state)  # T = 1
        return out.squeeze(-2 if not unbatched else 0), state

    # -- validation (once, at the public boundary) -----------------------------------------
    def _from_autocast(self, x):
        """Inside an autocast region an input in the autocast dtype (the output of an autocast
        ``Linear``, say) is taken back to the parameters' dtype, as ``torch.nn.LSTM`` accepts
        it; the backends' ops then autocast as torch's would. Anything else is left to
        :meth:`_check_input`."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return x
        dtype, kind = self.cells[0].weight_ih.dtype, x.device.type
        if (x.dtype != dtype and torch.is_autocast_enabled(kind)
                and x.dtype == torch.get_autocast_dtype(kind)):
            return x.to(dtype)
        return x

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(x).__name__}")
        if self.feature_dims > 1:
            self._check_spatial_shape(x)
        else:
            layout = "[B, T, I]" if self.batch_first else "[T, B, I]"
            if x.dim() not in (2, 3):
                raise ValueError(f"expected input of shape {layout} or [T, I] with "
                                 f"I = {self.input_size}, got shape {list(x.shape)}")
            if x.shape[-1] != self.input_size:
                want = layout.replace("I", str(self.input_size))
                raise ValueError(
                    f"expected input of shape {want}, got {list(x.shape)}: the input has "
                    f"{x.shape[-1]} features but the layer was built for {self.input_size}"
                )
            time_dim = 0 if x.dim() == 2 else (1 if self.batch_first else 0)
            if x.shape[time_dim] == 0:
                raise ValueError("the input sequence is empty (T = 0); give at least one step")
        param = self.cells[0].weight_ih
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {x.dtype}; "
                            f"convert it with x.float()")
        if x.dtype != param.dtype:
            raise TypeError(
                f"input dtype {x.dtype} does not match the layer's parameters ({param.dtype}); "
                f"convert one of them, e.g. x.to({param.dtype}) or layer.to({x.dtype})"
            )
        if x.device != param.device:
            raise ValueError(f"input is on {x.device} but the layer is on {param.device}; "
                             f"move one of them with .to(device)")
        if self.check_finite and not all_finite(x):
            raise ValueError("input contains NaN or infinite values; clean or impute them first")

    def _check_spatial_shape(self, x: Tensor) -> None:
        """Shape of a spatial cell's input: batched ``[B, T, C, H, W]`` (or ``[T, B, ...]``)
        only, ``C = input_size``, no empty axis."""
        fd, C = self.feature_dims, self.input_size
        maps = "C, H, W" if fd == 3 else ", ".join(f"F{i}" for i in range(fd))
        layout = f"[B, T, {maps}]" if self.batch_first else f"[T, B, {maps}]"
        name = type(self.cells[0]).__name__
        if x.dim() != 2 + fd:
            raise ValueError(
                f"{name} runs on sequences of feature maps: expected input of shape {layout} "
                f"with C = {C}, got shape {list(x.shape)}; a single sequence needs a batch "
                f"axis (x.unsqueeze(0)), a batch of single frames a time axis")
        if x.shape[-fd] != C:
            raise ValueError(f"expected input of shape {layout} with C = {C}, got "
                             f"{list(x.shape)}: the input has {x.shape[-fd]} channels but the "
                             f"layer was built for {C} (input_size)")
        if 0 in x.shape:
            raise ValueError(f"the input {list(x.shape)} ({layout}) has an empty axis; give "
                             f"at least one sequence, one step and one pixel")

    def _check_lengths(self, lengths, B: int, T: int, unbatched: bool) -> Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths).to("cpu")
        if unbatched and lengths.dim() == 0:
            lengths = lengths.reshape(1)
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be integers, got {lengths.dtype}")
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(f"lengths must have shape [{B}] (one per sequence), "
                             f"got {list(lengths.shape)}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must lie in [1, T={T}], got values from {lo} to {hi}")
        return lengths.long()

    def _check_state(self, state: State | None, x: Tensor, unbatched: bool) -> State:
        B = x.shape[0]
        LD = self.num_layers * self.num_directions
        # spatial cells size their state from the input's feature maps ([B, T, C, H, W])
        spatial = {} if self.feature_dims == 1 else \
            {"spatial_size": tuple(x.shape[3:])}
        if state is None:
            template = self.cells[0].initial_state(B, device=x.device, dtype=x.dtype, **spatial)
            return state_map(lambda s: s.unsqueeze(0).expand(LD, *s.shape).contiguous(),
                             template)
        if spatial:
            template = self.cells[0].initial_state(1, device="meta", **spatial)
        else:
            if "_state_template" not in self.__dict__:  # sizes and type only, computed once
                self._state_template = self.cells[0].initial_state(1, device="meta")
            template = self._state_template
        want = [t.shape for t in state_tensors(template)]
        if isinstance(template, Tensor) != isinstance(state, Tensor) or \
                len(state_tensors(state)) != len(want):
            kind = "a tensor" if isinstance(template, Tensor) else f"a tuple of {len(want)}"
            raise ValueError(f"{type(self.cells[0]).__name__} expects the state as {kind}, "
                             f"got {type(state).__name__}")
        parts = []
        for i, (s, w) in enumerate(zip(state_tensors(state), want)):
            shape = [LD, *w[1:]] if unbatched else [LD, B, *w[1:]]
            if not isinstance(s, Tensor) or list(s.shape) != shape:
                layout = "B, H" if not spatial else "B, H, height, width"
                raise ValueError(f"expected state tensor {i} of shape {shape} "
                                 f"([num_layers * num_directions, {layout}]), got {_shape(s)}")
            if s.dtype != x.dtype and s.device == x.device and s.is_floating_point() \
                    and torch.is_autocast_enabled(x.device.type):
                s = s.to(x.dtype)  # a state returned under autocast is in the autocast dtype
            if s.dtype != x.dtype or s.device != x.device:
                raise TypeError(f"state tensor {i} is {s.dtype} on {s.device} but the input is "
                                f"{x.dtype} on {x.device}; convert the state with .to(x)")
            parts.append(s.unsqueeze(1) if unbatched else s)
        if isinstance(template, Tensor):
            return parts[0]
        return type(template)(*parts)

    def extra_repr(self) -> str:
        cell = type(self.cells[0]).__name__
        s = f"{cell}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + f", batch_first={self.batch_first}, backend={self._backend!r}"


def _shape(x: Any) -> str:
    return str(list(x.shape)) if isinstance(x, Tensor) else type(x).__name__


