"""``train text`` / ``generate`` / ``evaluate`` never lose a model and never mislead: a run
folder is not replaced silently, Ctrl-C saves and prints the resume command, a resume refuses
changed settings, the reported validation number is the one ``best.pt`` was chosen by and
``evaluate`` reproduces it at any batch size, a time budget drives the recipe and the bar."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnkit.cli import main
from rnnkit.text.language_model import load_language_model

FAST = ["--hidden", "16", "--layers", "1", "--embed", "8", "--batch-size", "4", "--bptt",
        "16", "--lr", "0.02", "--train.progress", "false", "--sample.length", "5"]


@pytest.fixture
def corpus(tmp_path):
    g = torch.Generator().manual_seed(int(torch.randint(0, 10_000, ())))
    words = "the cat sat on a mat . a dog ran far away , and then home".split()
    body = " ".join(words[int(i)] for i in torch.randint(0, len(words), (1500,), generator=g))
    path = tmp_path / "corpus.txt"
    path.write_text(body, encoding="utf-8")
    return path


def _train(corpus, out, *extra):
    return main(["train", "text", "--data", str(corpus), "--out-dir", str(out), *FAST, *extra])


def test_a_run_folder_is_never_replaced_silently(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(corpus, out, "--max-steps", "6", "--eval-every", "3") == 0
    before = (out / "best.pt").read_bytes()
    capsys.readouterr()
    assert _train(corpus, out, "--max-steps", "2") == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert err.count("\n") == 1 and (out / "best.pt").read_bytes() == before
    # --resume and --overwrite are exclusive; --resume needs a run
    assert _train(corpus, out, "--resume", "--overwrite") == 2
    assert _train(corpus, tmp_path / "new", "--resume") == 2
    assert "does not exist" in capsys.readouterr().err
    # --overwrite replaces it, and a stale best.pt never survives as this run's
    assert _train(corpus, out, "--max-steps", "2", "--val-fraction", "0", "--overwrite") == 0
    assert not (out / "best.pt").exists()
    assert "no validation text" in capsys.readouterr().out


def test_resume_refuses_changed_model_data_and_training_settings(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(corpus, out, "--max-steps", "4") == 0
    capsys.readouterr()
    for flag, value, match in (("--hidden", "32", "--hidden 16, but --hidden 32"),
                               ("--batch-size", "8", "--batch-size 4, but --batch-size 8"),
                               ("--lr", "0.5", "--lr was 0.02 in this run and 0.5 is given")):
        argv = ["train", "text", "--data", str(corpus), "--out-dir", str(out), "--resume",
                "--max-steps", "8", flag, value]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert re.search(match, err), err
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text(encoding="utf-8") + " more", encoding="utf-8")
    assert main(["train", "text", "--data", str(other), "--out-dir", str(out), "--resume",
                 "--max-steps", "8"]) == 2
    assert "not the one this run was trained on" in capsys.readouterr().err
    # the run's own settings without repeating them; a training change with the flag, logged
    with pytest.warns(UserWarning, match="changed settings"):
        assert main(["train", "text", "--data", str(corpus), "--out-dir", str(out), "--resume",
                     "--max-steps", "8", "--lr", "0.01", "--change-settings",
                     "--train.progress", "false"]) == 0
    assert "resume: changing --lr 0.02 -> 0.01" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 8 and ckpt["config"]["lr"] == 0.01
    assert ckpt["extra_state"]["config"]["hidden_size"] == 16


def test_one_validation_number_and_evaluate_is_the_same_at_any_batch_size(corpus, tmp_path,
                                                                           capsys):
    out = tmp_path / "run"
    assert _train(corpus, out, "--max-steps", "12", "--eval-every", "4",
                  "--val-fraction", "0.2") == 0
    printed = capsys.readouterr().out
    reported = float(re.search(r"validation \(best.pt, step (\d+)\): loss ([\d.]+)",
                               printed).group(2))
    logged = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())
              if r["split"] == "val"]
    assert reported == pytest.approx(min(r["loss"] for r in logged), abs=1e-4)
    text = corpus.read_text(encoding="utf-8")
    val = tmp_path / "val.txt"
    val.write_text(text[len(text) - round(0.2 * len(text)):], encoding="utf-8")
    scores = []
    for batch in ("1", "64"):
        assert main(["evaluate", str(out / "best.pt"), "--data", str(val), "--batch-size",
                     batch]) == 0
        line = capsys.readouterr().out
        assert "one stream" in line
        scores.append(float(re.search(r"loss ([\d.]+)", line).group(1)))
    assert scores[0] == scores[1]  # the batch size changes nothing
    # the file alone lacks the text before the block, which training's validation reads as
    # context (test_vocabulary_comes_from_the_whole_file checks that number exactly)
    assert scores[0] == pytest.approx(reported, rel=0.01)


def test_ctrl_c_saves_says_how_to_resume_and_the_command_works(corpus, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "text", "--data", str(corpus), "--out-dir", str(out), *FAST,
            "--max-steps", "100000", "--eval-every", "20"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started once the first log record is written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    step = int(re.search(r"interrupted at step (\d+); saved (\S+)last.pt", err).group(1))
    assert torch.load(out / "last.pt", weights_only=True)["step"] == step
    again = shlex.split(re.search(r"resume with: rnnkit (.*)", err).group(1))
    assert again[-1] == "--resume" and again[:-1] == argv
    again[again.index("--max-steps") + 1] = str(step + 3)  # a shorter rest, for the test
    assert main(again) == 0
    assert torch.load(out / "last.pt", weights_only=True)["step"] == step + 3


def test_generate_survives_a_closed_pipe_and_ctrl_c(corpus, tmp_path):
    out = tmp_path / "run"
    assert _train(corpus, out, "--max-steps", "2") == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rnnkit", "generate", str(out / "last.pt"), "--length",
           "100000", "--seed", "0"]
    reader = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    reader.stdout.read(20)
    reader.stdout.close()  # as `| head -c 20` does
    err = reader.stderr.read().decode()
    reader.wait(timeout=60)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert reader.returncode == 141
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.read(20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()


def test_a_time_budget_picks_the_recipe_and_the_bar_counts_seconds(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "text", "--data", str(corpus), "--out-dir", str(out), "--max-time",
                 "4", "--hidden", "24", "--dropout", "0.05", "--train.progress", "true",
                 "--sample.length", "5"]) == 0
    captured = capsys.readouterr()
    recipe = re.search(r"recipe: 1x24 LSTM .*dropout 0.05,.*", captured.out)
    assert recipe, captured.out  # explicit settings win, and the line says what runs
    assert "cosine over the budget" in recipe.group(0)
    total = re.search(r"train \(time budget\).*?/(\d+) s", captured.err)
    assert total, captured.err[-500:]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["extra_state"]["run"]["schedule"] == "time_cosine"
    assert ckpt["config"]["max_time"] < 4  # the measurement is spent from the budget
    assert int(total.group(1)) == round(ckpt["config"]["max_time"])  # the bar's total
    assert ckpt["config"]["max_time"] <= ckpt["elapsed"] < 30  # the budget ended the run
    lrs = [r["lr"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())
           if r["split"] == "train"]
    assert lrs and lrs[-1] < max(lrs)  # the lr decayed over the budget


def test_wrong_values_and_wrong_files_name_the_fix(tmp_path, capsys):
    ckpt = tmp_path / "fc.pt"  # a forecaster's file given to `generate`
    torch.save({"format": "rnnkit.forecaster/1", "state": {}}, ckpt)
    assert main(["generate", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "rnnkit forecast predict" in err and "Trainer" not in err
    assert main(["generate", str(ckpt), "--temperature", "inf"]) == 2
    assert "finite number >= 0 (0 = greedy)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "0 = greedy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "text", "--help"])
    helps = capsys.readouterr().out
    assert "write nothing" not in helps and "(default: 'runs/text')" in helps


def test_model_loads_for_evaluation(corpus, tmp_path):
    out = tmp_path / "run"
    assert _train(corpus, out, "--max-steps", "3") == 0
    assert load_language_model(str(out / "best.pt")).config.hidden_size == 16


def test_demo_states_a_cap_on_user_data_and_an_explicit_thread_count_wins(tmp_path,
                                                                          monkeypatch):
    import rnnkit.text.generation as gen
    from rnnkit.text.generation import DemoConfig, run_demo

    seen = []
    monkeypatch.setattr(gen, "run_demo", lambda cfg: seen.append(cfg))
    monkeypatch.setattr("rnnkit.commands.text._default_threads", lambda: 1)  # "busy"
    threads = torch.get_num_threads()
    try:
        assert main(["--threads", "2", "demo", "--quick", "--out-dir", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    assert seen[-1].threads == 2  # the global flag is as explicit as demo's own
    assert main(["demo", "--quick", "--out-dir", str(tmp_path)]) == 0
    assert seen[-1].threads == 1
    monkeypatch.undo()
    data = tmp_path / "mine.txt"
    data.write_text("def f(x):\n    return x + 1\n" * 300, encoding="utf-8")
    printed: list[str] = []
    kw = dict(max_time=1.0, hidden_size=8, embed_size=4, eval_every=20, progress=False,
              data=str(data), threads=1)
    run_demo(DemoConfig.quick(out_dir=str(tmp_path / "a"), corpus_bytes=1000, **kw),
             out=printed.append)
    assert "(its first 1,000 bytes: --corpus-bytes)" in printed[0]
    printed.clear()
    run_demo(DemoConfig.quick(out_dir=str(tmp_path / "b"), **kw), out=printed.append)
    assert f"training a character LSTM on {data.stat().st_size:,} characters" in printed[0]
    assert "first" not in printed[0]
