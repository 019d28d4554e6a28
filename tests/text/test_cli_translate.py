"""`rnnkit translate pairs / train / CHECKPOINT TEXT` end to end on a tiny run."""

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
    out = capsys.readouterr().out.strip().splitlines()
    rows = [line.split("\t") for line in out[:2]]
    assert all(len(r) == 2 and float(r[1]) <= 0 for r in rows)
    with open(png, "rb") as f:
        assert f.read(4) == b"\x89PNG"
    # the CLI prints what the library computes from the same checkpoint
    lib = Translator.from_checkpoint(ckpt).translate(texts, beam_size=3)
    assert [r[0] for r in rows] == [t for t, _ in lib]
    assert [float(r[1]) for r in rows] == pytest.approx([s for _, s in lib], abs=1e-4)


def test_errors(trained, tmp_path, capsys):
    assert main(["translate"]) == 2
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\tun\njust one column\n", encoding="utf-8")
    assert main(["translate", "train", "--pairs", str(bad), "--out-dir", str(tmp_path)]) == 2
    assert "bad.tsv:2: expected 'source<TAB>target'" in capsys.readouterr().err
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
