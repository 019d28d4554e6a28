"""An interrupted SeriesClassifier.fit continues from its progress file and gives the networks
of an uninterrupted fit, to the bit; the CLI says how to resume and refuses foreign progress."""

import math
import os
import signal

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli import main
from rnnkit.series.classifier import SeriesClassifier, SeriesClassifierConfig
from rnnkit.series.progress import ProgressMismatch
from rnnkit.train import TrainingInterrupted

CFG = dict(models="fcn,gru-fcn", shuffle="on", cv_folds=2, epochs=4, min_steps=1, width=0.125,
           ensemble=2, batch_size=8, combine="band")
_TRAIN = SeriesClassifier._train


def _data(seed, n=24, T=16):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * math.pi, T)
    xs = [np.sin((3 if i % 2 else 1) * t + rng.uniform(0, 6))[:, None]
          + rng.normal(0, 0.2, (T, 1)) for i in range(n)]
    return xs, ["fast" if i % 2 else "slow" for i in range(n)]


def _interrupt_at(monkeypatch, call, times=1):
    """Make the ``call``-th training run (1-based) receive SIGINT ``times`` times before its
    first step; returns the list of calls made."""
    calls = []

    def train(self, *args, **kw):
        calls.append(args[:2])
        if len(calls) == call:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return _TRAIN(self, *args, **kw)

    monkeypatch.setattr(SeriesClassifier, "_train", train)
    return calls


def _same(a, b):
    assert a.recipe == b.recipe and a.members == b.members and a.cv == b.cv
    assert len(a.nets) == len(b.nets)
    for na, nb in zip(a.nets, b.nets):
        for (ka, va), (kb, vb) in zip(na.state_dict().items(), nb.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka


@pytest.mark.parametrize("call", [1, 2, 3, 6])  # before any run, mid-CV, at a candidate, refit
def test_an_interrupted_fit_continues_to_the_networks_of_an_uninterrupted_one(
        tmp_path, monkeypatch, call):
    xs, ys = _data(int(os.environ.get("RNNKIT_TEST_SEED", "0")))
    reference = SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys)
    total = len(reference.nets) + 4
    path = tmp_path / "progress.pt"
    calls = _interrupt_at(monkeypatch, call)
    with pytest.raises(TrainingInterrupted) as err:
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert err.value.signal_name == "SIGINT" and err.value.step == call - 1
    assert (err.value.checkpoint is not None) == (call > 1) == path.exists()
    assert f"interrupted with {call - 1} of up to " in str(err.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    calls = _interrupt_at(monkeypatch, 0)  # count only
    resumed = SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert len(calls) == total - (call - 1)  # the finished runs were not trained again
    _same(resumed, reference)
    probe = _data(99, n=6)[0]
    assert torch.equal(resumed.predict_proba(probe), reference.predict_proba(probe))
    again = SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert len(calls) == total - (call - 1)  # a finished progress file trains nothing
    _same(again, reference)


def test_progress_of_other_settings_data_or_kind_is_refused(tmp_path, monkeypatch):
    xs, ys = _data(1)
    path = tmp_path / "progress.pt"
    _interrupt_at(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    with pytest.raises(ProgressMismatch) as err:
        SeriesClassifier(SeriesClassifierConfig(**{**CFG, "epochs": 5})).fit(
            xs, ys, progress=path)
    assert err.value.changed == {"epochs": (4, 5)} and not err.value.data_changed
    assert "epochs was 4, now 5" in str(err.value)
    other = [x.copy() for x in xs]
    other[3][5, 0] += 1e-3
    with pytest.raises(ProgressMismatch) as err:
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(other, ys, progress=path)
    assert err.value.data_changed and not err.value.changed
    with pytest.raises(ProgressMismatch):
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys[::-1], progress=path)
    from rnnkit.train import resumable

    monkeypatch.setattr(resumable, "runtime", lambda: {"rnnkit": "9.8", "torch": "9.9"})
    with pytest.raises(ProgressMismatch) as err:
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert err.value.runtime == {"rnnkit": (rnnkit.__version__, "9.8"),
                                 "torch": (str(torch.__version__), "9.9")}
    assert f"written by torch {torch.__version__}, this is 9.9" in str(err.value)
    assert not err.value.changed and not err.value.data_changed
    monkeypatch.undo()
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="truncated or corrupt"):
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    model = tmp_path / "model.pt"
    SeriesClassifier(SeriesClassifierConfig(**{**CFG, "cv_folds": 1, "ensemble": 1})).fit(
        xs, ys).save(model)
    with pytest.raises(ValueError, match="not a rnnkit.series_classifier.progress file"):
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=model)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_finished_runs(tmp_path, monkeypatch):
    xs, ys = _data(3)
    path = tmp_path / "progress.pt"
    _interrupt_at(monkeypatch, 3, times=2)  # the second SIGINT raises KeyboardInterrupt
    with pytest.raises(TrainingInterrupted) as err:
        SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert err.value.step == 2 and err.value.checkpoint == str(path)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    calls = _interrupt_at(monkeypatch, 0)
    resumed = SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys, progress=path)
    assert len(calls) == 4 + len(resumed.nets) - 2
    _same(resumed, SeriesClassifier(SeriesClassifierConfig(**CFG)).fit(xs, ys))


def _write_ts(path, xs, ys):
    lines = ["@problemName Waves", "@univariate true", "@classLabel true slow fast", "@data"]
    lines += [",".join(f"{v:.5f}" for v in x[:, 0]) + f":{y}" for x, y in zip(xs, ys)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_the_cli_says_how_to_resume_and_resuming_gives_the_uninterrupted_model(
        tmp_path, monkeypatch, capsys):
    data = _write_ts(tmp_path / "W_TRAIN.ts", *_data(2))
    flags = ["--models", "fcn,gru-fcn", "--shuffle", "on", "--cv-folds", "2", "--epochs", "4",
             "--batch-size", "8", "--series.width", "0.125", "--series.ensemble", "2",
             "--series.min_steps", "1"]
    assert main(["classify", "train", "--data", data, "--out-dir", str(tmp_path / "ref"),
                 *flags]) == 0
    argv = ["classify", "train", "--data", data, "--out-dir", str(tmp_path / "run"), *flags]
    _interrupt_at(monkeypatch, 4)
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "SIGINT: interrupted with 3 of up to " in err and "last.pt" in err
    assert "resume with: rnnkit classify train --data" in err and err.rstrip().endswith(
        "--resume")
    assert (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "best.pt").exists()
    with pytest.raises(ValueError, match="interrupted series-classifier fit, not a model: "
                       "continue it with the same `rnnkit classify train` command plus"):
        rnnkit.load(tmp_path / "run" / "last.pt")
    assert main(argv) == 2  # the folder holds a run: never started over silently
    assert "pass --resume to continue it" in capsys.readouterr().err
    changed = [a if a != "4" else "5" for a in argv]  # --epochs 5
    assert main([*changed, "--resume"]) == 2
    assert "(--epochs was 4, now 5); resume with that run's --data and flags, or pass " \
        "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    assert not (tmp_path / "run" / "last.pt").exists()  # spent: best.pt holds the networks
    _same(SeriesClassifier.load(tmp_path / "run" / "best.pt"),
          SeriesClassifier.load(tmp_path / "ref" / "best.pt"))
    # --overwrite starts over: an interrupted replacement leaves no model of the old settings
    calls = _interrupt_at(monkeypatch, 2)
    assert main([*changed, "--overwrite"]) == 130
    assert sorted(os.listdir(tmp_path / "run")) == ["last.pt"]
    (tmp_path / "run" / "last.pt").write_bytes(b"not a torch file")
    assert main([*changed, "--resume"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err.replace("\n", " ")
    calls = _interrupt_at(monkeypatch, 0)
    assert main([*argv, "--overwrite"]) == 0
    assert len(calls) == 4 + len(SeriesClassifier.load(tmp_path / "ref" / "best.pt").nets)
    _same(SeriesClassifier.load(tmp_path / "run" / "best.pt"),
          SeriesClassifier.load(tmp_path / "ref" / "best.pt"))
