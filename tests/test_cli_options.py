"""commands.options: TOML values are checked against the field types, as flag text is."""

from __future__ import annotations

import dataclasses

import pytest

from rnnkit.commands.options import load_config


@dataclasses.dataclass
class Model:
    hidden_size: int = 8
    lr: float = 1e-3
    plot: bool = True
    name: str = "lstm"
    max_steps: int | None = None
    quantiles: tuple[float, ...] = (0.5,)


def _load(tmp_path, text: str) -> Model:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(str(path), {}, {"model": Model})["model"]


def test_typed_toml_values_load(tmp_path) -> None:
    m = _load(tmp_path, '[model]\nhidden_size = 16\nlr = 1\nplot = false\nname = "gru"\n'
                        'max_steps = 20\nquantiles = [0.1, 0.9]\n')
    assert m == Model(16, 1.0, False, "gru", 20, [0.1, 0.9])
    assert isinstance(m.lr, float)


@pytest.mark.parametrize("line,message", [
    ('plot = "false"', r"\[model\] plot must be bool \(true or false, without quotes\)"),
    ('hidden_size = "x"', r"\[model\] hidden_size must be int, got 'x'"),
    ("hidden_size = 1.5", r"hidden_size must be int, got 1.5"),
    ("hidden_size = true", r"hidden_size must be int, got True"),
    ('lr = "fast"', r"lr must be float, got 'fast'"),
    ("name = 3", r"name must be str, got 3"),
    ('max_steps = "ten"', r"max_steps must be int"),
])
def test_wrong_toml_types_name_the_key(tmp_path, line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, f"[model]\n{line}\n")


def test_given_settings_keep_only_what_toml_and_flags_set_and_check_types(tmp_path) -> None:
    import argparse

    from rnnkit.commands.options import add_config_arguments, given_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_config_arguments(parser, {"model": Model}, {"model.hidden_size": "--hidden"})
    path = tmp_path / "c.toml"
    path.write_text("[model]\nlr = 2\n", encoding="utf-8")
    args = parser.parse_args(["--config", str(path), "--hidden", "32"])
    assert given_settings(args, {"model": Model}) == {"model": {"lr": 2.0, "hidden_size": 32}}
    path.write_text('[model]\nlr = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[model\] lr must be float"):
        given_settings(parser.parse_args(["--config", str(path)]), {"model": Model})


def test_output_checks_refuse_folders_files_in_the_way_and_taken_runs(tmp_path):
    from rnnkit.commands.runs import check_output, check_run_dir, check_writable

    taken = tmp_path / "model.pt"
    taken.write_bytes(b"x")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for path, error in ((str(tmp_path), IsADirectoryError),
                        (str(tmp_path / "new") + "/", IsADirectoryError),  # "x/": a folder
                        (str(blocker / "out.pt"), NotADirectoryError), ("", ValueError)):
        with pytest.raises(error, match="--out"):
            check_writable(path, "--out")
    check_writable(str(tmp_path / "a" / "b" / "out.pt"), "--out")  # folders are made later
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_output(str(taken), False, "--out")
    check_output(str(taken), True, "--out")
    run = tmp_path / "run"
    run.mkdir()
    check_run_dir(str(run), resume=False, overwrite=False)  # empty: fine
    (run / "log.jsonl").write_text("{}")
    with pytest.raises(FileExistsError, match="--resume to continue it, --overwrite"):
        check_run_dir(str(run), resume=False, overwrite=False)
    with pytest.raises(FileNotFoundError, match="no last.pt"):
        check_run_dir(str(run), resume=True, overwrite=False)
    check_run_dir(str(run), resume=False, overwrite=True)
    with pytest.raises(ValueError, match="give one of them"):
        check_run_dir(str(run), resume=True, overwrite=True)
    with pytest.raises(NotADirectoryError):
        check_run_dir(str(blocker), resume=False, overwrite=False)


def test_resume_settings_refuse_model_changes_and_gate_training_changes():
    from rnnkit.commands.runs import resume_settings

    saved = {"model": {"hidden_size": 16}, "train": {"lr": 0.01, "max_steps": 5}}
    kw = {"locked": {"model"}, "free": {"train.max_steps"}, "aliases": {"model.hidden_size":
                                                                         "--hidden"}}
    merged, changes = resume_settings(saved, {"model": {"hidden_size": 16},
                                              "train": {"max_steps": 9}},
                                      allow_changes=False, **kw)
    assert merged == {"model": {"hidden_size": 16}, "train": {"lr": 0.01, "max_steps": 9}}
    assert changes == []
    with pytest.raises(ValueError, match="trained with --hidden 16, but --hidden 32"):
        resume_settings(saved, {"model": {"hidden_size": 32}}, allow_changes=True, **kw)
    with pytest.raises(ValueError, match="--change-settings"):
        resume_settings(saved, {"train": {"lr": 0.1}}, allow_changes=False, **kw)
    merged, changes = resume_settings(saved, {"train": {"lr": 0.1}}, allow_changes=True, **kw)
    assert merged["train"]["lr"] == 0.1 and changes == ["--train.lr 0.01 -> 0.1"]
