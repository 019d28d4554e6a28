"""`rnnkit classify train / predict` on series files, end to end."""

import json
import math
import os

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.series.classifier import SeriesClassifier
from rnnkit.series.files import read_series_file


def _write_ts(path, n, seed, labelled=True):
    """Two classes: one or three sine periods, random phase and noise, 16 steps."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName Waves", "@univariate true", "@classLabel "
             + ("true slow fast" if labelled else "false"), "@data"]
    t = np.linspace(0, 2 * math.pi, 16)
    for i in range(n):
        k = 3 if i % 2 else 1
        s = np.sin(k * t + rng.uniform(0, 2 * math.pi)) + rng.normal(0, 0.1, 16)
        lines.append(",".join(f"{v:.4f}" for v in s)
                     + (f":{'fast' if i % 2 else 'slow'}" if labelled else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    data = _write_ts(d / "W_TRAIN.ts", 32, seed=1)
    rc = main(["classify", "train", "--data", data, "--out-dir", str(d / "run"),
               "--models", "fcn,gru-fcn", "--shuffle", "on", "--cv-folds", "2",
               "--epochs", "10", "--lr", "0.01", "--batch-size", "8",
               "--series.width", "0.125", "--series.ensemble", "2",
               "--series.min_steps", "1"])
    assert rc == 0
    return d


def test_train_then_predict_prints_labels_and_accuracy(trained, capsys):
    assert os.path.isfile(trained / "run" / "best.pt")
    test = _write_ts(trained / "W_TEST.ts", 20, seed=2)
    capsys.readouterr()
    assert main(["classify", "predict", str(trained / "run" / "best.pt"), "--data", test]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["series"] for r in rows[:-1]] == list(range(1, 21))
    for r in rows[:-1]:
        assert set(r["probabilities"]) == {"slow", "fast"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    hits = sum(r["label"] == r["true"] for r in rows[:-1])
    assert rows[-1] == {"accuracy": pytest.approx(hits / 20, abs=1e-6), "correct": hits,
                        "series": 20}
    assert hits >= 17
    # the CLI and the library agree; the settings given as flags reached the model
    clf = SeriesClassifier.load(trained / "run" / "best.pt")
    assert (clf.config.epochs, clf.config.lr, clf.config.batch_size) == (10, 0.01, 8)
    assert len(clf.nets) == 2 * len(clf.members)  # 2 seeds per kept recipe
    assert clf.members == [(m["model"], m["shuffle"], m["epochs"])
                           for m in clf.recipe["members"]]
    probs = clf.predict_proba(read_series_file(test).series)
    assert probs[0, clf.classes.index("fast")].item() == pytest.approx(
        rows[0]["probabilities"]["fast"], abs=1e-4)


def test_unlabelled_file_prints_no_accuracy(trained, capsys):
    test = _write_ts(trained / "U.ts", 3, seed=3, labelled=False)
    capsys.readouterr()
    assert main(["classify", "predict", str(trained / "run" / "best.pt"), "--data", test]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 3 and all("true" not in r and "label" in r for r in rows)


def test_bad_series_input_is_reported_in_flag_words(trained, tmp_path, capsys):
    run = str(trained / "run" / "best.pt")
    reg = tmp_path / "R_TRAIN.ts"
    reg.write_text("@problemName R\n@targetLabel true\n@data\n1,2,3:0.5\n", encoding="utf-8")
    assert main(["classify", "train", "--data", str(reg), "--out-dir", str(tmp_path / "o")]) == 2
    assert (f"--data {reg}: R is a regression archive (@targetlabel true); rnnkit classify "
            f"needs class labels") in capsys.readouterr().err
    bad = tmp_path / "bad.ts"
    bad.write_text("@classLabel true a b\n@data\n1,zz,3:a\n", encoding="utf-8")
    assert main(["classify", "predict", run, "--data", str(bad)]) == 2
    assert f"--data {bad}: line 3: channel 1: value 2 is 'zz'" in capsys.readouterr().err
    assert main(["classify", "predict", run, "a text"]) == 2
    assert "is a series classifier; give the series with --data" in capsys.readouterr().err
    unl = _write_ts(tmp_path / "U.ts", 4, seed=0, labelled=False)
    assert main(["classify", "train", "--data", unl, "--out-dir", str(tmp_path / "u")]) == 2
    assert "no class labels" in capsys.readouterr().err
    assert main(["classify", "train", "--data", unl, "--out-dir", str(tmp_path / "u"),
                 "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_tsv_series_file_is_not_taken_for_text(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [f"{i % 2}\t" + "\t".join(f"{v:.3f}" for v in rng.normal(i % 2, 1, 8))
            for i in range(12)]
    path = tmp_path / "S_TRAIN.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rc = main(["classify", "train", "--data", str(path), "--out-dir", str(tmp_path / "run"),
               "--models", "fcn", "--cv-folds", "1", "--epochs", "1", "--series.width", "0.125",
               "--series.ensemble", "1", "--series.min_steps", "1", "--hidden", "8"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "trained on 12 series (1 channel(s))" in captured.out
    assert "--hidden: text-model options; ignored for a series file" in captured.err


def test_toml_config_with_a_series_table(tmp_path, capsys):
    data = _write_ts(tmp_path / "T_TRAIN.ts", 12, seed=5)
    cfg = tmp_path / "series.toml"
    cfg.write_text(f'[data]\npath = "{data}"\n[train]\nepochs = 2\n'
                   f'[series]\nmodels = "fcn"\nwidth = 0.125\ncv_folds = 1\nensemble = 1\n'
                   f'min_steps = 1\n',
                   encoding="utf-8")
    rc = main(["classify", "train", "--config", str(cfg), "--out-dir", str(tmp_path / "run")])
    assert rc == 0, capsys.readouterr().err
    clf = SeriesClassifier.load(tmp_path / "run" / "best.pt")
    assert (clf.config.epochs, clf.config.width, clf.recipe["model"]) == (2, 0.125, "fcn")


def test_a_model_whose_classes_were_read_as_floats_still_scores_its_csv(tmp_path, capsys):
    """Labels "1.0"/"2.0" are read as "1"/"2" now; a model trained when they stayed "1.0" and
    "2.0" (or fit on such strings) must still count its hits on that file."""
    import torch

    from rnnkit.series.classifier import SeriesClassifier
    from rnnkit.series.config import SeriesClassifierConfig

    gen = np.random.default_rng(int(torch.randint(10**6, ())))
    ys = [1.0 + i % 2 for i in range(24)]
    xs = [gen.normal(0, 0.3, 10) + (2 if y == 2 else -2) for y in ys]
    clf = SeriesClassifier(SeriesClassifierConfig(models="fcn", width=0.125, epochs=10,
                                                  min_steps=1, cv_folds=1, ensemble=1))
    clf.fit([x[:, None] for x in xs], [str(y) for y in ys])  # classes "1.0", "2.0"
    clf.save(tmp_path / "m.pt")
    csv = tmp_path / "t.csv"
    csv.write_text("".join(f"{y}," + ",".join(f"{v:.4f}" for v in x) + "\n"
                           for x, y in zip(xs, ys)))
    capsys.readouterr()
    assert main(["classify", "predict", str(tmp_path / "m.pt"), "--data", str(csv)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert {r["true"] for r in rows[:-1]} == {"1", "2"} and "not in the training" not in err
    assert rows[-1]["correct"] == sum(r["label"] == f"{r['true']}.0" for r in rows[:-1]) >= 22
