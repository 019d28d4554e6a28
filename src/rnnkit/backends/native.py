"""Build-on-first-use native kernels (``csrc/*.cpp``) for the ``compiled`` backend.

The C++ sources are compiled with ``torch.utils.cpp_extension.load`` the first time a kernel is
needed and cached by PyTorch under its extensions directory (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``), so later processes only load the library (0.25 s). The kernels
include no PyTorch header -- ``<torch/extension.h>`` alone takes 30 s to compile here, even
``<ATen/core/Tensor.h>`` with ``<torch/library.h>`` 8-10 s -- so a clean build takes 3 s on an
idle 2-core machine (9-12 s under a load of 4-6; it was 42-109 s with ``torch/extension.h``),
``lstm.cpp``, ``gru.cpp`` and ``indrnn.cpp`` being separate ninja jobs. They export a plain C ABI
on raw contiguous buffers; :class:`NativeKernels` allocates the output tensors and calls it
through ``ctypes``.

Flags (:func:`build_flags`), chosen at runtime on the machine that builds and runs the kernels,
never ``-march=native``:

* ``-O3 -fopenmp-simd`` always (``omp simd`` loops and reductions);
* ``-mavx2 -mfma`` with ``RNNKIT_VEC`` (float32 ``exp``/``tanh`` by AVX2 and libtorch_cpu's
  Sleef ``Sleef_expf8_u10``) only when ``torch.backends.cpu.get_cpu_capability()`` reports AVX2
  or AVX512 and libtorch_cpu exports that symbol; otherwise the scalar baseline-ISA build. The
  two builds have different module names, so a cache shared between machines never loads the
  wrong one;
* ``RNNKIT_BLAS`` (per-step GEMM straight into ``sgemm_``/``dgemm_``) only when libtorch_cpu
  exports those symbols (MKL builds); otherwise ``gemm_aten.cpp`` joins the build and each step
  makes one ``at::mm``.

Without a C++ compiler or ``ninja`` the build is skipped and :func:`native_module` returns
``None``; callers then use the pure-PyTorch loop.
"""

from __future__ import annotations

import ctypes
import shutil
import warnings
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["NativeKernels", "build_flags", "native_build_error", "native_module",
           "native_unavailable"]

CSRC = Path(__file__).with_name("csrc")
SOURCES = ["lstm.cpp", "gru.cpp", "indrnn.cpp"]  # one ninja job each; common.h is shared
_NAME = "rnnkit_cells_v11"  # bump whenever csrc/ changes, so stale caches are not loaded
_state: dict[str, object] = {}


def native_build_error() -> str | None:
    """Why the build failed in this process, or ``None`` (not tried yet, or built)."""
    return _state.get("reason") if "module" in _state else None  # type: ignore[return-value]


def native_unavailable() -> str | None:
    """Why the native kernels cannot be built here, or ``None`` if they can (checked once)."""
    if "unavailable" not in _state:
        _state["unavailable"] = _check_toolchain()
    return _state["unavailable"]  # type: ignore[return-value]


def _check_toolchain() -> str | None:
    missing = [s for s in [*SOURCES, "common.h"] if not (CSRC / s).is_file()]
    if missing:
        return f"the C++ sources {missing} are missing from {CSRC}"
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "no C++ compiler (c++ / g++) on PATH; install one (e.g. apt-get install g++)"
    try:
        from torch.utils.cpp_extension import verify_ninja_availability

        verify_ninja_availability()
    except Exception:  # noqa: BLE001 - any failure means "cannot build"
        return "ninja is not installed; pip install ninja"
    return None


def _torch_exports(*symbols: str) -> bool:
    """Whether libtorch_cpu exports all of ``symbols`` (the kernels link against them)."""
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(lib))
    except OSError:
        return False
    return all(hasattr(handle, sym) for sym in symbols)


def build_flags() -> tuple[str, list[str], list[str]]:
    """Module name, C++ flags and source files for this machine (see the module docstring)."""
    name, flags, sources = _NAME, ["-O3", "-fopenmp-simd"], list(SOURCES)
    if (torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
            and _torch_exports("Sleef_expf8_u10")):
        name += "_avx2"
        flags += ["-mavx2", "-mfma", "-DRNNKIT_VEC"]
    if _torch_exports("sgemm_", "dgemm_"):
        name += "_blas"
        flags.append("-DRNNKIT_BLAS")
    else:
        sources.append("gemm_aten.cpp")
    return name, flags, [str(CSRC / s) for s in sources]


def native_module() -> NativeKernels | None:
    """The compiled kernels (built and cached on first call), or ``None`` when unavailable.

    A failed build is reported once as a warning and not retried in this process.
    """
    if "module" in _state:
        return _state["module"]  # type: ignore[return-value]
    reason = native_unavailable()
    module = None
    if reason is None:
        try:
            from torch.utils.cpp_extension import load

            name, flags, sources = build_flags()
            path = load(name=name, sources=sources, extra_cflags=flags,
                        extra_include_paths=[str(CSRC)], is_python_module=False, verbose=False)
            module = NativeKernels(ctypes.CDLL(path))
        except Exception as err:  # noqa: BLE001 - a broken toolchain must not break training
            reason = f"building {', '.join(SOURCES)} failed: {err}"
    if module is None:
        warnings.warn(f"rnnkit native kernels unavailable ({reason}); the compiled backend "
                      f"falls back to the pure-PyTorch loop", RuntimeWarning, stacklevel=2)
    _state["module"] = module
    _state["reason"] = reason
    return module


_EXPORTS = ["peephole_forward", "peephole_backward", "lnlstm_forward", "lnlstm_backward",
            "gru_forward", "gru_backward", "lngru_forward", "lngru_backward", "indrnn_forward",
            "indrnn_backward"]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


class NativeKernels:
    """The C ABI of ``csrc/`` as functions on tensors: allocate the outputs, pass raw pointers.

    Every export is ``rnnkit_<kernel>_<f32|f64>(dims, ptrs, scalar)`` with ``dims = (T, B, H,
    flag)`` and ``ptrs`` the inputs then the outputs in the order the kernel's comment in
    ``csrc/`` lists (``None`` or an empty tensor: an absent option). Shapes are those of
    :mod:`rnnkit.backends.compiled`: time-major ``[T, B, .]``, states ``[B, H]``.
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._fns = {}
        for kernel in _EXPORTS:
            for dtype, sfx in _SUFFIX.items():
                fn = getattr(lib, f"rnnkit_{kernel}_{sfx}")
                fn.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_void_p),
                               ctypes.c_double]
                fn.restype = None
                self._fns[kernel, dtype] = fn

    def _run(self, kernel: str, dims: tuple[int, int, int, int], args: list[Tensor | None],
             scalar: float = 0.0) -> None:
        """Call ``kernel`` on ``args`` (inputs, then outputs); ``dims = (T, B, H, flag)``."""
        dtype = args[0].dtype
        keep, ptrs = [], []  # keep: contiguous copies stay alive for the call
        for t in args:
            if t is None or t.numel() == 0:
                ptrs.append(None)
                continue
            if t.dtype != dtype:
                raise TypeError(f"native {kernel}: got {t.dtype} and {dtype} tensors; the "
                                f"kernels take one dtype (float32 or float64)")
            if t.device.type != "cpu":
                raise ValueError(f"native {kernel}: got a tensor on {t.device}; the kernels "
                                 f"run on the CPU (use backend='fused' or 'loop' on a GPU)")
            t = t.contiguous()
            keep.append(t)
            ptrs.append(t.data_ptr())
        fn = self._fns[kernel, dtype]
        fn((ctypes.c_int64 * 4)(*dims), (ctypes.c_void_p * len(ptrs))(*ptrs), scalar)

    # ------------------------------------------------------------------ peephole LSTM
    def peephole_forward(self, xp, h0, c0, w_hh_t, w_ch, keep_h, keep_c, rmask):
        T, B, H = xp.shape[0], xp.shape[1], h0.shape[1]
        hs, cs, ct = (xp.new_empty(T, B, H) for _ in range(3))
        gates = xp.new_empty(T, B, 4 * H)
        self._run("peephole_forward", (T, B, H, 0),
                  [xp, h0, c0, w_hh_t, w_ch, keep_h, keep_c, rmask, hs, cs, gates, ct])
        return hs, cs, gates, ct

    def peephole_backward(self, gh, gc, hs, cs, gates, ct, h0, c0, w_hh, w_ch, keep_h, keep_c,
                          rmask):
        (T, B, G), H = gates.shape, c0.shape[1]
        da, dh0, dc0 = gates.new_empty(T, B, G), c0.new_empty(B, H), c0.new_empty(B, H)
        dw_hh, dw_ch = w_hh.new_zeros(G, H), w_ch.new_zeros(w_ch.shape)
        self._run("peephole_backward", (T, B, H, 0),
                  [gh, gc, hs, cs, gates, ct, h0, c0, w_hh, w_ch, keep_h, keep_c, rmask, da, dh0,
                   dc0, dw_hh, dw_ch])
        return da, dh0, dc0, dw_hh, dw_ch

    # ------------------------------------------------------------------ layer-norm LSTM
    def lnlstm_forward(self, xp, h0, c0, w_hh_t, g_hh, g_c, b_c, keep_h, keep_c, rmask, eps,
                       save=True):
        T, B, H = xp.shape[0], xp.shape[1], h0.shape[1]
        n = T if save else 0  # without a backward the kernel keeps only hs, cs
        hs, cs, chat = xp.new_empty(T, B, H), xp.new_empty(T, B, H), xp.new_empty(n, B, H)
        rhat, rstd_r, rstd_c = xp.new_empty(n, B, 4 * H), xp.new_empty(n, B), xp.new_empty(n, B)
        self._run("lnlstm_forward", (T, B, H, int(save)),
                  [xp, h0, c0, w_hh_t, g_hh, g_c, b_c, keep_h, keep_c, rmask, hs, cs, rhat,
                   rstd_r, chat, rstd_c], eps)
        return hs, cs, rhat, rstd_r, chat, rstd_c

    def lnlstm_backward(self, gh, gc, xp, hs, cs, rhat, rstd_r, chat, rstd_c, h0, c0, w_hh,
                        g_hh, g_c, b_c, keep_h, keep_c, rmask):
        (T, B, G), H = xp.shape, c0.shape[1]
        da, dh0, dc0 = xp.new_empty(T, B, G), c0.new_empty(B, H), c0.new_empty(B, H)
        dw_hh, dg_hh = w_hh.new_zeros(G, H), g_hh.new_zeros(G)
        dg_c, db_c = g_c.new_zeros(H), g_c.new_zeros(H)
        self._run("lnlstm_backward", (T, B, H, 0),
                  [gh, gc, xp, hs, cs, rhat, rstd_r, chat, rstd_c, h0, c0, w_hh, g_hh, g_c, b_c,
                   keep_h, keep_c, rmask, da, dh0, dc0, dw_hh, dg_hh, dg_c, db_c])
        return da, dh0, dc0, dw_hh, dg_hh, dg_c, db_c

    # ------------------------------------------------------------------ GRU
    def gru_forward(self, xp, h0, w_hh_t, b_hh, keep_h, save):
        T, B, H = xp.shape[0], xp.shape[1], h0.shape[1]
        hs, saved = xp.new_empty(T, B, H), xp.new_empty(T if save else 0, B, 4 * H)
        self._run("gru_forward", (T, B, H, int(save)), [xp, h0, w_hh_t, b_hh, keep_h, hs, saved])
        return hs, saved

    def gru_backward(self, gh, hs, saved, h0, w_hh, keep_h):
        (T, B, H) = hs.shape
        dxp, dh0 = hs.new_empty(T, B, 3 * H), h0.new_empty(B, H)
        dw_hh, db_hh = w_hh.new_zeros(3 * H, H), w_hh.new_zeros(3 * H)
        self._run("gru_backward", (T, B, H, 0),
                  [gh, hs, saved, h0, w_hh, keep_h, dxp, dh0, dw_hh, db_hh])
        return dxp, dh0, dw_hh, db_hh

    # ------------------------------------------------------------------ layer-norm GRU
    def lngru_forward(self, xp, h0, w_hh_t, g_hh, b_hh, keep_h, rmask, eps, save):
        T, B, H = xp.shape[0], xp.shape[1], h0.shape[1]
        n = T if save else 0  # without a backward the kernel keeps only hs
        hs, rhat, rstd = xp.new_empty(T, B, H), xp.new_empty(n, B, 3 * H), xp.new_empty(n, B)
        self._run("lngru_forward", (T, B, H, int(save)),
                  [xp, h0, w_hh_t, g_hh, b_hh, keep_h, rmask, hs, rhat, rstd], eps)
        return hs, rhat, rstd

    def lngru_backward(self, gh, xp, hs, rhat, rstd, h0, w_hh, g_hh, b_hh, keep_h, rmask):
        (T, B, H) = hs.shape
        dxp, dh0, dw_hh = hs.new_empty(T, B, 3 * H), h0.new_empty(B, H), w_hh.new_zeros(3 * H, H)
        dg_hh, db_hh = g_hh.new_zeros(3 * H), g_hh.new_zeros(3 * H)
        self._run("lngru_backward", (T, B, H, 0),
                  [gh, xp, hs, rhat, rstd, h0, w_hh, g_hh, b_hh, keep_h, rmask, dxp, dh0, dw_hh,
                   dg_hh, db_hh])
        return dxp, dh0, dw_hh, dg_hh, db_hh

    # ------------------------------------------------------------------ IndRNN
    def indrnn_forward(self, xp, h0, u, keep_h, rmask, relu):
        hs, hn = torch.empty_like(xp), torch.empty_like(xp)
        T, B, H = xp.shape
        self._run("indrnn_forward", (T, B, H, int(relu)), [xp, h0, u, keep_h, rmask, hs, hn])
        return hs, hn

    def indrnn_backward(self, gh, hs, hn, h0, u, keep_h, rmask, relu):
        dxp, dh0, du = torch.empty_like(hs), torch.empty_like(h0), torch.zeros_like(u)
        T, B, H = hs.shape
        self._run("indrnn_backward", (T, B, H, int(relu)),
                  [gh, hs, hn, h0, u, keep_h, rmask, dxp, dh0, du])
        return dxp, dh0, du
