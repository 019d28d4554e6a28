"""Tier (a): rnnkit.nn drop-ins against torch.nn with copied weights, in float64.

Outputs, final states, and gradients of the input, the initial state and every parameter, over
many random configurations, for every backend that can run the layer.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit.nn as rnn
from rnnkit import Recurrent

KINDS = {"RNN": (rnn.RNN, torch.nn.RNN), "LSTM": (rnn.LSTM, torch.nn.LSTM),
         "GRU": (rnn.GRU, torch.nn.GRU)}
BACKENDS = ["loop", "fused"]


def _configs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.choice(list(KINDS))
        cfg = dict(
            kind=kind,
            input_size=rng.randint(1, 6),
            hidden_size=rng.randint(2, 7),
            num_layers=rng.randint(1, 3),
            bias=rng.random() < 0.8,
            batch_first=rng.random() < 0.5,
            bidirectional=rng.random() < 0.5,
            batch=rng.randint(1, 4),
            T=rng.randint(1, 6),
            with_hx=rng.random() < 0.5,
            packed=rng.random() < 0.35,
        )
        if kind == "LSTM" and rng.random() < 0.4 and cfg["hidden_size"] > 2:
            cfg["proj_size"] = rng.randint(1, cfg["hidden_size"] - 1)
        if kind == "RNN" and rng.random() < 0.4:
            cfg["nonlinearity"] = "relu"
        out.append(cfg)
    return out


def _build(cfg: dict, backend: str):
    ours_cls, torch_cls = KINDS[cfg["kind"]]
    kw = {k: cfg[k] for k in ("input_size", "hidden_size", "num_layers", "bias",
                              "batch_first", "bidirectional")}
    for opt in ("proj_size", "nonlinearity"):
        if opt in cfg:
            kw[opt] = cfg[opt]
    theirs = torch_cls(**kw, dtype=torch.float64)
    ours = ours_cls(**kw, dtype=torch.float64, backend=backend)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _inputs(cfg: dict, ours):
    B, T, I = cfg["batch"], cfg["T"], cfg["input_size"]
    shape = (B, T, I) if cfg["batch_first"] else (T, B, I)
    x = torch.randn(*shape, dtype=torch.float64)
    hx = None
    if cfg["with_hx"]:
        LD = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
        out_size = cfg.get("proj_size") or cfg["hidden_size"]
        h = torch.randn(LD, B, out_size, dtype=torch.float64)
        if cfg["kind"] == "LSTM":
            hx = (h, torch.randn(LD, B, cfg["hidden_size"], dtype=torch.float64))
        else:
            hx = h
    lengths = torch.randint(1, T + 1, (B,)) if cfg["packed"] else None
    return x, hx, lengths


def _run(module, x, hx, lengths, batch_first):
    x = x.clone().requires_grad_(True)
    hx = None if hx is None else (
        tuple(h.clone().requires_grad_(True) for h in hx) if isinstance(hx, tuple)
        else hx.clone().requires_grad_(True))
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, state = module(inp, hx)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=batch_first)
    states = tuple(state) if isinstance(state, tuple) else (state,)
    # A random linear functional of everything returned reaches every gradient path.
    g = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in states:
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    params = list(module.parameters())
    leaves = [x] + ([] if hx is None else list(hx) if isinstance(hx, tuple) else [hx])
    grads = torch.autograd.grad(loss, leaves + params)
    return out.detach(), [s.detach() for s in states], grads


def _msg(cfg: dict):
    return lambda m: f"{cfg}: {m}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_dropins_match_torch(backend: str, seed: int) -> None:
    for cfg in _configs(12, seed=1000 * seed + len(backend)):
        ours, theirs = _build(cfg, backend)
        x, hx, lengths = _inputs(cfg, ours)
        o1, s1, g1 = _run(ours, x, hx, lengths, cfg["batch_first"])
        o2, s2, g2 = _run(theirs, x, hx, lengths, cfg["batch_first"])
        torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10, msg=_msg(cfg))
        for a, b in zip(s1, s2):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=_msg(cfg))
        assert len(g1) == len(g2)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=_msg(cfg))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_input(kind: str, backend: str) -> None:
    cfg = dict(kind=kind, input_size=3, hidden_size=4, num_layers=2, bias=True,
               batch_first=False, bidirectional=True)
    ours, theirs = _build(cfg, backend)
    x = torch.randn(5, 3, dtype=torch.float64)
    h = torch.randn(4, 4, dtype=torch.float64)
    hx = (h, torch.randn(4, 4, dtype=torch.float64)) if kind == "LSTM" else h
    o1, s1 = ours(x, hx)
    o2, s2 = theirs(x, hx)
    torch.testing.assert_close(o1, o2)
    for a, b in zip(s1 if kind == "LSTM" else [s1], s2 if kind == "LSTM" else [s2]):
        torch.testing.assert_close(a, b)


def test_state_dict_round_trip_both_ways() -> None:
    theirs = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    ours = rnn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    back = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    back.load_state_dict(ours.state_dict())
    for (k, a), (_, b) in zip(theirs.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    # torch's attribute names reach the same parameters
    assert ours.weight_hr_l1_reverse is ours.cells[3].weight_hr
    with pytest.raises(AttributeError):
        ours.weight_ih_l2  # noqa: B018 - only two layers


@pytest.mark.parametrize("ours_cls,torch_cls", [
    (rnn.RNNCell, torch.nn.RNNCell), (rnn.LSTMCell, torch.nn.LSTMCell),
    (rnn.GRUCell, torch.nn.GRUCell)])
def test_cells_match_torch_cells(ours_cls, torch_cls) -> None:
    for bias, batched, with_hx in itertools.product([True, False], repeat=3):
        theirs = torch_cls(5, 7, bias=bias, dtype=torch.float64)
        ours = ours_cls(5, 7, bias=bias, dtype=torch.float64)
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(*((3,) if batched else ()), 5, dtype=torch.float64)
        hx = None
        if with_hx:
            h = torch.randn(*((3,) if batched else ()), 7, dtype=torch.float64)
            hx = (h, torch.randn_like(h)) if torch_cls is torch.nn.LSTMCell else h
        a, b = ours(x, hx), theirs(x, hx)
        for u, v in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            torch.testing.assert_close(u, v)


def test_dropout_between_layers_only_in_training() -> None:
    layer = rnn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(6, 2, 3)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        rnn.LSTM(3, 4, dropout=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_single_step_through_cell_kernels_matches_torch(seed: int) -> None:
    """T = 1 takes the per-layer cell kernels (streaming); it must still equal torch.nn's
    sequence kernel, with gradients, for every kind, bias on/off, relu and stacked layers."""
    for cfg in _configs(12, seed=77 + seed):
        cfg.update(T=1, bidirectional=False, packed=False)
        cfg.pop("proj_size", None)
        ours, theirs = _build(cfg, "fused")
        x, hx, lengths = _inputs(cfg, ours)
        o1, s1, g1 = _run(ours, x, hx, lengths, cfg["batch_first"])
        o2, s2, g2 = _run(theirs, x, hx, lengths, cfg["batch_first"])
        for a, b in zip([o1, *s1, *g1], [o2, *s2, *g2]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=_msg(cfg))


NAMED = [(rnn.LSTM, torch.nn.LSTM, dict(num_layers=2, bidirectional=True, proj_size=3)),
         (rnn.LSTM, torch.nn.LSTM, dict(bias=False)),
         (rnn.GRU, torch.nn.GRU, dict(num_layers=2, bidirectional=True)),
         (rnn.RNN, torch.nn.RNN, dict(num_layers=2, nonlinearity="relu"))]


@pytest.mark.parametrize("ours_cls,torch_cls,kw", NAMED)
def test_parameter_names_and_order_match_torch(ours_cls, torch_cls, kw) -> None:
    theirs = torch_cls(4, 6, dtype=torch.float64, **kw)
    ours = ours_cls(4, 6, dtype=torch.float64, **kw)
    ours.load_state_dict(theirs.state_dict())
    names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == names
    assert list(ours.state_dict()) == list(theirs.state_dict()) == names
    assert ours._flat_weights_names == theirs._flat_weights_names
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(ours._flat_weights, theirs._flat_weights, strict=True):
        assert torch.equal(a, b)
    assert [len(w) for w in ours.all_weights] == [len(w) for w in theirs.all_weights]
    for a, b in zip(sum(ours.all_weights, []), sum(theirs.all_weights, []), strict=True):
        assert torch.equal(a, b)
    # each name is the tensor its cell computes with (layer-major, forward then reverse)
    for k, cell_names in enumerate(ours._all_weights):
        for name in cell_names:
            assert getattr(ours, name) is getattr(ours.cells[k], name.split("_l")[0]), name
    # a parent module sees the same names
    parent_ours, parent_theirs = torch.nn.Sequential(ours), torch.nn.Sequential(theirs)
    assert [n for n, _ in parent_ours.named_parameters()] == \
        [n for n, _ in parent_theirs.named_parameters()]
    assert list(parent_ours.state_dict()) == list(parent_theirs.state_dict())


@pytest.mark.parametrize("ours_cls,torch_cls,kw", NAMED)
def test_optimizer_groups_built_by_name_select_the_same_tensors(ours_cls, torch_cls, kw) -> None:
    theirs = torch_cls(4, 6, dtype=torch.float64, **kw)
    ours = ours_cls(4, 6, dtype=torch.float64, backend="loop", **kw)
    ours.load_state_dict(theirs.state_dict())

    def groups(module):
        # a common recipe: orthogonal-init the recurrent weights, no weight decay on biases
        with torch.no_grad():
            for name, p in module.named_parameters():
                if name.startswith("weight_hh"):
                    torch.nn.init.orthogonal_(p, generator=torch.Generator().manual_seed(3))
        decay = [p for n, p in module.named_parameters() if not n.startswith("bias")]
        no_decay = [p for n, p in module.named_parameters() if n.startswith("bias")]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.5},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=0.1)

    opt_ours, opt_theirs = groups(ours), groups(theirs)
    for g_ours, g_theirs in zip(opt_ours.param_groups, opt_theirs.param_groups, strict=True):
        assert len(g_ours["params"]) == len(g_theirs["params"])
        for a, b in zip(g_ours["params"], g_theirs["params"]):
            assert a.shape == b.shape and torch.equal(a, b)
    cells = {id(p) for c in ours.cells for p in c.parameters()}
    assert {id(p) for g in opt_ours.param_groups for p in g["params"]} == cells
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    for _ in range(2):
        for module, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            out, _ = module(x)
            out.square().sum().backward()
            opt.step()
    for (n, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        torch.testing.assert_close(a, b, msg=n)


def test_torch_names_stay_tied_to_the_cells() -> None:
    ours = rnn.LSTM(3, 5, num_layers=2, proj_size=2)
    n_params = len(list(ours.parameters()))
    ours.double()  # conversion: the cells' parameters, once each
    assert ours.weight_ih_l1 is ours.cells[1].weight_ih
    assert ours.weight_ih_l1.dtype == torch.float64
    assert len(list(ours.parameters())) == n_params
    new = {k: torch.randn_like(v) for k, v in ours.state_dict().items()}
    ours.load_state_dict(new, assign=True)  # new parameters for the cells
    assert ours.weight_hr_l0 is ours.cells[0].weight_hr
    assert torch.equal(ours.cells[0].weight_hr, new["weight_hr_l0"])
    p = torch.nn.Parameter(torch.zeros(20, 2, dtype=torch.float64))
    ours.weight_hh_l1 = p  # assignment reaches the cell, as torch's reaches its flat weight
    assert ours.cells[1].weight_hh is p and ours.weight_hh_l1 is p
    assert len(list(ours.parameters())) == n_params
    # a state dict of the plain runner (the cells' names) loads too
    runner = Recurrent("lstm", 3, 5, num_layers=2, proj_size=2, dtype=torch.float64)
    ours.load_state_dict(runner.state_dict())
    assert torch.equal(ours.weight_hh_l1, runner.cells[1].weight_hh)
    # torch.func by torch's names reaches the cells' computation
    from torch.func import functional_call

    zeros = {n: torch.zeros_like(v) for n, v in ours.named_parameters()}
    out, _ = functional_call(ours, zeros, (torch.randn(4, 1, 3, dtype=torch.float64),))
    assert out.eq(0).all()


def test_hooks_replacing_a_torch_named_parameter_are_refused_not_ignored() -> None:
    """weight_norm / pruning swap the module's parameter; the drop-in runs its cells' own, so it
    must refuse instead of silently ignoring them; a parametrization of the cell works."""
    import torch.nn.utils.prune as prune
    from torch.nn.utils import parametrize

    x = torch.randn(5, 3, 4)
    m = rnn.LSTM(4, 6, num_layers=2)
    prune.l1_unstructured(m, "weight_hh_l1", amount=1.0)
    with pytest.raises(RuntimeError, match=r"weight_hh_l1 was replaced.*rnn\.cells\[1\]"):
        m(x)
    m = rnn.GRU(4, 6)
    before = m(x)[0].detach()

    class Zero(torch.nn.Module):
        def forward(self, w):
            return torch.zeros_like(w)

    parametrize.register_parametrization(m.cells[0], "weight_hh", Zero())
    ref = torch.nn.GRU(4, 6)
    ref.load_state_dict({k: (torch.zeros_like(v) if k == "weight_hh_l0" else v)
                         for k, v in m.state_dict().items() if not k.startswith("cells.")})
    torch.testing.assert_close(m(x)[0], ref(x)[0])
    assert not torch.allclose(m(x)[0], before)


def test_missing_keys_are_reported_once_under_torch_names() -> None:
    ours, theirs = rnn.LSTM(4, 5, num_layers=2), torch.nn.LSTM(4, 5, num_layers=2)
    partial = {k: v for k, v in theirs.state_dict().items() if k != "bias_ih_l1"}
    assert ours.load_state_dict(partial, strict=False).missing_keys == \
        theirs.load_state_dict(partial, strict=False).missing_keys == ["bias_ih_l1"]
