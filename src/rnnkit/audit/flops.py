r"""Exact FLOPs of recurrent models: a formula per cell, PyTorch's counter for the rest.

``torch.utils.flop_counter.FlopCounterMode`` counts the matrix products an operator runs, at
2 FLOPs per multiply-add, but it sees nothing inside fused kernels: ``torch.nn.LSTM`` and
rnnkit's fused, compiled and native LSTM paths count **0**. So the recurrent layers are counted
by formula and everything else (embeddings, output layers, attention, convolutions) by
``FlopCounterMode``; the formula gives the number the plain loop backend makes the counter
report, on every backend. The convention is the counter's: matrix products only (element-wise
gate math, biases, normalisation are not counted; they are O(H) per step against O(H^2)).

For one cell (one layer, one direction) with input matrices of ``M_in`` multiply-adds per step
and row (``weight_ih``: ``G x I``), recurrent ones ``M_rec`` (``weight_hh``: ``G x O``) and
others ``M_out`` (an LSTM projection ``weight_hr``), over a batch of ``B`` sequences of ``T``
steps (padded steps included: every backend but packed cuDNN computes them):

.. math::
    F_\text{fwd} = 2BT\,(M_\text{in} + M_\text{rec} + M_\text{out}), \qquad
    F_\text{bwd} = 2F_\text{fwd} - 2BT\,M_\text{in}[x \text{ needs no grad}]
                   - 2B\,M_\text{rec}[s_0 \text{ needs no grad}]

The backward pass computes a weight gradient and an input gradient for every product, except
the input gradient of the first layer when its input needs none (raw features) and that of the
first step's product with a zero or constant initial state.

>>> import torch, rnnkit
>>> rnn = rnnkit.Recurrent("lstm", 8, 16, num_layers=2)
>>> recurrent_flops(rnn, batch=3, steps=5)  # 2 * 15 * (64*8 + 64*16 + 64*16 + 64*16)
107520
>>> count = count_flops(rnn, torch.randn(3, 5, 8))
>>> count.total, count.recurrent
(107520, 107520)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "FlopCount",
    "FlopMeter",
    "cell_macs",
    "count_flops",
    "recurrent_flops",
    "register_flops",
]

#: cell class -> fn(cell) -> (input, recurrent, other) multiply-adds per step and row
_FORMULAS: dict[type, Callable[[nn.Module], tuple[int, int, int]]] = {}


def register_flops(cell_cls: type) -> Callable:
    """Decorator: ``fn(cell) -> (M_in, M_rec, M_out)``, the multiply-adds of one step for one
    sequence in the cell's input, recurrent and other matrix products. Cells without one are
    measured once with ``FlopCounterMode`` on a single step (see :func:`cell_macs`)."""

    def deco(fn: Callable[[nn.Module], tuple[int, int, int]]) -> Callable:
        _FORMULAS[cell_cls] = fn
        return fn

    return deco


def _numel(p: Tensor | None, dims: int = 2) -> int:
    return int(p.numel()) if p is not None and p.dim() == dims else 0


def _standard(cell: nn.Module) -> tuple[int, int, int]:
    """``weight_ih [G, I]``, ``weight_hh [G, O]`` (a matrix; IndRNN's vector is element-wise)
    and, for a projecting LSTM, ``weight_hr [P, H]``."""
    return (_numel(cell.weight_ih), _numel(getattr(cell, "weight_hh", None)),
            _numel(getattr(cell, "weight_hr", None)))


def _register_builtin() -> None:
    from ..cells import (
        ElmanCell,
        GRUCell,
        IndRNNCell,
        LayerNormGRUCell,
        LayerNormLSTMCell,
        LSTMCell,
        MinGRUCell,
        MinLSTMCell,
        PeepholeLSTMCell,
    )

    for cls in (ElmanCell, GRUCell, LSTMCell, LayerNormGRUCell, LayerNormLSTMCell, IndRNNCell,
                MinGRUCell, MinLSTMCell):
        _FORMULAS.setdefault(cls, _standard)
    # peephole weights weight_ch [3, H] are element-wise (diagonal) connections
    _FORMULAS.setdefault(PeepholeLSTMCell, _standard)


def cell_macs(cell: nn.Module) -> tuple[int, int, int]:
    """``(M_in, M_rec, M_out)`` multiply-adds per step and row of an rnnkit cell, from its
    registered formula; a cell with none is measured once with ``FlopCounterMode`` (its
    ``project_input`` is the input part, its ``step`` the recurrent part)."""
    if not _FORMULAS:
        _register_builtin()
    for cls in type(cell).__mro__:
        if cls in _FORMULAS:
            return _FORMULAS[cls](cell)
    return _measured_macs(cell)


def _measured_macs(cell: Any) -> tuple[int, int, int]:
    from torch.utils.flop_counter import FlopCounterMode

    p = next(cell.parameters(), None)
    kw = {"device": p.device, "dtype": p.dtype} if p is not None else {}
    was = cell.training
    cell.eval()
    try:
        with torch.no_grad():
            x = torch.randn(1, 1, cell.input_size, **kw)
            with FlopCounterMode(display=False) as fc:
                xp = cell.project_input(x)
            m_in = fc.get_total_flops() // 2
            state = cell.initial_state(1, **kw)
            with FlopCounterMode(display=False) as fc:
                cell.step(xp[:, 0], state)
            m_rec = fc.get_total_flops() // 2
    finally:
        cell.train(was)
    return m_in, m_rec, 0


def _torch_rnn_macs(rnn: nn.RNNBase) -> list[tuple[int, int, int]]:
    """One ``(M_in, M_rec, M_out)`` per layer and direction of ``torch.nn.RNN/LSTM/GRU``."""
    out = []
    for layer in range(rnn.num_layers):
        for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
            name = f"_l{layer}{suffix}"
            out.append((_numel(getattr(rnn, "weight_ih" + name)),
                        _numel(getattr(rnn, "weight_hh" + name)),
                        _numel(getattr(rnn, "weight_hr" + name, None))))
    return out


def _layer_macs(module: nn.Module) -> list[tuple[int, int, int]]:
    """Per cell (layer-major, direction-minor) multiply-adds of a recurrent module."""
    from ..recurrent import Recurrent

    if isinstance(module, Recurrent):
        return [cell_macs(c) for c in module.cells]
    if isinstance(module, nn.RNNBase):
        return _torch_rnn_macs(module)
    raise TypeError(f"{type(module).__name__} is not a recurrent module; pass an "
                    f"rnnkit.Recurrent or a torch.nn.RNN/LSTM/GRU")


def _directions(module: nn.Module) -> int:
    return 2 if getattr(module, "bidirectional", False) else 1


def recurrent_flops(module: nn.Module, batch: int, steps: int, *, backward: bool = False,
                    input_grad: bool = True, state_grad: bool = False) -> int:
    """FLOPs of ``module`` (an ``rnnkit.Recurrent`` or ``rnnkit.nn`` drop-in, or a
    ``torch.nn.RNN/LSTM/GRU``) over ``batch`` sequences of ``steps`` steps: the forward pass,
    or with ``backward=True`` the backward pass (see the module docstring), where
    ``input_grad`` says whether the layer's input needs a gradient and ``state_grad`` whether
    the given initial state does."""
    if batch < 0 or steps < 0:
        raise ValueError(f"batch and steps must be >= 0, got {batch} and {steps}")
    macs = _layer_macs(module)
    directions = _directions(module)
    total = 0
    for k, (m_in, m_rec, m_out) in enumerate(macs):
        fwd = 2 * batch * steps * (m_in + m_rec + m_out)
        if not backward:
            total += fwd
            continue
        bwd = 2 * fwd
        if k < directions and not input_grad:
            bwd -= 2 * batch * steps * m_in
        if not state_grad and steps > 0:
            bwd -= 2 * batch * m_rec
        total += bwd
    return total


@dataclass
class FlopCount:
    """FLOPs of what ran under a :class:`FlopMeter`: ``total = recurrent + other``;
    ``by_module`` has the recurrent modules' share by name."""

    total: int = 0
    recurrent: int = 0
    other: int = 0
    by_module: dict[str, int] = field(default_factory=dict)


def _recurrent_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost recurrent modules of ``model`` (``rnnkit.Recurrent``, its ``rnnkit.nn``
    drop-ins, ``torch.nn.RNN/LSTM/GRU``), with their names."""
    from ..recurrent import Recurrent

    found: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, (Recurrent, nn.RNNBase)):
            continue
        if any(p == "" or name.startswith(p + ".") for p, _ in found):
            continue
        found.append((name, mod))
    return found


class FlopMeter:
    """Counts the FLOPs of the forward (and backward) passes run inside it.

    ``FlopCounterMode`` counts every operator; the recurrent modules' own counts (zero for
    fused LSTMs) are replaced by :func:`recurrent_flops` for the shapes they were called with,
    and their backward formula is added when a gradient actually flows back through them.

    >>> import torch, rnnkit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), rnnkit.nn.LSTM(8, 16,
    ...                             batch_first=True))
    >>> with FlopMeter(model) as meter:
    ...     out, _ = model(torch.randn(2, 3, 4))
    >>> meter.count.total == 2 * 6 * 4 * 8 + 2 * 6 * (64 * 8 + 64 * 16)
    True
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.count = FlopCount()
        self._formula: dict[str, int] = {}
        self._hooks: list[Any] = []
        self._mode: Any = None

    def __enter__(self) -> FlopMeter:
        from torch.utils.flop_counter import FlopCounterMode

        self._modules = _recurrent_modules(self.model)
        for name, mod in self._modules:
            self._hooks.append(mod.register_forward_hook(self._hook(name or "<model>", mod),
                                                         with_kwargs=True))
        self._mode = FlopCounterMode(display=False)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        counts = self._mode.get_flop_counts()
        total = sum(counts.get("Global", {}).values())
        known = getattr(self._mode.mod_tracker, "_known_modules", {})
        inside = 0
        for _, mod in self._modules:
            key = known.get(mod)
            if key is not None:
                inside += sum(counts.get(key, {}).values())
        recurrent = sum(self._formula.values())
        self.count = FlopCount(total=total - inside + recurrent, recurrent=recurrent,
                               other=total - inside, by_module=dict(self._formula))

    def _hook(self, name: str, mod: nn.Module) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            x = args[0] if args else kwargs.get("input", kwargs.get("x"))
            state = args[1] if len(args) > 1 else kwargs.get("state", kwargs.get("hx"))
            batch, steps, x_grad = _shape(module, x)
            if batch == 0:
                return
            self._formula[name] = self._formula.get(name, 0) + recurrent_flops(
                module, batch, steps)
            out = output[0] if isinstance(output, tuple) else output
            out = out if isinstance(out, Tensor) else getattr(out, "data", None)  # packed
            if isinstance(out, Tensor) and out.requires_grad:
                s_grad = any(t.requires_grad for t in _tensors(state))
                extra = recurrent_flops(module, batch, steps, backward=True, input_grad=x_grad,
                                        state_grad=s_grad)

                def on_grad(grad: Tensor) -> None:
                    self._formula[name] = self._formula.get(name, 0) + extra

                out.register_hook(on_grad)

        return hook


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)


def _shape(module: nn.Module, x: Any) -> tuple[int, int, bool]:
    """``(batch, steps, needs grad)`` of a recurrent module's input (tensor or packed)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        sizes = x.batch_sizes
        return int(sizes[0]), int(sizes.numel()), bool(x.data.requires_grad)
    if not isinstance(x, Tensor):
        return 0, 0, False
    if x.dim() == 2:  # one unbatched sequence [T, F]
        return 1, int(x.shape[0]), bool(x.requires_grad)
    batch_first = getattr(module, "batch_first", True)
    b, t = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    return int(b), int(t), bool(x.requires_grad)


def count_flops(model: nn.Module, *inputs: Any, backward: bool = False,
                **kwargs: Any) -> FlopCount:
    """FLOPs of ``model(*inputs, **kwargs)`` (and of ``.sum().backward()`` on its first
    tensor output when ``backward``), without changing the model's weights or gradients."""
    grads = {n: p.grad for n, p in model.named_parameters()}
    with FlopMeter(model) as meter:
        out = model(*inputs, **kwargs)
        if backward:
            first = next(_tensors(out))
            first.sum().backward()
    for n, p in model.named_parameters():
        p.grad = grads[n]
    return meter.count
