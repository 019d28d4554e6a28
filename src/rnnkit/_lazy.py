"""Names of a package that load on first use (PEP 562), so importing the package is cheap.

>>> getattr_, dir_ = lazy_names("json", {"dumps": ""})  # "" = the package itself
>>> getattr_("dumps")([1])
'[1]'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str], submodules: tuple[str, ...] = (),
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to the
    submodule (relative, without the dot; ``""`` for the package) that defines it, and each of
    ``submodules`` is imported when read as an attribute. A name is cached in the package's
    namespace on first use."""

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            where = f"{package}.{names[name]}" if names[name] else package
            value = getattr(importlib.import_module(where), name)
            module = sys.modules.get(package)
            if module is not None:
                setattr(module, name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        module = sys.modules.get(package)
        return sorted({*(vars(module) if module else ()), *names, *submodules})

    return __getattr__, __dir__
