"""Regression tests of a hostile review of `rnnkit serve` (TestClient, tiny models): crafted WAV
headers, warnings of requests running side by side, host names, mathtext in user text, tiny
sampling settings, long and wide CSVs, and the wording of refused requests."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from rnnkit.serve.app import create_app
from rnnkit.serve.guard import LOOPBACK_HOSTS

HOSTS = ("testserver", "127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served, max_upload_mb=2.0, allowed_hosts=HOSTS)) as c:
        yield c


def _detail(resp, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail
    return detail


def _wav(rate: int, n: int = 200) -> bytes:
    """A 16-bit mono WAV of ``n`` noise samples whose header declares ``rate``."""
    data = np.random.default_rng(0).normal(0, 3000, n).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2 & 0xFFFFFFFF, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def _clip(amplitude: float) -> bytes:
    t = np.arange(8000) / 16000
    x = np.clip(np.sin(2 * np.pi * 440 * t) * amplitude, -1, 1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


# -- 1: WAV headers that would expand to gigabytes -------------------------------------------------
@pytest.mark.parametrize("rate", [1, 1_000_003, 10_000_019])
def test_a_wav_declaring_an_absurd_rate_is_refused_from_its_header(client, rate):
    """444 bytes declaring 10 MHz used to take 15 s and 4.9 GB before a 507; 1 Hz turned 4 KB
    into 2000 s of audio."""
    start = time.perf_counter()
    resp = client.post("/api/models/asr/transcribe", files={"audio": ("x.wav", _wav(rate))})
    message = _detail(resp, 400)
    assert time.perf_counter() - start < 5
    assert f"'x.wav' declares a sample rate of {rate:,} Hz" in message
    assert "4,000-192,000 Hz" in message and "ffmpeg -i x.wav -ar 16000" in message
    assert "/tmp" not in message and "upload.wav" not in message


def test_a_recording_over_the_length_limit_is_a_413_naming_the_flag(served, tiny_models):
    app = create_app(served, allowed_hosts=HOSTS, max_audio_seconds=0.5)
    with TestClient(app) as c:
        assert c.get("/api/models").json()["limits"]["max_audio_seconds"] == 0.5
        resp = c.post("/api/models/asr/transcribe",
                      files={"audio": ("clip.wav", tiny_models["wav"].read_bytes())})
        message = _detail(resp, 413)
        assert "'clip.wav' is 0.6 s of audio" in message and "--max-audio-seconds" in message
    with pytest.raises(ValueError, match="max_audio_seconds must be a positive number"):
        create_app(served, max_audio_seconds=0)


# -- 2: warnings of requests running side by side --------------------------------------------------
def _warning_state():
    return (list(warnings.filters), warnings.showwarning,
            warnings._showwarnmsg_impl, warnings.defaultaction)


def test_interleaved_requests_each_get_their_own_warnings_and_leave_no_trace():
    """A enters, B enters, A leaves, B leaves (the order that mixed them up before)."""
    from rnnkit.serve.capture import collected_warnings

    before = _warning_state()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    got: dict[str, list[str]] = {}

    def request_a():
        with collected_warnings() as notes:
            a_in.set()
            b_in.wait(5)
            warnings.warn("warning of request A", stacklevel=1)
        got["A"] = notes
        a_out.set()

    def request_b():
        a_in.wait(5)
        with collected_warnings() as notes:
            b_in.set()
            a_out.wait(5)
            warnings.warn("warning of request B", stacklevel=1)
        got["B"] = notes

    threads = [threading.Thread(target=request_a), threading.Thread(target=request_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {"A": ["warning of request A"], "B": ["warning of request B"]}
    assert _warning_state() == before
    with pytest.warns(UserWarning, match="a later warning"):  # still reaches its handler
        warnings.warn("a later warning", UserWarning, stacklevel=1)


def test_another_threads_recording_does_not_take_a_requests_warnings():
    """load_audio records warnings with catch_warnings(record=True); while it does, a request
    running beside it keeps its own warnings (one in ~500 transcriptions crossed over)."""
    from rnnkit.serve.capture import collected_warnings

    before = _warning_state()
    recording, warned = threading.Event(), threading.Event()
    got: dict[str, list] = {}

    def recorder():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            recording.set()
            warned.wait(5)
        got["recorder"] = [str(w.message) for w in caught]

    def request():
        recording.wait(5)
        with collected_warnings() as notes:
            warnings.warn("the request's own warning", stacklevel=1)
        warned.set()
        got["request"] = notes

    threads = [threading.Thread(target=recorder), threading.Thread(target=request)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {"recorder": [], "request": ["the request's own warning"]}
    assert _warning_state() == before


def test_a_warning_is_reported_to_every_request_that_raises_it():
    from rnnkit.serve.capture import collected_warnings

    for _ in range(3):  # the same line and text: not swallowed as "already shown"
        with collected_warnings() as notes:
            warnings.warn("the same warning", stacklevel=1)
            warnings.warn("the same warning", stacklevel=1)
        assert notes == ["the same warning"]


def test_concurrent_transcriptions_keep_their_clipping_warnings_apart(client):
    before = _warning_state()
    clips = {True: _clip(3.0), False: _clip(0.3)}

    def one(i: int) -> tuple[bool, bool]:
        clipped = i % 2 == 0
        r = client.post("/api/models/asr/transcribe",
                        files={"audio": (f"{i}.wav", clips[clipped])})
        assert r.status_code == 200, r.text
        return clipped, any("clipped" in w for w in r.json()["warnings"])

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(48)))
    assert all(clipped == warned for clipped, warned in results), results
    assert _warning_state() == before


# -- 3: host names ---------------------------------------------------------------------------------
def test_the_host_check_is_always_on_and_answers_ip_addresses(served):
    with TestClient(create_app(served), base_url="http://127.0.0.1:8000") as c:
        for host in ("127.0.0.1:8000", "[::1]:8000", "192.168.1.20:8000", "localhost:8000",
                     "LOCALHOST.:8000"):
            assert c.get("/api/models", headers={"host": host}).status_code == 200, host
        for host in ("attacker.example:8000", "localhost.attacker.example", ""):
            message = _detail(c.get("/api/models", headers={"host": host}), 400)
            assert "DNS rebinding" in message and "--allow-host" in message
        resp = c.post("/api/models/clf_max/classify", json={"text": "fun"},
                      headers={"host": "attacker.example:8000",
                               "origin": "http://attacker.example:8000"})
        assert "DNS rebinding" in _detail(resp, 400)
    with pytest.raises(ValueError, match="there is no 'any host'"):
        create_app(served, allowed_hosts=None)
    assert "localhost" in LOOPBACK_HOSTS


def test_the_listing_shows_file_names_not_where_the_files_are(client, tiny_models):
    folder = str(tiny_models["root"])
    body = client.get("/api/models").text
    assert folder not in body
    for m in client.get("/api/models").json()["models"]:
        assert m["name"] == f"{m['id']}.pt" and "/" not in m["name"]


# -- 4: user text is not mathtext ------------------------------------------------------------------
@pytest.mark.parametrize("text", ["one $\\frac$ two", "$" + "{" * 400 + "x" + "}" * 400 + "$",
                                  "one $x^$ two"])
def test_dollar_signs_in_a_text_are_drawn_as_written(client, text):
    import matplotlib

    r = client.post("/api/models/tr/translate", json={"text": text, "beam": 1})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["heatmap_png"].startswith("data:image/png;base64,")
    assert matplotlib.rcParams["text.parse_math"] is True  # put back after drawing


def test_dollar_signs_in_a_column_name_are_drawn_as_written(client, tiny_models):
    csv = tiny_models["spiky"].read_bytes().replace(b"value", b"$\\frac$", 1)
    r = client.post("/api/models/an/detect", files={"csv": ("s.csv", csv)})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["columns"] == ["$\\frac$"]


# -- 5: in-range sampling settings that used to fail -----------------------------------------------
@pytest.mark.parametrize("settings", [{"temperature": 1e-45}, {"temperature": 1e-300},
                                      {"top_p": 1e-46}, {"top_p": 5e-324, "top_k": 3}])
def test_tiny_temperatures_and_top_p_generate_the_greedy_text(client, settings):
    greedy = client.post("/api/models/lm/generate",
                         json={"prime": "the ", "length": 12, "temperature": 0,
                               "stream": False}).json()["text"]
    body = {"prime": "the ", "length": 12, "seed": 1, **settings}
    whole = client.post("/api/models/lm/generate", json={**body, "stream": False})
    assert whole.status_code == 200, whole.text
    assert whole.json()["text"] == greedy
    events = [json.loads(line) for line in
              client.post("/api/models/lm/generate", json=body).text.splitlines()]
    assert events[-1].get("done") and events[-1]["text"] == greedy


def test_a_library_refusal_midway_is_a_400_not_a_500(client, served, monkeypatch):
    def refuses(*args, **kwargs):
        yield "a"
        raise ValueError("top_p must lie in (0, 1], got 7")

    monkeypatch.setattr(served["lm"].model, "stream_text", refuses)
    r = client.post("/api/models/lm/generate", json={"prime": "a", "stream": False})
    assert "top_p must lie in (0, 1]" in _detail(r, 400)
    *_, last = [json.loads(x) for x in
                client.post("/api/models/lm/generate", json={"prime": "a"}).text.splitlines()]
    assert last["status"] == 400 and "after 1 tokens" in last["error"]


# -- 6: long and wide CSVs -------------------------------------------------------------------------
def test_a_csv_over_the_row_limit_is_a_413_naming_the_flag(served, tiny_models):
    with TestClient(create_app(served, allowed_hosts=HOSTS, max_rows=150)) as c:
        assert c.get("/api/models").json()["limits"]["max_rows"] == 150
        resp = c.post("/api/models/an/detect",
                      files={"csv": ("spiky.csv", tiny_models["spiky"].read_bytes())})
        message = _detail(resp, 413)
        assert "'spiky.csv' has 200 rows" in message and "limit of 150" in message
        assert "--max-rows" in message
        resp = c.post("/api/models/fc/forecast",
                      files={"history": ("h.csv", tiny_models["series"].read_bytes())})
        assert "--max-rows" in _detail(resp, 413)
    with pytest.raises(ValueError, match="max_rows must be a positive whole number"):
        create_app(served, max_rows=0)


def test_a_long_csv_is_plotted_from_a_few_thousand_points(client, served, monkeypatch):
    import rnnkit.anomaly
    from rnnkit.anomaly.result import Detection
    from rnnkit.serve.plots import MAX_PLOT_POINTS

    n, spike, flagged = 60_000, 41_234, [7, 41_234, 59_999]
    values = np.sin(np.arange(n) / 50.0)
    values[spike] = 25.0
    smoothed = np.abs(values) / 10
    flags = np.zeros(n, dtype=int)
    flags[flagged] = 1
    detection = Detection(scores=smoothed, smoothed=smoothed, threshold=1.0, flags=flags)
    monkeypatch.setattr(served["an"].model, "detect", lambda v: detection)
    drawn = {}

    def plot(values, detection, labels, path, title="", time=None):
        drawn.update(values=np.asarray(values), flags=np.asarray(detection.flags),
                     time=np.asarray(time))
        import matplotlib.pyplot as plt

        plt.figure(figsize=(2, 2)).savefig(path)
        plt.close("all")

    monkeypatch.setattr(rnnkit.anomaly, "plot_anomalies", plot)
    csv = "value\n" + "\n".join(f"{v:.6f}" for v in values) + "\n"
    start = time.perf_counter()
    r = client.post("/api/models/an/detect", files={"csv": ("long.csv", csv.encode())})
    assert r.status_code == 200, r.text[:300]
    assert time.perf_counter() - start < 20
    body = r.json()
    assert body["rows"] == n and len(body["scores"]) == n and body["flagged"] == flagged
    assert len(drawn["values"]) <= MAX_PLOT_POINTS + len(flagged) + 2
    rows = drawn["time"].tolist()  # the x-axis keeps the CSV's row numbers
    assert rows[0] == 0 and rows[-1] == n - 1 and spike in rows
    assert all(i in rows for i in flagged) and drawn["flags"].sum() == len(flagged)
    assert drawn["values"][rows.index(spike)] == pytest.approx(25.0)


def test_messages_about_wide_csvs_list_a_few_columns(client):
    ncol = 5000
    header = ",".join(f"c{i}" for i in range(ncol))
    row = ",".join("x" for _ in range(ncol))
    data = f"{header}\n{row}\n{row}\n".encode()
    for form, words in (({}, "has no numeric column"), ({"column": "nope"}, "is not a column")):
        message = _detail(client.post("/api/models/an/detect", files={"csv": ("w.csv", data)},
                                      data=form), 400)
        assert words in message and "'c19', ... and 4,980 more]" in message
        assert len(message) < 800
    long_name = "n" * 100_000
    data = f"{long_name},v\nx,1\ny,2\n".encode()
    message = _detail(client.post("/api/models/an/detect", files={"csv": ("w.csv", data)},
                                  data={"column": long_name}), 400)
    assert len(message) < 800 and "nnn..." in message


def test_a_very_long_library_message_keeps_its_start_and_its_fix(client, monkeypatch):
    import rnnkit.serve.app as app_module

    def wordy(*args, **kwargs):
        raise ValueError("the problem: " + "x" * 50_000 + " the fix: do this")

    monkeypatch.setattr(app_module, "classify", wordy)
    message = _detail(client.post("/api/models/clf_max/classify", json={"text": "a"}), 400)
    assert len(message) < 2200
    assert message.startswith("the problem: ") and message.endswith("the fix: do this")
    assert "characters left out" in message


# -- 8: refused requests say what to send ----------------------------------------------------------
@pytest.mark.parametrize("headers, sent", [
    ({"content-type": "text/plain"}, "'text/plain'"),
    ({}, "without a Content-Type header"),
])
def test_json_sent_without_the_json_content_type_names_the_header(client, headers, sent):
    resp = client.post("/api/models/clf_max/classify", content=b'{"text": "fun"}',
                       headers=headers)
    message = _detail(resp, 422)
    assert sent in message and "Content-Type: application/json" in message


def test_a_file_field_sent_as_text_says_to_upload_a_file(client):
    message = _detail(client.post("/api/models/an/detect", data={"csv": "value\n1\n2\n"}), 422)
    assert "csv must be an uploaded file" in message and "-F csv=@FILE" in message
    assert "Expected UploadFile" not in message and "<class" not in message


def test_a_form_the_multipart_parser_refuses_names_the_fix(client):
    resp = client.post("/api/models/an/detect",
                       files={"n" * 900_000: ("a.csv", b"value\n1\n")})
    message = _detail(resp, 400)
    assert "multipart form could not be read" in message and "curl -F csv=@data.csv" in message


@pytest.mark.parametrize("route, body, field", [
    ("lm/generate", {"prime": "a", "length": None}, "length"),
    ("lm/generate", {"prime": "a", "length": 3, "temperature": None}, "temperature"),
    ("tr/translate", {"text": "one", "beam": None}, "beam"),
])
def test_a_null_field_says_to_leave_it_out(client, route, body, field):
    message = _detail(client.post(f"/api/models/{route}", json=body), 422)
    assert f"{field} is null; leave the field out to use its default" in message
    assert "/openapi.json" in message


def test_the_docs_say_where_the_schema_is_offline_and_the_page_omits_empty_fields(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and 'href="/openapi.json"' in docs.text
    assert "swagger-ui" in docs.text and "no internet" in docs.text
    assert "/openapi.json" in _detail(client.get("/api/nothing"), 404)
    script = client.get("/static/app.js").text
    assert "v !== null && v !== undefined" in script
