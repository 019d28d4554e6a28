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
