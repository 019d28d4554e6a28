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
    out = str(tmp_path / "run")
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tfine film\nno tab on this line\n", encoding="utf-8")
    assert main(["classify", "train", "--data", str(bad), "--out-dir", out]) == 2
    assert "bad.tsv:2: expected 'label<TAB>text'" in capsys.readouterr().err
    one = tmp_path / "one.tsv"
    one.write_text("pos\tfine film\npos\tgood\n", encoding="utf-8")
    assert main(["classify", "train", "--data", str(one), "--out-dir", out]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["classify", "train", "--data", str(tmp_path / "nope.tsv"),
                 "--out-dir", out]) == 2
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
    assert "validation (best.pt, step 4) loss" in capsys.readouterr().out
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


def _tiny(data, out, *extra):
    return main(["classify", "train", "--data", str(data), "--out-dir", str(out), "--epochs",
                 "1", "--embed", "4", "--hidden", "4", "--batch-size", "20", "--no-progress",
                 *extra])


def test_swapped_extra_columns_and_header_lines(tmp_path, capsys):
    data = tmp_path / "data.tsv"
    _write_data(data, n=60, seed=3)
    rows = data.read_text(encoding="utf-8").splitlines()
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text("".join(f"{t}\t{lab}\n" for lab, t in (r.split("\t") for r in rows)),
                       encoding="utf-8")
    assert _tiny(swapped, tmp_path / "r1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "look swapped" in err and "'label<TAB>text'" in err
    extra = tmp_path / "extra.tsv"
    extra.write_text("\n".join([*rows[:2], rows[2] + "\t2019", *rows[3:]]), encoding="utf-8")
    assert _tiny(extra, tmp_path / "r2") == 2
    err = capsys.readouterr().err
    assert "extra.tsv:3: 3 tab-separated columns, expected 2 ('label<TAB>text')" in err
    header = tmp_path / "header.tsv"
    header.write_text("label\ttext\n" + "\n".join(rows), encoding="utf-8")
    assert _tiny(header, tmp_path / "r3") == 0
    captured = capsys.readouterr()
    assert "warning: " in captured.err and "header.tsv:1: skipped the header line" in captured.err
    assert "trained on 60 texts, classes ['neg', 'pos']" in captured.out


def test_predict_refuses_empty_text_and_warns_about_unknown_words(trained, capsys):
    ckpt = str(trained / "best.pt")
    capsys.readouterr()
    for empty in ("", "   "):
        assert main(["classify", "predict", ckpt, "a good film", empty]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == ("rnnkit classify: error: text 2 is empty; give the text to "
                                "classify in quotes, e.g. rnnkit classify predict CHECKPOINT "
                                "\"a gorgeous , witty film\"\n")
    assert main(["classify", "predict", ckpt, "zebra quagga okapi film", "a good film"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ("warning: text 1: 3 of 4 words (75%) are unknown to the model's "
                            "vocabulary; its output for it means little\n")
    assert len(captured.out.splitlines()) == 2  # the output still comes


def _subparser(*names):
    import argparse

    from rnnkit.cli import build_parser

    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action._name_parser_map[name]
    return parser


#: from rnnkit.commands.options.add_command_options, shared by every training command
SHARED_FLAGS = {"--help", "--config", "--no-progress"}


def test_every_train_flag_has_help_with_its_default():
    for names in (("classify", "train"), ("classify", "predict")):
        for action in _subparser(*names)._actions:
            if not action.option_strings or set(action.option_strings) & SHARED_FLAGS:
                continue
            assert action.help and "default" in action.help, (names, action.option_strings)
    helps = {a.dest: a.help for a in _subparser("classify", "train")._actions}
    assert helps["model.pooling"].startswith("how the outputs become one vector")
    assert "(default: 'max')" in helps["model.pooling"]


def test_out_dir_is_never_replaced_silently_resume_continues(tmp_path, capsys):
    import torch

    data = tmp_path / "data.tsv"
    _write_data(data, n=60, seed=4)
    out = tmp_path / "run"
    assert _tiny(data, out) == 0
    best = (out / "best.pt").read_bytes()
    capsys.readouterr()
    assert _tiny(data, out) == 2
    err = capsys.readouterr().err
    assert "--out-dir" in err and "pass --resume to continue it, --overwrite to replace it" in err
    assert (out / "best.pt").read_bytes() == best
    steps = torch.load(out / "last.pt", weights_only=True)["step"]
    # --resume continues from last.pt with the run's own settings; a changed model is refused
    assert _tiny(data, out, "--resume", "--epochs", "2", "--hidden", "9") == 2
    assert "trained with --hidden 4, but --hidden 9 is given" in capsys.readouterr().err
    assert _tiny(data, out, "--resume", "--epochs", "2", "--lr", "0.5") == 2
    assert "--change-settings" in capsys.readouterr().err
    assert _tiny(data, out, "--resume", "--epochs", "2", "--min-freq", "3") == 2
    assert "trained with --min-freq 1, but --min-freq 3 is given" in capsys.readouterr().err
    # a run trained with a non-default data setting resumes with it, without repeating it
    other = tmp_path / "other"
    assert _tiny(data, other, "--val-fraction", "0.3") == 0
    assert _tiny(data, other, "--resume", "--epochs", "2") == 0
    run = torch.load(other / "last.pt", weights_only=True)["extra_state"]["run"]
    assert run["data_config"]["val_fraction"] == 0.3
    assert _tiny(data, out, "--resume", "--epochs", "2") == 0
    ckpt = TextClassifier.from_checkpoint(str(out / "last.pt"))
    assert ckpt.model.config.hidden_size == 4
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2 * steps
    assert _tiny(data, out, "--overwrite", "--hidden", "5") == 0
    assert TextClassifier.from_checkpoint(str(out / "last.pt")).model.config.hidden_size == 5
    capsys.readouterr()
    assert _tiny(data, tmp_path / "new", "--resume") == 2
    assert "--resume: --out-dir" in capsys.readouterr().err
