"""A forecast fit stopped by SIGINT keeps what it did in its progress file and, run again with
the same file, gives the model of a fit that was never stopped, to the bit: an ES-RNN stopped
in its selection or its refit, a combination stopped while validating or refitting a member,
the seeds of an ES-RNN ensemble inside a combination; a file of other data or settings is
refused; the CLI saves, says how to resume, resumes, and refuses to start over on a file it
would lose."""

import os
import signal

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("sktime", reason="forecast metrics use sktime (rnnkit[data] extra)")

import rnnkit  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.data.timeseries import from_array  # noqa: E402
from rnnkit.forecast import ESRNN, ESRNNConfig  # noqa: E402
from rnnkit.forecast.baselines import ETS  # noqa: E402
from rnnkit.forecast.combine import ForecastCombination  # noqa: E402
from rnnkit.forecast.progress import KIND  # noqa: E402
from rnnkit.saving import read_state, write_state  # noqa: E402
from rnnkit.train import TrainingInterrupted  # noqa: E402
from rnnkit.train.resumable import ProgressMismatch  # noqa: E402

SEED = int(os.environ.get("RNNKIT_TEST_SEED", "0"))
CFG = dict(horizon=4, season=4, input_len=8, hidden_size=6, num_layers=1, max_steps=30,
           eval_every=5, patience=50, batch_size=16)


def _series(n=5, seed=SEED):
    g = np.random.default_rng(seed)
    out = []
    for k in range(n):
        t = np.arange(int(g.integers(48, 64)))
        y = (20 + g.uniform(0, 30) + 0.2 * t) * (1 + 0.2 * np.sin(2 * np.pi * (t + k) / 4)) \
            * np.exp(g.normal(0, 0.05, len(t)))
        s = from_array(y, freq="QS", start="1990-01-01")[0]
        s.name = f"s{k}"
        out.append(s)
    return out


def _signal_at(monkeypatch, when):
    """Send SIGINT after the ``when``-th Adam step (1-based, counted over the whole fit)."""
    step, count = torch.optim.Adam.step, [0]

    def counted(self, *a, **kw):
        out = step(self, *a, **kw)
        count[0] += 1
        if count[0] == when:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    return count


def _same_forecast(a, b):
    fa, fb = a.predict(levels=()), b.predict(levels=())
    assert list(fa.names) == list(fb.names) and len(fa.mean) == len(fb.mean) > 0
    assert all(np.array_equal(x, y) for x, y in zip(fa.mean, fb.mean))


def _same_esrnn(a, b):
    for x, y in ((a.net, b.net), (a.es, b.es)):
        sa, sb = x.state_dict(), y.state_dict()
        assert list(sa) == list(sb) and sa
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    _same_forecast(a, b)


@pytest.mark.parametrize("refit, phase", [(False, "select"), (True, "select"),
                                          (True, "refit")])
def test_an_esrnn_stopped_mid_training_continues_to_the_uninterrupted_model(
        tmp_path, monkeypatch, refit, phase):
    """Stopped in the selection (step 7 or 12 of 30) or half-way through the refit (after the
    selection's 30 steps)."""
    data = _series()
    cfg = ESRNNConfig(**{**CFG, "num_layers": 2, "dropout": 0.2}, refit=refit)  # draws masks
    reference = ESRNN(cfg).fit(data)
    when = {"select": 12 if refit else 7,
            "refit": 30 + max(1, reference.history["best_step"] // 2)}[phase]
    path = tmp_path / "es.progress"
    count = _signal_at(monkeypatch, when)
    with pytest.raises(TrainingInterrupted) as err:
        ESRNN(cfg).fit(data, progress=path)
    assert count[0] == when and err.value.checkpoint == str(path) and path.exists()
    assert "training loop of esrnn" in str(err.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    monkeypatch.undo()
    steps = _signal_at(monkeypatch, 0)  # counts only
    resumed = ESRNN(cfg).fit(data, progress=path)
    total = 30 + (reference.history["best_step"] if refit else 0)
    assert steps[0] == total - when  # only the steps not done before the stop
    _same_esrnn(reference, resumed)
    assert resumed.history["best_step"] == reference.history["best_step"]
    assert resumed.history["val_curve"] == reference.history["val_curve"]


@pytest.mark.parametrize("at", ["before", "at"])
def test_a_stop_at_the_step_early_stopping_ends_resumes_to_the_same_model(
        tmp_path, monkeypatch, at):
    """Patience 1: training ends at the first evaluation without improvement. A signal at that
    step (or the one before) is kept, and the resumed fit trains no step beyond it."""
    data = _series()
    cfg = ESRNNConfig(**{**CFG, "max_steps": 80, "eval_every": 2, "patience": 1})
    reference = ESRNN(cfg).fit(data)
    end = reference.history["val_curve"][-1][0]
    assert end < 80, "early stopping did not end the fit: the case is not exercised"
    when = end - (at == "before")
    path = tmp_path / "es.progress"
    _signal_at(monkeypatch, when)
    with pytest.raises(TrainingInterrupted):
        ESRNN(cfg).fit(data, progress=path)
    monkeypatch.undo()
    steps = _signal_at(monkeypatch, 0)
    resumed = ESRNN(cfg).fit(data, progress=path)
    assert steps[0] == end - when
    _same_esrnn(reference, resumed)
    assert resumed.history["val_curve"] == reference.history["val_curve"]


def test_a_progress_file_of_other_settings_or_data_is_refused(tmp_path, monkeypatch):
    data, path = _series(), tmp_path / "es.progress"
    _signal_at(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        ESRNN(ESRNNConfig(**CFG)).fit(data, progress=path)
    monkeypatch.undo()
    with pytest.raises(ProgressMismatch, match="hidden_size was 6, now 7"):
        ESRNN(ESRNNConfig(**{**CFG, "hidden_size": 7})).fit(data, progress=path)
    good = path.read_bytes()
    blob = read_state(path, KIND, version=1)
    del blob["units"]["esrnn#loop"]["state"]["opt"]  # a damaged loop state: named, no KeyError
    write_state(blob, path, KIND, 1)
    with pytest.raises(ValueError, match="damaged ES-RNN training state"):
        ESRNN(ESRNNConfig(**CFG)).fit(data, progress=path)
    path.write_bytes(good)
    with pytest.raises(ProgressMismatch, match="the data differ"):
        ESRNN(ESRNNConfig(**CFG)).fit(_series(seed=SEED + 1), progress=path)


def test_factory_members_and_float64_values_are_part_of_the_fingerprint(tmp_path,
                                                                       monkeypatch):
    """A combination of factories is described by what they make, and the data by their exact
    values: a changed factory, or a value changed below float32 precision, is refused."""
    data, path = _series(), tmp_path / "comb.progress"

    def comb(season):
        return ForecastCombination({"ets": lambda: ETS(season=season, horizon=4),
                                    "naive": lambda: ETS(season=1, horizon=4)},
                                   validation_windows=1, season=4, horizon=4)

    comb(4).fit(data, progress=path)  # finished: the file holds every member

    def refused(self, *a, **kw):
        raise AssertionError("a member kept in the progress file was fitted again")

    monkeypatch.setattr(ETS, "fit", refused)
    again = comb(4).fit(data, progress=path)  # the same fit reloads them, fitting nothing
    monkeypatch.undo()
    _same_forecast(again, comb(4).fit(data))
    with pytest.raises(ProgressMismatch, match="members"):
        comb(2).fit(data, progress=path)
    s0 = data[0]
    target = s0.target.copy()
    target[5, 0] = float(np.float32(target[5, 0])) + 1e-9  # the same float32, another value
    assert np.float32(target[5, 0]) == np.float32(s0.target[5, 0])
    assert target[5, 0] != s0.target[5, 0]
    other = [type(s0)(s0.name, s0.time, target, s0.past, s0.future, s0.freq,
                      s0.target_names), *data[1:]]
    with pytest.raises(ProgressMismatch, match="the data differ"):
        comb(4).fit(other, progress=path)


def _comb(seeds=1):
    rnn = (ESRNN(ESRNNConfig(**CFG)) if seeds == 1 else
           ForecastCombination({f"seed{k}": ESRNN(ESRNNConfig(**CFG), seed=k)
                                for k in range(seeds)}, method="mean", validation_windows=0,
                               season=4, horizon=4))
    return ForecastCombination({"esrnn": rnn, "ets": ETS(season=4, horizon=4)},
                               validation_windows=2, season=4, horizon=4, refit=False)


@pytest.mark.parametrize("seeds, when", [(1, 10), (1, 45),
                                         pytest.param(2, 50, marks=pytest.mark.slow), (2, 95)])
def test_a_combination_stopped_anywhere_continues_to_the_uninterrupted_one(
        tmp_path, monkeypatch, seeds, when):
    """ES-RNN steps 1-30 (x seeds) validate, the next 30 (x seeds) refit; ``when`` stops in
    the validation fit or the final fit, of the first or the second seed."""
    data = _series()
    reference = _comb(seeds).fit(data)
    path = tmp_path / "comb.progress"
    _signal_at(monkeypatch, when)
    with pytest.raises(TrainingInterrupted) as err:
        _comb(seeds).fit(data, progress=path)
    assert err.value.checkpoint == str(path)
    monkeypatch.undo()
    steps = _signal_at(monkeypatch, 0)
    resumed = _comb(seeds).fit(data, progress=path)
    assert steps[0] == 60 * seeds - when
    pd.testing.assert_frame_equal(resumed.weights_, reference.weights_)
    pd.testing.assert_frame_equal(resumed.errors_, reference.errors_)
    _same_forecast(resumed, reference)
    with pytest.raises(ProgressMismatch, match="members"):
        ForecastCombination({"ets": ETS(season=4, horizon=4)}, validation_windows=2, season=4,
                            horizon=4, refit=False).fit(data, progress=path)


def test_cli_ctrl_c_saves_says_how_to_resume_and_resumes(tmp_path, monkeypatch, capsys):
    rows = [{"id": s.name, "time": t, "y": v} for s in _series() for t, v in
            zip(s.time, s.target[:, 0])]
    csv = tmp_path / "q.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "m.pt"
    argv = ["forecast", "train", "--csv", str(csv), "--time", "time", "--target", "y",
            "--series", "id", "--model", "esrnn", "--horizon", "4", "--input-len", "8",
            "--hidden-size", "6", "--model.num_layers", "1", "--steps", "30",
            "--eval-every", "5", "--out", str(out)]
    assert main(argv + ["--out", str(tmp_path / "ref.pt")]) == 0
    capsys.readouterr()
    _signal_at(monkeypatch, 9)
    assert main(argv) == 130
    err = capsys.readouterr().err
    progress = f"{out}.progress"
    assert os.path.exists(progress) and not out.exists() and progress in err
    assert "resume with: rnnkit forecast train" in err and "--resume" in err
    with pytest.raises(ValueError, match="interrupted forecast fit.*--resume"):
        rnnkit.load(progress)  # not a model: the error says what it is and what to do
    monkeypatch.undo()
    code = main(argv)  # neither --resume nor --overwrite: the file is not thrown away
    err = capsys.readouterr().err
    assert code == 2 and "--resume" in err and "--overwrite" in err and \
        os.path.exists(progress)
    code = main([*argv, "--hidden-size", "7", "--resume"])  # another run's flags
    err = capsys.readouterr().err
    assert code == 2 and "--hidden-size was 6, now 7" in err and "--overwrite" in err
    assert main(argv + ["--resume"]) == 0
    assert not os.path.exists(progress)  # spent: the model is saved
    _same_esrnn(ESRNN.load(out), ESRNN.load(tmp_path / "ref.pt"))
    code = main(argv + ["--out", str(tmp_path / "new.pt"), "--resume"])  # nothing to resume
    assert code == 2 and "no interrupted run" in capsys.readouterr().err


def _csv(tmp_path):
    rows = [{"id": s.name, "time": t, "y": v} for s in _series() for t, v in
            zip(s.time, s.target[:, 0])]
    csv = tmp_path / "q.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


@pytest.mark.slow
def test_cli_comb_resume_names_changed_flags_and_keeps_the_file_on_a_refused_command(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an older model")  # replaced with --overwrite, by the run and its resume
    argv = ["forecast", "train", "--csv", str(_csv(tmp_path)), "--time", "time", "--target",
            "y", "--series", "id", "--model", "comb", "--horizon", "4", "--input-len", "8",
            "--hidden-size", "6", "--model.num_layers", "1", "--steps", "30",
            "--eval-every", "5", "--out", str(out)]
    _signal_at(monkeypatch, 9)
    assert main(argv + ["--overwrite"]) == 130
    err = capsys.readouterr().err
    progress = f"{out}.progress"
    assert os.path.exists(progress) and out.read_bytes() == b"an older model"
    assert "resume with:" in err and "--overwrite" not in err.split("resume with:")[1]
    monkeypatch.undo()
    for flags, words in ((["--combine", "mean"], "--combine was 'inverse_error', now 'mean'"),
                         (["--hidden-size", "7"], "--hidden-size was 6, now 7"),
                         (["--ensemble", "2"], "--model or --ensemble differ")):
        assert main([*argv, *flags, "--resume"]) == 2
        err = capsys.readouterr().err
        assert words in err and "--overwrite" in err and "Traceback" not in err, err
    # a command refused for a flag keeps the interrupted run, even with --overwrite
    assert main([*argv, "--overwrite", "--search", "input_len=4,8"]) == 2
    assert "--search" in capsys.readouterr().err and os.path.exists(progress)
    assert main(argv + ["--resume"]) == 0  # --out exists: the resumed run may replace it
    assert not os.path.exists(progress) and out.read_bytes() != b"an older model"
    assert "combination weights" in capsys.readouterr().out
