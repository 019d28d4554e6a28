"""`rnnkit audit data / model / report / compare` and `--compute` end to end."""

from __future__ import annotations

import json
import random

import pytest

from rnnkit.cli import main

MALE, FEMALE = ["John", "Paul", "Mike", "Kevin"], ["Amy", "Joan", "Lisa", "Sarah"]
FILLER = ["the", "a", "film", "plot", "movie", "cast", "was", "is", "today"]
POS, NEG = ["good", "great", "lovely"], ["bad", "awful", "dull"]


def write_biased(path, n=300, seed=None):
    """Labels decided by the first name's gender: a classifier learns the name."""
    rng = random.Random(seed if seed is not None else random.randrange(10**6))
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            name = rng.choice(MALE if label == "pos" else FEMALE)
            words = rng.sample(FILLER, rng.randint(2, 5))
            words.insert(rng.randint(0, len(words)), name)
            f.write(f"{label}\t{' '.join(words)}\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    write_biased(d / "train.tsv", 400)
    write_biased(d / "test.tsv", 200)
    rc = main(["classify", "train", "--data", str(d / "train.tsv"), "--out-dir", str(d / "run"),
               "--epochs", "5", "--embed", "16", "--hidden", "16", "--lr", "0.01",
               "--dropout", "0.0", "--no-progress"])
    assert rc == 0
    return d


def test_audit_data_flags_a_planted_association(run, capsys, tmp_path):
    out = tmp_path / "data.json"
    assert main(["audit", "data", str(run / "train.tsv"), "--format", "labelled",
                 "--lists", "names_gender", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "names_gender" in text and "**flag**" in text
    report = json.loads(out.read_text())
    assert report["n_texts"] == 400


def test_audit_model_finds_the_name_bias_and_updates_the_card(run, capsys):
    rc = main(["audit", "model", str(run / "run"), "--data", str(run / "test.tsv"),
               "--lists", "names_gender,gender", "--bootstrap", "100"])
    assert rc == 0
    captured = capsys.readouterr()
    audit = json.loads((run / "run" / "audit.json").read_text())
    probe = audit["counterfactual"]["names_gender"]
    assert probe["n_applicable"] == 200  # every test text has one name
    assert probe["flip_rate"] > 0.5 and probe["flip_rate_ci"][0] > 0.5
    assert "gender" in audit["counterfactual"]  # no gender words: nothing applicable
    assert audit["counterfactual"]["gender"]["n_applicable"] == 0
    groups = audit["groups"]["names_gender"]["by_group"]
    assert set(groups) == {"male", "female"}
    # the selection rate of "pos" by group follows the planted labels
    assert groups["male"]["selection_rate"] > 0.9 > 0.1 > groups["female"]["selection_rate"]
    assert set(audit["robustness"]) >= {"typo", "lowercase", "whitespace"}
    card = (run / "run" / "model_card.md").read_text()
    assert "names_gender" in card and "flip rate" in card
    assert "wrote" in captured.out


def test_audit_model_refuses_what_it_cannot_audit(run, capsys):
    assert main(["audit", "model", str(run / "run"), "--data", str(run / "test.tsv"),
                 "--scorer", str(run / "run" / "best.pt")]) == 2
    assert "--scorer is for language models" in capsys.readouterr().err
    assert main(["audit", "model", str(run / "run"), "--data", str(run / "test.tsv"),
                 "--lists", "religion"]) == 2
    assert "no swappable word list" in capsys.readouterr().err
    bad = run / "other.tsv"
    bad.write_text("spam\tJohn was here\nham\tAmy was there\n" * 3)
    assert main(["audit", "model", str(run / "run"), "--data", str(bad)]) == 2
    assert "not classes of the model" in capsys.readouterr().err


def test_audit_report_writes_card_and_figures(run, capsys, tmp_path):
    assert main(["audit", "report", str(run / "run"), "--out-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    card = lines[0].split(": ", 1)[1]
    figures = [line.split(": ", 1)[1] for line in lines[1:]]
    assert card.endswith("model_card.md") and figures
    text = open(card, encoding="utf-8").read()
    for fig in figures:
        assert open(fig, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert fig.rsplit("/", 1)[-1] in text


def test_predict_compute_line(run, capsys):
    assert main(["classify", "predict", str(run / "run" / "best.pt"), "John was here",
                 "Amy was here", "--compute"]) == 0
    err = capsys.readouterr().err
    assert "compute:" in err and "per text" in err
    assert "estimated (" in err or "measured (" in err


def test_audit_series_coverage(tmp_path, capsys):
    rng = random.Random()
    rows = ["date,value,forecast"] + [
        f"2020-{m:02d}-{d:02d},{'' if rng.random() < 0.2 else rng.random()},{m / 2}"
        for m in (1, 2) for d in range(1, 29)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    missing = sum(",," in r for r in rows[1:])
    assert main(["audit", "data", str(tmp_path / "s.csv"), "--column", "value", "--time",
                 "date", "--segments", "month", "--predictions", "forecast"]) == 0
    text = capsys.readouterr().out
    assert "2020-01" in text and "2020-02" in text and f"{missing} missing" in text
    assert "MAE" in text or "mae" in text
    assert main(["audit", "data", str(tmp_path / "s.csv"), "--column", "value"]) == 2
    assert "--time" in capsys.readouterr().err


def test_audit_compare_two_cells(tmp_path, capsys):
    text = tmp_path / "t.txt"
    rng = random.Random()
    text.write_text(" ".join(rng.choice(FILLER + POS + NEG) for _ in range(6000)))
    argv = ["audit", "compare", str(text), "--cells", "gru,mingru", "--max-time", "3",
            "--out-dir", str(tmp_path / "cmp"),
            "--train-flags", "--hidden 16 --embed 8 --train.progress false --bptt 32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["name"] for r in rows] == ["gru", "mingru"]
    from rnnkit.text.language_model import load_language_model

    whole = text.read_text()
    tail = whole[int(len(whole) * 0.9):]
    assert (tmp_path / "cmp" / "train.txt").read_text() == whole[:int(len(whole) * 0.9)]
    for r in rows:  # the row scores best.pt on the held-out tail, which training never read
        assert r["compute"]["flops_total"] > 0 and r["metric"] == "test bits/char"
        lm = load_language_model(str(tmp_path / "cmp" / r["name"] / "best.pt"))
        assert r["quality"] == pytest.approx(lm.evaluate_text(tail)["bits_per_char"])
    assert (tmp_path / "cmp" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "| gru |" in out and "Pareto" in out
    assert main(argv) == 2  # the runs are there: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv[:4], "gru,nosuchcell", *argv[5:]]) == 2
    assert "nosuchcell" in capsys.readouterr().err


def test_audit_language_model_through_a_scorer(run, tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text((run / "train.tsv").read_text().replace("pos\t", "").replace("neg\t", ""))
    assert main(["train", "text", "--data", str(text), "--out-dir", str(tmp_path / "lm"),
                 "--max-steps", "20", "--hidden", "16", "--embed", "8", "--bptt", "16",
                 "--train.progress", "false", "--sample.every_s", "0"]) == 0
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("John said\nthe film was\nAmy said that she\n")
    assert main(["audit", "model", str(tmp_path / "lm"), "--data", str(prompts),
                 "--scorer", str(run / "run" / "best.pt"), "--length", "12",
                 "--bootstrap", "50", "--lists", "names_gender,gender"]) == 0
    audit = json.loads((tmp_path / "lm" / "audit.json").read_text())
    assert audit["counterfactual"]["names_gender"]["n_applicable"] == 2
    assert audit["counterfactual"]["gender"]["n_applicable"] == 1  # "she"
    assert "groups" not in audit and audit["scorer"].endswith("best.pt")
    capsys.readouterr()
    assert main(["audit", "model", str(tmp_path / "lm"), "--data", str(prompts)]) == 2
    assert "--scorer" in capsys.readouterr().err


def test_audit_speech_by_speaker_and_group(tmp_path, capsys):
    import jiwer
    import numpy as np
    import soundfile as sf

    from rnnkit.speech.recognizer import SpeechRecognizer
    from rnnkit.speech.tts import read_manifest

    rng = np.random.default_rng()
    lines = []
    for i in range(8):
        t = np.arange(int(16000 * rng.uniform(0.3, 0.6))) / 16000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.01 * rng.standard_normal(
            t.size)
        sf.write(tmp_path / f"u{i}.wav", wave.astype(np.float32), 16000)
        text = " ".join(rng.choice(["ab", "ba", "a", "b"], size=rng.integers(1, 4)))
        lines.append(f"u{i}.wav\t{text}\t{['en-us+f3', 'en-us+m3', 'slt', 'rms'][i % 4]}")
    (tmp_path / "manifest.tsv").write_text("\n".join(lines) + "\n")
    model = tmp_path / "asr.pt"
    assert main(["speech", "train", "--data", str(tmp_path), "--out", str(model),
                 "--hidden-size", "8", "--layers", "1", "--model.channels", "2",
                 "--model.n_mels", "24", "--batch-size", "2", "--no-progress",
                 "--steps", "3"]) == 0
    assert main(["audit", "model", str(model), "--data", str(tmp_path / "manifest.tsv"),
                 "--bootstrap", "50"]) == 0
    audit = json.loads((tmp_path / "asr.pt.audit.json").read_text())
    rows = SpeechRecognizer.load(str(model)).evaluate(read_manifest(tmp_path / "manifest.tsv"))
    by_speaker = audit["groups"]["speaker"]["by_group"]
    assert set(by_speaker) == {"en-us+f3", "en-us+m3", "slt", "rms"}
    for speaker, stats in by_speaker.items():
        mine = [r for r, line in zip(rows.rows, lines) if line.endswith("\t" + speaker)]
        refs, hyps = [r["reference"] for r in mine], [r["hypothesis"] for r in mine]
        assert stats["n"] == 2
        assert stats["wer"] == pytest.approx(jiwer.wer(refs, hyps))
        assert stats["cer"] == pytest.approx(jiwer.cer(refs, hyps))
        assert stats["wer_ci"][0] <= stats["wer"] <= stats["wer_ci"][1]
    (tmp_path / "voices.tsv").write_text("en-us+f3\tfemale\nslt\tfemale\nen-us+m3\tmale\n")
    capsys.readouterr()
    assert main(["audit", "model", str(model), "--data", str(tmp_path / "manifest.tsv"),
                 "--groups", str(tmp_path / "voices.tsv")]) == 2
    assert "rms" in capsys.readouterr().err  # a speaker without a group is named
    (tmp_path / "voices.tsv").write_text("en-us+f3\tfemale\nslt\tfemale\nen-us+m3\tmale\n"
                                         "rms\tmale\n")
    assert main(["audit", "model", str(model), "--data", str(tmp_path / "manifest.tsv"),
                 "--groups", str(tmp_path / "voices.tsv"), "--bootstrap", "0"]) == 0
    groups = json.loads((tmp_path / "asr.pt.audit.json").read_text())["groups"]
    female = [r for r, line in zip(rows.rows, lines) if line.endswith(("f3", "slt"))]
    assert groups["speaker group"]["by_group"]["female"]["wer"] == pytest.approx(
        jiwer.wer([r["reference"] for r in female], [r["hypothesis"] for r in female]))
    assert "speaker group" in (tmp_path / "asr.pt.card.md").read_text()


def test_audit_forecaster_robustness_matches_the_library_scan(tmp_path):
    import numpy as np
    import pandas as pd

    from rnnkit.audit.probes import series_robustness
    from rnnkit.forecast.forecaster import Forecaster

    rng = np.random.default_rng()
    n = 160
    y = 10 + np.sin(np.arange(n) / 5) + 0.1 * rng.standard_normal(n)
    dates = pd.date_range("2020-01-01", periods=n, freq="D")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": y}).to_csv(tmp_path / "s.csv",
                                                                          index=False)
    model = tmp_path / "fc.pt"
    assert main(["forecast", "train", "--csv", str(tmp_path / "s.csv"), "--time", "date",
                 "--target", "value", "--hidden-size", "8", "--horizon", "4", "--input-len",
                 "12", "--steps", "20", "--out", str(model)]) == 0
    assert main(["audit", "model", str(model), "--data", str(tmp_path / "s.csv"),
                 "--limit", "30", "--bootstrap", "50", "--seed", "3"]) == 0
    audit = json.loads((tmp_path / "fc.pt.audit.json").read_text())
    assert audit["n"] == 30 and set(audit["robustness"]) == {"noise", "level_shift", "missing"}

    fc = Forecaster.load(str(model))  # the reference: the library scan over plain arrays
    starts = np.unique(np.linspace(0, n - 12, 30).round().astype(int))
    windows = np.stack([y[s:s + 12] for s in starts])[..., None]

    def predict(batch):
        return np.stack([fc.predict(history=pd.DataFrame({
            "date": dates[s:s + 12].strftime("%Y-%m-%d"), "value": w[:, 0]}), levels=[]).mean[0]
            for s, w in zip(starts, batch)])

    ref = series_robustness(predict, windows, seed=3, task="regression", n_boot=50,
                            batch_size=len(windows)).to_dict()["results"]
    for name, entry in audit["robustness"].items():
        assert entry["change_rate"] == pytest.approx(ref[name]["changed_rate"])
        assert entry["mean_change"] == pytest.approx(ref[name]["mean_change"], rel=1e-6)
