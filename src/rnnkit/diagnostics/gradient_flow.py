r"""Gradient flow through time: how much of the loss's gradient reaches each hidden state.

For a recurrent layer with outputs :math:`h_1 \dots h_T` and a loss :math:`L`, backpropagation
through time gives

.. math::
    \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_t}\Big|_{\text{direct}}
    + \frac{\partial L}{\partial h_{t+1}} \frac{\partial h_{t+1}}{\partial h_t},
    \qquad \frac{\partial h_{t+1}}{\partial h_t}
    = \mathrm{diag}(1 - h_{t+1}^2)\, W_{hh} \ \text{(Elman)}

so a signal from step :math:`T` reaches step :math:`t` through a product of :math:`T - t`
Jacobians: it shrinks (vanishes) or grows (explodes) geometrically unless the recurrence keeps
it near 1, as the LSTM's additive cell state :math:`c_t = f_t \odot c_{t-1} + \dots` does.
:func:`gradient_flow` measures :math:`\lVert \partial L / \partial h_t \rVert` for every
:math:`t` by running the model's loss once with zero probes added to the layer's hidden states
(through a forward hook) and asking autograd for the gradient with respect to the probes;
:func:`plot_gradient_flow` draws it on a log scale.

>>> import torch
>>> from torch import nn
>>> from rnnkit import Recurrent
>>> from rnnkit.train import LossOutput
>>> class LastStep(nn.Module):
...     def __init__(self, cell):
...         super().__init__()
...         self.rnn = Recurrent(cell, 2, 16)
...         self.head = nn.Linear(16, 1)
...     def loss(self, batch, state=None):
...         x, y = batch
...         out, _ = self.rnn(x)
...         return LossOutput(nn.functional.mse_loss(self.head(out[:, -1]), y))
>>> _ = torch.manual_seed(0)
>>> batch = (torch.randn(8, 50, 2), torch.randn(8, 1))
>>> flow = gradient_flow(LastStep("elman"), batch)
>>> tuple(flow.norms.shape), tuple(flow.per_sequence.shape)
((50,), (8, 50))
>>> bool(flow.decay() < 1e-6)  # at init, an Elman RNN's gradient vanishes going back in time
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..cells import state_map
from ..recurrent import Recurrent

__all__ = ["GradientFlow", "gradient_flow", "plot_gradient_flow"]


@dataclass
class GradientFlow:
    """Measured gradient norms of one model on one batch.

    Attributes:
        norms: ``[T]``, :math:`\\lVert \\partial L / \\partial h_t \\rVert_2` with
            :math:`h_t` the top layer's hidden state at step ``t`` for the whole batch
            (``[B, O]``), and :math:`\\partial` the total derivative (direct and through all
            later steps).
        per_sequence: ``[B, T]``, the same norm for each sequence of the batch.
        loss: the loss value the gradients are of.
    """

    norms: Tensor
    per_sequence: Tensor
    loss: float

    def decay(self) -> float:
        """:math:`\\lVert \\partial L/\\partial h_1 \\rVert / \\lVert \\partial L/\\partial h_T
        \\rVert`: how much of the gradient at the last step survives back to the first (tiny:
        vanishing; huge: exploding)."""
        last = float(self.norms[-1])
        return float(self.norms[0]) / last if last > 0 else math.inf

    def plot(self, path: str | os.PathLike, label: str = "model") -> str:
        """Write this curve as a PNG; see :func:`plot_gradient_flow`."""
        return plot_gradient_flow({label: self}, path)


def gradient_flow(
    model: nn.Module,
    batch: Any,
    *,
    layer: Recurrent | None = None,
    state: Any = None,
    loss_fn: Callable[[nn.Module, Any], Tensor] | None = None,
    train_mode: bool = False,
) -> GradientFlow:
    r"""Measure :math:`\lVert \partial L / \partial h_t \rVert` for every step ``t``.

    :math:`\partial L / \partial h_t` is the *total* derivative: through the layer's output at
    ``t`` and through every later step of the recurrence. (The gradient with respect to the
    output tensor ``out`` alone would miss the recurrent path.) To get it, a forward hook
    re-runs the layer step by step with :meth:`~rnnkit.Recurrent.step` and adds a zero tensor
    :math:`\varepsilon_t` to the top layer's hidden state after each step, so that
    :math:`\partial L / \partial \varepsilon_t = \partial L / \partial h_t`; the values
    computed are unchanged.

    Args:
        model: a task model (``loss(batch, state) -> LossOutput``) or any module, with
            ``loss_fn``.
        batch: one batch, on the model's device.
        layer: the unidirectional :class:`~rnnkit.Recurrent` whose hidden states
            ``h_1..h_T`` (of its top layer) are measured. Optional when the model holds exactly
            one.
        state: passed to ``model.loss`` (e.g. a carried truncated-BPTT state).
        loss_fn: ``loss_fn(model, batch) -> scalar tensor`` instead of ``model.loss``.
        train_mode: measure in training mode (dropout on); default eval mode, deterministic.

    Returns a :class:`GradientFlow`. Parameter gradients (``.grad``) are left untouched. If the
    layer runs several times in one loss (e.g. step by step), the calls are joined in time.
    """
    layer = _find_layer(model, layer)
    if layer.bidirectional:
        raise ValueError("gradient_flow measures a unidirectional layer (the reverse direction "
                         "has no single h_t per step); build the model with "
                         "bidirectional=False or pass another layer=")
    probes: list[list[Tensor]] = []  # one list of epsilons [B, O] per call of the layer
    step = layer.step  # the class's bound method

    def hook(module: Recurrent, args: tuple, kwargs: dict, output: Any) -> Any:
        out, final, eps = _probed_unroll(module, step, *_call_args(args, kwargs))
        probes.append(eps)
        return out, final

    def probed_step(x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out_t, state = step(x_t, state)  # step() calls forward() directly: no hook fires
        out_t, state, e = _probe(out_t, state)
        probes.append([e])
        return out_t, state

    was_training = model.training
    model.train(train_mode)
    handle = layer.register_forward_hook(hook, with_kwargs=True)
    layer.step = probed_step  # streaming callers (layer.step per t) are measured too
    try:
        with torch.enable_grad():
            if loss_fn is not None:
                loss = loss_fn(model, batch)
            elif hasattr(model, "loss"):
                loss = model.loss(batch, state).loss
            else:
                raise TypeError(f"{type(model).__name__} has no loss(batch, state) method; "
                                f"pass loss_fn=lambda model, batch: <scalar loss>")
    finally:
        handle.remove()
        del layer.step
        model.train(was_training)
    if not probes:
        raise ValueError("the chosen layer did not run while computing the loss; pass "
                         "layer= the Recurrent that the loss uses")
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise ValueError("the loss must be a scalar tensor; reduce it with .mean()")
    eps = [e for call in probes for e in call]
    grads = torch.autograd.grad(loss, eps, allow_unused=True)
    g = torch.stack([(torch.zeros_like(e) if d is None else d).reshape(-1, e.shape[-1])
                     for e, d in zip(eps, grads)], dim=1).detach().double()  # [B, T, O]
    per_sequence = torch.linalg.vector_norm(g, dim=-1)  # [B, T]
    norms = torch.linalg.vector_norm(g, dim=(0, 2))  # [T]
    return GradientFlow(norms=norms.float().cpu(), per_sequence=per_sequence.float().cpu(),
                        loss=float(loss.detach()))


def _call_args(args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    names = ("x", "state", "lengths")
    values = dict(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in names})
    return values.get("x"), values.get("state"), values.get("lengths")


def _probed_unroll(layer: Recurrent, step: Callable, x: Any, state: Any, lengths: Any
                   ) -> tuple[Tensor, Any, list[Tensor]]:
    """The layer's forward, step by step, with a zero probe added to the top layer's ``h_t``."""
    if isinstance(x, PackedSequence) or lengths is not None:
        raise ValueError("gradient_flow measures equal-length sequences: call the layer without "
                         "lengths or a PackedSequence (e.g. on a batch of full-length "
                         "sequences)")
    unbatched = x.dim() == 2
    xb = x.unsqueeze(0) if unbatched else (x if layer.batch_first else x.transpose(0, 1))
    if state is not None and unbatched:
        state = state_map(lambda s: s.unsqueeze(1), state)
    outs, eps = [], []
    for x_t in xb.unbind(1):  # not xb[:, t]: T selects cost O(T^2) in the backward
        out_t, state, e = _probe(*step(x_t, state))  # [B, O]
        outs.append(out_t)
        eps.append(e)
    out = torch.stack(outs, dim=1)  # [B, T, O]
    if unbatched:
        return out.squeeze(0), state_map(lambda s: s.squeeze(1), state), eps
    return (out if layer.batch_first else out.transpose(0, 1)), state, eps


def _probe(out_t: Tensor, state: Any) -> tuple[Tensor, Any, Tensor]:
    """Add a zero probe ``e`` (requires grad) to ``h_t``: to the output and to the state."""
    e = torch.zeros_like(out_t).requires_grad_()
    return out_t + e, _add_to_top(state, e), e


def _add_to_top(state: Any, e: Tensor) -> Any:
    """Add ``e [B, O]`` to the top layer's hidden state (``h`` of an LSTM state)."""
    h = state if isinstance(state, Tensor) else state[0]  # [L, B, O] (or [L, O] unbatched)
    h = torch.cat([h[:-1], (h[-1] + e).unsqueeze(0)], dim=0)
    if isinstance(state, Tensor):
        return h
    return type(state)(h, *state[1:])


def plot_gradient_flow(
    flows: Mapping[str, GradientFlow] | GradientFlow,
    path: str | os.PathLike,
    title: str = "Gradient flow through time",
) -> str:
    """Plot :math:`\\lVert \\partial L / \\partial h_t \\rVert` against ``t`` on a log scale,
    one curve per entry of ``flows`` (``{label: GradientFlow}``), and write a PNG to ``path``.
    Returns the path. Uses matplotlib's Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(flows, GradientFlow):
        flows = {"model": flows}
    if not flows:
        raise ValueError("nothing to plot: give at least one GradientFlow")
    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.9)
    # Log scale: a gradient that underflowed to 0 is drawn at float32's smallest normal
    # number instead of being dropped.
    tiny = torch.finfo(torch.float32).tiny
    for label, flow in flows.items():
        t = torch.arange(1, len(flow.norms) + 1)
        ax.plot(t.numpy(), flow.norms.clamp_min(tiny).numpy(),
                label=f"{label} (‖∂L/∂h₁‖ / ‖∂L/∂h_T‖ = {flow.decay():.1e})")
    ax.set_yscale("log")
    ax.set(xlabel="time step t", ylabel="‖∂L/∂h_t‖", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    from ..saving import atomic_write_figure

    return atomic_write_figure(fig, path)


def _find_layer(model: nn.Module, layer: Recurrent | None) -> Recurrent:
    if layer is not None:
        if not isinstance(layer, Recurrent):
            raise TypeError(f"layer must be an rnnkit.Recurrent, got {type(layer).__name__}")
        return layer
    found = [m for m in model.modules() if isinstance(m, Recurrent)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(f"{type(model).__name__} holds no rnnkit.Recurrent layer; pass "
                         f"layer= the recurrent layer to measure")
    names = [n for n, m in model.named_modules() if isinstance(m, Recurrent)]
    raise ValueError(f"{type(model).__name__} holds {len(found)} Recurrent layers "
                     f"({', '.join(names)}); choose one with layer=model.<name>")
