"""Drop-in replacements for ``torch.nn.RNN``, ``LSTM``, ``GRU`` and their cells.

Same constructor and forward arguments as torch (``batch_first=False`` by default, ``hx``,
unbatched 2-D input, ``PackedSequence``, ``proj_size``), the same outputs, and state dicts
that load into torch's modules and back. Each is a :class:`rnnkit.Recurrent`, so the extra
keyword ``backend=`` (``"auto"``, ``"loop"``, ``"fused"``, ...) chooses how it runs.

The parameters live in the cells and are registered on the module a second time under torch's
names: the same tensors, tied as shared weights are in torch. So ``named_parameters()``,
``parameters()``, ``state_dict()``, ``load_state_dict()``, attribute access (and assignment),
``_flat_weights`` and ``all_weights`` use torch's names (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_hr_l0``) in torch's order, and code that initialises or
groups parameters by name works unchanged. Unlike :class:`rnnkit.Recurrent`, the drop-ins do
not refuse NaN inputs (torch propagates them).

>>> import torch
>>> ours = LSTM(10, 20, num_layers=2)
>>> theirs = torch.nn.LSTM(10, 20, num_layers=2)
>>> theirs.load_state_dict(ours.state_dict())
<All keys matched successfully>
>>> x = torch.randn(5, 3, 10)
>>> torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-6)
True
>>> [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
True
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from .cells import ElmanCell, GRUCell, LSTMCell, LSTMState
from .recurrent import Recurrent

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]

# The cells already follow torch's cell API, parameter names and gate order.
RNNCell = ElmanCell

#: a cell's parameters, in torch's order within one layer and direction
_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
_TORCH_NAME = re.compile(rf"^({'|'.join(_KINDS)})_l(\d+)(_reverse)?$")
_OUR_NAME = re.compile(rf"(?:^|\.)cells\.(\d+)\.({'|'.join(_KINDS)})$")


class _RNNBase(Recurrent):
    """Shared by the drop-ins: torch's argument order, defaults, names and forward."""

    _cell: type
    #: torch's parameter names per layer and direction, and all of them in order (as torch's)
    _all_weights: list[list[str]]
    _flat_weights_names: list[str]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        backend: str = "auto",
        **cell_options: Any,
    ) -> None:
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        super().__init__(
            self._cell, input_size, hidden_size, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, batch_first=batch_first,
            backend=backend, device=device, dtype=dtype, bias=bias,
            check_finite=False,  # torch propagates NaNs; a drop-in does the same
            **cell_options,
        )
        self.bias = bias
        self._tie_torch_names()
        self.register_state_dict_post_hook(_drop_cell_names)
        self.register_load_state_dict_pre_hook(_alias_names)
        self.register_load_state_dict_post_hook(_retie_after_load)

    def _tie_torch_names(self) -> None:
        """Register every cell parameter on this module under torch's name, in torch's order
        (the same :class:`~torch.nn.Parameter` objects: ``named_parameters()`` lists each once,
        under the torch name it meets first). Called again whenever a cell's parameter may
        have been replaced (``_apply``, ``load_state_dict(assign=True)``, assignment)."""
        self._all_weights = []
        for k, cell in enumerate(self.cells):
            names = []
            for kind in _KINDS:
                own = _own_parameter(cell, kind)
                if own is not None:
                    name = _torch_name(self, k, kind)
                    self._parameters[name] = own
                    names.append(name)
            self._all_weights.append(names)
        self._flat_weights_names = [name for names in self._all_weights for name in names]
        self._flat_index = [self._param_index(name) for name in self._flat_weights_names]

    def forward(self, input, hx=None):  # noqa: A002 - torch's argument names
        """Same as the torch module: ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
        self._check_tied()
        return super().forward(input, hx)

    def _check_tied(self) -> None:
        """The cells run on their own parameters; a torch name that no longer holds the same
        :class:`~torch.nn.Parameter` (``weight_norm``, ``parametrize``, ``prune`` replace it on
        this module) would be ignored, so refuse it and name the way that works."""
        params = self._parameters
        for name, (k, kind) in zip(self._flat_weights_names, self._flat_index):
            if name not in params:  # the three hooks move it out of _parameters
                raise RuntimeError(
                    f"{type(self).__name__}.{name} was replaced on the module (weight_norm, "
                    f"parametrize or prune?); rnnkit's drop-ins run the cells' own parameters, "
                    f"so apply it to the cell instead: e.g. "
                    f"torch.nn.utils.parametrize.register_parametrization("
                    f"rnn.cells[{k}], {kind!r}, ...), or use torch.nn.{type(self).__name__}")

    def flatten_parameters(self) -> None:
        """No-op, for code written for torch (the cells' parameters are used in place)."""

    def _param_index(self, name: str) -> tuple[int, str] | None:
        m = _TORCH_NAME.match(name)
        if m is None:
            return None
        kind, layer, reverse = m.group(1), int(m.group(2)), m.group(3) is not None
        if layer >= self.num_layers or (reverse and not self.bidirectional):
            return None
        return layer * self.num_directions + int(reverse), kind

    def __setattr__(self, name: str, value: Any) -> None:
        # ``lstm.weight_hh_l0 = nn.Parameter(...)`` replaces the cell's parameter, as torch's
        # __setattr__ replaces its flat weight
        found = self._param_index(name) if isinstance(value, nn.Parameter) else None
        if found is None:
            super().__setattr__(name, value)
            return
        k, kind = found
        setattr(self.cells[k], kind, value)
        self._tie_torch_names()

    def _apply(self, fn, *args, **kwargs):
        # convert each parameter once, through its cell, then tie the (possibly new) ones again
        for name in self._flat_weights_names:
            del self._parameters[name]
        try:
            return super()._apply(fn, *args, **kwargs)
        finally:
            self._tie_torch_names()

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        """All parameters in torch's ``_flat_weights`` order."""
        return [self._parameters[name] for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters per layer and direction, in torch's order."""
        return [[self._parameters[name] for name in names] for names in self._all_weights]


def _own_parameter(cell: nn.Module, kind: str) -> nn.Parameter | None:
    """The cell's :class:`~torch.nn.Parameter` called ``kind``, also when the cell itself is
    parametrized (then the original parameter)."""
    if parametrize.is_parametrized(cell, kind):
        return cell.parametrizations[kind].original
    return cell._parameters.get(kind)


def _torch_name(rnn: _RNNBase, k: int, kind: str) -> str:
    layer, direction = divmod(k, rnn.num_directions)
    return f"{kind}_l{layer}{'_reverse' if direction else ''}"


def _drop_cell_names(module: _RNNBase, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict post-hook: keep torch's names only (the cells saved the same tensors again
    as ``cells.K.weight_ih``, ...)."""
    for key in list(state_dict):
        if key.startswith(prefix) and _OUR_NAME.match(key[len(prefix):]):
            del state_dict[key]


def _alias_names(module: _RNNBase, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: each parameter is loaded under both of its names, so a state dict with
    torch's names (or with the cells' names, as :class:`~rnnkit.Recurrent` saves) loads with
    no missing key."""
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        found = module._param_index(name)
        if found is not None:
            state_dict.setdefault(f"{prefix}cells.{found[0]}.{found[1]}", state_dict[key])
            continue
        m = _OUR_NAME.match(name)
        if m is not None and int(m.group(1)) < len(module.cells):
            alias = _torch_name(module, int(m.group(1)), m.group(2))
            state_dict.setdefault(prefix + alias, state_dict[key])


def _retie_after_load(module: _RNNBase, incompatible_keys) -> None:
    """Load post-hook: ``load_state_dict(assign=True)`` gives the cells new parameters; missing
    or unexpected keys are reported once, under torch's names (the cells' names of the same
    tensors are dropped)."""
    module._tie_torch_names()
    for keys in (incompatible_keys.missing_keys, incompatible_keys.unexpected_keys):
        keys[:] = [key for key in keys if not _OUR_NAME.search(key)]


class RNN(_RNNBase):
    r"""Drop-in for ``torch.nn.RNN``: :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1}
    + b_{hh})` per layer, ``nonlinearity`` ``"tanh"`` or ``"relu"``.

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed),
    ``hx`` ``[L * D, B, H]``; returns ``output [T, B, D * H]`` and ``h_n [L * D, B, H]``.
    """

    _cell = ElmanCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, backend=backend,
                         nonlinearity=nonlinearity)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Drop-in for ``torch.nn.LSTM`` (gates ``i, f, g, o``; optional ``proj_size``).

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed); ``hx`` a
    tuple ``(h_0 [L * D, B, O], c_0 [L * D, B, H])`` with ``O = proj_size or H``; returns
    ``output [T, B, D * O]`` and ``(h_n, c_n)`` as an :class:`~rnnkit.LSTMState`.
    """

    _cell = LSTMCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: torch.dtype | None = None, *, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, backend=backend, proj_size=proj_size)
        self.proj_size = proj_size

    def forward(self, input, hx=None):  # noqa: A002
        """Same as ``torch.nn.LSTM.forward``: ``(output, (h_n, c_n))``."""
        if hx is not None and not isinstance(hx, LSTMState):
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("LSTM expects hx as a tuple (h_0, c_0)")
            hx = LSTMState(*hx)
        return super().forward(input, hx)


class GRU(_RNNBase):
    """Drop-in for ``torch.nn.GRU`` (gates ``r, z, n``).

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed),
    ``hx`` ``[L * D, B, H]``; returns ``output [T, B, D * H]`` and ``h_n [L * D, B, H]``.
    """

    _cell = GRUCell


