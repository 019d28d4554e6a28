"""`rnnkit translate pairs / train / CHECKPOINT TEXT` end to end on a tiny run."""

import io
import os
import random

import pytest

from rnnkit.cli import main
from rnnkit.text.translation import Translator


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("num2words")
    d = tmp_path_factory.mktemp("tr")
    assert main(["translate", "pairs", "--n", "300", "--tgt", "fr",
                 "--out", str(d / "pairs.tsv")]) == 0
    rc = main(["translate", "train", "--pairs", str(d / "pairs.tsv"), "--out-dir",
               str(d / "run"), "--epochs", "2", "--embed", "8", "--hidden", "8",
               "--no-progress"])
    assert rc == 0
    return d


def test_pairs_file_is_disjoint_split_of_numbers(trained):
    lines = (trained / "pairs.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    src, tgt = zip(*(line.split("\t") for line in lines))
    assert len(set(src)) == 300 and all(t.strip() for t in tgt)


def test_translate_checkpoint_text_prints_translation_and_score(trained, capsys, tmp_path):
    ckpt = str(trained / "run" / "best.pt")
    capsys.readouterr()
    texts = ["twenty-one", "nine hundred and five"]
    png = tmp_path / "att.png"
    assert main(["translate", ckpt, *texts, "--beam", "3", "--heatmap", str(png)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"attention heatmap written to {png}\n"
    rows = [line.split("\t") for line in captured.out.strip().splitlines()]
    assert len(rows) == 2  # stdout: one line per text
    assert all(len(r) == 2 and r[1].startswith("log-prob/token ") for r in rows)
    scores = [float(r[1].split()[1]) for r in rows]
    assert all(s <= 0 for s in scores)
    with open(png, "rb") as f:
        assert f.read(4) == b"\x89PNG"
    # the CLI prints what the library computes from the same checkpoint
    lib = Translator.from_checkpoint(ckpt).translate(texts, beam_size=3)
    assert [r[0] for r in rows] == [t for t, _ in lib]
    assert scores == pytest.approx([s for _, s in lib], abs=1e-4)


def test_errors(trained, tmp_path, capsys):
    assert main(["translate"]) == 2
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\tun\njust one column\n", encoding="utf-8")
    out = str(tmp_path / "run")
    assert main(["translate", "train", "--pairs", str(bad), "--out-dir", out]) == 2
    assert "bad.tsv:2: expected 'source<TAB>target'" in capsys.readouterr().err
    bad.write_text("one\tun\ntwo\tdeux\tzwei\n", encoding="utf-8")
    assert main(["translate", "train", "--pairs", str(bad), "--out-dir", out]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit translate: error: {bad}:2: 3 tab-separated columns, expected 2 "
        f"('source<TAB>target'); remove the extra columns or the tabs inside the target\n")
    assert main(["translate", str(tmp_path / "missing.pt"), "one"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_run_subcommand_and_toml_config(trained, capsys, tmp_path):
    ckpt = str(trained / "run" / "best.pt")
    capsys.readouterr()
    assert main(["translate", ckpt, "twenty-one", "--beam", "2"]) == 0
    legacy = capsys.readouterr().out
    for action in ("run", "predict"):
        assert main(["translate", action, ckpt, "twenty-one", "--beam", "2"]) == 0
        assert capsys.readouterr().out == legacy
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[model]\nhidden_size = 6\nembed_size = 4\n\n[data]\npairs = '
                   f'"{(trained / "pairs.tsv").as_posix()}"\nbatch_size = 100\n\n'
                   f'[train]\nepochs = 1\nprogress = false\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["translate", "train", "--config", str(cfg), "--out-dir", str(out),
                 "--model.attention", "dot", "--input-feeding"]) == 0
    c = Translator.from_checkpoint(str(out / "last.pt")).model.config
    assert (c.hidden_size, c.embed_size, c.attention, c.input_feeding) == (6, 4, "dot", True)
    assert type(c).__name__ == "Seq2SeqConfig"
    cfg.write_text("[model]\nhidden = 6\n", encoding="utf-8")
    assert main(["translate", "train", "--config", str(cfg), "--pairs", "x.tsv",
                 "--out-dir", str(out)]) == 2
    assert "unknown [model] option(s) hidden" in capsys.readouterr().err
    assert main(["translate", "train", "--out-dir", str(out)]) == 2
    assert "--pairs is required" in capsys.readouterr().err


WORDS = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq",
         "six": "six", "seven": "sept", "eight": "huit"}


def _write_pairs(path, n=60, seed=0):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        src = rng.sample(sorted(WORDS), rng.randint(1, 3))
        lines.append(f"{' '.join(src)}\t{' '.join(WORDS[w] for w in src)}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _tiny(pairs, out, *extra):
    return main(["translate", "train", "--pairs", str(pairs), "--out-dir", str(out),
                 "--epochs", "1", "--embed", "4", "--hidden", "4", "--batch-size", "16",
                 "--train.warmup_steps", "0", "--no-progress", *extra])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    _write_pairs(d / "pairs.tsv")
    assert _tiny(d / "pairs.tsv", d / "run") == 0
    return d


def test_empty_input_is_refused_and_unknown_words_warned(tiny, capsys):
    ckpt = str(tiny / "run" / "last.pt")
    capsys.readouterr()
    for empty in ("", " \t "):
        assert main(["translate", ckpt, empty]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == ("rnnkit translate: error: text 1 is empty; give a sentence to "
                                "translate, e.g. rnnkit translate CHECKPOINT \"twenty-one\"\n")
    assert main(["translate", ckpt]) == 2
    assert "nothing to translate" in capsys.readouterr().err
    assert main(["translate", ckpt, "one zebra quagga", "two one"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ("warning: text 1: 2 of 3 words (67%) are unknown to the model's "
                            "vocabulary; its output for it means little\n")
    assert len(captured.out.splitlines()) == 2  # the output still comes
    assert main(["translate", ckpt, "two one", "--beam", "1"]) == 0
    assert capsys.readouterr().out.split("\t")[1].startswith("log-prob -")  # greedy: a sum


def test_input_file_gives_one_line_per_input_line(tiny, tmp_path, capsys, monkeypatch):
    ckpt = str(tiny / "run" / "last.pt")
    sentences = ["one two", "three", "four five six", "seven"]
    capsys.readouterr()
    assert main(["translate", ckpt, *sentences, "--beam", "2"]) == 0
    expected = capsys.readouterr().out
    src = tmp_path / "src.txt"
    src.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    assert main(["translate", ckpt, "--input", str(src), "--beam", "2", "--batch-size", "3"]) == 0
    assert capsys.readouterr().out == expected
    monkeypatch.setattr("sys.stdin", io.StringIO("\r\n".join(sentences)))
    assert main(["translate", "run", ckpt, "--input", "-", "--beam", "2"]) == 0
    assert capsys.readouterr().out == expected
    assert main(["translate", ckpt, "one", "--input", str(src)]) == 2
    assert "not both" in capsys.readouterr().err


def test_input_blank_lines_stay_blank_and_order_is_kept_across_batches(tiny, tmp_path, capsys):
    ckpt = str(tiny / "run" / "last.pt")
    rng = random.Random()  # fresh inputs each run
    lines = [" ".join(rng.sample(sorted(WORDS), rng.randint(1, 3))) if rng.random() < 0.7
             else rng.choice(["", "  "]) for _ in range(23)]
    lines[0], lines[-1] = "", "  "  # blank first and last lines too
    lines[5] = "one two"
    src = tmp_path / "src.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts = [line.strip() for line in lines if line.strip()]
    reference = Translator.from_checkpoint(ckpt).translate(texts, beam_size=2)
    capsys.readouterr()
    assert main(["translate", ckpt, "--input", str(src), "--beam", "2", "--batch-size",
                 "4"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out.pop() == "" and len(out) == len(lines)  # one line per input line
    got = iter(reference)
    for line, printed in zip(lines, out):
        if not line.strip():
            assert printed == ""
        else:
            text, score = next(got)
            assert printed.split("\t")[0] == text
            assert float(printed.split()[-1]) == pytest.approx(score, abs=1e-4)


def test_output_file_is_written_atomically_and_never_replaced_silently(tiny, tmp_path, capsys):
    ckpt = str(tiny / "run" / "last.pt")
    src = tmp_path / "src.txt"
    src.write_text("one two\n\nthree\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", ckpt, "--input", str(src), "--beam", "1"]) == 0
    expected = capsys.readouterr().out
    assert expected.split("\n")[1] == ""
    out = tmp_path / "fr.txt"
    assert main(["translate", ckpt, "--input", str(src), "--beam", "1", "--output",
                 str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and out.read_text(encoding="utf-8") == expected
    assert captured.err == f"wrote 3 lines (2 translations) to {out}\n"
    out.write_text("earlier work\n", encoding="utf-8")
    assert main(["translate", ckpt, "--input", str(src), "--output", str(out)]) == 2
    assert capsys.readouterr().err == (f"rnnkit translate: error: --output {out} exists; pass "
                                       f"--overwrite to replace it or choose another path\n")
    assert out.read_text(encoding="utf-8") == "earlier work\n"
    assert main(["translate", ckpt, "--input", str(src), "--beam", "1", "--output", str(out),
                 "--overwrite"]) == 0
    assert out.read_text(encoding="utf-8") == expected


def test_input_file_errors_name_the_flag(tiny, tmp_path, capsys, monkeypatch):
    ckpt = str(tiny / "run" / "last.pt")
    capsys.readouterr()
    missing = tmp_path / "nope.txt"
    assert main(["translate", ckpt, "--input", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rnnkit translate: error: --input {missing}: no such file; check "
                          f"the path")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("one\ncaf\u00e9 two\n".encode("latin-1"))
    assert main(["translate", ckpt, "--input", str(latin)]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit translate: error: --input {latin} is not UTF-8 text (byte 0xe9 on line 2); "
        f"convert it first, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8\n")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    assert main(["translate", ckpt, "--input", str(blank)]) == 2
    assert "holds no sentences" in capsys.readouterr().err
    assert main(["translate", ckpt, "--input", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err

    class Bytes(io.StringIO):
        buffer = io.BytesIO(b"one\n\xff\n")

    monkeypatch.setattr("sys.stdin", Bytes())
    assert main(["translate", ckpt, "--input", "-"]) == 2
    assert "--input - (stdin) is not UTF-8 text (byte 0xff on line 2)" in \
        capsys.readouterr().err


def test_heatmap_path_is_checked_before_any_work_and_leaves_no_temp_file(tiny, tmp_path,
                                                                          capsys, monkeypatch):
    ckpt = str(tiny / "run" / "last.pt")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", ckpt, "one two", "--heatmap", str(tmp_path / "file" / "a.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--heatmap" in captured.err and "is a file" in captured.err
    assert main(["translate", ckpt, "one two", "--heatmap", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    # a write that fails at the last moment leaves nothing behind
    from rnnkit import saving

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(saving.os, "replace", fail)
    out = tmp_path / "maps"
    assert main(["translate", ckpt, "one two", "--heatmap", str(out / "a.png")]) == 2
    assert "disk full" in capsys.readouterr().err
    assert os.listdir(out) == []
    monkeypatch.undo()
    assert main(["translate", ckpt, "one two", "--heatmap", str(out / "new" / "a.png")]) == 0
    assert sorted(os.listdir(out / "new")) == ["a.png"]


def _subparser(*names):
    import argparse

    from rnnkit.cli import build_parser

    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action._name_parser_map[name]
    return parser


def test_every_flag_has_help_with_its_default():
    shared = {"--help", "--config", "--no-progress", "--out"}  # --out: required, no default
    for names in (("translate", "train"), ("translate", "run"), ("translate", "pairs")):
        for action in _subparser(*names)._actions:
            if not action.option_strings or set(action.option_strings) & shared:
                continue
            assert action.help and "default" in action.help, (names, action.option_strings)
    helps = {a.dest: a.help for a in _subparser("translate", "train")._actions}
    assert helps["model.attention"].startswith('"general", "dot", "additive" or "none"')


def test_out_dir_is_never_replaced_silently_resume_continues(tiny, tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    assert _tiny(tiny / "pairs.tsv", out) == 0
    best = (out / "best.pt").read_bytes()
    capsys.readouterr()
    assert _tiny(tiny / "pairs.tsv", out) == 2
    assert "pass --resume to continue it, --overwrite to replace it" in capsys.readouterr().err
    assert (out / "best.pt").read_bytes() == best
    steps = torch.load(out / "last.pt", weights_only=True)["step"]
    # a changed model is refused, naming both values; the run's own settings continue it
    assert _tiny(tiny / "pairs.tsv", out, "--resume", "--epochs", "2", "--hidden", "7") == 2
    assert "trained with --hidden 4, but --hidden 7 is given" in capsys.readouterr().err
    assert _tiny(tiny / "pairs.tsv", out, "--resume", "--epochs", "2", "--level", "char") == 2
    assert "trained with --level 'word', but --level 'char' is given" in \
        capsys.readouterr().err
    assert _tiny(tiny / "pairs.tsv", out, "--resume", "--epochs", "2") == 0
    tr = Translator.from_checkpoint(str(out / "last.pt"))
    assert tr.model.config.hidden_size == 4 and tr.tgt_vocab.level == "word"
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2 * steps
    assert _tiny(tiny / "pairs.tsv", out, "--overwrite", "--hidden", "5") == 0
    assert Translator.from_checkpoint(str(out / "last.pt")).model.config.hidden_size == 5
    assert _tiny(tiny / "pairs.tsv", out, "--overwrite", "--resume") == 2
    assert "give one of them" in capsys.readouterr().err


# -- hostile settings: refused before any work, named by their flags ---------------------------

def test_pairs_out_is_never_replaced_silently(tmp_path, capsys):
    pytest.importorskip("num2words")
    out = tmp_path / "pairs.tsv"
    out.write_text("an earlier file\n", encoding="utf-8")
    assert main(["translate", "pairs", "--n", "5", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"rnnkit translate: error: --out {out} exists; pass "
                                       f"--overwrite to replace it or choose another path\n")
    assert out.read_text(encoding="utf-8") == "an earlier file\n"
    assert main(["translate", "pairs", "--n", "5", "--out", str(out), "--overwrite"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    assert main(["translate", "pairs", "--n", "5", "--out", str(out / "x.tsv")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["translate", "pairs", "--n", "5", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "--n must be between 1 and 800000 (the numbers a train split can hold), "
                   "got 0"),
    (["--n", "800001"], "--n must be between 1 and 800000"),   # was "asked for 1000001"
    (["--split", "valid", "--n", "100001"], "--n must be between 1 and 100000 (the numbers a "
                                            "valid split can hold), got 100001"),
    (["--src", "xx"], "argument --src: invalid choice: 'xx' (choose from 'en', 'fr'"),
    (["--tgt", "xx"], "argument --tgt: invalid choice: 'xx'"),
])
def test_pairs_settings_are_named_by_their_flags(tmp_path, capsys, argv, message):
    out = tmp_path / "p.tsv"
    code = None
    try:
        code = main(["translate", "pairs", "--out", str(out), *argv])
    except SystemExit as exit_:   # argparse's own usage error
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err and not out.exists()


def test_split_numbers_refuses_splits_it_cannot_fill():
    from rnnkit.data.numbers import split_capacity, split_numbers

    assert split_capacity("valid") == split_capacity("test") == 100_000
    assert len(split_numbers(1, 100_000, 1)["valid"]) == 100_000
    with pytest.raises(ValueError, match="n_test=100001 is more than the 100000 numbers"):
        split_numbers(1, 1, 100_001)   # used to come back with 100000, silently
    with pytest.raises(ValueError, match="n_train=800001 is more than the 800000 numbers"):
        split_numbers(800_001, 1, 1)


def test_splits_are_disjoint_whatever_the_sizes_asked_for():
    from rnnkit.data.numbers import numbers_in_split, split_capacity, split_key, split_numbers

    rng = random.Random()  # fresh sizes each run
    seed = rng.randrange(1000)
    sizes = {s: [rng.randint(1, split_capacity(s)) for _ in range(3)] + [1, 17]
             for s in ("train", "valid", "test")}
    seen = {s: set() for s in sizes}
    for split, ns in sizes.items():
        for n in ns:
            got = numbers_in_split(split, n, seed=seed)
            assert len(got) == len(set(got)) == n
            seen[split] |= set(got)
    assert not seen["train"] & seen["test"]
    assert not seen["train"] & seen["valid"]
    assert not seen["valid"] & seen["test"]
    # the reference: a number's split is read off its own key, ranked within its digit count
    for split in sizes:
        for x in rng.sample(sorted(seen[split]), 20):
            lo, hi = (0, 9) if x < 10 else (10 ** (len(str(x)) - 1), 10 ** len(str(x)) - 1)
            keys = split_key(range(lo, hi + 1), seed)
            rank = int((keys < split_key([x], seed)[0]).sum())
            cap = max(1, (hi - lo + 1) // 10)
            assert split == ("valid" if rank < cap else "test" if rank < 2 * cap else "train")
    # every digit count is represented, and split_numbers is numbers_in_split of each
    assert {len(str(x)) for x in numbers_in_split("test", 60, seed)} == {1, 2, 3, 4, 5, 6}
    both = split_numbers(500, 40, 60, seed=seed)
    assert both["test"] == numbers_in_split("test", 60, seed)


def test_pairs_test_split_never_meets_a_larger_train_split(tmp_path, capsys):
    """The issue's case: 580 of these 2,000 test sources used to be in the train file."""
    pytest.importorskip("num2words")
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    assert main(["translate", "pairs", "--n", "20000", "--split", "train", "--out",
                 str(train)]) == 0
    assert main(["translate", "pairs", "--n", "2000", "--split", "test", "--out",
                 str(test)]) == 0
    sources = [{line.split("\t")[0] for line in p.read_text(encoding="utf-8").splitlines()}
               for p in (train, test)]
    assert [len(s) for s in sources] == [20000, 2000]
    assert not sources[0] & sources[1]


@pytest.mark.parametrize("argv, message", [
    (["--max-len", "0"], "--max-len must be a positive number of target tokens, got 0"),
    (["--beam", "0"], "--beam must be between 1 (greedy) and 1000, got 0"),
    (["--beam", "1001"], "--beam must be between 1 (greedy) and 1000, got 1001"),
    (["--length-penalty", "inf"], "--length-penalty must be a number >= 0"),
    (["--max-len", "1000000000000"], "--max-len must be at most"),
])
def test_run_refuses_bad_and_absurd_decoding_settings(tiny, capsys, argv, message):
    ckpt = str(tiny / "run" / "last.pt")
    capsys.readouterr()
    assert main(["translate", ckpt, "one two", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_run_max_len_cap_comes_from_the_model(tiny, capsys):
    ckpt = str(tiny / "run" / "last.pt")
    own = Translator.from_checkpoint(ckpt).max_len
    capsys.readouterr()
    assert main(["translate", ckpt, "one two", "--max-len", str(10 * own + 1)]) == 2
    assert (f"--max-len must be at most {10 * own} (10 x the {own} tokens this model decodes "
            f"by default), got {10 * own + 1}") in capsys.readouterr().err
    assert main(["translate", ckpt, "one two", "--max-len", str(10 * own)]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--val-fraction", "1.5"], "--val-fraction must be in [0, 1)"),
    (["--level", "bogus"], "--level must be one of word, char; got 'bogus'"),
    (["--attention", "bogus"], "unknown --attention bogus; choose one of"),
    (["--teacher-forcing", "nan"], "--teacher-forcing is a probability in [0, 1]"),
    (["--embed", "0"], "--embed must be a positive integer, got 0"),
    (["--model.dec_layers", "0"], "--model.dec_layers must be a positive integer, got 0"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
])
def test_train_settings_are_refused_before_reading_the_pairs(tmp_path, capsys, argv, message):
    # a missing --pairs file shows the settings are checked first, and in the flags' words
    assert main(["translate", "train", "--pairs", str(tmp_path / "missing.tsv"), "--out-dir",
                 str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "run").exists()


def test_train_translator_refuses_a_val_fraction_that_leaves_nothing_to_train():
    from rnnkit.text.translation import train_translator

    pairs = [("one", "un"), ("two", "deux"), ("three", "trois")]
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        train_translator(pairs, val_fraction=1.5)
    with pytest.raises(ValueError, match="holds out 3 of the 3 pairs, leaving none to train"):
        train_translator(pairs, val_fraction=0.9)
