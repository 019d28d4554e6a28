"""Character language modelling: does ``rnnkit train text`` with its defaults beat a 5-gram
Kneser-Ney model on held-out text within its time budget?

The promise checked (issue "defaults that learn"): ``rnnkit train text --data FILE --max-time
240`` reaches lower held-out bits per character than a character 5-gram interpolated
Kneser-Ney model on any corpus of at least 1 MB. Peers in the same table, on the same split:

* ``kn-3``, ``kn-5`` (the reference), ``kn-7``: :class:`rnnkit.ngram.NGramLM`, modified
  interpolated Kneser-Ney (Chen & Goodman: three discounts per order from count-of-counts,
  ``discount=None``), fitted on the training part read as one character stream. Every test
  character is scored, from the test part's first character (context: sentence-start padding)
  on; a character never seen in training gets the model's ``<unk>`` floor. All three orders
  are reported: none is chosen on the test part.
* ``xz-9e``: conditional compression with LZMA (``xz -9e``: preset 9 | PRESET_EXTREME),
  ``8 * (len(xz(train + test)) - len(xz(train))) / len(test)`` bits per character. This is an
  upper bound of what a strong general-purpose compressor needs, not a language model.
* ``rnnkit@B``: the real command line, nothing but the data, the budget and where to write::

      rnnkit --threads N train text --data TRAIN --max-time B --out-dir WORK/run_B
      rnnkit --threads N evaluate WORK/run_B/best.pt --data TEST

  so what is measured is the defaults (``train text`` holds out its own validation text from
  TRAIN and keeps ``best.pt`` by it). "train s" is the wall time of the whole ``train text``
  process (start-up, evaluations and samples included); the tokens/s and steps come from its
  ``log.jsonl``; the lines it prints that start with ``recipe:`` are kept in the JSON.

Corpora. Each is cut once by characters: the first 90% is the training file (written to a
temporary folder), the last 10% the test file, which no choice sees.

* ``austen`` (default, held out): Jane Austen's six novels (Project Gutenberg texts, public
  domain; 4.0 MB, ASCII but for one character), joined in publication order, so the test part
  is the last 86% of *Persuasion*. Shipped offline by the Debian package ``r-cran-janeaustenr``
  (CRAN ``janeaustenr``, MIT; the texts are public domain)::

      apt-get install -y --no-install-recommends r-cran-janeaustenr   # pulls in r-base-core

  (``make bench-data`` does this when it is missing), or, without R: ``apt-get download
  r-cran-janeaustenr && dpkg-deb -x r-cran-janeaustenr_*.deb DIR`` and ``--austen-dir
  DIR/usr/lib/R/site-library/janeaustenr``. The novels are an R lazy-load database, read with
  the ``rdata`` package (extra ``bench``). Nothing in the recipe was tuned on it.
* ``tinyshakespeare`` (always): ``../shared/data/tinyshakespeare.txt`` (1.1 MB). Not held
  out in the same sense: rnnkit's earlier text benchmark was developed on it, with this very
  last 10% as its validation text.
* ``--data FILE [FILE ...]``: any other text files (UTF-8, or Latin-1).

Run from the project root (a quiet machine; the full run is about 1 hour on 1 thread)::

    python benchmarks/text_lm.py                          # budgets 240 450 900 s
    python benchmarks/text_lm.py --budgets 240 --data my_corpus.txt
    python benchmarks/text_lm.py --quick                  # a smoke run, about 1 minute

Prints one table per corpus and writes ``benchmarks/results/text_lm.json`` (``--quick``:
``text_lm_quick.json``) with the seed and thread count of every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.data.text import load_text  # noqa: E402
from rnnkit.ngram import NGramLM  # noqa: E402

SHAKESPEARE = ROOT / ".." / "shared" / "data" / "tinyshakespeare.txt"
REFERENCE_ORDER = 5
TARGET_BUDGET = 240.0
LN2 = math.log(2)


# -- corpora ---------------------------------------------------------------------------------
#: janeaustenr's objects, in publication order (the order :func:`jane_austen` joins them)
AUSTEN_NOVELS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma",
                 "northangerabbey", "persuasion")
R_LIBRARIES = ("/usr/lib/R/site-library", "/usr/local/lib/R/site-library")


def find_r_package(name: str) -> Path | None:
    """The installed R package folder (with a ``DESCRIPTION``), or ``None``."""
    return next((Path(r) / name for r in R_LIBRARIES
                 if (Path(r) / name / "DESCRIPTION").exists()), None)


def jane_austen(package_dir: Path | None) -> str:
    """The six novels of the ``janeaustenr`` R package, each novel's lines joined with
    ``\\n``, novels separated by a blank line. The package keeps them in an R lazy-load
    database: ``Rdata.rdx`` (gzip: an index name -> (offset, length)) and ``Rdata.rdb``
    (records: 4-byte length, then zlib), each record one serialized R object."""
    import gzip
    import zlib

    import rdata

    base = package_dir / "data" / "Rdata" if package_dir is not None else None
    if base is None or not base.with_suffix(".rdx").exists():
        raise FileNotFoundError(
            f"janeaustenr not found in {package_dir or ' or '.join(R_LIBRARIES)}: run `make "
            f"bench-data` (apt-get install r-cran-janeaustenr), or unpack the .deb and pass "
            f"--austen-dir DIR/usr/lib/R/site-library/janeaustenr")

    def parse(raw: bytes):
        import warnings

        with warnings.catch_warnings():  # "Unknown file type: assumed RDS": it is one
            warnings.simplefilter("ignore", UserWarning)
            return rdata.conversion.convert(rdata.parser.parse_data(raw))

    index = parse(gzip.decompress(base.with_suffix(".rdx").read_bytes()))["variables"]
    novels = []
    with open(base.with_suffix(".rdb"), "rb") as f:
        for name in AUSTEN_NOVELS:
            offset, length = (int(x) for x in index[name])
            f.seek(offset)
            lines = parse(zlib.decompress(f.read(length)[4:]))
            novels.append("\n".join("" if line is None else str(line) for line in lines))
    return "\n\n".join(novels) + "\n"


def load_corpora(args, skipped: dict) -> list[tuple[str, str, str]]:
    """(name, source, text) for every corpus asked for; a missing built-in one is skipped (in
    ``skipped``: name -> why, and how to get it)."""
    out = []
    for name in args.corpora:
        if name == "austen":
            pkg = Path(args.austen_dir) if args.austen_dir else find_r_package("janeaustenr")
            try:
                text = jane_austen(pkg)
            except FileNotFoundError as e:
                skipped["austen"] = str(e)
                continue
            out.append(("austen", f"Debian r-cran-janeaustenr ({pkg})", text))
        elif name == "tinyshakespeare":
            if not SHAKESPEARE.exists():
                skipped["tinyshakespeare"] = f"{SHAKESPEARE.resolve()} not found"
                continue
            out.append(("tinyshakespeare", str(SHAKESPEARE.resolve()), load_text(SHAKESPEARE)))
    for f in args.data or []:
        out.append((Path(f).stem, str(Path(f).resolve()), load_text(f)))
    if args.max_chars:
        out = [(n, s, t[: args.max_chars]) for n, s, t in out]
    return out


def split(text: str, test_fraction: float = 0.1) -> tuple[str, str]:
    cut = len(text) - int(round(len(text) * test_fraction))
    return text[:cut], text[cut:]


# -- peers -----------------------------------------------------------------------------------
def kn_bits_per_char(train: str, test: str, order: int) -> dict:
    """Modified interpolated Kneser-Ney of ``order`` on ``train`` (one character stream);
    bits/char over every character of ``test``."""
    t0 = time.perf_counter()
    lm = NGramLM(order=order, discount=None).fit([train])
    t1 = time.perf_counter()
    k, total = order - 1, 0.0
    for i, ch in enumerate(test):
        total += lm.logprob(ch, test[max(0, i - k): i])
    t2 = time.perf_counter()
    return {"bits_per_char": -total / len(test) / LN2, "chars_scored": len(test),
            "train_chars": len(train), "train_s": t1 - t0, "eval_s": t2 - t1,
            "ngrams": len(lm._counts[-1])}


def xz_bits_per_char(train: str, test: str) -> dict:
    t0 = time.perf_counter()
    opts = {"format": lzma.FORMAT_XZ, "preset": 9 | lzma.PRESET_EXTREME}
    a = len(lzma.compress(train.encode("utf-8"), **opts))
    b = len(lzma.compress((train + test).encode("utf-8"), **opts))
    return {"bits_per_char": 8 * (b - a) / len(test), "train_s": time.perf_counter() - t0,
            "bytes_train": a, "bytes_train_test": b}


# -- rnnkit ----------------------------------------------------------------------------------
def _cli(threads: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "rnnkit", "--threads", str(threads), *args]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH"))
                                        if p)
    return env


def _run(cmd: list[str], log: Path, echo: bool) -> tuple[int, str, float]:
    """Run ``cmd``; stdout is returned (and echoed with ``echo``), stderr (progress bars)
    goes to ``log``."""
    t0 = time.perf_counter()
    lines = []
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env=_env(), cwd=ROOT)
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print("    | " + line, end="", flush=True)
        rc = proc.wait()
    return rc, "".join(lines), time.perf_counter() - t0


def _tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _train_log(out_dir: Path) -> dict:
    """Steps, training tokens/s (median of the logged windows) and training time from
    ``log.jsonl``."""
    path = out_dir / "log.jsonl"
    if not path.exists():
        return {}
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [r for r in recs if r.get("split") == "train"]
    val = [r for r in recs if r.get("split") == "val"]
    out: dict = {"steps": max((r.get("step", 0) for r in recs), default=0),
                 "loop_s": max((r.get("time", 0.0) for r in recs), default=0.0),
                 "evaluations": len(val)}
    speeds = [r["items_per_s"] for r in train if r.get("items_per_s")]
    if speeds:
        out["tokens_per_s"] = statistics.median(speeds)
    if val:
        out["best_val_loss"] = min(r["loss"] for r in val)
    return out


def _checkpoint_info(ckpt: Path) -> dict:
    try:
        import torch

        blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - informative only
        return {"error": f"{type(e).__name__}: {e}"}
    model = blob.get("model") or {}
    params = sum(v.numel() for v in model.values() if hasattr(v, "numel"))
    extra = blob.get("extra_state") or {}
    return {"train_config": blob.get("config"), "model_config": extra.get("config"),
            "params": params, "step": blob.get("step"), "epoch": blob.get("epoch")}


BPC = re.compile(r"([0-9.]+|nan|inf) bits/char")


def rnnkit_run(train_file: Path, test_file: Path, budget: float, work: Path, threads: int,
               echo: bool) -> dict:
    out_dir = work / f"run_{budget:g}"
    train_cmd = _cli(threads, "train", "text", "--data", str(train_file), "--max-time",
                     f"{budget:g}", "--out-dir", str(out_dir))
    rec: dict = {"budget_s": budget, "threads": threads,
                 "train_command": " ".join(["rnnkit", *train_cmd[3:]])}
    rc, stdout, wall = _run(train_cmd, work / f"run_{budget:g}.stderr", echo)
    rec.update(train_s=wall, train_rc=rc,
               recipe=[ln.strip() for ln in stdout.splitlines() if ln.startswith("recipe:")],
               validation=[ln.strip() for ln in stdout.splitlines()
                           if ln.startswith("validation")])
    if rc != 0:
        rec["error"] = f"train text exited {rc}: {_tail(work / f'run_{budget:g}.stderr')}"
        return rec
    rec.update(_train_log(out_dir))
    ckpt = out_dir / "best.pt"
    ckpt = ckpt if ckpt.exists() else out_dir / "last.pt"
    rec["checkpoint"] = ckpt.name
    info = _checkpoint_info(ckpt)
    rec.update(info)
    rec["seed"] = (info.get("train_config") or {}).get("seed")
    eval_cmd = _cli(threads, "evaluate", str(ckpt), "--data", str(test_file))
    rec["eval_command"] = " ".join(["rnnkit", *eval_cmd[3:]])
    rc, stdout, wall = _run(eval_cmd, work / f"eval_{budget:g}.stderr", echo)
    rec.update(eval_s=wall, eval_rc=rc, eval_output=stdout.strip().splitlines()[-3:])
    found = BPC.findall(stdout)
    if rc != 0 or not found:
        rec["error"] = (f"evaluate exited {rc} / printed no bits/char: {stdout[-500:]}"
                        f"{_tail(work / f'eval_{budget:g}.stderr')}")
        return rec
    rec["bits_per_char"] = float(found[-1])
    return rec


# -- report ----------------------------------------------------------------------------------
def print_table(c: dict) -> None:
    rows, ref = c["rows"], c["rows"].get(f"kn-{REFERENCE_ORDER}", {}).get("bits_per_char")
    print(f"\n=== {c['name']}: {c['chars']:,} chars ({c['source']}); train {c['train_chars']:,}, "
          f"test {c['test_chars']:,} (last 10%); {c['unseen_test_chars']} test chars unseen "
          f"in train ===")
    print(f"{'model':14s} {'bits/char':>9s} {'/kn-5':>6s} {'train s':>8s} {'eval s':>7s}  notes")
    for name, r in rows.items():
        bpc = r.get("bits_per_char")
        if bpc is None:
            print(f"{name:14s} {'failed':>9s}  {r.get('error', '')[:200]}")
            continue
        ratio = f"{bpc / ref:6.3f}" if ref else "     -"
        ev = f"{r['eval_s']:7.1f}" if "eval_s" in r else "      -"
        if name.startswith("kn-"):
            note = (f"{r['ngrams']:,} {name[3:]}-grams from {r['train_chars']:,} chars"
                    + (" (reference)" if name == f"kn-{REFERENCE_ORDER}" else ""))
        elif name.startswith("rnnkit"):
            mc = r.get("model_config") or {}
            note = (f"{r.get('steps', '?')} steps, {r.get('tokens_per_s', 0):,.0f} tok/s, "
                    f"{mc.get('cell', '?')} {mc.get('num_layers', '?')}x"
                    f"{mc.get('hidden_size', '?')}, {r.get('params', 0) / 1e6:.2f}M params, "
                    f"seed {r.get('seed')}")
        else:
            note = "compressor bound, not a model"
        print(f"{name:14s} {bpc:9.4f} {ratio} {r['train_s']:8.1f} {ev}  {note}")
        for line in r.get("recipe", []):
            print(f"{'':14s} {line}")
    t = c.get("target")
    if t:
        print(f"target: rnnkit@{t['budget']:g} < kn-{REFERENCE_ORDER}: "
              f"{'yes' if t['met'] else 'no'} ({t['rnnkit']:.4f} vs {t['kn']:.4f} bits/char)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpora", nargs="*", default=["austen", "tinyshakespeare"],
                   choices=["austen", "tinyshakespeare"], help="built-in corpora")
    p.add_argument("--data", nargs="+", metavar="FILE", help="more corpora: text files")
    p.add_argument("--austen-dir", help="the janeaustenr R package folder (default: the "
                   "installed r-cran-janeaustenr)")
    p.add_argument("--budgets", type=float, nargs="+", default=[240.0, 450.0, 900.0],
                   help="rnnkit training budgets (--max-time), seconds")
    p.add_argument("--orders", type=int, nargs="+", default=[3, 5, 7],
                   help="Kneser-Ney orders (5 is the reference)")
    p.add_argument("--kn-chars", type=int, default=0,
                   help="train the Kneser-Ney models on at most this many characters (the "
                   "first ones of the training part); 0: all")
    p.add_argument("--max-chars", type=int, default=0,
                   help="cut each corpus to its first N characters before splitting; 0: all")
    p.add_argument("--threads", type=int, default=1, help="rnnkit --threads")
    p.add_argument("--skip-rnnkit", action="store_true", help="only the peers")
    p.add_argument("--work-dir", help="keep the split files and runs here (default: a "
                   "temporary folder, deleted)")
    p.add_argument("--verbose", action="store_true", help="echo the CLI's output")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: budget 10 s, corpora cut to 200k characters")
    p.add_argument("--out", help="results JSON (default benchmarks/results/text_lm.json, "
                   "--quick: text_lm_quick.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.budgets, args.max_chars = [10.0], args.max_chars or 200_000
    out_path = Path(args.out or ROOT / "benchmarks" / "results" /
                    ("text_lm_quick.json" if args.quick else "text_lm.json"))
    if REFERENCE_ORDER not in args.orders:
        args.orders = sorted({*args.orders, REFERENCE_ORDER})

    skipped: dict = {}
    corpora = load_corpora(args, skipped)
    for name, why in skipped.items():
        print(f"SKIPPED {name}: {why}", file=sys.stderr)
    if not corpora:
        print("no corpus: install r-cran-janeaustenr, or pass --data FILE", file=sys.stderr)
        return 2
    import torch

    results: dict = {
        "settings": {k: v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "skipped": skipped, "corpora": []}
    print(f"threads {args.threads}; budgets {args.budgets}; KN orders {args.orders}"
          + (f"; KN trained on at most {args.kn_chars:,} chars" if args.kn_chars else "")
          + (f"; corpora cut to {args.max_chars:,} chars" if args.max_chars else ""))
    tmp = None
    if args.work_dir:
        work_root = Path(args.work_dir)
        work_root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="rnnkit_text_lm_")
        work_root = Path(tmp.name)
    try:
        for name, source, text in corpora:
            train, test = split(text)
            work = work_root / name
            work.mkdir(parents=True, exist_ok=True)
            train_file, test_file = work / "train.txt", work / "test.txt"
            train_file.write_text(train, encoding="utf-8", newline="")
            test_file.write_text(test, encoding="utf-8", newline="")
            seen = set(train)
            c = {"name": name, "source": source, "chars": len(text),
                 "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                 "train_chars": len(train), "test_chars": len(test),
                 "unseen_test_chars": sum(ch not in seen for ch in test), "rows": {}}
            results["corpora"].append(c)
            kn_train = train[: args.kn_chars] if args.kn_chars else train
            for order in args.orders:
                print(f"[{name}] kn-{order} ...", flush=True)
                c["rows"][f"kn-{order}"] = kn_bits_per_char(kn_train, test, order)
            print(f"[{name}] xz-9e ...", flush=True)
            c["rows"]["xz-9e"] = xz_bits_per_char(train, test)
            if not args.skip_rnnkit:
                for b in args.budgets:
                    print(f"[{name}] rnnkit train text --max-time {b:g} ...", flush=True)
                    c["rows"][f"rnnkit@{b:g}"] = rnnkit_run(train_file, test_file, b, work,
                                                            args.threads, args.verbose)
                target_b = TARGET_BUDGET if TARGET_BUDGET in args.budgets else min(args.budgets)
                r = c["rows"][f"rnnkit@{target_b:g}"]
                kn = c["rows"][f"kn-{REFERENCE_ORDER}"]["bits_per_char"]
                if r.get("bits_per_char") is not None:
                    c["target"] = {"budget": target_b, "rnnkit": r["bits_per_char"], "kn": kn,
                                   "met": r["bits_per_char"] < kn}
            print_table(c)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"\nwrote {out_path}")
    for name, why in skipped.items():
        print(f"SKIPPED {name}: {why}")
    failed = [f"{c['name']}/{n}" for c in results["corpora"] for n, r in c["rows"].items()
              if r.get("bits_per_char") is None]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
