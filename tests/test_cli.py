"""The CLI shell: global options and error reporting (subcommands have their own tests)."""

from __future__ import annotations

import argparse

import pytest
import torch

from rnnkit import cli


def _with_command(monkeypatch, func) -> None:
    """Register one extra command, ``probe``, that runs ``func(args)``."""
    build = cli.build_parser

    def build_with_probe() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.add_parser("probe").set_defaults(func=func)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_with_probe)


def test_threads_option_sets_torch_threads(monkeypatch) -> None:
    seen = []
    _with_command(monkeypatch, lambda args: seen.append(torch.get_num_threads()) or 0)
    before = torch.get_num_threads()
    try:
        assert cli.main(["--threads", "2", "probe"]) == 0
        assert seen == [2]
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        cli.main(["--threads", "0", "probe"])


def test_missing_optional_package_names_the_extra(monkeypatch, capsys) -> None:
    def needs_missing(args):
        raise ModuleNotFoundError("No module named 'nonexistent_pkg'", name="nonexistent_pkg")

    _with_command(monkeypatch, needs_missing)
    assert cli.main(["probe"]) == 2
    err = capsys.readouterr().err
    assert "nonexistent_pkg" in err and "rnnkit[all]" in err


@pytest.mark.parametrize("error", [
    ModuleNotFoundError("no packaged model found; install it with `pip install pkg-x`"),
    ModuleNotFoundError("forecasts need pkg_x; install it with `pip install pkg-x`",
                        name="pkg_x"),
    ImportError("number pairs need pkg_x: `pip install pkg-x`"),
])
def test_an_import_error_with_its_own_fix_is_printed_as_is(monkeypatch, capsys, error) -> None:
    def needs_missing(args):
        raise error

    _with_command(monkeypatch, needs_missing)
    assert cli.main(["probe"]) == 2  # not a traceback, not "the optional package None"
    err = capsys.readouterr().err
    assert f"rnnkit probe: error: {error}" in err and "None" not in err


def test_an_unwritable_output_is_an_error_not_a_traceback(monkeypatch, capsys) -> None:
    def writes_nowhere(args):
        raise OSError("Cannot save file into a non-existent directory: 'nowhere'")

    _with_command(monkeypatch, writes_nowhere)
    assert cli.main(["probe"]) == 2
    assert "rnnkit probe: error: Cannot save file into a non-existent directory" in \
        capsys.readouterr().err


def test_no_command_prints_help(capsys) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_help_and_every_commands_parser_import_no_torch() -> None:
    """``rnnkit --help`` (and building every command's parser, with its config dataclasses)
    stays torch-free: each CLI call would otherwise pay ~1.5 s of imports before any work."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\n"
            "from rnnkit import cli\n"
            "parser = cli.build_parser()\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    cli.main(['--help'])\n"
            "loaded = sorted(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules)\n"
            "print(','.join(loaded) or 'none')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "none", f"rnnkit --help imported {out}; import it inside the function"
