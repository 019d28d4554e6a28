"""How a runner executes its time loop, chosen by name.

* ``loop``: the plain reference loop over ``cell.step`` (any cell; the definition of correct);
* ``fused``: PyTorch's fused kernels for the standard Elman/LSTM/GRU cells;
* ``scan``: the parallel scan of minGRU/minLSTM;
* ``compiled``: native C++ time loops with hand-written BPTT for the custom cells and the GRU;
* ``auto``: the fastest backend that can serve the layer, the first of :data:`AUTO_ORDER`
  (compiled, fused, scan, loop) whose ``auto_unsupported`` has no objection.

A backend serves only cells whose per-step feature rank (``Cell.feature_dims``) it lists in
its ``feature_dims`` (vector cells, ``(1,)``, by default); ``loop`` runs every rank, so the
spatial ConvLSTM (``[B, T, C, H, W]``) runs there.

The runner (:class:`~rnnkit.Recurrent`) runs the layers and directions; a backend implements
:class:`Backend` (:mod:`rnnkit.backends.base`): ``direction`` for one direction of one layer,
or ``run_stack`` for a kernel that runs the whole stack (``fused``). Later backends register
themselves with :func:`register_backend` and join ``auto`` by listing themselves in
:data:`AUTO_ORDER`.

>>> {'auto', 'fused', 'loop'} <= set(available_backends())
True
"""

from __future__ import annotations

from .base import Backend
from .compiled import CompiledBackend
from .fused import FusedBackend
from .loop import LoopBackend
from .scan import ScanBackend

__all__ = [
    "AUTO_ORDER",
    "Backend",
    "FusedBackend",
    "LoopBackend",
    "available_backends",
    "get_backend",
    "register_backend",
    "resolve_backend",
]

_REGISTRY: dict[str, Backend] = {}
#: Backends ``auto`` tries, fastest first; ``loop`` runs everything, so it comes last.
AUTO_ORDER: list[str] = ["fused", "loop"]


def register_backend(backend: Backend) -> Backend:
    """Add ``backend`` (an instance) to the registry under ``backend.name``."""
    if not backend.name or backend.name == "auto":
        raise ValueError(f"a backend needs a name other than 'auto', got {backend.name!r}")
    _REGISTRY[backend.name] = backend
    return backend


def available_backends() -> list[str]:
    """Names accepted by ``Recurrent(backend=...)``."""
    return ["auto", *_REGISTRY]


def get_backend(name: str) -> Backend:
    """The registered backend called ``name`` (not ``auto``; see :func:`resolve_backend`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backend {name!r}; choose one of {', '.join(available_backends())}"
        ) from None


def resolve_backend(name: str, rnn) -> Backend:
    """The backend that will run ``rnn``: the named one, or for ``auto`` the first in
    :data:`AUTO_ORDER` that supports it. An explicit choice that cannot serve raises."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            backend = _REGISTRY.get(candidate)
            if backend is not None and _rank_refusal(backend, rnn) is None and \
                    backend.auto_unsupported(rnn) is None:
                return backend
        raise RuntimeError("no registered backend can run this layer")  # loop runs everything
    backend = get_backend(name)
    reason = _rank_refusal(backend, rnn) or backend.unsupported(rnn)
    if reason is not None:
        raise ValueError(f"backend {name!r} cannot run this layer: {reason}; use backend='auto'")
    return backend


def _rank_refusal(backend: Backend, rnn) -> str | None:
    """Why ``backend`` cannot run ``rnn``'s cells for the rank of their step features, if so
    (a spatial cell on a backend written for ``[B, T, I]``)."""
    rank = getattr(rnn, "feature_dims", 1)
    if rank in backend.feature_dims:
        return None
    cell = type(rnn.cells[0]).__name__
    takers = [n for n, b in _REGISTRY.items() if rank in b.feature_dims]
    return (f"{cell} steps on {rank}-D feature maps ([B, T, C, H, W] input) and backend "
            f"{backend.name!r} runs only sequence cells ([B, T, I]); backends for {cell}: "
            f"{', '.join(takers)}")


register_backend(LoopBackend())
register_backend(FusedBackend())
register_backend(ScanBackend())
# minGRU/minLSTM: the scan beats the loop at every measured shape (benchmarks/speed_cells.py)
AUTO_ORDER.insert(AUTO_ORDER.index("loop"), "scan")
# the native kernels (layernorm_lstm/_gru, peephole_lstm, indrnn, gru) come first: they serve
# no cell that fused runs faster, and the standard GRU's beats torch's (measured; see
# rnnkit.backends.compiled for the rules and numbers)
AUTO_ORDER.insert(0, "compiled")
register_backend(CompiledBackend())
