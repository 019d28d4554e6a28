"""ONNX export of recurrent layers with their state, checked against onnxruntime on the spot.

Two graphs, both with the recurrent state as explicit inputs and outputs (``state_in_k`` /
``state_out_k``: ``h`` and, for LSTM-family cells, ``c``, each ``[L * D, B, H]`` as
:class:`rnnkit.Recurrent` takes them), so a caller can carry state across calls:

* **step** (``stream=True``, every registered cell): one time step, ``x [B, I] -> y [B, O]``.
  Streaming inference feeds the state back in; the export runs the layer's plain loop for one
  step, which any cell traces to plain ONNX operators.
* **sequence** (the fused cells: ``lstm``, ``gru``, ``elman``/``rnn``, one or two
  directions): ``x [B, T, I] -> y [B, T, D * O]`` with dynamic batch *and* length, through
  ONNX's own LSTM/GRU/RNN operators. Other cells run a Python time loop that the exporter
  would unroll to the example's length, so they are refused with the advice to export the
  step.

The TorchScript exporter (``dynamo=False``) is used: with ``dynamo=True`` torch 2.13 records the
output's time dimension as the example's length (pytorch #191855). Every export is verified
with onnxruntime against the torch layer at two other batch sizes and lengths (and, for the
step graph, by streaming a sequence through it against :meth:`Recurrent.forward`); the largest
absolute difference is returned in the :class:`ExportReport` and an error above ``tolerance``
raises.

>>> import tempfile, os, rnnkit
>>> rnn = rnnkit.Recurrent("gru", 4, 8)
>>> report = export_recurrent(rnn, os.path.join(tempfile.mkdtemp(), "gru.onnx"))
>>> report.graph, report.max_error < 1e-5, report.inputs
('sequence', True, ['x', 'state_in_0'])
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["FUSED_CELLS", "ExportReport", "check_destination", "checked_report",
           "export_checked", "export_graph",
           "export_recurrent", "max_error", "random_lengths", "run_onnx", "session",
           "write_metadata"]

#: cells whose whole-sequence graph uses ONNX's recurrent operators (dynamic length)
FUSED_CELLS = ("lstm", "gru", "elman", "rnn")
OPSET = 17


@dataclass
class ExportReport:
    """What :func:`export_recurrent` wrote and how well it matched torch."""

    path: str
    graph: str  # "step" or "sequence"
    inputs: list[str]
    outputs: list[str]
    max_error: float
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        shapes = ", ".join(f"B={c['batch']}" + (f" T={c['steps']}" if "steps" in c else "")
                           for c in self.checks)
        return (f"exported the {self.graph} graph to {self.path} in {self.seconds:.1f} s; "
                f"onnxruntime vs torch at {shapes}: max |error| {self.max_error:.2e}")


class _Graph(nn.Module):
    """The layer with its state as flat tensors in and out: ``(x, *state) -> (y, *state)``."""

    def __init__(self, rnn: nn.Module, step: bool) -> None:
        super().__init__()
        self.rnn, self.step = rnn, step

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        from ..cells import LSTMState, state_tensors

        s = state[0] if len(state) == 1 else LSTMState(*state)
        y, new = self.rnn.step(x, s) if self.step else self.rnn(x, s)
        return (y, *state_tensors(new))


def _cell_name(rnn: nn.Module) -> str:
    from ..cells import available_cells, get_cell

    cls = type(rnn.cells[0])
    for name in available_cells():
        if get_cell(name) is cls:
            return name
    return cls.__name__


@contextlib.contextmanager
def _backend(rnn: nn.Module, name: str) -> Iterator[None]:
    """Run ``rnn`` on backend ``name`` for the duration (an export's trace and its check)."""
    before = rnn.backend
    rnn.backend = name
    try:
        yield
    finally:
        rnn.backend = before


def _example_state(rnn: nn.Module, batch: int, gen: torch.Generator) -> list[Tensor]:
    from ..cells import state_tensors

    p = next(rnn.parameters())
    template = state_tensors(rnn.cells[0].initial_state(batch, device=p.device, dtype=p.dtype))
    layers = rnn.num_layers * rnn.num_directions
    return [torch.randn(layers, *t.shape, generator=gen).to(p) for t in template]


def export_recurrent(rnn: nn.Module, path: str | os.PathLike, *, stream: bool = False,
                     tolerance: float = 1e-4, opset: int = OPSET) -> ExportReport:
    """Write ``rnn`` (an :class:`rnnkit.Recurrent`, batch-first) to ``path`` as ONNX with its
    state in and out, then check the file with onnxruntime (see the module docstring).
    ``stream=True`` exports one step (every cell, unidirectional layers); otherwise the whole
    sequence (the fused cells). Returns an :class:`ExportReport`."""
    from ..recurrent import Recurrent

    if not isinstance(rnn, Recurrent):
        raise TypeError(f"export_recurrent takes an rnnkit.Recurrent, got {type(rnn).__name__}")
    if not rnn.batch_first:
        raise ValueError("export a batch_first=True layer (the graph's x is [B, T, I])")
    cell = _cell_name(rnn)
    if stream and rnn.bidirectional:
        raise ValueError("a bidirectional layer cannot stream (its reverse direction reads the "
                         "whole sequence); export the sequence graph instead (stream=False)")
    if not stream and cell not in FUSED_CELLS:
        raise ValueError(f"the {cell} cell has no ONNX sequence operator (its time loop would be "
                         f"unrolled to the example's length); export the streaming step with "
                         f"stream=True and loop over time outside, or use one of "
                         f"{', '.join(FUSED_CELLS)}")
    path = os.fspath(path)
    check_destination(path)
    gen = torch.Generator().manual_seed(0)
    n_state = len(_example_state(rnn, 1, gen))
    names = ["x"] + [f"state_in_{k}" for k in range(n_state)]
    outs = ["y"] + [f"state_out_{k}" for k in range(n_state)]
    dyn = {"x": {0: "batch"} if stream else {0: "batch", 1: "time"},
           "y": {0: "batch"} if stream else {0: "batch", 1: "time"},
           **{n: {1: "batch"} for n in names[1:] + outs[1:]}}
    graph = _Graph(rnn, stream)
    was = rnn.training
    rnn.eval()
    try:
        with _backend(rnn, "loop" if stream else "fused"):
            x = torch.randn(2, rnn.input_size, generator=gen) if stream else \
                torch.randn(2, 3, rnn.input_size, generator=gen)
            seconds = export_graph(graph, (x.to(next(rnn.parameters())),
                                           *_example_state(rnn, 2, gen)),
                                   path, names, outs, dyn, opset=opset)
            checks = _verify(rnn, graph, path, names, stream, gen)
    finally:
        rnn.train(was)
    report = checked_report(path, "step" if stream else "sequence", names, outs, checks,
                            seconds, tolerance)
    write_metadata(path, "recurrent", report.graph, cell=cell, inputs=names, outputs=outs)
    return report


def check_destination(path: str | os.PathLike) -> None:
    """Refuse, before any work, an ONNX path whose folder does not exist."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{os.fspath(path)} is a folder; give a file name in it, e.g. "
                                f"{os.path.join(os.fspath(path), 'model.onnx')}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no folder {folder} for the ONNX file; create it first")


def export_graph(graph: nn.Module, example: tuple, path: str, input_names: list[str],
                 output_names: list[str], dynamic_axes: dict[str, dict[int, str]], *,
                 opset: int = OPSET) -> float:
    """Trace ``graph`` (eval mode, no grad) on ``example`` with the TorchScript exporter and
    write ``path`` atomically (a failed export leaves nothing); returns the seconds taken.
    The building block of every rnnkit export: the wings wrap their models in a module whose
    inputs and outputs are plain tensors and call this, then :func:`checked_report`."""
    from ..onnx import metadata_path

    t0 = time.perf_counter()
    tmp = os.fspath(path) + ".tmp"
    if os.path.exists(metadata_path(path)):  # describes the graph being replaced; the
        os.remove(metadata_path(path))       # exporter writes the new one once checked
    # eval for the trace; torch.onnx.export then restores the *wrapper's* mode on every
    # submodule (a wrapper built in training mode would switch the model's dropout on)
    modes = [(m, m.training) for m in graph.modules()]
    graph.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()), _quiet_stderr():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, example, tmp, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              opset_version=opset, dynamo=False)
        os.replace(tmp, path)
    finally:
        for m, mode in modes:
            m.training = mode
        if os.path.exists(tmp):
            os.remove(tmp)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the duration: the exporter's C++ side prints shape
    inference notes for packed sequences (``prim::PackPadded``) that are not the user's
    concern (the graph is checked right after)."""
    import sys

    fd = 2  # the process's error stream, where C++ writes, whatever sys.stderr is now
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no fd 2 (a detached process): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def max_error(reference: list[Any], got: list[Any]) -> float:
    """Largest absolute difference between torch outputs and onnxruntime's arrays."""
    return max(float((torch.as_tensor(r).detach().cpu().double()
                      - torch.as_tensor(g).double()).abs().max()) for r, g in zip(reference, got))


def checked_report(path: str, graph: str, inputs: list[str], outputs: list[str],
                   checks: list[dict[str, Any]], seconds: float,
                   tolerance: float) -> ExportReport:
    """The :class:`ExportReport` of ``checks`` (each with ``max_error``, and optionally
    ``float32_noise``, torch's own float32-vs-float64 error there); an error above both
    ``tolerance`` and 10x the noise raises. Both float32 results carry rounding that a
    recurrence compounds over steps (a LayerNorm LSTM streamed 23 steps at random weights:
    ~3e-5 from float64 for torch and onnxruntime alike), so a graph may differ from torch's
    float32 result by about as much as torch's differs from exact arithmetic; a wrong graph
    differs by orders more."""
    worst = max(c["max_error"] for c in checks)
    allowed = max(tolerance, 10 * max(c.get("float32_noise", 0.0) for c in checks))
    if not worst <= allowed:
        if os.path.exists(path):
            os.remove(path)
        raise ValueError(f"the ONNX graph differs from torch by {worst:.2e} (> {allowed:.1e}), "
                         f"so {path} was not kept; please report this model's configuration")
    return ExportReport(path, graph, inputs, outputs, worst, checks, seconds)


def run_onnx(path: str, x: Any, state: list[Any] | None = None, sess: Any = None,
             ) -> tuple[Any, list[Any]]:
    """Run an exported graph with onnxruntime (numpy in, numpy out): ``(y, state)``; a
    ``None`` state starts from zeros; ``sess`` reuses an open :func:`session`."""
    import numpy as np

    sess = sess or session(path)
    ins = sess.get_inputs()
    x = np.asarray(x)
    x = x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int64)
    batch = x.shape[0]
    if state is None:
        state = [np.zeros([d if isinstance(d, int) else batch for d in i.shape], np.float32)
                 for i in ins[1:]]
    out = sess.run(None, {ins[0].name: x, **{i.name: s for i, s in zip(ins[1:], state)}})
    return out[0], list(out[1:])


def session(path: str, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of ``path`` (:func:`rnnkit.onnx.session`)."""
    from ..onnx import session as _session

    return _session(path, threads)


def _verify(rnn: nn.Module, graph: nn.Module, path: str, names: list[str], stream: bool,
            gen: torch.Generator) -> list[dict[str, Any]]:
    """onnxruntime against torch at two new shapes; for a step graph, also streamed."""
    sess = session(path)
    checks = []
    p = next(rnn.parameters())
    for batch, steps in ((1, 7), (5, 23)):
        state = _example_state(rnn, batch, gen)
        if stream:  # stream `steps` steps through the graph; compare with one forward pass
            xs = torch.randn(batch, steps, rnn.input_size, generator=gen).to(p)
            with torch.no_grad():
                ref_y, ref_state = graph.rnn(xs, _pack(state))
            from ..cells import state_tensors

            ref = [ref_y, *state_tensors(ref_state)]
            s = [t.cpu().numpy() for t in state]
            ys = []
            for t in range(steps):
                y, s = run_onnx(path, xs[:, t].cpu().numpy(), s, sess)
                ys.append(y)
            import numpy as np

            got = [np.stack(ys, 1), *s]
        else:
            x = torch.randn(batch, steps, rnn.input_size, generator=gen).to(p)
            with torch.no_grad():
                ref = list(graph(x, *state))
            got = sess.run(None, {n: t.cpu().numpy() for n, t in zip(names, [x, *state])})
        noise = _float32_noise(graph, [x if not stream else xs, *state], ref, stream)
        checks.append({"batch": batch, "steps": steps, "max_error": max_error(ref, got),
                       "float32_noise": noise})
    return checks


def _float32_noise(graph: nn.Module, inputs: list[Tensor], ref: list[Tensor],
                   stream: bool) -> float:
    """How far torch's own float32 result is from float64 on the same inputs: the error an
    equally good float32 implementation may show (recurrences compound rounding over steps)."""
    import copy

    rnn64 = copy.deepcopy(graph.rnn).double()
    with torch.no_grad():
        x, *state = (t.double() for t in inputs)
        out, new = rnn64(x, _pack(state))
    from ..cells import state_tensors

    return max_error(ref, [out, *state_tensors(new)])


def _pack(state: list[Tensor]) -> Any:
    from ..cells import LSTMState

    return state[0] if len(state) == 1 else LSTMState(*state)


def write_metadata(path: str, kind: str, graph: str, **fields: Any) -> str:
    """Write the description :mod:`rnnkit.onnx` reads beside the graph at ``path``
    (``<path>.json``: ``format``, ``kind``, ``graph`` and the kind's ``fields``, JSON-able);
    returns its path."""
    import json

    from ..onnx import FORMAT, metadata_path
    from ..saving import atomic_write_text

    meta = metadata_path(path)
    atomic_write_text(json.dumps({"format": FORMAT, "kind": kind, "graph": graph, **fields}),
                      meta)
    return meta


def random_lengths(batch: int, steps: int, gen: torch.Generator) -> Tensor:
    """``[batch]`` lengths in ``[1, steps]`` with the first at ``steps`` (a padded batch's
    longest row) and, for ``batch > 1``, at least one shorter: an example batch traced this
    way records the variable-length path (ONNX ``sequence_lens``), not the all-full one."""
    lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
    lengths[0] = steps
    if batch > 1:
        lengths[1] = int(torch.randint(1, max(steps, 2), (1,), generator=gen))
    return lengths

def export_checked(graph: nn.Module, path: str, example: dict[str, Tensor],
                   outputs: list[str], dynamic_axes: dict[str, dict[int, str]],
                   make_inputs: Any, kind: str, *, tolerance: float = 1e-4,
                   shapes: tuple[tuple[int, int], ...] = ((1, 7), (4, 23))) -> ExportReport:
    """Export ``graph`` traced on ``example`` (named inputs, in the order ``forward`` takes
    them) to ``path``, then run it in onnxruntime at each ``(batch, steps)`` of ``shapes``
    on ``make_inputs(batch, steps)`` against the torch graph (and the float64 copy for the
    noise allowance of :func:`checked_report`). Returns the report; ``kind`` names the graph."""
    import copy

    names = list(example)
    seconds = export_graph(graph, tuple(example.values()), path, names, outputs, dynamic_axes)
    sess = session(path)
    graph64 = copy.deepcopy(graph).double()
    checks = []
    for batch, steps in shapes:
        feeds = make_inputs(batch, steps)
        with torch.no_grad():
            ref = _as_list(graph(*feeds.values()))
            ref64 = _as_list(graph64(*(v.double() if v.is_floating_point() else v
                                      for v in feeds.values())))
        used = {i.name for i in sess.get_inputs()}  # the exporter drops unused inputs
        got = sess.run(None, {k: v.cpu().numpy() for k, v in feeds.items() if k in used})
        checks.append({"batch": batch, "steps": steps, "max_error": max_error(ref, got),
                       "float32_noise": max_error(ref, ref64)})
    names = [i.name for i in sess.get_inputs()]
    return checked_report(path, kind, names, outputs, checks, seconds, tolerance)


def _as_list(out: Any) -> list[Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]
