"""``rnnkit <command>``: every command is a thin call into the library.

Subcommands live in :mod:`rnnkit.commands`, one module per application.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands import COMMAND_MODULES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks on PyTorch: train, generate, classify, "
        "translate, forecast.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", dest="torch_threads",
        help="torch CPU threads (default: torch's choice; 1 is often faster for small models "
        "or on a busy machine)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"rnnkit.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"rnnkit.commands.{name}":
                continue  # that application is not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if args.torch_threads is not None:  # a subcommand may have a --threads of its own
        if args.torch_threads < 1:
            parser.error(f"--threads must be at least 1, got {args.torch_threads}")
        import torch

        torch.set_num_threads(args.torch_threads)
    try:
        return int(args.func(args) or 0)
    except ImportError as err:
        if err.name and str(err) == f"No module named {err.name!r}":  # a bare failed import
            print(f"rnnkit {args.command}: error: the optional package {err.name!r} is "
                  f"missing; install the extras with: pip install -c constraints.txt "
                  f"'rnnkit[all]'", file=sys.stderr)
        else:  # rnnkit's own message, which names the package and the extra to install
            print(f"rnnkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError, TypeError) as err:  # OSError: e.g. --out in a missing folder
        print(f"rnnkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
