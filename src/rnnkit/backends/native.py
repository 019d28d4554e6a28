"""Build-on-first-use native kernels (``csrc/cells.cpp``) for the ``compiled`` backend.

The C++ source is compiled with ``torch.utils.cpp_extension.load`` the first time a kernel is
needed (about 20-60 s on 2 cores) and cached by PyTorch under its extensions directory
(``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), so later processes load it in
well under a second. Flags are plain ``-O3``: no ``-march=native``, so a cached build is valid
on any x86-64 machine sharing that cache. (``-ffast-math`` was tried, to let GCC vectorize
``exp``/``tanh`` through glibc's libmvec: it vectorized 3 call sites and changed no timing.)
Without a C++ compiler or ``ninja`` the build is skipped and :func:`native_module` returns
``None``; callers then use the pure-PyTorch loop.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["native_module", "native_unavailable"]

SOURCE = Path(__file__).with_name("csrc") / "cells.cpp"
_NAME = "rnnkit_cells_v3"
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

            module = load(name=_NAME, sources=[str(SOURCE)],
                          extra_cflags=["-O3"], verbose=False)
        except Exception as err:  # noqa: BLE001 - a broken toolchain must not break training
            reason = f"building {SOURCE.name} failed: {err}"
    if module is None:
        warnings.warn(f"rnnkit native kernels unavailable ({reason}); the compiled backend "
                      f"falls back to the pure-PyTorch loop", RuntimeWarning, stacklevel=2)
    _state["module"] = module
    _state["reason"] = reason
    return module
