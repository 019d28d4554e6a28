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
