"""Command options from config dataclasses: every field of a command's configs is a flag
``--section.field VALUE`` (plus an optional short alias such as ``--hidden``) and a key of a
``[section]`` table in a TOML file given with ``--config``; later wins: dataclass default <
TOML < flag. The names are the dataclass fields, so Python and the CLI say the same thing.
Config files are parsed with ``tomllib``, never executed.

>>> import argparse, dataclasses
>>> @dataclasses.dataclass
... class Model:
...     hidden_size: int = 8
>>> p = argparse.ArgumentParser()
>>> add_config_arguments(p, {"model": Model}, aliases={"model.hidden_size": "--hidden"})
>>> args = p.parse_args(["--hidden", "16"])
>>> load_config(None, config_overrides(args, {"model": Model}), {"model": Model})["model"]
Model(hidden_size=16)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["add_command_options", "add_config_arguments", "build_configs", "config_overrides",
           "converter", "field_help", "flag_names", "given_settings", "in_flag_words",
           "load_config", "parse_bool", "print_warnings", "speaking_flags", "with_defaults"]


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def converter(annotation: Any):
    text = str(annotation)
    optional = "None" in text
    base = text.replace("| None", "").replace("None |", "").strip()
    parse = {"int": int, "float": float, "str": str, "bool": parse_bool}.get(base, str)

    def convert(value: str):
        if optional and value.strip().lower() in ("none", "null"):
            return None
        try:
            return parse(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base}, got {value!r}") from None

    convert.__name__ = base  # argparse names the type in its error messages
    return convert


def field_help(cls: type) -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` section of a dataclass's docstring."""
    doc = inspect.getdoc(cls) or ""
    if "Attributes:" not in doc:
        return {}
    helps: dict[str, str] = {}
    current: list[str] = []
    for line in doc.split("Attributes:", 1)[1].splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            break  # the next section
        m = re.match(r"^    ([\w, ]+): (.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for name in current:
                helps[name] = m.group(2).strip()
        else:
            for name in current:
                helps[name] += " " + line.strip()
    for name, text in helps.items():  # reST markup reads badly in a terminal
        text = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).split(".")[-1], text)
        helps[name] = re.sub(r"``([^`]*)``", r"\1", text)
    return helps


def add_config_arguments(parser: argparse.ArgumentParser, sections: dict[str, type],
                         aliases: dict[str, str] | None = None,
                         not_flags: Collection[str] = (),
                         helps: dict[str, str] | None = None) -> None:
    """One ``--section.field`` flag per dataclass field, plus its short alias from
    ``aliases`` (``{"section.field": "--flag"}``); fields in ``not_flags`` get none. Unset
    flags stay absent from the namespace, so TOML values are only overridden by flags given.
    ``helps`` (``{"section.field": text}``) replaces a field's docstring help where the
    command gives the field another meaning."""
    aliases = aliases or {}
    helps_given = helps or {}
    for section, cls in sections.items():
        group = parser.add_argument_group(f"[{section}] options ({cls.__name__})")
        helps = field_help(cls)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            if key in not_flags:
                continue
            names = [*([aliases[key]] if key in aliases else []), f"--{key}"]
            default = f.default if f.default is not dataclasses.MISSING else None
            text = helps_given.get(key, helps.get(f.name, "")).replace("%", "%%")
            group.add_argument(*names, dest=key, type=converter(f.type),
                               default=argparse.SUPPRESS, metavar=str(f.type).split()[0].upper(),
                               help=f"{text} (default: {default!r})".strip())


def _toml_value(path: str, section: str, name: str, annotation: Any, value: Any) -> Any:
    """A TOML value checked against the field's type as a flag's text would be (TOML keeps
    ``"false"`` a string, which ``bool()`` would call true); an int is taken for a float.
    Types other than int, float, str and bool are left to the dataclass's own checks."""
    text = str(annotation)
    base = text.replace("| None", "").replace("None |", "").strip()
    want = {"int": int, "float": (int, float), "str": str, "bool": bool}.get(base)
    if want is None:
        return value
    if not isinstance(value, want) or (isinstance(value, bool) and base != "bool"):
        hint = " (true or false, without quotes)" if base == "bool" else ""
        raise ValueError(f"config file {path}: [{section}] {name} must be {base}{hint}, got "
                         f"{value!r}")
    return float(value) if base == "float" else value


def load_config(path: str | None, overrides: dict[str, Any], sections: dict[str, type],
                not_flags: Collection[str] = ()) -> dict[str, Any]:
    """Build one dataclass per section from defaults < TOML file < ``overrides``
    (``{"section.field": value}``)."""
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {path} not found; check the --config path")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path} is not valid TOML: {err}") from None
        except UnicodeDecodeError:
            raise ValueError(f"config file {path} is not UTF-8 text; give --config a TOML "
                             f"file ([section] tables of key = value lines)") from None
        for table, content in data.items():
            if table not in sections:
                raise ValueError(f"config file {path}: unknown table [{table}]; expected "
                                 f"tables {', '.join(f'[{s}]' for s in sections)}")
            if not isinstance(content, dict):
                raise ValueError(f"config file {path}: {table} must be a table (a [{table}] "
                                 f"header followed by key = value lines), got "
                                 f"{table} = {content!r}")
            types = {f.name: f.type for f in dataclasses.fields(sections[table])}
            values[table].update({k: _toml_value(path, table, k, types[k], v) if k in types
                                  else v for k, v in content.items()})
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        values[section][name] = value
    built = {}
    for section, cls in sections.items():
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values[section]) - known)
        if unknown:
            raise ValueError(f"unknown [{section}] option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known - set(not_flags)))}")
        built[section] = cls(**values[section])
    return built


def config_overrides(args: argparse.Namespace, sections: dict[str, type]) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items()
            if "." in k and k.split(".", 1)[0] in sections}


def with_defaults(cls: type, **defaults: Any) -> type:
    """A subclass of dataclass ``cls`` whose fields ``defaults`` default differently: a
    command's own defaults, still below TOML and flags. :func:`build_configs` turns its
    instances back into plain ``cls``.

    >>> @dataclasses.dataclass
    ... class Data:
    ...     batch_size: int = 50
    >>> Cfg = with_defaults(Data, batch_size=8)
    >>> Cfg().batch_size, issubclass(Cfg, Data)
    (8, True)
    """
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    return dataclasses.make_dataclass(
        cls.__name__, [(k, types[k], dataclasses.field(default=v)) for k, v in defaults.items()],
        bases=(cls,),
        namespace={"__doc__": cls.__doc__, "__module__": cls.__module__, "_defaults_of": cls})


def add_command_options(parser: argparse.ArgumentParser, sections: dict[str, type],
                        aliases: dict[str, str], not_flags: set[str]) -> None:
    """``--config FILE.toml``, one flag per config field (see
    :func:`~rnnkit.commands.options.add_config_arguments`) and ``--no-progress``."""
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML config file with [" + "], [".join(sections) + "] tables")
    parser.add_argument("--no-progress", dest="train.progress", action="store_const",
                        const=False, default=argparse.SUPPRESS,
                        help="no progress bar (= --train.progress false)")
    add_config_arguments(parser, sections, aliases, not_flags)


def build_configs(args: argparse.Namespace, sections: dict[str, type],
                  not_flags: set[str], required: dict[str, str]) -> dict[str, Any]:
    """The plain config dataclasses of a command: defaults < TOML < flags; every
    ``required`` field (``{"section.field": "--flag"}``) must be set one way or the other."""
    built = load_config(args.config, config_overrides(args, sections), sections, not_flags)
    out = {}
    for name, obj in built.items():
        base = getattr(type(obj), "_defaults_of", type(obj))
        out[name] = obj if base is type(obj) else base(
            **{f.name: getattr(obj, f.name) for f in dataclasses.fields(base)})
    for key, flag in required.items():
        section, field = key.split(".", 1)
        if getattr(out[section], field) is None:
            raise ValueError(f"{flag} is required (or set {field} in the [{section}] table of "
                             f"--config)")
    return out


_UNSET = object()


def given_settings(args: argparse.Namespace, sections: dict[str, type],
                   not_flags: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """Per section, only the settings the ``--config`` file and the flags give, type-checked
    as :func:`load_config` does: for commands whose own defaults depend on the data (a
    forecast's input length on its season) and so must sit below TOML and flags."""
    given = {name: dataclasses.make_dataclass(
        f"{cls.__name__}Given", [(f.name, f.type, dataclasses.field(default=_UNSET))
                                 for f in dataclasses.fields(cls)])
        for name, cls in sections.items()}
    built = load_config(args.config, config_overrides(args, sections), given, not_flags)
    return {name: {k: v for k, v in vars(obj).items() if v is not _UNSET}
            for name, obj in built.items()}


def print_warnings(messages: Iterable[object]) -> None:
    """``warning: MESSAGE`` lines on stderr (the output still comes, on stdout)."""
    for msg in messages:
        print(f"warning: {msg}", file=sys.stderr)


# -- library hints in the words of the CLI --------------------------------------------------
def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{option name: flag}`` of a (sub)command: each flag's field or keyword name
    (``input_len``, ``fill``) and the flag a user types for it (the short alias when there is
    one: ``--input-len``, ``--fill``)."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            names.setdefault(action.dest.rsplit(".", 1)[-1], action.option_strings[0])
    return names


def in_flag_words(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with the Python spellings of options that the library's hints use written
    as the flags in ``flags`` (``{name: flag}``): ``name='v'`` or ``name=v`` becomes
    ``--flag v``, a bare ``name=`` ``--flag``; a bare name is rewritten when it has an
    underscore (``input_len``) or is the subject the message starts with (``head must ...``).

    >>> in_flag_words("head must be 'point'; pass fill='interpolate' or freq=, raise input_len",
    ...               {"fill": "--fill", "freq": "--freq", "input_len": "--input-len",
    ...                "head": "--head"})
    "--head must be 'point'; pass --fill interpolate or --freq, raise --input-len"
    """
    if not flags:
        return message
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.'\"/\\-])({names})(?:=('[^']*'|\"[^\"]*\"|[^\s,;)\]]*))?"
                         rf"(?![\w/-])")

    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if value is not None:
            value = value.strip("'\"")
            return f"{flags[name]} {value}".rstrip()
        subject = m.start() == 0 and message[m.end():].startswith(" must ")
        return flags[name] if "_" in name or subject else name

    return pattern.sub(flag, message)


def speaking_flags(func: Callable[[argparse.Namespace], int],
                   *parsers: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``func`` whose ``ValueError`` / ``TypeError`` messages are put in the flag words of
    ``parsers`` (:func:`in_flag_words`; the first parser's flag wins a name): the library's
    hints say ``fill='interpolate'``, a CLI user reads ``--fill interpolate``. Nothing else is
    caught, and the exception is re-raised as it is, with only its message rewritten."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, TypeError) as err:
            if len(err.args) == 1 and isinstance(err.args[0], str):
                flags: dict[str, str] = {}
                for parser in reversed(parsers):
                    flags.update(flag_names(parser))
                err.args = (in_flag_words(err.args[0], flags),)
            raise

    return run


# -- --compute: time and energy of an inference command ---------------------------------------
def add_compute_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--compute``: print the command's time and energy per ``what`` to stderr."""
    parser.add_argument("--compute", action="store_true",
                        help=f"print time and energy (said whether measured or estimated) per "
                        f"{what} to stderr (default: off)")


class _Unmetered:
    def add(self, n: float = 1) -> None:
        """Nothing to count: ``--compute`` is off."""


@contextlib.contextmanager
def metered(args: argparse.Namespace, unit: str, per: float = 1) -> Any:
    """Around an inference command: with ``--compute``, meter it (:func:`rnnkit.audit.compute
    .measure`) and print one line to stderr; the block calls ``meter.add(n)`` for the ``unit``
    it produced."""
    if not getattr(args, "compute", False):
        yield _Unmetered()
        return
    from ..audit.compute import measure

    with measure(unit, per=per) as meter:
        yield meter
    print(meter.summary(), file=sys.stderr)
