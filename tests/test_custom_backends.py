"""Backend rules for the custom cells, without building native code: which backend ``auto``
picks, what an explicit choice that cannot serve says, and the pure-PyTorch fallback of the
``compiled`` backend (no compiler) against the ``loop`` reference."""

from __future__ import annotations

import pytest
import torch

import rnnkit.backends.compiled as compiled
import rnnkit.backends.native as native
from rnnkit import Recurrent
from rnnkit.backends import AUTO_ORDER, available_backends

F64 = torch.float64


def test_backends_registered_and_ordered():
    assert {"scan", "compiled"} <= set(available_backends())
    order = AUTO_ORDER
    assert order.index("scan") < order.index("loop")
    assert order.index("compiled") < order.index("loop")


def _toolchain(monkeypatch, reason):
    """Pretend the native kernels can (``reason=None``) or cannot be built; builds nothing."""
    monkeypatch.setitem(native._state, "unavailable", reason)
    monkeypatch.delitem(native._state, "module", raising=False)


@pytest.mark.parametrize("name,expected", [
    ("mingru", "scan"), ("minlstm", "scan"), ("layernorm_lstm", "compiled"),
    ("peephole_lstm", "compiled"), ("indrnn", "compiled"), ("layernorm_gru", "compiled"),
    ("lstm", "fused"), ("elman", "fused"), ("gru", "compiled")])
def test_auto_choice(name, expected, monkeypatch):
    _toolchain(monkeypatch, None)
    assert Recurrent(name, 3, 4).active_backend == expected


@pytest.mark.parametrize("name,expected", [
    ("gru", "fused"), ("layernorm_lstm", "loop"), ("indrnn", "loop"), ("mingru", "scan")])
def test_auto_choice_without_a_toolchain(name, expected, monkeypatch):
    """No compiler: the GRU keeps torch's kernel rather than the pure-PyTorch fallback."""
    _toolchain(monkeypatch, "no C++ compiler (test)")
    assert Recurrent(name, 3, 4).active_backend == expected
    with pytest.raises(ValueError, match="recurrent dropout"):
        Recurrent("gru", 3, 4, recurrent_dropout=0.2, backend="compiled")
    assert Recurrent("gru", 3, 4, recurrent_dropout=0.2).active_backend == "loop"


def test_explicit_backend_that_cannot_serve_names_the_fix():
    with pytest.raises(ValueError, match="no native kernel.*use backend='auto'"):
        Recurrent("elman", 3, 4, backend="compiled")
    with pytest.raises(ValueError, match="no parallel form"):
        Recurrent("peephole_lstm", 3, 4, backend="scan")


@pytest.mark.parametrize("name", ["layernorm_lstm", "layernorm_gru", "peephole_lstm", "indrnn"])
def test_compiled_without_compiler_falls_back_to_loop(name, monkeypatch):
    monkeypatch.setattr(compiled, "native_module", lambda: None)
    ref = Recurrent(name, 3, 5, bidirectional=True, backend="loop", dtype=F64)
    fast = Recurrent(name, 3, 5, bidirectional=True, backend="compiled", dtype=F64)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 3, dtype=F64)
    out_ref, _ = ref(x, lengths=[6, 1, 4])
    out, _ = fast(x, lengths=[6, 1, 4])
    torch.testing.assert_close(out, out_ref)


def test_compiled_refuses_what_its_kernels_cannot_run():
    layer = Recurrent("peephole_lstm", 3, 4, dtype=torch.bfloat16)
    assert layer.active_backend == "loop"
    with pytest.raises(ValueError, match="float32 or float64"):
        layer.backend = "compiled"


@pytest.mark.parametrize("capability,simd", [("AVX512", True), ("AVX2", True),
                                             ("DEFAULT", False), ("NO AVX", False)])
def test_native_build_flags_follow_the_cpu_capability(capability, simd, monkeypatch):
    """AVX2/FMA code only where torch reports AVX2 or better, under its own module name, and
    never a ``-march=native`` binary (the cache may be shared between machines)."""
    from rnnkit.backends import native

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    name, flags, _ = native.build_flags()
    assert ("-mavx2" in flags) == simd == ("_avx2" in name)
    assert not any(f.startswith("-march") for f in flags)


@pytest.mark.parametrize("blas", [True, False])
def test_native_build_without_blas_symbols_adds_the_aten_gemm(blas, monkeypatch):
    """Where libtorch_cpu exports no sgemm_/dgemm_, the per-step GEMM goes through at::mm
    (gemm_aten.cpp), under its own module name."""
    from rnnkit.backends import native

    monkeypatch.setattr(native, "_torch_exports", lambda *syms: blas or "sgemm_" not in syms)
    name, flags, sources = native.build_flags()
    assert ("-DRNNKIT_BLAS" in flags) == blas == name.endswith("_blas")
    assert any(s.endswith("gemm_aten.cpp") for s in sources) != blas
