"""Every trainer under ``torchrun``: ``rnnkit classify train``, ``translate train``, ``forecast
train`` and ``speech train`` run as 2 gloo processes (``python -m torch.distributed.run
--standalone --nproc_per_node=2 -m rnnkit ...``) on tiny data, and only rank 0 writes files and
prints the report. The first three save the weights of one process trained on the same
global batches (15 rows: 7 + 8 per rank; the classifier's and the translator's last batch
holds 1 row, which rank 0 borrows with weight 0). Speech is a smoke test: its BatchNorm
statistics are per process (torch has no SyncBatchNorm on the CPU), so its weights differ;
it runs under a ``--train.max_time`` budget, which every rank must end at the same step.

Rank 1's writes are recorded by an audit hook that a ``sitecustomize`` module on the
children's ``PYTHONPATH`` installs (the CLI itself runs unchanged).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rnnkit.train.distributed import is_main_process, share_batch

ATOL = 1e-5  # measured: 2.9e-6 (classify), 1.5e-8 (translate), 4.5e-8 (forecast)

HOOK = textwrap.dedent('''
    """Test hook: record every write under $DDP_TASKS_WATCH made by a torchrun rank != 0."""
    import atexit, json, os, sys

    _rank = os.environ.get("RANK")
    _root = os.environ.get("DDP_TASKS_WATCH")
    if _root and _rank not in (None, "0"):
        _root = os.path.abspath(_root)
        _writes = []
        _flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def _hook(event, args):
            paths = []
            if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
                mode, flags = args[1], args[2]
                if (isinstance(mode, str) and any(c in mode for c in "wax+")) or \\
                        (isinstance(flags, int) and flags & _flags):
                    paths = [args[0]]
            elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir", "os.rmdir",
                           "os.truncate", "shutil.rmtree"):
                paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            for p in paths:
                p = os.path.abspath(os.fsdecode(p))
                if p.startswith(_root):
                    _writes.append([event, p])

        def _report():
            out = os.path.join(os.environ["DDP_TASKS_REPORT"], f"rank{_rank}.json")
            with open(out, "w") as f:
                json.dump(_writes, f)

        sys.addaudithook(_hook)
        atexit.register(_report)
''')


def _run(args: list[str], tmp_path: Path, procs: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    if procs == 1:
        cmd = [sys.executable, "-m", "rnnkit", *args]
    else:
        hook = tmp_path / "hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(HOOK)
        report = tmp_path / "report"
        report.mkdir(exist_ok=True)
        env.update(PYTHONPATH=os.pathsep.join([str(hook), env.get("PYTHONPATH", "")]),
                   DDP_TASKS_WATCH=str(tmp_path / "ddp"), DDP_TASKS_REPORT=str(report))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={procs}", "-m", "rnnkit", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _both(tmp_path: Path, args, out_one: list[str], out_two: list[str]):
    """Run ``args + out_one`` in one process and ``args + out_two`` in two; check that rank 1
    wrote nothing; return both outputs."""
    (tmp_path / "one").mkdir()
    (tmp_path / "ddp").mkdir()
    one = _run([*args, *out_one], tmp_path, 1)
    two = _run([*args, *out_two], tmp_path, 2)
    writes = json.loads((tmp_path / "report" / "rank1.json").read_text())
    assert writes == [], writes  # only rank 0 writes
    return one, two


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _assert_same_weights(a: dict, b: dict, what: str) -> None:
    diff = _max_diff(a, b)
    print(f"{what}: max |w1 - w2| = {diff:.3g}")
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=ATOL), (what, k)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# -- fast unit tests of the helpers -------------------------------------------------------------
def test_share_batch_borrows_a_row_when_the_batch_is_smaller_than_the_world():
    x, lengths, y = torch.arange(6).reshape(3, 2), torch.tensor([2, 2, 1]), torch.tensor([0, 1, 1])
    parts = [share_batch((x, lengths, y), r, 2) for r in range(2)]
    assert [b for _, b in parts] == [False, False]
    assert torch.equal(torch.cat([p[0][0] for p in parts]), x)  # as split_batch: 1 + 2 rows
    small = [share_batch({"x": x[:1], "n": 3}, r, 4) for r in range(4)]
    assert [b for _, b in small] == [True, True, True, False]  # rank 3 owns the one row
    assert all(torch.equal(p["x"], x[:1]) and p["n"] == 3 for p, _ in small)
    rows, borrowed = share_batch(x, 0, 1)
    assert rows is x and not borrowed
    words, borrowed = share_batch(["w1", "w2", "w3"], 1, 2)  # a list of items: its rows
    assert words == ["w2", "w3"] and not borrowed


def test_is_main_process_follows_torchrun_rank(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
    monkeypatch.delenv("RANK")
    assert is_main_process()


def test_trainer_counts_a_borrowed_row_with_weight_zero(monkeypatch):
    """One process posing as rank 0 of 2, the collectives stubbed: a one-row batch is rank
    1's, so rank 0 runs the row (DDP needs it in every step) with weight 0."""
    from torch import nn

    from rnnkit.train import LossOutput, TrainConfig, Trainer
    from rnnkit.train.distributed import DistContext

    class Square(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))
            self.rows = 0

        def loss(self, batch, state=None):
            self.rows += len(batch)
            return LossOutput(((batch * self.w) ** 2).mean(), None, {}, len(batch))

    trainer = Trainer(Square(), TrainConfig(epochs=1, progress=False, device="cpu",
                                            compute=False), [torch.ones(1, 1)])
    trainer.dist = DistContext(rank=0, world=2)
    other: list[float] = []  # what rank 1 adds to each sum
    monkeypatch.setattr(DistContext, "all_sum", lambda self, values, device: [
        v + o for v, o in zip(values, other)] if other else values)
    other[:] = [1.0, 1.0]  # rank 1: weight 1, loss 1
    _, sums, _ = trainer._forward_backward(torch.ones(1, 1), stream=False)
    assert sums == [1.0, 1.0] and trainer.model.rows == 1  # ran, weighing nothing
    assert float(trainer.model.w.grad) == 0.0
    other.clear()  # rank 0's own sums: 1 of the 2 rows of 1s; the row of 3 is rank 1's
    assert trainer.evaluate([torch.ones(2, 1), torch.full((1, 1), 3.0)])["loss"] == 1.0


# -- the commands under torchrun ----------------------------------------------------------------
POS, NEG = ["good", "great", "lovely", "superb"], ["bad", "awful", "dull", "poor"]
FILLER = ["the", "a", "film", "plot", "movie", "cast", "was", "is"]


@pytest.mark.slow
def test_classify_train_two_processes_match_one(tmp_path):
    rng = random.Random(0)
    lines = []
    for _ in range(57):  # 46 training texts: batches of 15, 15, 15 and 1
        label = rng.choice(["pos", "neg"])
        words = rng.sample(FILLER, rng.randint(2, 6))
        words.insert(rng.randint(0, len(words)), rng.choice(POS if label == "pos" else NEG))
        lines.append(f"{label}\t{' '.join(words)}\n")
    data = tmp_path / "texts.tsv"
    data.write_text("".join(lines), encoding="utf-8")
    args = ["classify", "train", "--data", str(data), "--epochs", "2", "--embed", "8",
            "--hidden", "8", "--dropout", "0", "--embed-dropout", "0", "--batch-size", "15",
            "--val-fraction", "0.2", "--lr", "0.01", "--train.eval_every", "3",
            "--no-progress"]
    one, two = _both(tmp_path, args, ["--out-dir", "one/run"], ["--out-dir", "ddp/run"])
    assert two.stdout.count("trained on 57 texts") == 1  # rank 0 reports
    run1, run2 = tmp_path / "one" / "run", tmp_path / "ddp" / "run"
    files = {"last.pt", "best.pt", "log.jsonl", "log.csv", "compute.json", "model_card.md"}
    assert files <= set(os.listdir(run2)) and set(os.listdir(run1)) == set(os.listdir(run2))
    for name in ("last.pt", "best.pt"):
        a, b = _load(run1 / name), _load(run2 / name)
        assert a["step"] == b["step"] == 8 and b["world_size"] == 2
        _assert_same_weights(a["model"], b["model"], f"classify {name}")
        for k, v in a["metrics"].items():
            assert b["metrics"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    logs = [[json.loads(r) for r in (run / "log.jsonl").read_text().splitlines()]
            for run in (run1, run2)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]]


@pytest.mark.slow
def test_translate_train_two_processes_match_one(tmp_path):
    rng = random.Random(1)
    words = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
    lines = []
    for _ in range(58):  # 12 held out, 46 to train on: batches of 15, 15, 15 and 1
        src = [rng.choice(list(words)) for _ in range(rng.randint(1, 3))]
        lines.append(f"{' '.join(src)}\t{' '.join(words[w] for w in src)}\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(lines), encoding="utf-8")
    args = ["translate", "train", "--pairs", str(pairs), "--epochs", "2", "--embed", "8",
            "--hidden", "8", "--dropout", "0", "--batch-size", "15", "--val-fraction", "0.2",
            "--no-progress", "--train.plot", "false"]
    one, two = _both(tmp_path, args, ["--out-dir", "one/run"], ["--out-dir", "ddp/run"])
    assert two.stdout.count("trained on 58 pairs") == 1
    run1, run2 = tmp_path / "one" / "run", tmp_path / "ddp" / "run"
    assert set(os.listdir(run1)) == set(os.listdir(run2))
    a, b = _load(run1 / "last.pt"), _load(run2 / "last.pt")
    assert a["step"] == b["step"] == 8
    _assert_same_weights(a["model"], b["model"], "translate last.pt")


@pytest.mark.slow
def test_forecast_train_two_processes_match_one(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frames = []
    for s in range(4):  # a global model over 4 series
        y = 10 + s + np.sin(np.arange(60) * 2 * math.pi / 7 + s) + rng.normal(0, 0.1, 60)
        frames.append(pd.DataFrame({"date": pd.date_range("2020-01-01", periods=60, freq="D"),
                                    "store": f"s{s}", "sales": y}))
    csv = tmp_path / "sales.csv"
    pd.concat(frames).to_csv(csv, index=False)
    # early stopping (watched every 2 steps) ends the run at step 6: every rank must agree
    args = ["forecast", "train", "--csv", str(csv), "--time", "date", "--target", "sales",
            "--series", "store", "--horizon", "3", "--season", "7", "--steps", "12",
            "--hidden-size", "8", "--model.batch_size", "15", "--train.eval_every", "2",
            "--train.early_stop_patience", "2", "--train.lr", "0.02"]
    one, two = _both(tmp_path, args, ["--out", "one/m.pt"], ["--out", "ddp/m.pt"])
    assert two.stdout.count("saved ddp/m.pt") == 1
    assert two.stderr.count("(model card)") == 1
    assert sorted(os.listdir(tmp_path / "ddp")) == ["m.pt", "m.pt.card.md"]
    _assert_same_weights(_load(tmp_path / "one" / "m.pt")["state_dict"],
                         _load(tmp_path / "ddp" / "m.pt")["state_dict"], "forecast")
    # "trained lstm forecaster for N steps (best validation loss L)": same N, same L
    reports = [re.findall(r"for (\d+) steps \(best validation loss ([\d.]+)\)", p.stdout)
               for p in (one, two)]
    assert len(reports[0]) == len(reports[1]) == 1
    assert reports[0][0][0] == reports[1][0][0] == "6"  # stopped early, at the same step
    assert float(reports[0][0][1]) == pytest.approx(float(reports[1][0][1]), abs=2e-4)


@pytest.mark.slow
def test_speech_train_runs_under_torchrun_with_a_time_budget(tmp_path):
    sf = pytest.importorskip("soundfile")
    import numpy as np

    rate = 16000
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for i, (text, freqs) in enumerate([("ab", [300, 900]), ("ba", [900, 300]),
                                       ("aa", [300, 300]), ("bb", [900, 900]),
                                       ("ab", [300, 900])]):
        t = np.arange(int(0.15 * rate)) / rate
        noise = np.random.default_rng(i)
        wave = np.concatenate([0.3 * np.sin(2 * math.pi * f * t)
                               + 0.01 * noise.normal(size=len(t)) for f in freqs])
        sf.write(data / f"u{i}.wav", wave.astype(np.float32), rate)
        lines.append(f"u{i}.wav\t{text}")
    (data / "manifest.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "ddp").mkdir()
    # the time budget ends the run: each rank reads its own clock, yet all stop at one step
    # (a rank that stopped alone would leave the other waiting in a collective)
    two = _run(["speech", "train", "--data", str(data), "--out", "ddp/asr.pt", "--steps",
                "100000", "--train.max_time", "1.5", "--hidden-size", "8", "--layers", "1",
                "--model.channels", "2", "--model.n_mels", "24", "--batch-size", "3",
                "--no-progress"], tmp_path, 2)
    assert json.loads((tmp_path / "report" / "rank1.json").read_text()) == []
    assert len(re.findall(r"wrote ddp/asr.pt \((\d+) steps\)", two.stdout)) == 1
    assert sorted(os.listdir(tmp_path / "ddp")) == ["asr.pt", "asr.pt.card.md"]
