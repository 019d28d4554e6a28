"""`rnnkit train text / generate / evaluate / demo`: config mapping, end-to-end runs, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rnnkit.cli import build_parser, main
from rnnkit.commands.text import load_config
from rnnkit.text.language_model import load_language_model

PATTERN = "the cat sat on the mat.\n"


@pytest.mark.parametrize("argv", [[], ["train"], ["train", "text"], ["generate"],
                                  ["evaluate"], ["demo"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: rnnkit" in capsys.readouterr().out


def test_toml_then_flags_override_defaults(tmp_path):
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('[model]\nhidden_size = 32\ncell = "gru"\n[train]\nlr = 0.01\n'
                        '[data]\nbptt = 16\n', encoding="utf-8")
    cfg = load_config(str(cfg_file), {"model.hidden_size": 16, "train.epochs": 3})
    assert cfg["model"].hidden_size == 16 and cfg["model"].cell == "gru"
    assert cfg["train"].lr == 0.01 and cfg["train"].epochs == 3
    assert cfg["data"].bptt == 16 and cfg["data"].batch_size == 32  # default kept
    # the CLI flags (short and dotted) land on the same keys
    args = build_parser().parse_args(["train", "text", "--config", str(cfg_file), "--hidden",
                                      "24", "--model.num_layers", "3", "--max-time", "none",
                                      "--tie-weights", "false"])
    assert vars(args)["model.hidden_size"] == 24 and vars(args)["model.num_layers"] == 3
    assert vars(args)["train.max_time"] is None and vars(args)["model.tie_weights"] is False
    assert "model.dropout" not in vars(args)  # unset flags do not override the TOML file


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[modle]\nhidden_size = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown table \[modle\]"):
        load_config(str(bad), {})
    bad.write_text("[model]\nhidden = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown \[model\] option\(s\) hidden"):
        load_config(str(bad), {})
    bad.write_text("[model\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(str(bad), {})
    bad.write_text("model = 3\n", encoding="utf-8")  # a known table written as a key
    with pytest.raises(ValueError, match=r"model must be a table .*got model = 3"):
        load_config(str(bad), {})
    with pytest.raises(FileNotFoundError, match="--config"):
        load_config(str(tmp_path / "none.toml"), {})
    bad.write_text('[train]\noptimizer = "rmsprop"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        load_config(str(bad), {})


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["train", "text", "--max-steps", "1"]) == 2
    assert "pass --data FILE" in capsys.readouterr().err
    assert main(["train", "text", "--data", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["generate", str(junk)]) == 2
    assert "not a readable rnnkit checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "text", "--hidden", "many"])
    assert "--hidden/--model.hidden_size: expected int, got 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "text", "--tie-weights", "maybe"])
    assert "expected true or false" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # was a RuntimeError traceback from torch.set_num_threads
        main(["train", "text", "--threads", "-1"])
    assert "--threads: expected a number of threads >= 0" in capsys.readouterr().err
    assert main(["generate", str(junk), "--next", "-1"]) == 2  # before loading or generating
    assert "--next takes a number of tokens >= 0" in capsys.readouterr().err


def test_train_generate_evaluate_end_to_end(tmp_path, capsys):
    data = tmp_path / "pattern.txt"
    data.write_text(PATTERN * 150, encoding="utf-8")
    out = tmp_path / "run"
    rc = main(["train", "text", "--data", str(data), "--out-dir", str(out), "--cell", "lstm",
               "--hidden", "32", "--layers", "1", "--embed", "16", "--batch-size", "4",
               "--bptt", "32", "--lr", "0.03", "--max-steps", "80", "--eval-every", "40",
               "--train.progress", "false", "--sample.length", "10"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "checkpoint:" in printed and (out / "best.pt").exists()
    # the task it must solve: a deterministic 24-character cycle
    model = load_language_model(str(out / "best.pt"))
    assert model.evaluate_text(PATTERN * 4, batch_size=1)["loss"] < 0.1
    assert model.generate("the cat ", 15, temperature=0.0) == "sat on the mat."
    assert model.predict_next("the cat sat on the ", 1)[0][0] == "m"
    # generate: streamed, seeded, reproducible
    argv = ["generate", str(out / "best.pt"), "--prime", "the ", "--length", "30",
            "--seed", "3", "--temperature", "1.0", "--next", "2"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first and first.startswith("the ")
    assert "most likely next tokens" in first
    # evaluate prints what the library computes
    assert main(["evaluate", str(out / "best.pt"), "--data", str(data)]) == 0
    expected = model.evaluate_text(data.read_text(encoding="utf-8"))
    assert f"loss {expected['loss']:.4f} nats/token" in capsys.readouterr().out


def test_word_level_training_and_generation(tmp_path, capsys):
    data = tmp_path / "words.txt"
    words = "alpha beta gamma delta , epsilon zeta . ".split()
    g = torch.Generator().manual_seed(0)
    data.write_text(" ".join(words[int(i)] for i in torch.randint(0, len(words), (600,),
                                                                  generator=g)),
                    encoding="utf-8")
    out = tmp_path / "wrun"
    assert main(["train", "text", "--data", str(data), "--level", "word", "--out-dir",
                 str(out), "--hidden", "16", "--layers", "1", "--embed", "8", "--batch-size",
                 "4", "--bptt", "10", "--max-steps", "5", "--train.progress", "false"]) == 0
    capsys.readouterr()
    assert main(["generate", str(out / "last.pt"), "--prime", "alpha beta", "--length", "6",
                 "--seed", "0"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("alpha beta") and len(text.split()) == 8
    assert set(text.split()) <= set(words)


@pytest.mark.slow
def test_demo_quick_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "rnnkit", "demo", "--quick", "--out-dir",
                           str(out), "--progress", "false", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("best.pt", "last.pt", "curves.png", "samples.txt", "log.jsonl"):
        assert (out / name).exists(), name
    assert "sample at step" in proc.stdout and "rnnkit generate" in proc.stdout
    model = load_language_model(str(out / "best.pt"))
    # the quick demo is too short to write Python, but it must beat the uniform guess
    import math

    assert model.evaluate_text("def f(x):\n    return x\n" * 20)["loss"] < math.log(
        model.config.vocab_size)


def test_the_documented_toml_example_loads(tmp_path):
    import textwrap

    import rnnkit.commands.text as text_cmd

    doc = text_cmd.__doc__
    block = doc.split("::\n", 1)[1]
    example = tmp_path / "shakespeare.toml"
    example.write_text(textwrap.dedent(block), encoding="utf-8")
    cfg = load_config(str(example), {"train.lr": 3e-3})
    assert cfg["model"].hidden_size == 384 and cfg["data"].bptt == 64
    assert cfg["train"].max_time == 900 and cfg["train"].lr == 3e-3
    assert cfg["sample"].prime == "ROMEO:"
