"""``rnnkit <command>``: every command is a thin call into the library.

Subcommands live in :mod:`rnnkit.commands`, one module per application.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from . import __version__
from .commands import COMMAND_MODULES
from .train.interrupt import TrainingInterrupted


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
    _mark_leaves(parser)
    return parser


def _mark_leaves(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command's namespace its own parser (``_parser``), so errors can be put
    in the words of the flags that command has."""
    parser.set_defaults(_parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _mark_leaves(child)


#: Options whose values set how much memory a command needs.
SIZES = ("hidden_size", "embed_size", "num_layers", "batch_size", "bptt", "beam", "beam_size",
         "max_len", "length", "input_len", "n_mels")


def _size_flags(args: argparse.Namespace) -> str:
    """The command's flags that set memory use (``--hidden, --batch-size``), for errors."""
    from .commands.options import flag_names

    parser = getattr(args, "_parser", None)
    flags = flag_names(parser) if parser is not None else {}
    given = [flags[n] for n in SIZES if n in flags]
    return f"sizes ({', '.join(given)})" if given else "sizes"


def _in_flag_words(message: str, args: argparse.Namespace) -> str:
    """A library message (``hidden_size must be ...``, ``fill='interpolate'``) in the words of
    the command's flags (``--hidden must be ...``, ``--fill interpolate``)."""
    from .commands.options import flag_names, in_flag_words

    parser = getattr(args, "_parser", None)
    return in_flag_words(message, flag_names(parser)) if parser is not None else message


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
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
    except TrainingInterrupted as err:  # the trainer finished its step and saved last.pt
        print(f"rnnkit {args.command}: {err}", file=sys.stderr)
        resumable = getattr(args, "resumable", None)  # a command whose runs resume only so
        if err.checkpoint and hasattr(args, "resume") and (resumable is None or
                                                           resumable(args)):
            again = argv if "--resume" in argv else [*argv, "--resume"]
            again = [a for a in again if a != "--overwrite"]
            print(f"resume with: rnnkit {shlex.join(again)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"rnnkit {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`rnnkit generate ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, as a program killed by the signal would report
    except ImportError as err:
        if err.name and str(err) == f"No module named {err.name!r}":  # a bare failed import
            print(f"rnnkit {args.command}: error: the optional package {err.name!r} is "
                  f"missing; install the extras with: pip install -c constraints.txt "
                  f"'rnnkit[all]'", file=sys.stderr)
        else:  # rnnkit's own message, which names the package and the extra to install
            print(f"rnnkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:  # torch's allocator raises a RuntimeError
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, RuntimeError) and "allocate" not in text and \
                "out of memory" not in text:
            raise
        print(f"rnnkit {args.command}: error: not enough memory ({text[-160:]}); use smaller "
              f"{_size_flags(args)}", file=sys.stderr)
        return 2
    except (ValueError, OSError, TypeError) as err:  # OSError: e.g. --out in a missing folder
        print(f"rnnkit {args.command}: error: {_in_flag_words(str(err), args)}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
