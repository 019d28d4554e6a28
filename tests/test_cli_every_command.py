"""Every ``rnnkit`` command on hostile input: missing, empty, binary and non-UTF-8 files, folders
where files belong, CSVs with the wrong columns, truncated, random, wrong-task and malicious
checkpoints, absurd flag values, unwritable or occupied outputs, re-runs into a finished run, and
Ctrl-C mid-training.

Each case must end with exit code 2 (130 for Ctrl-C) and one stderr line
``rnnkit <command>: error: ...`` (or argparse's usage error) without a traceback, naming the
problem and the fix in CLI terms, before any training starts, and must leave every earlier
result byte-identical. ``tests/speech/test_cli_hostile.py`` covers speech's own flags; here speech
only gets the file, checkpoint and re-run cases that file lacks. Text files are read as UTF-8 with
a documented Latin-1 fallback (``rnnkit.data.text.load_text``), so non-UTF-8 input is a bad case
only for CSVs.

A flag's bad value must be named by the flag (``--hidden``), not by a config field
(``hidden_size``); a bad file by its flag or by what to give instead. Huge sizes run under an
address-space cap, so a command that allocates before checking fails fast instead of swapping.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import random
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnkit.cli import main

# -- tiny settings: every command trains in about a second, on one thread ---------------------
TEXT = ["--hidden", "8", "--layers", "1", "--embed", "4", "--batch-size", "2", "--bptt", "8",
        "--train.progress", "false", "--train.plot", "false"]
CLS = ["--hidden", "8", "--embed", "4", "--batch-size", "4", "--no-progress",
       "--train.plot", "false"]
TR = ["--hidden", "8", "--embed", "4", "--batch-size", "4", "--no-progress",
      "--train.plot", "false"]
FC = ["--time", "date", "--target", "value", "--hidden-size", "8", "--horizon", "5",
      "--input-len", "10"]
AN = ["--column", "value", "--time", "date", "--hidden-size", "8", "--input-len", "8"]
SP = ["--hidden-size", "8", "--layers", "1", "--model.channels", "2", "--model.n_mels", "24",
      "--batch-size", "2", "--no-progress"]
FEW = ["--max-steps", "2"]          # train text
FEW_T = ["--train.max_steps", "2"]  # classify / translate train
MANY = ["--max-steps", "100000"]    # must never start: the check comes first
MANY_T = ["--train.max_steps", "100000"]

# -- what a message must say (each tuple: any one of these, case-insensitive) -----------------
MISSING = ("no such", "not found", "does not exist", "missing", "no file", "no checkpoint at")
EMPTY = ("empty", "no text", "no lines", "no rows", "no data", "nothing", "no pairs",
         "no sentences", "0 bytes", "no clips", "no labelled")
BINARY = ("binary", "utf-8", "not a text", "not text", "nul", "decode", "encoding",
          "not a csv", "null byte")
FOLDER = ("folder", "directory")
NONUTF8 = ("utf-8", "encoding", "decode")
CORRUPT = ("truncated", "corrupt", "not a", "damaged", "incomplete", "unreadable",
           "not readable", "cannot read", "could not read", "invalid")
CKPT = ("checkpoint", ".pt")
EXISTS = ("--overwrite", "--resume")
#: a fix in CLI terms for a bad file: its flag, or what to give instead
GIVE = ("give ", "pass ", "check the path", "use ", "choose ", "`rnnkit", "expected", "saved as",
        "needs")
CONFIG = ("--config", "config file")


def flag(*names: str) -> tuple[str, ...]:
    return tuple(names)


# -- the world: valid inputs, trained models, and bad files -----------------------------------
class Evil:
    """Unpickling this runs a shell command; weights-only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _run(argv: list[str]) -> None:
    assert main(["--threads", "1", *argv]) == 0, argv


def _clip(freqs, seed, rate=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.15 * rate)) / rate
    return np.concatenate([0.3 * np.sin(2 * math.pi * f * t) + 0.01 * rng.normal(size=len(t))
                           for f in freqs]).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile_cli")
    rng = random.Random(0)
    w: dict[str, Path] = {"root": root}

    w["text"] = root / "text.txt"
    w["text"].write_text("".join(f"the quick brown fox {i} jumps over the lazy dog.\n"
                                 for i in range(60)))
    good = ["a gorgeous witty film", "great fun and moving", "a lovely warm story"]
    bad = ["a dull tedious mess", "boring and flat plot", "an awful script"]
    w["lab"] = root / "lab.tsv"
    w["lab"].write_text("".join(f"pos\t{rng.choice(good)} {i}\n" if i % 2 else
                                f"neg\t{rng.choice(bad)} {i}\n" for i in range(40)))
    words = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
    w["pairs"] = root / "pairs.tsv"
    lines = []
    for _ in range(60):
        src = rng.choices(list(words), k=rng.randint(1, 3))
        lines.append(" ".join(src) + "\t" + " ".join(words[s] for s in src) + "\n")
    w["pairs"].write_text("".join(lines))
    day = datetime.date(2020, 1, 1)
    w["csv"] = root / "series.csv"
    w["csv"].write_text("date,value\n" + "".join(
        f"{day + datetime.timedelta(days=i)},{math.sin(i / 5) + rng.gauss(0, 0.1):.4f}\n"
        for i in range(120)))

    # bad files
    w["empty"] = root / "empty.txt"
    w["empty"].write_bytes(b"")
    w["binary"] = root / "binary.bin"
    w["binary"].write_bytes(np.random.default_rng(1).bytes(3000) + b"\x00" * 64)
    w["adir"] = root / "adir"
    w["adir"].mkdir()
    w["missing"] = root / "no_such_file.txt"
    w["latin_tsv"] = root / "latin.tsv"
    w["latin_tsv"].write_bytes("".join(f"pos\tcafé crème brûlée {i}\n" if i % 2 else
                                       f"neg\tdéjà très mauvais {i}\n"
                                       for i in range(40)).encode("latin-1"))
    w["latin_csv"] = root / "latin.csv"
    w["latin_csv"].write_bytes(("date,value,note\n" + "".join(
        f"{day + datetime.timedelta(days=i)},{i % 7},café\n" for i in range(120)))
        .encode("latin-1"))
    w["wrongcols"] = root / "wrongcols.csv"
    w["wrongcols"].write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(120)))
    w["textcol"] = root / "textcol.csv"
    w["textcol"].write_text("date,value\n" + "".join(
        f"{day + datetime.timedelta(days=i)},abc\n" for i in range(120)))
    w["notab"] = root / "notab.tsv"
    w["notab"].write_text("".join(f"just some text without a tab {i}\n" for i in range(40)))
    w["threecol"] = root / "threecol.tsv"
    w["threecol"].write_text("".join(f"one\tun\textra {i}\n" for i in range(40)))
    w["badtoml"] = root / "bad.toml"
    w["badtoml"].write_text("this is = = not [toml\n")
    w["unknowntoml"] = root / "unknown.toml"
    w["unknowntoml"].write_text("[model]\nbogus_key = 1\n")
    w["typetoml"] = root / "type.toml"
    w["typetoml"].write_text("[model]\nhidden_size = \"big\"\n")
    w["afile"] = root / "afile.txt"
    w["afile"].write_text("a plain file, not a folder\n")
    w["wav"] = root / "speech" / "u0.wav"

    # real models of every task
    _run(["train", "text", "--data", str(w["text"]), "--out-dir", str(root / "lm"), *TEXT, *FEW])
    _run(["classify", "train", "--data", str(w["lab"]), "--out-dir", str(root / "cls"), *CLS,
          *FEW_T])
    _run(["translate", "train", "--pairs", str(w["pairs"]), "--out-dir", str(root / "tr"), *TR,
          *FEW_T])
    w["fc"] = root / "fc.pt"
    _run(["forecast", "train", "--csv", str(w["csv"]), *FC, "--steps", "5", "--out", str(w["fc"])])
    speech = root / "speech"
    speech.mkdir()
    for i, freqs in enumerate([[300, 900], [900, 300], [300, 0, 900]]):
        sf.write(speech / f"u{i}.wav", _clip(freqs, i), 16000)
    (speech / "manifest.tsv").write_text("u0.wav\tab\nu1.wav\tba\nu2.wav\ta b\n")
    w["speech"] = speech
    w["sp"] = root / "sp.pt"
    _run(["speech", "train", "--data", str(speech), "--out", str(w["sp"]), *SP, "--steps", "2"])
    w["lm"], w["cls"], w["tr"] = root / "lm/best.pt", root / "cls/best.pt", root / "tr/best.pt"

    # broken checkpoints
    raw = w["lm"].read_bytes()
    w["trunc"] = root / "trunc.pt"
    w["trunc"].write_bytes(raw[: len(raw) // 2])
    w["rand"] = root / "rand.pt"
    w["rand"].write_bytes(np.random.default_rng(2).bytes(4096))
    w["pwned"] = root / "PWNED"
    w["evil"] = root / "evil.pt"
    torch.save({"model": Evil(w["pwned"]), "config": Evil(w["pwned"])}, w["evil"])
    return w


# -- the checker ------------------------------------------------------------------------------
class Overran(BaseException):
    """Raised by the watchdog: the command was still working after its time limit."""


@contextlib.contextmanager
def watchdog(seconds: float):
    def fire(signum, frame):
        raise Overran(f"still running after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def memory_cap(extra_gib: float):
    """Cap the address space at what the process uses now plus ``extra_gib``: a command that
    tries to allocate a huge model fails instead of swapping the machine to death."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm + int(extra_gib * 2**30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


ERROR_LINE = r"^rnnkit(?: [\w-]+)*: error: "


def _error_line(err: str, command: str) -> str:
    """The one error line of ``err``, or an AssertionError saying what is wrong with it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    if lines[0].startswith("usage: rnnkit"):  # argparse's own usage error: usage, then 1 line
        assert re.match(ERROR_LINE, lines[-1]), "argparse error without an error line"
        assert sum("error:" in line for line in lines) == 1, "more than one error line"
        return lines[-1]
    assert len(lines) == 1, f"{len(lines)} lines on stderr, not one"
    assert re.match(rf"^rnnkit {command}(?: [\w-]+)?: error: ", lines[0]), \
        f"not of the form 'rnnkit {command}: error: ...'"
    return lines[0]


def _call(argv: list[str], limit: float, cap: float | None) -> tuple[object, str]:
    """Run ``rnnkit --threads 1 ARGV`` in-process; the exit code (or what escaped main)."""
    started = time.monotonic()
    try:
        with watchdog(limit), (memory_cap(cap) if cap else contextlib.nullcontext()):
            rc: object = main(["--threads", "1", *argv])
    except SystemExit as exit_:
        rc = exit_.code
    except Overran as over:
        rc = f"TIMEOUT ({over}; the check did not come before the work)"
    except Exception:  # what the real CLI would print as a traceback, with exit code 1
        rc = "UNCAUGHT (exit 1 with a traceback):\n" + traceback.format_exc(limit=-3)
    return rc, f"{time.monotonic() - started:.1f}s"


def refused(capsys, argv: list[str], words, limit: float = 20.0, cap: float | None = None
            ) -> str:
    """``argv`` exits 2 with one error line that contains one of each group of ``words``."""
    capsys.readouterr()
    rc, took = _call(argv, limit, cap)
    captured = capsys.readouterr()
    shown = f"rnnkit {' '.join(argv)}\n  -> exit {rc} after {took}; stderr:\n{captured.err[:1500]}"
    assert "Traceback" not in captured.err, shown
    assert rc == 2, shown
    try:
        line = _error_line(captured.err, argv[0])
    except AssertionError as why:
        raise AssertionError(f"{why}\n{shown}") from None
    message = line.split(": error: ", 1)[1].lower()  # the prefix names nothing
    for group in words:
        group = (group,) if isinstance(group, str) else group
        assert any(g.lower() in message for g in group), \
            f"the message names none of {group}\n{shown}"
    print(line)  # shown by -rP, to review what passes
    return line


# -- cases ------------------------------------------------------------------------------------
# argv templates: {name} is a path of the world (or of the test's own tmp folder, see _paths);
# words: the groups of which the message must name one; opts: limit (s), cap (GiB of address
# space), keep (paths that must stay byte-identical).
def case(id_: str, argv: str, *words, **opts):
    return pytest.param(argv.split(), list(words), opts, id=id_)


def file_cases(cmd: str, argv: str, fl: tuple[str, ...], kinds: str) -> list:
    """The bad-file cases of one file-reading flag: ``argv`` has ``@`` where the file goes."""
    table = {
        "missing": ("{missing}", MISSING), "empty": ("{empty}", EMPTY),
        "binary": ("{binary}", BINARY), "dir": ("{adir}", FOLDER),
        "latin1-csv": ("{latin_csv}", NONUTF8),
        "notab": ("{notab}", ("tab",)), "threecol": ("{threecol}", ("tab",)),
    }
    out = []
    for kind in kinds.split():
        path, why = table[kind]
        out.append(case(f"{cmd}-{fl[0]}-{kind}", argv.replace("@", path), why, fl + GIVE))
    return out


def ckpt_cases(cmd: str, argv: str, right: str, others: str, evil: bool = True) -> list:
    """Broken and wrong-task checkpoints at ``@``; ``right``: the command that makes one."""
    out = [
        case(f"{cmd}-ckpt-missing", argv.replace("@", "{missing}"), CKPT + ("no_such_file",),
             MISSING),
        case(f"{cmd}-ckpt-empty", argv.replace("@", "{empty}"), CKPT + ("empty.txt",),
             EMPTY + CORRUPT),
        case(f"{cmd}-ckpt-dir", argv.replace("@", "{adir}"), FOLDER),
        case(f"{cmd}-ckpt-truncated", argv.replace("@", "{trunc}"), CKPT, CORRUPT),
        case(f"{cmd}-ckpt-random", argv.replace("@", "{rand}"), CKPT, CORRUPT),
    ]
    if evil:
        out.append(case(f"{cmd}-ckpt-malicious", argv.replace("@", "{evil}"), CKPT))
    for other in others.split():
        out.append(case(f"{cmd}-ckpt-from-{other}", argv.replace("@", "{" + other + "}"),
                        (right, "use it with", "`rnnkit")))
    return out


def flag_cases(cmd: str, base: str, items: list[tuple[str, tuple[str, ...]]], **opts) -> list:
    return [case(f"{cmd}[{extra}]", f"{base} {extra}", fl, **opts) for extra, fl in items]


def toml_cases(cmd: str, base: str) -> list:
    return [
        case(f"{cmd}-config-missing", f"{base} --config {{missing}}", "--config", MISSING),
        case(f"{cmd}-config-not-toml", f"{base} --config {{badtoml}}", CONFIG, "toml"),
        case(f"{cmd}-config-binary", f"{base} --config {{binary}}", CONFIG),
        case(f"{cmd}-config-unknown-key", f"{base} --config {{unknowntoml}}", "bogus_key"),
        case(f"{cmd}-config-wrong-type", f"{base} --config {{typetoml}}",
             ("hidden_size", "--hidden")),
    ]


def out_cases(cmd: str, argv: str, fl: str, ext: str, exists_ok: bool = False) -> list:
    """``argv`` has ``@`` where the output path goes; it must be refused before any work. An
    ``--out-dir`` may be an existing empty folder; an existing file may be replaced only where
    ``exists_ok`` (plots, reports)."""
    out = [case(f"{cmd}-{fl}-unwritable", argv.replace("@", "{ro}/x" + ext), fl, limit=10)]
    if fl != "--out-dir":
        out.append(case(f"{cmd}-{fl}-existing-dir", argv.replace("@", "{exists_dir}"), fl,
                        FOLDER, limit=10))
    if not exists_ok:
        out.append(case(f"{cmd}-{fl}-existing-file", argv.replace("@", "{exists_file}"), fl,
                        keep=["exists_file"], limit=10))
    return out


T = flag  # brevity in the tables below
HID = T("--hidden", "--model.hidden_size")
EMB = T("--embed", "--model.embed_size")
LAY = T("--layers", "--model.num_layers")
BS = T("--batch-size", "--data.batch_size")
LR = T("--lr", "--train.lr")
TEMP = T("--temperature", "--sample.temperature")
TRAIN_TEXT = "train text --data {text} --out-dir {new} " + " ".join(TEXT + FEW)
TRAIN_CLS = "classify train --data {lab} --out-dir {new} " + " ".join(CLS + FEW_T)
TRAIN_TR = "translate train --pairs {pairs} --out-dir {new} " + " ".join(TR + FEW_T)
TRAIN_FC = "forecast train --csv {csv} --out {new}.pt --steps 5 " + " ".join(FC)
BACKTEST = "backtest --csv {csv} --windows 2 --steps 5 " + " ".join(FC)
DETECT = ("anomaly detect --csv {csv} --out {new}.csv --plot {new}.png --steps 5 "
          + " ".join(AN))
DEMO = ("demo --out-dir {new} --max-time 1 --hidden 8 --embed 4 --batch-size 2 --bptt 8 "
        "--progress false --corpus-bytes 20000")

CASES = [
    # ---- train text
    *file_cases("train-text", TRAIN_TEXT.replace("{text}", "@"), T("--data", "--data.path"),
                "missing empty binary dir"),
    *flag_cases("train-text", TRAIN_TEXT, [
        ("--hidden 0", HID), ("--hidden -1", HID), ("--embed 0", EMB), ("--layers 0", LAY),
        ("--batch-size 0", BS), ("--bptt 0", T("--bptt", "--data.bptt")),
        ("--bptt -5", T("--bptt", "--data.bptt")),
        ("--max-steps -1", T("--max-steps", "--train.max_steps")),
        ("--max-steps 0", T("--max-steps", "--train.max_steps")),
        ("--epochs 0", T("--epochs", "--train.epochs")), ("--lr -1", LR), ("--lr nan", LR),
        ("--lr inf", LR), ("--dropout 1.5", T("--dropout", "--model.dropout")),
        ("--val-fraction 1.5", T("--val-fraction", "--data.val_fraction")),
        ("--max-time -1", T("--max-time", "--train.max_time")),
        ("--clip-norm -1", T("--clip-norm", "--train.clip_norm")),
        ("--sample.temperature nan", T("--sample.temperature")),
        ("--threads -1", T("--threads")),
    ]),
    case("train-text[--hidden 100000000]", f"{TRAIN_TEXT} --hidden 100000000", HID, cap=3),
    case("train-text[--embed 100000000]", f"{TRAIN_TEXT} --embed 100000000", EMB, cap=3),
    case("global[--threads 0]", f"--threads 0 {TRAIN_TEXT}", "--threads"),
    case("global[--threads -1]", f"--threads -1 {TRAIN_TEXT}", "--threads"),
    *toml_cases("train-text", TRAIN_TEXT),
    case("train-text-no-data", "train text --out-dir {new} --max-steps 2", "--data"),
    *out_cases("train-text", "train text --data {text} --out-dir @ " + " ".join(TEXT + MANY),
               "--out-dir", "", exists_ok=True),
    case("train-text-out-dir-is-file",
         "train text --data {text} --out-dir {exists_file} " + " ".join(TEXT + MANY),
         "--out-dir", keep=["exists_file"], limit=10),
    case("train-text-rerun", "train text --data {text} --out-dir {lmrun} " + " ".join(TEXT + MANY),
         "--out-dir", EXISTS, keep=["lmrun/best.pt", "lmrun/last.pt"], limit=10),
    case("train-text-rerun-other-data",
         "train text --data {pairs} --out-dir {lmrun} " + " ".join(TEXT + MANY),
         "--out-dir", EXISTS, keep=["lmrun/best.pt", "lmrun/last.pt"], limit=10),
    case("train-text-resume-truncated-last",
         "train text --data {text} --out-dir {lmrun_trunc} --resume " + " ".join(TEXT + MANY),
         "last.pt", CORRUPT, limit=10),
    case("train-text-resume-empty-dir",
         "train text --data {text} --out-dir {exists_dir} --resume " + " ".join(TEXT + FEW),
         "--resume", ("last.pt", "no run", "nothing to resume"), limit=10),

    # ---- generate
    *ckpt_cases("generate", "generate @ --length 5", "train text", "cls tr fc sp"),
    *flag_cases("generate", "generate {lm} --length 5", [
        ("--temperature inf", TEMP), ("--temperature nan", TEMP), ("--temperature -1", TEMP),
        ("--length -1", T("--length", "--sample.length")),
        ("--top-k 0", T("--top-k", "--sample.top_k")),
        ("--top-k -1", T("--top-k", "--sample.top_k")),
        ("--top-p 0", T("--top-p", "--sample.top_p")),
        ("--top-p 1.5", T("--top-p", "--sample.top_p")),
        ("--top-p nan", T("--top-p", "--sample.top_p")), ("--next -1", T("--next")),
    ]),
    *toml_cases("generate", "generate {lm} --length 5")[:3],

    # ---- evaluate
    *ckpt_cases("evaluate", "evaluate @ --data {text}", "train text", "cls tr fc sp"),
    *file_cases("evaluate", "evaluate {lm} --data @", T("--data", "--data.path"),
                "missing empty binary dir"),
    case("evaluate-no-data", "evaluate {lm}", "--data"),
    *flag_cases("evaluate", "evaluate {lm} --data {text}", [
        ("--batch-size 0", BS), ("--bptt 0", T("--bptt", "--data.bptt")),
        ("--bptt -1", T("--bptt", "--data.bptt")),
    ]),

    # ---- demo
    *file_cases("demo", DEMO + " --data @", T("--data"), "missing empty binary dir"),
    *flag_cases("demo", DEMO, [
        ("--max-time 0", T("--max-time")), ("--max-time -1", T("--max-time")),
        ("--max-time nan", T("--max-time")), ("--hidden 0", T("--hidden", "--hidden-size")),
        ("--batch-size 0", T("--batch-size")), ("--bptt 0", T("--bptt")),
        ("--lr -1", T("--lr")), ("--corpus-bytes 0", T("--corpus-bytes")),
        ("--corpus-bytes -1", T("--corpus-bytes")), ("--threads -1", T("--threads")),
    ]),
    case("demo[--hidden 100000000]", f"{DEMO} --hidden 100000000",
         T("--hidden", "--hidden-size"), cap=3),
    *out_cases("demo", DEMO.replace("{new}", "@").replace("--max-time 1", "--max-time 600"),
               "--out-dir", "", exists_ok=True),
    case("demo-out-dir-is-file",
         DEMO.replace("{new}", "{exists_file}").replace("--max-time 1", "--max-time 600"),
         "--out-dir", keep=["exists_file"], limit=10),

    # ---- classify train
    *file_cases("classify-train", TRAIN_CLS.replace("{lab}", "@"), T("--data", "--data.path"),
                "missing empty binary dir notab"),
    *flag_cases("classify-train", TRAIN_CLS, [
        ("--hidden 0", HID), ("--embed 0", EMB), ("--layers 0", LAY), ("--batch-size 0", BS),
        ("--lr -1", LR), ("--lr nan", LR), ("--epochs 0", T("--epochs", "--train.epochs")),
        ("--train.max_steps -1", T("--train.max_steps")),
        ("--val-fraction 1.5", T("--val-fraction", "--data.val_fraction")),
        ("--dropout 2", T("--dropout", "--model.dropout")),
        ("--min-freq -1", T("--min-freq", "--data.min_freq")),
        ("--pooling bogus", T("--pooling", "--model.pooling")),
        ("--cell bogus", T("--cell", "--model.cell")),
    ]),
    case("classify-train[--hidden 100000000]", f"{TRAIN_CLS} --hidden 100000000", HID, cap=3),
    *toml_cases("classify-train", TRAIN_CLS),
    case("classify-train-no-data", "classify train --out-dir {new} --train.max_steps 2",
         "--data"),
    *out_cases("classify-train", "classify train --data {lab} --out-dir @ "
               + " ".join(CLS + MANY_T), "--out-dir", "", exists_ok=True),
    case("classify-train-out-dir-is-file", "classify train --data {lab} --out-dir {exists_file} "
         + " ".join(CLS + MANY_T), "--out-dir", keep=["exists_file"], limit=10),
    case("classify-train-rerun", "classify train --data {lab} --out-dir {clsrun} "
         + " ".join(CLS + MANY_T), "--out-dir", EXISTS,
         keep=["clsrun/best.pt", "clsrun/last.pt"], limit=10),
    case("classify-train-one-class", TRAIN_CLS.replace("{lab}", "{oneclass}"), ("class", "label"),
         ("--data",) + GIVE),

    # ---- classify predict
    *ckpt_cases("classify-predict", "classify predict @ hello", "classify train",
                "lm tr fc sp"),
    case("classify-predict-no-text", "classify predict {cls}", "TEXT", limit=10),
    case("classify-predict-empty-text", "classify predict {cls} ''", ("TEXT", "empty"),
         limit=10),

    # ---- translate pairs
    *out_cases("translate-pairs", "translate pairs --n 50 --out @", "--out", ".tsv"),
    *flag_cases("translate-pairs", "translate pairs --out {new}.tsv", [
        ("--n 0", T("--n")), ("--n -1", T("--n")), ("--tgt xx", T("--tgt")),
        ("--src xx", T("--src")),
    ]),
    case("translate-pairs[--n 10**12]", "translate pairs --out {new}.tsv --n 1000000000000",
         "--n", limit=10, cap=3),

    # ---- translate train
    *file_cases("translate-train", TRAIN_TR.replace("{pairs}", "@"),
                T("--pairs", "--data.pairs"),
                "missing empty binary dir notab threecol"),
    *flag_cases("translate-train", TRAIN_TR, [
        ("--hidden 0", HID), ("--embed 0", EMB), ("--batch-size 0", BS), ("--lr -1", LR),
        ("--teacher-forcing 1.5", T("--teacher-forcing", "--model.teacher_forcing")),
        ("--teacher-forcing -1", T("--teacher-forcing", "--model.teacher_forcing")),
        ("--val-fraction 1.5", T("--val-fraction", "--data.val_fraction")),
        ("--attention bogus", T("--attention", "--model.attention")),
        ("--level bogus", T("--level", "--data.level")),
    ]),
    case("translate-train[--hidden 100000000]", f"{TRAIN_TR} --hidden 100000000", HID, cap=3),
    *toml_cases("translate-train", TRAIN_TR),
    case("translate-train-no-pairs", "translate train --out-dir {new} --train.max_steps 2",
         "--pairs"),
    *out_cases("translate-train", "translate train --pairs {pairs} --out-dir @ "
               + " ".join(TR + MANY_T), "--out-dir", "", exists_ok=True),
    case("translate-train-out-dir-is-file",
         "translate train --pairs {pairs} --out-dir {exists_file} " + " ".join(TR + MANY_T),
         "--out-dir", keep=["exists_file"], limit=10),
    case("translate-train-rerun", "translate train --pairs {pairs} --out-dir {trrun} "
         + " ".join(TR + MANY_T), "--out-dir", EXISTS,
         keep=["trrun/best.pt", "trrun/last.pt"], limit=10),

    # ---- translate run
    *ckpt_cases("translate-run", "translate run @ one", "translate train", "lm cls fc sp"),
    *file_cases("translate-run", "translate run {tr} --input @", T("--input"),
                "missing empty binary dir"),
    *flag_cases("translate-run", "translate run {tr} one", [
        ("--beam 0", T("--beam")), ("--beam -1", T("--beam")), ("--max-len 0", T("--max-len")),
        ("--max-len -1", T("--max-len")), ("--batch-size 0", T("--batch-size")),
        ("--length-penalty nan", T("--length-penalty")),
    ]),
    case("translate-run[--beam 10**9]", "translate run {tr} one --beam 1000000000", "--beam",
         limit=10, cap=3),
    case("translate-run[--max-len 10**12]", "translate run {tr} one --max-len 1000000000000",
         "--max-len", limit=10, cap=3),
    case("translate-run-no-text", "translate run {tr}", ("TEXT", "--input")),
    case("translate-run-empty-text", "translate run {tr} ''", ("TEXT", "empty", "blank")),
    *out_cases("translate-run", "translate run {tr} one --heatmap @", "--heatmap", ".png",
               exists_ok=True),
    case("translate-implicit-ckpt-from-lm", "translate {lm} one", "translate train"),

    # ---- forecast train
    *file_cases("forecast-train", TRAIN_FC.replace("{csv}", "@"), T("--csv"),
                "missing empty binary dir latin1-csv"),
    case("forecast-train-wrongcols", TRAIN_FC.replace("{csv}", "{wrongcols}"),
         ("--time", "--target"), ("'a'", "a, b", "['a', 'b']", "a,b")),
    case("forecast-train-text-values", TRAIN_FC.replace("{csv}", "{textcol}"),
         ("--target", "value"), ("numeric", "number")),
    *flag_cases("forecast-train", TRAIN_FC, [
        ("--horizon 0", T("--horizon", "--model.horizon")),
        ("--horizon -1", T("--horizon", "--model.horizon")),
        ("--input-len 0", T("--input-len", "--model.input_len")),
        ("--hidden-size 0", T("--hidden-size", "--model.hidden_size")),
        ("--steps 0", T("--steps", "--train.max_steps")),
        ("--steps -1", T("--steps", "--train.max_steps")),
        ("--train.lr -1", T("--train.lr")), ("--train.lr nan", T("--train.lr")),
        ("--ensemble 0", T("--ensemble")), ("--ensemble -1", T("--ensemble")),
        ("--model.val_fraction 1.5", T("--model.val_fraction")),
        ("--model.batch_size 0", T("--model.batch_size")),
        ("--horizon 100000", T("--horizon", "--model.horizon")),
        ("--freq bogus", T("--freq")),
        ("--target nosuch", T("--target")), ("--time nosuch", T("--time")),
        ("--dataset nosuch", T("--dataset")),
    ]),
    case("forecast-train[--hidden-size 100000000]", f"{TRAIN_FC} --hidden-size 100000000",
         T("--hidden-size", "--model.hidden_size"), cap=3),
    *toml_cases("forecast-train", TRAIN_FC),
    case("forecast-train-no-input", "forecast train --out {new}.pt --steps 5",
         ("--csv", "--dataset")),
    *out_cases("forecast-train", TRAIN_FC.replace("{new}.pt", "@").replace("--steps 5",
               "--steps 100000"), "--out", ".pt"),
    case("forecast-train-out-existing-pt", TRAIN_FC.replace("{new}.pt", "{fcrun}"),
         "--out", "--overwrite", keep=["fcrun"], limit=10),

    # ---- forecast predict
    *ckpt_cases("forecast-predict", "forecast predict @", "forecast train", "lm cls tr sp"),
    *file_cases("forecast-predict", "forecast predict {fc} --csv @", T("--csv"),
                "missing empty binary dir latin1-csv"),
    case("forecast-predict-wrongcols", "forecast predict {fc} --csv {wrongcols}", "--csv",
         ("date", "value")),
    case("forecast-predict-text-values", "forecast predict {fc} --csv {textcol}",
         ("--csv", "value"), ("numeric", "number")),
    *flag_cases("forecast-predict", "forecast predict {fc}", [
        ("--levels 0", T("--levels")), ("--levels 100", T("--levels")),
        ("--levels 150", T("--levels")), ("--levels -5", T("--levels")),
        ("--levels nan", T("--levels")),
    ]),
    *out_cases("forecast-predict", "forecast predict {fc} --out @", "--out", ".csv",
               exists_ok=True),
    *out_cases("forecast-predict", "forecast predict {fc} --plot @", "--plot", ".png",
               exists_ok=True),

    # ---- forecast backtest
    *file_cases("forecast-backtest", "forecast " + BACKTEST.replace("{csv}", "@"), T("--csv"),
                "missing empty binary dir latin1-csv"),
    case("forecast-backtest-wrongcols", "forecast " + BACKTEST.replace("{csv}", "{wrongcols}"),
         ("--time", "--target"), ("'a'", "a, b", "['a', 'b']", "a,b")),
    *flag_cases("forecast-backtest", "forecast " + BACKTEST, [
        ("--windows 0", T("--windows")), ("--windows -1", T("--windows")),
        ("--windows 1000", T("--windows")),
        ("--horizon 0", T("--horizon", "--model.horizon")),
        ("--levels 150", T("--levels")),
        ("--model snaive --season 0", T("--season", "--model.season")),
        ("--steps 0", T("--steps", "--train.max_steps")),
        ("--model esrnn --hidden-size 0", T("--hidden-size")),
        ("--model esrnn --ar-window 5", T("--ar-window")),
        ("--model comb --validation-windows -1", T("--validation-windows")),
        ("--model comb --combine best --validation-windows 0", T("--validation-windows")),
        ("--model naive2 --season 0", T("--season", "--model.season")),
    ]),
    *flag_cases("forecast-train", TRAIN_FC, [
        ("--model esrnn --model.val_fraction 0.5", T("--model.val_fraction")),
        ("--model comb --search baseline=last", T("--search")),
        ("--model comb --combine mean --validation-windows -2", T("--validation-windows")),
    ]),
    *out_cases("forecast-backtest", "forecast " + BACKTEST.replace("--steps 5", "--steps 100000")
               + " --out @", "--out", ".csv", exists_ok=True),
    *out_cases("forecast-backtest", "forecast " + BACKTEST.replace("--steps 5", "--steps 100000")
               + " --plot @", "--plot", ".png", exists_ok=True),

    # ---- anomaly detect
    *file_cases("anomaly-detect", DETECT.replace("{csv}", "@"), T("--csv"),
                "missing empty binary dir latin1-csv"),
    case("anomaly-detect-wrongcols", DETECT.replace("{csv}", "{wrongcols}"),
         ("--column", "--time"), ("'a'", "a, b", "['a', 'b']", "a,b")),
    case("anomaly-detect-text-values", DETECT.replace("{csv}", "{textcol}"),
         ("--column", "value"), ("numeric", "number")),
    *flag_cases("anomaly-detect", DETECT, [
        ("--train-frac 0", T("--train-frac")), ("--train-frac 1.5", T("--train-frac")),
        ("--train-frac -0.1", T("--train-frac")), ("--train-frac nan", T("--train-frac")),
        ("--input-len 0", T("--input-len")), ("--input-len -1", T("--input-len")),
        ("--hidden-size 0", T("--hidden-size", "--model.hidden_size")),
        ("--steps 0", T("--steps", "--train.max_steps")),
        ("--steps -1", T("--steps", "--train.max_steps")),
        ("--method window --pool 0", T("--pool")),
        ("--model.smoothing -1", T("--model.smoothing")),
        ("--label nosuch", T("--label")), ("--column nosuch", T("--column")),
        ("--dataset nosuch", T("--dataset")),
    ]),
    case("anomaly-detect[--hidden-size 100000000]", f"{DETECT} --hidden-size 100000000",
         T("--hidden-size", "--model.hidden_size"), cap=3),
    case("anomaly-detect[--input-len 10**9]", f"{DETECT} --input-len 1000000000", "--input-len",
         cap=3),
    *toml_cases("anomaly-detect", DETECT)[:3],
    *out_cases("anomaly-detect", DETECT.replace("{new}.csv", "@").replace("--steps 5",
               "--steps 100000"), "--out", ".csv", exists_ok=True),
    *out_cases("anomaly-detect", DETECT.replace("{new}.png", "@").replace("--steps 5",
               "--steps 100000"), "--plot", ".png", exists_ok=True),

    # ---- audit (its own behaviour: tests/audit/test_cli_audit.py)
    *ckpt_cases("audit-model", "audit model @ --data {lab}", "classify train", "tr"),
    case("audit-model-forecaster-on-text", "audit model {fc} --data {lab}", "--data"),
    case("audit-model-speech-on-text", "audit model {sp} --data {lab}", "--data"),
    case("audit-model-speech-without-speakers", "audit model {sp} --data {speech}", "speaker"),
    *file_cases("audit-model", "audit model {cls} --data @", T("--data"),
                "missing empty binary"),
    *flag_cases("audit-model", "audit model {cls} --data {lab}", [
        ("--bootstrap -1", T("--bootstrap")), ("--limit 0", T("--limit")),
        ("--lists bogus", T("--lists")), ("--lists religion", T("--lists")),
        ("--length 0", T("--length")), ("--scorer {cls}", T("--scorer")),
        ("--groups {afile}", T("--groups")),
    ]),
    case("audit-model-lm-without-scorer", "audit model {lm} --data {text}", "--scorer"),
    *out_cases("audit-model", "audit model {cls} --data {lab} --out @", "--out", ".json",
               exists_ok=True),
    *file_cases("audit-data", "audit data @", ("file", "text"), "missing empty binary"),
    *flag_cases("audit-data", "audit data {lab} --format labelled", [
        ("--lists bogus", T("--lists")), ("--lists ,", T("--lists")),
    ]),
    *flag_cases("audit-data", "audit data {csv}", [
        ("--column nosuch", T("--column")), ("--column value", T("--time")),
        ("--column value --time nosuch", T("--time")),
    ]),
    *out_cases("audit-data", "audit data {text} --json @", "--json", ".json", exists_ok=True),
    *file_cases("audit-compare", "audit compare @ --max-time 100000", ("text", "file"),
                "missing empty binary"),
    *flag_cases("audit-compare", "audit compare {text} --max-time 100000", [
        ("--cells bogus", T("--cells")), ("--cells lstm,lstm", T("--cells")),
        ("--max-time 0", T("--max-time")), ("--max-time nan", T("--max-time")),
        ("--train-flags=--resume", T("--train-flags")),
    ]),
    *ckpt_cases("audit-report", "audit report @", "rnnkit", ""),

    # ---- export
    *ckpt_cases("export", "export @ --out {new}.onnx", "train text", ""),
    *out_cases("export", "export {lm} --out @", "--out", ".onnx"),

    # ---- speech (its own flags are in tests/speech/test_cli_hostile.py)
    *ckpt_cases("speech-transcribe", "speech transcribe @ {wav}", "speech train",
                "lm cls tr fc", evil=False),
    *file_cases("speech-transcribe", "speech transcribe {sp} @", ("audio", "wav", "sound"),
                "missing empty binary dir"),
    *ckpt_cases("speech-evaluate", "speech evaluate @ --data {speech}", "speech train", "lm fc"),
    *file_cases("speech-evaluate", "speech evaluate {sp} --data @", T("--data"),
                "missing empty binary"),
    *file_cases("speech-train", "speech train --out {new}.pt --steps 2 --data @ " + " ".join(SP),
                T("--data"), "missing empty binary dir"),
    case("speech-train-out-existing", "speech train --data {speech} --out {sprun} --steps 100000 "
         + " ".join(SP), "--out", "--overwrite", keep=["sprun"], limit=10),
    case("speech-train[--batch-size 0]", "speech train --data {speech} --out {new}.pt --steps 2 "
         + " ".join(SP) + " --batch-size 0", T("--batch-size", "--model.batch_size")),
    case("speech-train[--train.lr -1]", "speech train --data {speech} --out {new}.pt --steps 2 "
         + " ".join(SP) + " --train.lr -1", T("--train.lr")),
    case("speech-train[--hidden-size 100000000]", "speech train --data {speech} --out {new}.pt "
         "--steps 2 " + " ".join(SP) + " --hidden-size 100000000",
         T("--hidden-size", "--model.hidden_size"), cap=3),
]


def _paths(world: dict[str, Path], tmp: Path, argv: list[str]) -> dict[str, str]:
    """The placeholders of ``argv``: the world's paths and this test's own outputs."""
    joined = " ".join(argv)
    p = {k: str(v) for k, v in world.items()}
    p["new"] = str(tmp / "new")
    (tmp / "exists_dir").mkdir()
    p["exists_dir"] = str(tmp / "exists_dir")
    (tmp / "exists_file").write_bytes(b"an earlier result\n" * 10)
    p["exists_file"] = str(tmp / "exists_file")
    ro = tmp / "readonly"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    p["ro"] = str(ro if not os.access(ro, os.W_OK) else tmp / "exists_file")  # root: under a file
    for name, run in (("lmrun", "lm"), ("clsrun", "cls"), ("trrun", "tr")):
        if "{" + name in joined:
            shutil.copytree(world["root"] / run, tmp / name)
            p[name] = str(tmp / name)
    if "{lmrun_trunc}" in joined:
        shutil.copytree(world["root"] / "lm", tmp / "lmrun_trunc")
        last = tmp / "lmrun_trunc" / "last.pt"
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
        p["lmrun_trunc"] = str(tmp / "lmrun_trunc")
    for name, src in (("fcrun", "fc"), ("sprun", "sp")):
        shutil.copy(world[src], tmp / f"{name}.pt")
        p[name] = str(tmp / f"{name}.pt")
    if "{oneclass}" in joined:
        (tmp / "oneclass.tsv").write_text("".join(f"pos\tgood film {i}\n" for i in range(40)))
        p["oneclass"] = str(tmp / "oneclass.tsv")
    return p


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run in the test's own folder (a default output lands there), and make it removable."""
    monkeypatch.chdir(tmp_path)
    yield
    for sub in tmp_path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o700)


@pytest.mark.parametrize("argv, words, opts", CASES)
def test_refused(world, tmp_path, capsys, argv, words, opts):
    paths = _paths(world, tmp_path, argv)
    argv = [a.format(**paths) if "{" in a else a for a in argv]
    argv = ["" if a == "''" else a for a in argv]
    keep = {}
    for name in opts.get("keep", []):
        first, _, rest = name.partition("/")
        path = Path(paths[first]) / rest if rest else Path(paths[first])
        keep[path] = path.read_bytes()
    try:
        refused(capsys, argv, words, limit=opts.get("limit", 20.0), cap=opts.get("cap"))
    finally:
        for path, before in keep.items():
            assert path.is_file() and path.read_bytes() == before, \
                f"{path} was changed: an earlier result was overwritten"
        assert not world["pwned"].exists(), "the malicious checkpoint's code ran"
    leftovers = [p.name for p in tmp_path.glob("new*")]
    assert not leftovers, f"a refused command still wrote {leftovers}"


# -- Ctrl-C mid-training ----------------------------------------------------------------------
INTERRUPTS = [
    pytest.param("train text --data {text} --out-dir {run} " + " ".join(TEXT + MANY)
                 + " --train.log_every 1", True, id="train-text"),
    pytest.param("classify train --data {lab} --out-dir {run} " + " ".join(CLS + MANY_T)
                 + " --train.log_every 1", True, id="classify-train"),
    pytest.param("translate train --pairs {pairs} --out-dir {run} " + " ".join(TR + MANY_T)
                 + " --train.log_every 1", True, id="translate-train"),
    pytest.param("forecast train --csv {csv} --out {run}.pt --train.out_dir {run} "
                 "--steps 100000 --train.log_every 1 " + " ".join(FC), False,
                 id="forecast-train"),
]


@pytest.mark.parametrize("argv, resumable", INTERRUPTS)
def test_ctrl_c_mid_training(world, tmp_path, argv, resumable):
    run = tmp_path / "run"
    argv = [a.format(run=run, **{k: str(v) for k, v in world.items()}) for a in argv.split()]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "--threads", "1", *argv],
                                stdout=o, stderr=e, cwd=tmp_path, env=env)
        try:
            deadline = time.monotonic() + 40
            while not (run / "log.jsonl").exists() and proc.poll() is None:
                assert time.monotonic() < deadline, "no log.jsonl after 40 s"
                time.sleep(0.05)
            assert proc.poll() is None, f"ended before Ctrl-C: {err.read_text()[-800:]}"
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = err.read_text()
    shown = f"rnnkit {' '.join(argv)}\n  -> exit {rc}; stderr:\n{text[-1500:]}"
    assert rc == 130, shown
    assert "Traceback" not in text, shown
    assert (run / "last.pt").is_file(), f"no last.pt after Ctrl-C\n{shown}"
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and all(line.startswith("rnnkit ") or line.startswith("resume with: rnnkit ")
                         for line in lines), shown
    says_resume = any(line.startswith("resume with: rnnkit ") and "--resume" in line
                      for line in lines)
    assert says_resume == resumable, shown  # never a resume command that would be refused


def test_ctrl_c_while_generating(world, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    argv = ["generate", str(world["lm"]), "--length", "100000000"]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "--threads", "1", *argv],
                                stdout=o, stderr=e, cwd=tmp_path, env=env)
        try:
            deadline = time.monotonic() + 40
            while out.stat().st_size < 200 and proc.poll() is None:
                assert time.monotonic() < deadline, "no text after 40 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = err.read_text()
    shown = f"rnnkit {' '.join(argv)}\n  -> exit {rc}; stderr:\n{text[-1500:]}"
    assert rc == 130 and "Traceback" not in text, shown
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnnkit generate"), shown
