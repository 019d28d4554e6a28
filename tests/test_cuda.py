"""The runner on a GPU: every registered cell on every backend that serves it on CUDA equals the
float64 CPU reference loop (outputs, final states, gradients), with lengths and both
directions; the drop-ins equal torch.nn (cuDNN) with copied weights; streaming steps equal a
full run. Skipped without CUDA (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``."""

from __future__ import annotations

import pytest
import torch

import rnnkit.nn as rnn
from rnnkit import Recurrent, available_cells
from rnnkit.backends import available_backends, get_backend
from rnnkit.cells import state_tensors

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _full_float32():
    """cuDNN's RNN kernels default to TF32 on Ampere and later (errors of ~5e-4 measured on an
    H200, the same for torch.nn.LSTM); compare in full float32."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = old


def _cuda_pairs() -> list[tuple[str, str]]:
    """(cell, backend) pairs a CUDA layer can run, ``auto`` included."""
    if not torch.cuda.is_available():
        return []
    pairs = []
    for cell in available_cells():
        probe = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, device="cuda")
        for backend in available_backends():
            if backend == "auto" or get_backend(backend).unsupported(probe) is None:
                pairs.append((cell, backend))
    return pairs


def _run(layer: Recurrent, x: torch.Tensor, lengths: torch.Tensor, weights: torch.Tensor):
    out, state = layer(x, lengths=lengths)
    loss = (out * weights).sum() + sum(s.square().sum() for s in state_tensors(state))
    grads = torch.autograd.grad(loss, [x, *layer.parameters()])
    return out, state_tensors(state), grads


@pytest.mark.parametrize("cell,backend", _cuda_pairs())
def test_cuda_backend_equals_cpu_reference(cell: str, backend: str) -> None:
    torch.manual_seed(0)
    ref = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, backend="loop",
                    dtype=torch.float64)
    gpu = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, device="cuda")
    gpu.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    gpu.backend = backend
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    lengths = torch.tensor([9, 3, 6, 1])
    weights = torch.randn(4, 9, 10, dtype=torch.float64)
    want = _run(ref, x.clone().requires_grad_(True), lengths, weights)
    got = _run(gpu, x.float().cuda().requires_grad_(True), lengths, weights.float().cuda())
    for a, b in zip([want[0], *want[1], *want[2]], [got[0], *got[1], *got[2]]):
        torch.testing.assert_close(b.double().cpu(), a, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_cuda_dropins_equal_torch_cudnn(kind: str) -> None:
    torch.manual_seed(1)
    extra = {"proj_size": 3} if kind == "LSTM" else {}
    ours = getattr(rnn, kind)(6, 8, num_layers=2, bidirectional=True, **extra).cuda()
    peer = getattr(torch.nn, kind)(6, 8, num_layers=2, bidirectional=True, **extra).cuda()
    ours.load_state_dict(peer.state_dict())
    x = torch.randn(11, 4, 6, device="cuda")
    (o1, s1), (o2, s2) = ours(x), peer(x)
    torch.testing.assert_close(o1, o2, rtol=1e-4, atol=1e-5)
    for a, b in zip(state_tensors(s1), state_tensors(s2)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    g1 = torch.autograd.grad(o1.square().sum(), list(ours.parameters()))
    g2 = torch.autograd.grad(o2.square().sum(), list(peer.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru", "layernorm_lstm"])
def test_cuda_streaming_steps_equal_full_run(cell: str) -> None:
    torch.manual_seed(2)
    layer = Recurrent(cell, 4, 6, num_layers=2, device="cuda").eval()
    x = torch.randn(3, 12, 4, device="cuda")
    full, final = layer(x)
    state, outs = None, []
    for x_t in x.unbind(1):
        y, state = layer.step(x_t, state)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs, 1), full, rtol=1e-4, atol=1e-5)
    for a, b in zip(state_tensors(state), state_tensors(final)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
