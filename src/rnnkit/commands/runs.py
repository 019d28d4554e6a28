"""Training runs and outputs on the command line: every output path is checked before any
work, a file or run folder is replaced only when the user says so (``--overwrite``), and a
resumed run keeps its own settings unless told otherwise (``--resume``,
``--change-settings``).

>>> import tempfile, os
>>> run = tempfile.mkdtemp()
>>> check_run_dir(run, resume=False, overwrite=False)  # an empty folder is a new run
>>> open(os.path.join(run, "last.pt"), "w").close()
>>> check_run_dir(run, resume=False, overwrite=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
FileExistsError: --out-dir ... already holds a run; pass --resume to continue it, ...
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Collection
from typing import Any

__all__ = ["RESUME_FREE", "add_run_dir_flags", "best_note", "check_folder", "check_output",
           "check_run_dir", "check_writable", "flag_name", "open_run", "progress_mismatch",
           "resume_settings", "resumed_configs", "unreadable_progress"]


# -- outputs: checked before any work, never replaced without being told -----------------------
def check_writable(path: str, flag: str) -> None:
    """Fail before any work when ``path`` cannot be written: empty, a folder, under a file, or
    in a folder without write permission (missing folders are created when writing)."""
    if not path:
        raise ValueError(f"{flag} is empty; give a file name")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name in it")
    _check_parent(path, flag)


def _check_parent(path: str, flag: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):  # the first existing folder above is where it is made
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{flag} {path}: {folder} is a file, not a folder; choose "
                                 f"another path")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{flag} {path}: cannot write to {folder}; choose a writable "
                              f"folder")


def check_folder(path: str, flag: str) -> None:
    """An output folder that may exist (it is written into): not a file, not under a file,
    writable. Checked before any work."""
    if not path:
        raise ValueError(f"{flag} is empty; give a folder")
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{flag} {path} is a file; give a folder")
    if os.path.isdir(path):
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{flag} {path}: cannot write to it; choose a writable folder")
        return
    _check_parent(os.path.join(path, "x"), flag)


def check_output(path: str, overwrite: bool, flag: str) -> None:
    """Refuse to replace a model file unless told to (``--overwrite``); check it is writable
    before any work."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name in it, e.g. "
                                f"{flag} {os.path.join(path, 'NAME')}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{flag} {path} exists; pass --overwrite to replace it or choose "
                              f"another path")
    check_writable(path, flag)


def check_run_dir(path: str, *, resume: bool, overwrite: bool, flag: str = "--out-dir") -> None:
    """A training run folder must be new or empty, unless the run continues it (``--resume``)
    or replaces it (``--overwrite``), as Hugging Face's ``output_dir`` does: a repeated
    command must never silently replace an earlier ``best.pt``. Checked before any work."""
    check_folder(path, flag)
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out-dir and --overwrite replaces it; "
                         "give one of them")
    if os.path.isdir(path):
        if resume:
            if not os.path.exists(os.path.join(path, "last.pt")):
                raise FileNotFoundError(f"--resume: {path} has no last.pt to continue from; "
                                        f"drop --resume to start a new run there")
            return
        if any(os.scandir(path)) and not overwrite:
            raise FileExistsError(f"{flag} {path} already holds a run; pass --resume to "
                                  f"continue it, --overwrite to replace it, or choose another "
                                  f"{flag}")
        return
    if resume:
        raise FileNotFoundError(f"--resume: {flag} {path} does not exist; drop --resume to "
                                f"start a new run there")


# -- resuming: the checkpoint's settings, changed only when the user says so ---------------
def flag_name(key: str, aliases: dict[str, str] | None = None) -> str:
    """The CLI flag of config key ``"section.field"``: its short alias or ``--section.field``."""
    return (aliases or {}).get(key, f"--{key}")


def progress_mismatch(err: Any, path: str, changed: list[str], data: str,
                      inputs: str = "data") -> ValueError:
    """A :class:`~rnnkit.train.resumable.ProgressMismatch` (``err``) of the progress file
    ``path`` in CLI words: ``changed`` (the changed settings as flags, ``"--epochs was 4, now
    5"``, written by the command that knows its flags), ``data`` when the data differ, the
    versions when another rnnkit or torch wrote it, and the two ways on."""
    what = list(changed) + ([data] if err.data_changed else [])
    what += [f"it was written by {k} {old}, this is {k} {new}"
             for k, (old, new) in err.runtime.items()]
    way = (f"resume with that run's {inputs} and flags" if err.changed or err.data_changed else
           "resume with the rnnkit and torch that wrote it")
    return ValueError(f"--resume: {path} is the progress of another run ({'; '.join(what)}); "
                      f"{way}, or pass --overwrite to start again")


def unreadable_progress(err: ValueError, path: str) -> ValueError:
    """``err`` in CLI words when it is about the progress file ``path`` (damaged, truncated,
    another kind); else ``err`` itself."""
    if path not in str(err):
        return err
    return ValueError(f"--resume: {err}; or pass --overwrite to start again")


def resume_settings(saved: dict[str, dict[str, Any]], given: dict[str, dict[str, Any]], *,
                    locked: Collection[str], free: Collection[str], allow_changes: bool,
                    aliases: dict[str, str] | None = None,
                    ignore: Collection[str] = ()) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The settings of a resumed run: the checkpoint's (``saved``, per section), overlaid by
    the settings the user gave (``given``, from :func:`given_settings`).

    A given value that differs from the saved one is refused when its section is ``locked``
    (the model and the data: changing them is a new run) with both values named; a key in
    ``free`` (``"train.max_time"``, ...) changes silently; any other change (a training
    setting) is refused unless ``allow_changes`` (``--change-settings``), and is then applied
    and listed in the returned ``changes`` so the caller can log it. Keys in ``ignore`` are
    taken as given without comparison. Sections not in ``saved`` are taken as given.
    """
    merged: dict[str, dict[str, Any]] = {}
    changes: list[str] = []
    for section in {*saved, *given}:
        values = dict(saved.get(section, {}))
        for name, value in given.get(section, {}).items():
            key = f"{section}.{name}"
            old = values.get(name, value)
            if key in ignore or section not in saved or old == value or key in free:
                values[name] = value
                continue
            flag = flag_name(key, aliases)
            if section in locked:
                raise ValueError(f"--resume: this run was trained with {flag} {old!r}, but "
                                 f"{flag} {value!r} is given; drop {flag} to continue the run, "
                                 f"or start a new run (another --out-dir, or --overwrite)")
            if not allow_changes:
                raise ValueError(f"--resume: {flag} was {old!r} in this run and {value!r} is "
                                 f"given; drop {flag} to continue with the run's own setting, "
                                 f"or pass --change-settings to apply the change (the run "
                                 f"will then differ from an uninterrupted one)")
            values[name] = value
            changes.append(f"{flag} {old!r} -> {value!r}")
        merged[section] = values
    return merged, changes


def add_run_dir_flags(parser: argparse.ArgumentParser, what: str = "model") -> None:
    """``--resume``, ``--overwrite`` and ``--change-settings``: what a training command may do
    with an ``--out-dir`` that already holds a run (:func:`check_run_dir` checks them before
    any work; :func:`resumed_configs` applies them)."""
    parser.add_argument("--resume", action="store_true",
                        help=f"continue the run in --out-dir from its last.pt, with its {what} "
                        f"and settings (a Ctrl-C'd run prints this command) (default: off)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --out-dir (default: off; a folder that holds "
                        "a run is refused)")
    parser.add_argument("--change-settings", action="store_true",
                        help="with --resume: apply changed training settings (--lr, ...); they "
                        "are printed and the run no longer matches an uninterrupted one "
                        "(default: off: a changed setting is refused)")


#: Training settings a resumed run may change without ``--change-settings``: when to stop,
#: where and how to report, and the device.
RESUME_FREE = frozenset(f"train.{k}" for k in (
    "epochs", "max_steps", "max_time", "out_dir", "log_every", "progress", "save_every",
    "device", "plot", "compute", "country", "card"))


def resumed_configs(cfg: dict[str, Any], given: dict[str, dict[str, Any]], out_dir: str, *,
                    allow_changes: bool, aliases: dict[str, str] | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The configs of ``--resume``: the run's own (``out_dir/last.pt``: the model config in
    its ``extra_state["config"]``, the data settings in ``extra_state["run"]["data_config"]``
    when the application saved them, the :class:`~rnnkit.train.TrainConfig`) with the
    settings the user gave compared against them by :func:`resume_settings` (model and data
    changes refused, training changes only with ``allow_changes``). Returns the configs, the
    checkpoint's ``extra_state`` and the changes applied (to print)."""
    from ..train import TrainConfig, load_checkpoint

    ckpt = load_checkpoint(os.path.join(out_dir, "last.pt"))
    extra = ckpt.get("extra_state") or {}
    saved = {"model": dict(extra.get("config") or {}), "train": dict(ckpt["config"])}
    data_saved = (extra.get("run") or {}).get("data_config")
    if data_saved is not None and "data" in cfg:
        saved["data"] = dict(data_saved)
    merged, changes = resume_settings(
        saved, {k: v for k, v in given.items() if k in saved}, locked={"model", "data"},
        free=RESUME_FREE, allow_changes=allow_changes, aliases=aliases,
        ignore={"data.path"})
    out = dict(cfg)
    fields_of = {name: {f.name for f in dataclasses.fields(type(cfg[name]))} for name in cfg}
    for name in ("model", "data"):
        if name in merged and name in cfg:
            out[name] = dataclasses.replace(cfg[name], **{
                k: v for k, v in merged[name].items() if k in fields_of[name] and k != "path"})
    out["train"] = TrainConfig.from_dict({**merged["train"], "out_dir": out_dir})
    return out, extra, changes


def open_run(args: argparse.Namespace, cfg: dict[str, Any], sections: dict[str, type], *,
             not_flags: Collection[str] = (), aliases: dict[str, str] | None = None,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a training command does with its ``--out-dir`` before any work:
    :func:`check_run_dir` (``args.resume`` / ``args.overwrite``), then for ``--resume`` the
    run's own configs with the given settings compared against them (:func:`resumed_configs`,
    ``args.change_settings``; each applied change is printed). Returns the configs to train
    with (read every section from them: a resumed run's data settings are the run's) and the
    checkpoint's ``extra_state`` (``{}`` for a new run)."""
    from .options import given_settings

    out_dir = cfg["train"].out_dir
    check_run_dir(out_dir, resume=args.resume, overwrite=args.overwrite)
    if not args.resume:
        return cfg, {}
    given = given_settings(args, sections, not_flags)
    cfg, extra, changes = resumed_configs(cfg, given, out_dir,
                                          allow_changes=args.change_settings, aliases=aliases)
    for change in changes:
        print(f"resume: changing {change} (--change-settings)")
    return cfg, extra


def best_note(metrics: dict[str, Any]) -> str:
    """`` (best.pt, step N)`` when ``metrics`` came from ``Trainer.restore_best``, else ``""``:
    says which weights a printed validation score belongs to."""
    return f" (best.pt, step {metrics['step']})" if "step" in metrics else ""
