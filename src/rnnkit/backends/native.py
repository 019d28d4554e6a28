"""Build-on-first-use native kernels (``csrc/cells.cpp``) for the ``compiled`` backend.

The C++ source is compiled with ``torch.utils.cpp_extension.load`` the first time a kernel is
needed (about 20-60 s on 2 cores) and cached by PyTorch under its extensions directory
(``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), so later processes load it in
well under a second. Flags (:func:`build_flags`), chosen at runtime on the machine that builds
and runs the kernels, never ``-march=native``:

* ``-O3 -fopenmp-simd`` always (``omp simd`` reductions in the layer norms);
* ``-mavx2 -mfma`` with ``RNNKIT_VEC`` (float32 ``exp``/``tanh`` through ATen's
  ``at::vec::Vectorized``) only when ``torch.backends.cpu.get_cpu_capability()`` reports AVX2 or
  AVX512; otherwise the scalar baseline-ISA build. The two builds have different module names,
  so a cache shared between machines never loads the wrong one;
* ``RNNKIT_BLAS`` (per-step GEMM straight into ``sgemm_``/``dgemm_``, skipping the dispatcher)
  only when libtorch_cpu exports those symbols (MKL builds); otherwise one ``at::mm`` per step.
Without a C++ compiler or ``ninja`` the build is skipped and :func:`native_module` returns
``None``; callers then use the pure-PyTorch loop.
"""

from __future__ import annotations

import ctypes
import shutil
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["build_flags", "native_module", "native_unavailable"]

SOURCE = Path(__file__).with_name("csrc") / "cells.cpp"
_NAME = "rnnkit_cells_v8"  # bump whenever cells.cpp changes, so stale caches are not loaded
_state: dict[str, object] = {}


def native_unavailable() -> str | None:
    """Why the native kernels cannot be built here, or ``None`` if they can."""
    if not SOURCE.is_file():
        return f"the C++ source {SOURCE} is missing from this installation"
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "no C++ compiler (c++ / g++) on PATH; install one (e.g. apt-get install g++)"
    try:
        from torch.utils.cpp_extension import verify_ninja_availability

        verify_ninja_availability()
    except Exception:  # noqa: BLE001 - any failure means "cannot build"
        return "ninja is not installed; pip install ninja"
    return None


def _torch_exports_blas() -> bool:
    """Whether libtorch_cpu exports the Fortran ``sgemm_``/``dgemm_`` the kernels may call."""
    import torch

    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(lib))
    except OSError:
        return False
    return all(hasattr(handle, sym) for sym in ("sgemm_", "dgemm_"))


def build_flags() -> tuple[str, list[str]]:
    """Module name and C++ flags for this machine (see the module docstring)."""
    import torch

    name, flags = _NAME, ["-O3", "-fopenmp-simd"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        name += "_avx2"
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2",
                  "-DRNNKIT_VEC"]
    if _torch_exports_blas():
        name += "_blas"
        flags.append("-DRNNKIT_BLAS")
    return name, flags


def native_module() -> ModuleType | None:
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

            name, flags = build_flags()
            module = load(name=name, sources=[str(SOURCE)], extra_cflags=flags, verbose=False)
        except Exception as err:  # noqa: BLE001 - a broken toolchain must not break training
            reason = f"building {SOURCE.name} failed: {err}"
    if module is None:
        warnings.warn(f"rnnkit native kernels unavailable ({reason}); the compiled backend "
                      f"falls back to the pure-PyTorch loop", RuntimeWarning, stacklevel=2)
    _state["module"] = module
    _state["reason"] = reason
    return module
