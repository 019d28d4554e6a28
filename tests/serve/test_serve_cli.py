"""`rnnkit serve` on the command line: files are checked before the server starts (one
`rnnkit serve: error: ...` line, exit 2), a missing extra names `pip install 'rnnkit[serve]'`,
and the real command serves the API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from rnnkit.cli import main


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit serve: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def test_help_names_the_panels_the_security_defaults_and_the_extra(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for words in ("--max-upload-mb", "--host", "--port", "127.0.0.1", "rnnkit[serve]",
                  "/docs", "heatmap"):
        assert words in out, words


def test_importing_the_command_stays_cheap():
    code = ("import sys, rnnkit.cli; rnnkit.cli.build_parser(); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'rnnkit.serve.app') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("make, words", [
    (lambda d: d / "missing.pt", ["no checkpoint at", "check the path"]),
    (lambda d: (d / "notes.txt").write_text("just text\n") and d / "notes.txt",
     ["not a readable rnnkit checkpoint"]),
    (lambda d: torch.save({"w": torch.ones(2)}, d / "plain.pt") or d / "plain.pt",
     ["not an rnnkit file", "rnnkit.load reads files written by rnnkit"]),
    (lambda d: d, ["is a folder"]),
])
def test_a_file_that_is_not_a_servable_model_stops_the_start(tmp_path, capsys, make, words):
    assert main(["serve", str(make(tmp_path))]) == 2
    err = _error(capsys)
    for w in words:
        assert w in err, err


def test_an_rnnkit_file_without_a_panel_is_named(tmp_path, capsys):
    from rnnkit.data.text import CharTokenizer

    CharTokenizer.from_text("abc").save(tmp_path / "tok.json")
    assert main(["serve", str(tmp_path / "tok.json")]) == 2
    assert "CharTokenizer, which rnnkit serve has no panel for" in _error(capsys)


@pytest.mark.parametrize("argv, words", [
    (["--port", "70000"], "--port must be from 0"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be a positive number"),
    (["--max-upload-mb", "nan"], "--max-upload-mb must be a positive number"),
])
def test_bad_settings_are_refused_before_loading(tiny_models, capsys, argv, words):
    assert main(["serve", str(tiny_models["lm"]), *argv]) == 2
    assert words in _error(capsys)


def test_a_port_in_use_names_the_fix(tiny_models, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(tiny_models["lm"]), "--port", str(port)]) == 2
    err = _error(capsys)
    assert f"--port {port} on 127.0.0.1 is in use" in err and "--port N" in err


def test_a_missing_extra_names_the_install_command(tiny_models, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` now fails
    assert main(["serve", str(tiny_models["lm"])]) == 2
    err = _error(capsys)
    assert "pip install 'rnnkit[serve]'" in err and "'uvicorn'" in err


def test_the_command_serves_the_api_on_loopback(tiny_models):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "--threads", "1", "serve",
                             str(tiny_models["lm"]), str(tiny_models["clf_max"]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read()
                continue
            if line.startswith("serving "):
                url = line.split(" at ", 1)[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(f"{url}api/models", timeout=10) as resp:
            models = json.load(resp)["models"]
        assert [(m["id"], m["kind"]) for m in models] == [("lm", "language_model"),
                                                         ("clf_max", "classifier")]
        request = urllib.request.Request(
            f"{url}api/models/lm/generate", method="POST",
            data=json.dumps({"prime": "the", "length": 5, "seed": 1, "stream": False}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.load(resp)["tokens"] == 5
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), proc.stderr.read()
    assert Path(tiny_models["lm"]).is_file()
