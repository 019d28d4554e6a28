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
import urllib.error
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
    (["--max-rows", "0"], "--max-rows must be a positive number of rows"),
    (["--max-audio-seconds", "nan"], "--max-audio-seconds must be a positive number"),
    (["--allow-host", "http://my.proxy:8000"], "--allow-host takes a host name as a browser"),
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


def test_host_names_are_resolved_and_the_printed_url_can_be_opened(monkeypatch):
    """A --host name whose addresses are all loopback ones stays local; 0.0.0.0 prints a URL a
    browser can open; every bind answers to this machine's names and each --allow-host."""
    import socket as socket_module

    from rnnkit.commands import serve as command

    table = {"myvm": ["127.0.1.1"], "dual": ["127.0.0.1", "::1"],
             "lan": ["192.168.1.20", "127.0.0.1"]}
    real = socket_module.getaddrinfo

    def fake(host, *args, **kwargs):
        if host in table:
            return [(socket_module.AF_INET, socket_module.SOCK_STREAM, 6, "", (a, 0))
                    for a in table[host]]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket_module, "getaddrinfo", fake)
    assert command._is_loopback("myvm") and command._is_loopback("dual")
    assert command._is_loopback("LocalHost.") and command._is_loopback("::1")
    assert not command._is_loopback("lan") and not command._is_loopback("0.0.0.0")
    assert command._url("0.0.0.0", "0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert command._url("::", "::", 8000) == "http://[::1]:8000/"
    assert command._url("myvm", "127.0.1.1", 8000) == "http://myvm:8000/"
    assert command._url("127.0.0.1", "127.0.0.1", 9) == "http://127.0.0.1:9/"
    allowed = command._allowed_hosts("0.0.0.0", ["My.Proxy"])
    assert {"localhost", "my.proxy", socket_module.gethostname().lower()} <= set(allowed)
    assert "myvm" in command._allowed_hosts("myvm", [])


def test_ctrl_c_stops_a_busy_server_within_seconds(tmp_path):
    """A 5000-token stream of a 3 x 768 LSTM is ~15 s of work: Ctrl-C used to wait for it.
    The same server checks host names although it is started with a --host name."""
    from rnnkit.commands.serve import GRACEFUL_SHUTDOWN_S
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.train.checkpoint import FORMAT, save_checkpoint

    tok = CharTokenizer.from_text("the quick brown fox jumps over the lazy dog. ")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), hidden_size=768,
                                           embed_size=64, num_layers=3), tokenizer=tok).eval()
    save_checkpoint({"format": FORMAT, "model": lm.state_dict(),
                     "extra_state": lm.extra_state()}, tmp_path / "big.pt")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "--threads", "1", "serve",
                             str(tmp_path / "big.pt"), "--port", "0", "--host", "localhost",
                             "--allow-host", "my.proxy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    try:
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert proc.poll() is None, "".join(errors)
                continue
            if line.startswith("serving "):
                url = line.split(" at ", 1)[1].split()[0]
        assert url and url.startswith("http://localhost:"), url
        port = int(url.rstrip("/").rsplit(":", 1)[1])

        def get(host: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/models",
                                             headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    assert str(tmp_path) not in resp.read().decode()
                    return resp.status
            except urllib.error.HTTPError as err:
                return err.code

        assert get(f"my.proxy:{port}") == 200 and get(f"localhost:{port}") == 200
        assert get(f"attacker.example:{port}") == 400
        body = json.dumps({"prime": "the ", "length": 5000, "seed": 1}).encode()
        stream = socket.create_connection(("127.0.0.1", port))
        stream.sendall(b"POST /api/models/big/generate HTTP/1.1\r\nHost: localhost\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % len(body) + body)
        seen = b""
        while seen.count(b'"token"') < 5:
            seen += stream.recv(4096)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(GRACEFUL_SHUTDOWN_S + 10)
        waited = time.monotonic() - start
        stream.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert waited < GRACEFUL_SHUTDOWN_S + 4, waited
    time.sleep(0.2)
    assert "Traceback" not in "".join(errors), "".join(errors)
