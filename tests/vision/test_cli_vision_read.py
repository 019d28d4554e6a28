"""``rnnkit vision read``: parsing, refusals before any work, and the train -> read round trip."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("jiwer")

from rnnkit.cli import main  # noqa: E402
from rnnkit.vision import textlines as tl  # noqa: E402
from rnnkit.vision.reader import ReaderConfig, TextLineReader  # noqa: E402

TINY = ReaderConfig(channels=(4, 8, 8, 8), hidden_size=8, num_layers=1, lm_order=3)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def line_png(tmp_path) -> str:
    from PIL import Image

    try:
        font = tl.find_fonts(["LiberationSans-Regular"])["LiberationSans-Regular"]
    except tl.FontError as err:  # pragma: no cover - no `make vision-data`
        pytest.skip(str(err))
    path = tmp_path / "line.png"
    Image.fromarray(tl.render_line("her on the stairs", font, seed=2)).save(path)
    return str(path)


@pytest.fixture
def reader_file(tmp_path) -> str:
    from rnnkit.ngram import NGramLM

    path = tmp_path / "reader.pt"
    TextLineReader(TINY, lm=NGramLM(3).fit(["her on the stairs"])).save(path)
    return str(path)


def test_read_ckpt_image_is_short_for_read_text(capsys, reader_file, line_png):
    code, out, _ = run(capsys, "vision", "read", reader_file, line_png)
    code2, out2, _ = run(capsys, "vision", "read", "text", reader_file, line_png, "--beam", "1")
    assert code == code2 == 0 and out == out2 and len(out.splitlines()) == 1
    code, out, _ = run(capsys, "vision", "read", reader_file, line_png, line_png, "--lm")
    assert code == 0 and [s.split("\t")[0] for s in out.splitlines()] == [line_png] * 2


def test_read_refuses_bad_files_and_flags(capsys, tmp_path, reader_file, line_png):
    code, _, err = run(capsys, "vision", "read", reader_file, str(tmp_path / "none.png"))
    assert code != 0 and "no such image file" in err
    notes = tmp_path / "notes.png"
    notes.write_text("not pixels")
    code, _, err = run(capsys, "vision", "read", reader_file, str(notes))
    assert code != 0 and "not a readable image" in err
    code, _, err = run(capsys, "vision", "read", line_png, line_png)
    assert code != 0 and "not a readable rnnkit checkpoint" in err
    code, _, err = run(capsys, "vision", "read", reader_file, line_png, "--beam", "0")
    assert code != 0 and "--beam" in err
    bare = tmp_path / "bare.pt"
    TextLineReader(ReaderConfig(**{**TINY.__dict__, "lm_order": 0})).save(bare)
    code, _, err = run(capsys, "vision", "read", str(bare), line_png, "--lm")
    assert code != 0 and "no language model for --lm" in err


def test_train_refuses_before_any_work(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.pt").write_text("an earlier run")
    code, _, err = run(capsys, "vision", "read", "train", "--out-dir", str(run_dir))
    assert code != 0 and "--overwrite" in err
    assert (run_dir / "best.pt").read_text() == "an earlier run"
    for flags, words in ((["--fonts", "print"], "held out"),
                         (["--fonts", "Kristi"], "held out"),
                         (["--fonts", "NoSuchFont"], "make vision-data"),
                         (["--steps", "0"], "--steps"),
                         (["--hidden-size", "0"], "--hidden-size")):
        code, _, err = run(capsys, "vision", "read", "train", "--out-dir",
                           str(tmp_path / "new"), *flags)
        assert code != 0 and words in err, (flags, err)
        assert not os.path.exists(tmp_path / "new" / "reader.pt")


@pytest.mark.slow
def test_train_then_read_and_evaluate_round_trip(capsys, tmp_path, line_png):
    out_dir = tmp_path / "ocr"
    code, out, err = run(capsys, "vision", "read", "train", "--out-dir", str(out_dir),
                         "--steps", "6", "--channels", "4,8,8,8", "--hidden-size", "8",
                         "--layers", "1", "--batch-size", "4", "--lm-order", "3",
                         "--valid-lines", "12", "--fonts", "DejaVuSans,LiberationSerif-Regular")
    assert code == 0, err
    assert {"best.pt", "last.pt", "reader.pt"} <= set(os.listdir(out_dir))
    assert "validation CER" in out and "trained 6 steps" in out
    for ckpt in ("reader.pt", "best.pt"):
        code, out, err = run(capsys, "vision", "read", str(out_dir / ckpt), line_png)
        assert code == 0 and len(out.splitlines()) == 1, err
    code, out, err = run(capsys, "vision", "read", "evaluate", str(out_dir / "reader.pt"),
                         "--lines", "3")
    assert code == 0, err
    for group in ("training fonts", "held-out print", "held-out handwriting"):
        assert group in out
    code, _, err = run(capsys, "vision", "read", "train", "--out-dir", str(out_dir),
                       "--steps", "8", "--resume", "--hidden-size", "16")
    assert code != 0 and "--hidden-size" in err
    assert np.isfinite(TextLineReader.load(out_dir / "reader.pt").config.lm_weight)
