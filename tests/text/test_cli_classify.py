"""`rnnkit classify train / predict` end to end on a small generated data set."""

import json
import os
import random

import pytest

from rnnkit.cli import main
from rnnkit.text.classifier import TextClassifier

POS, NEG = ["good", "great", "lovely", "superb"], ["bad", "awful", "dull", "poor"]
FILLER = ["the", "a", "film", "plot", "movie", "cast", "was", "is"]


def _write_data(path, n=400, seed=0):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            words = rng.sample(FILLER, rng.randint(2, 6))
            words.insert(rng.randint(0, len(words)), rng.choice(POS if label == "pos" else NEG))
            f.write(f"{label}\t{' '.join(words)}\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    data = d / "data.tsv"
    _write_data(data)
    rc = main(["classify", "train", "--data", str(data), "--out-dir", str(d / "run"),
               "--epochs", "6", "--embed", "16", "--hidden", "16", "--lr", "0.01",
               "--dropout", "0.1", "--embed-dropout", "0.0", "--no-progress"])
    assert rc == 0
    return d / "run"


def test_train_writes_checkpoints_and_predict_prints_probabilities(trained, capsys):
    assert os.path.isfile(trained / "best.pt") and os.path.isfile(trained / "last.pt")
    capsys.readouterr()
    texts = ["the film was superb", "a dull plot", "great cast", "the movie is awful"]
    assert main(["classify", "predict", str(trained / "best.pt"), *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["text"] for r in rows] == texts
    for r in rows:
        assert set(r["probabilities"]) == {"neg", "pos"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert [r["label"] for r in rows] == ["pos", "neg", "pos", "neg"]
    # the CLI and the library agree
    clf = TextClassifier.from_checkpoint(str(trained / "best.pt"))
    probs = clf.predict_proba(texts)
    assert probs[0, 1].item() == pytest.approx(rows[0]["probabilities"]["pos"], abs=1e-4)


def test_bad_data_and_checkpoints_give_clear_errors(tmp_path, trained, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tfine film\nno tab on this line\n", encoding="utf-8")
    assert main(["classify", "train", "--data", str(bad), "--out-dir", str(tmp_path)]) == 2
    assert "bad.tsv:2: expected 'label<TAB>text'" in capsys.readouterr().err
    one = tmp_path / "one.tsv"
    one.write_text("pos\tfine film\npos\tgood\n", encoding="utf-8")
    assert main(["classify", "train", "--data", str(one), "--out-dir", str(tmp_path)]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["classify", "train", "--data", str(tmp_path / "nope.tsv"),
                 "--out-dir", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert main(["classify", "predict", str(corrupt), "text"]) == 2
    assert "not a readable rnnkit checkpoint" in capsys.readouterr().err


def test_ppmi_embedding_init_starts_from_distributional_vectors(tmp_path, capsys):
    data = tmp_path / "data.tsv"
    _write_data(data, n=200, seed=1)
    rc = main(["classify", "train", "--data", str(data), "--out-dir", str(tmp_path / "run"),
               "--epochs", "1", "--embed", "4", "--hidden", "4", "--init", "ppmi",
               "--no-progress"])
    assert rc == 0
    assert "validation loss" in capsys.readouterr().out
    clf = TextClassifier.from_checkpoint(str(tmp_path / "run" / "last.pt"))
    assert clf.model.embed.weight[:4].abs().max() < 0.1  # specials start at zero
    assert main(["classify", "train", "--data", str(data), "--out-dir", str(tmp_path / "r2"),
                 "--embed", "64", "--init", "ppmi", "--epochs", "1", "--no-progress"]) == 2
    assert "smaller than" in capsys.readouterr().err


def test_toml_config_and_dotted_flags(tmp_path, capsys):
    data = tmp_path / "data.tsv"
    _write_data(data, n=120, seed=2)
    cfg = tmp_path / "clf.toml"
    cfg.write_text(f'[model]\nhidden_size = 5\npooling = "mean"\n\n[data]\npath = '
                   f'"{data.as_posix()}"\n\n[train]\nepochs = 1\nprogress = false\n',
                   encoding="utf-8")
    out = tmp_path / "run"
    assert main(["classify", "train", "--config", str(cfg), "--out-dir", str(out),
                 "--embed", "6", "--model.pooling", "last"]) == 0
    m = TextClassifier.from_checkpoint(str(out / "last.pt")).model.config
    assert (m.hidden_size, m.embed_size, m.pooling, m.dropout) == (5, 6, "last", 0.5)
    assert main(["classify", "train", "--data", str(data)]) == 2
    assert "--out-dir is required" in capsys.readouterr().err
