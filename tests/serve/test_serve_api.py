"""`rnnkit serve`'s JSON API through FastAPI's TestClient: every kind's route answers what the
library answers, and every malformed or hostile request is a 4xx whose message names the
problem and the fix (never a 500 with a traceback)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient  # the `serve` extra; `make install` installs it

from rnnkit.serve.app import create_app

HOSTS = ("testserver", "127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served, max_upload_mb=1.0, allowed_hosts=HOSTS)) as c:
        yield c


def _detail(resp, status: int) -> str:
    """The error message of a response that must have ``status``: JSON, no traceback."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return body["detail"]


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


# -- listing and page ----------------------------------------------------------------------------
def test_lists_every_model_with_id_kind_and_summary(client):
    body = client.get("/api/models").json()
    kinds = {m["id"]: m["kind"] for m in body["models"]}
    assert kinds == {"lm": "language_model", "clf_attention": "classifier",
                     "clf_max": "classifier", "tr": "translator", "fc": "forecaster",
                     "an": "anomaly", "asr": "speech"}
    for m in body["models"]:
        assert m["summary"] and m["name"].endswith(f"{m['id']}.pt")
        assert m["endpoint"] == f"/api/models/{m['id']}/{m['action']}"
    assert body["limits"]["max_upload_mb"] == 1.0
    assert client.get("/api/models/fc").json()["options"]["levels"] == [80, 95]


def test_page_static_files_and_openapi_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "rnnkit playground" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "fetch(" in client.get("/static/app.js").text
    paths = client.get("/openapi.json").json()["paths"]
    for action in ("generate", "classify", "translate", "forecast", "detect", "transcribe"):
        assert f"/api/models/{{model_id}}/{action}" in paths


# -- each kind ----------------------------------------------------------------------------------
def test_generate_streams_tokens_then_the_text_the_library_gives(client, served):
    settings = {"prime": "the ", "length": 40, "temperature": 0.9, "top_k": 10, "seed": 3}
    resp = client.post("/api/models/lm/generate", json=settings)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in resp.text.splitlines()]
    *tokens, done = events
    assert len(tokens) == 40 and all(set(e) == {"token"} for e in tokens)
    assert done["done"] and done["tokens"] == 40
    assert done["text"] == "".join(e["token"] for e in tokens)
    whole = client.post("/api/models/lm/generate", json={**settings, "stream": False}).json()
    assert whole["text"] == done["text"]
    lm = served["lm"].model
    assert lm.generate("the ", 40, 0.9, 10, None, 3) == done["text"]  # = rnnkit generate --seed


def test_classify_gives_the_library_probabilities_and_attention_per_token(client, served):
    text = "a gorgeous witty film"
    r = client.post("/api/models/clf_attention/classify", json={"text": text}).json()
    clf = served["clf_attention"].model
    want = clf.predict_proba([text])[0].tolist()
    assert [r["probabilities"][c] for c in r["classes"]] == pytest.approx(want, abs=1e-7)
    assert r["label"] == clf.classes[int(np.argmax(want))] and r["pooling"] == "attention"
    assert [t["text"] for t in r["tokens"]] == text.split()
    assert sum(t["weight"] for t in r["tokens"]) == pytest.approx(1.0, abs=1e-5)
    # unknown words keep their own spelling and draw a warning when they dominate
    r = client.post("/api/models/clf_attention/classify", json={"text": "zzz qqq film"}).json()
    assert [t["text"] for t in r["tokens"]] == ["zzz", "qqq", "film"]
    assert any("unknown" in w for w in r["warnings"])


def test_classify_without_attention_pooling_gives_probabilities_only(client):
    r = client.post("/api/models/clf_max/classify", json={"text": "boring plot"}).json()
    assert r["tokens"] is None and r["pooling"] == "max"
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_translate_gives_the_library_translation_and_an_attention_heatmap(client, served):
    r = client.post("/api/models/tr/translate", json={"text": "one two", "beam": 3}).json()
    want, score = served["tr"].model.translate(["one two"], beam_size=3)[0]
    assert r["translation"] == want and r["score"] == pytest.approx(score)
    assert r["source_tokens"] == ["one", "two"] and r["target_tokens"][-1] == "<eos>"
    weights = np.array(r["attention"])
    assert weights.shape == (len(r["target_tokens"]), 2)
    assert np.allclose(weights.sum(1), 1.0, atol=1e-5)
    _png(r["heatmap_png"])


def test_forecast_gives_the_library_numbers_and_a_plot(client, served, tiny_models):
    r = client.post("/api/models/fc/forecast", data={"levels": "80, 95"}).json()
    fc = served["fc"].model.predict(levels=(80, 95))
    (row,) = r["forecasts"]
    assert r["levels"] == ["80", "95"] and len(row["time"]) == 6
    assert row["time"][0].startswith("2016-09-01")  # the month after the 200th
    assert row["mean"] == pytest.approx(fc.mean[0][:, 0].tolist())
    assert row["lower"]["95"] == pytest.approx(fc.lower[95][0][:, 0].tolist())
    assert row["upper"]["80"] == pytest.approx(fc.upper[80][0][:, 0].tolist())
    _png(r["plot_png"])
    # from an uploaded history instead of the end of the training data
    df = pd.read_csv(tiny_models["series"]).iloc[:100]
    files = {"history": ("recent.csv", df.to_csv(index=False).encode(), "text/csv")}
    r = client.post("/api/models/fc/forecast", files=files).json()
    want = served["fc"].model.predict(history=df)
    assert r["forecasts"][0]["mean"] == pytest.approx(want.mean[0][:, 0].tolist())


def test_detect_flags_rows_of_an_uploaded_csv_as_the_detector_does(client, served, tiny_models):
    data = tiny_models["spiky"].read_bytes()
    r = client.post("/api/models/an/detect", files={"csv": ("spiky.csv", data, "text/csv")},
                    data={"time": "date"}).json()
    det = served["an"].model.detect(pd.read_csv(tiny_models["spiky"])["value"].to_numpy())
    assert r["rows"] == 200 and r["columns"] == ["value"]
    assert r["flagged"] == np.nonzero(det.flags)[0].tolist() and 150 in r["flagged"]
    assert r["scores"] == pytest.approx(det.smoothed.tolist())
    assert r["flagged_rows"][0]["time"].startswith("20")
    _png(r["plot_png"])


def test_transcribe_an_uploaded_wav_as_the_recogniser_does(client, served, tiny_models):
    r = client.post("/api/models/asr/transcribe", data={"beam": "4"},
                    files={"audio": ("clip.wav", tiny_models["wav"].read_bytes(), "audio/wav")})
    body = r.json()
    assert r.status_code == 200, body
    from rnnkit.speech.config import DecodeConfig

    want = served["asr"].model.transcribe(str(tiny_models["wav"]), DecodeConfig(beam_size=4))[0]
    assert body["text"] == want.text and body["seconds"] == pytest.approx(0.6)


# -- refused requests -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/models/nope/generate",
    "/api/models/..%2F..%2Fetc%2Fpasswd/generate",
    "/api/models/%2Fetc%2Fpasswd/generate",
    "/api/models/..%2Flm.pt/generate",
    "/api/models/../../etc/passwd/generate",
    "/api/models//etc/passwd/generate",
    "/api/models/lm.pt/generate",
    "/api/models/%2e%2e/generate",
])
def test_models_are_named_by_served_id_only(client, path):
    message = _detail(client.post(path, json={"prime": "a"}), 404)
    assert "no served model" in message or "no such page or API route" in message
    assert "root:" not in message


def test_an_absolute_model_path_is_not_an_id(client, tiny_models):
    path = quote(str(tiny_models["lm"]), safe="")
    message = _detail(client.post(f"/api/models/{path}/generate", json={}), 404)
    assert "never by a file path" in message or "no such page" in message
    for name in ("%2e%2e", "lm.pt", quote("C:\\models\\lm.pt", safe=""), "~root"):
        message = _detail(client.get(f"/api/models/{name}"), 404)
        assert "GET /api/models lists (lm, clf_attention" in message


@pytest.mark.parametrize("path", ["/static/..%2F..%2Fserve%2Fmodels.py",
                                  "/static/%2e%2e/app.py", "/static/../app.py"])
def test_static_files_cannot_reach_outside_their_folder(client, path):
    resp = client.get(path)
    assert resp.status_code == 404 and "RequestError" not in resp.text


@pytest.mark.parametrize("body, status, words", [
    ({"temperature": 50}, 422, ["temperature", "less than or equal to 10", "/docs"]),
    ({"temperature": -1}, 422, ["temperature", "greater than or equal to 0"]),
    ({"length": 0}, 422, ["length", "greater than or equal to 1"]),
    ({"length": 10**9}, 422, ["length", "less than or equal to 5000"]),
    ({"length": "200"}, 422, ["length", "valid integer", '"200"']),
    ({"length": 2.5}, 422, ["length", "integer"]),
    ({"temperature": "hot"}, 422, ["temperature", "valid number"]),
    ({"top_p": 1.5}, 422, ["top_p", "less than or equal to 1"]),
    ({"top_k": 0}, 422, ["top_k"]),
    ({"prime": ""}, 422, ["prime", "at least 1 character"]),
    ({"temprature": 0.5}, 422, ["temprature", "not a field", "typo"]),
    ({"seed": -3}, 422, ["seed"]),
])
def test_generate_settings_out_of_range_or_of_the_wrong_type(client, body, status, words):
    message = _detail(client.post("/api/models/lm/generate", json=body), status)
    for w in words:
        assert w in message, message


@pytest.mark.parametrize("content, words", [
    (b"{not json", ["not valid JSON", "send a JSON object"]),
    (b"", ["JSON"]),
    (b"[1, 2]", ["JSON object"]),
    (b'"text"', ["JSON object"]),
])
def test_malformed_json_is_a_400_or_422_naming_the_fix(client, content, words):
    resp = client.post("/api/models/clf_attention/classify", content=content,
                       headers={"content-type": "application/json"})
    assert resp.status_code in (400, 422)
    message = _detail(resp, resp.status_code)
    for w in words:
        assert w in message, message


def test_texts_that_are_blank_or_too_long_are_refused(client):
    assert "empty" in _detail(client.post("/api/models/clf_attention/classify",
                                          json={"text": "   "}), 400)
    message = _detail(client.post("/api/models/tr/translate", json={"text": "x" * 20_001}), 422)
    assert "text" in message and "at most 20000" in message
    message = _detail(client.post("/api/models/tr/translate", json={"text": "one", "beam": 0}),
                      422)
    assert "beam" in message


def test_a_model_asked_for_another_kind_of_work_names_its_own_route(client):
    message = _detail(client.post("/api/models/lm/classify", json={"text": "hi"}), 400)
    assert "a language model" in message and "/api/models/lm/generate" in message


def test_uploads_that_are_not_what_the_route_takes(client, tiny_models):
    def post(route, field, name, data, **form):
        return client.post(f"/api/models/{route}", files={field: (name, data)}, data=form)

    message = _detail(post("asr/transcribe", "audio", "x.mp3", b"ID3\x03 not a wav at all"), 415)
    assert "'x.mp3' is not a WAV file" in message and "ffmpeg" in message
    message = _detail(post("asr/transcribe", "audio", "e.wav", b""), 400)
    assert "empty" in message
    message = _detail(post("asr/transcribe", "audio", "bad.wav", b"RIFF\x00\x00\x00\x00WAVEjunk"),
                      400)
    assert "'bad.wav'" in message and "/tmp" not in message
    message = _detail(post("an/detect", "csv", "words.csv", tiny_models["words"].read_bytes()),
                      400)
    assert "no numeric column" in message and "'name', 'colour'" in message
    message = _detail(post("an/detect", "csv", "s.csv", tiny_models["spiky"].read_bytes(),
                           column="date"), 400)
    assert "'date'" in message and "not numeric" in message
    message = _detail(post("an/detect", "csv", "s.csv", tiny_models["spiky"].read_bytes(),
                           column="nope"), 400)
    assert "'nope' is not a column" in message and "'value'" in message
    message = _detail(post("an/detect", "csv", "b.csv", bytes(range(256)) * 4), 400)
    assert "'b.csv'" in message and "binary" in message and "/tmp" not in message
    message = _detail(post("an/detect", "csv", "short.csv", b"value\n1\n2\n3\n"), 400)
    assert "steps" in message
    message = _detail(client.post("/api/models/an/detect", data={"column": "value"}), 422)
    assert "csv is required" in message
    message = _detail(post("fc/forecast", "history", "h.csv", b"when,what\n1,2\n"), 400)
    assert "lacks the column(s)" in message and "'h.csv'" in message
    for levels, words in (("abc", "percentages separated by commas"),
                          ("150", "strictly between 0 and 100")):
        message = _detail(client.post("/api/models/fc/forecast", data={"levels": levels}), 400)
        assert words in message
    message = _detail(client.post("/api/models/asr/transcribe", data={"beam": "wide"},
                                  files={"audio": ("c.wav", b"RIFF")}), 422)
    assert "beam" in message and "integer" in message


def test_an_upload_over_the_limit_is_a_413_naming_the_flag(served, tiny_models):
    app = create_app(served, max_upload_mb=0.01, allowed_hosts=HOSTS)
    big = b"value\n" + b"1.0\n" * 5000  # about 20 KB, over 0.01 MiB
    with TestClient(app) as c:
        message = _detail(c.post("/api/models/an/detect", files={"csv": ("big.csv", big)}), 413)
        assert "0.01 MiB" in message and "--max-upload-mb" in message

        def chunks():  # no Content-Length: counted while read
            for _ in range(40):
                yield b"x" * 1024

        resp = c.post("/api/models/an/detect", content=chunks(),
                      headers={"content-type": "multipart/form-data; boundary=b"})
        assert "--max-upload-mb" in _detail(resp, 413)
        ok = c.post("/api/models/an/detect",
                    files={"csv": ("s.csv", tiny_models["spiky"].read_bytes())})
        assert ok.status_code == 200


def test_foreign_host_names_and_cross_origin_posts_are_refused(client):
    message = _detail(client.get("/api/models", headers={"host": "evil.example:8000"}), 400)
    assert "DNS rebinding" in message and "127.0.0.1" in message
    message = _detail(client.post("/api/models/clf_max/classify", json={"text": "fun"},
                                  headers={"origin": "http://evil.example"}), 403)
    assert "cross-origin" in message
    same = client.post("/api/models/clf_max/classify", json={"text": "fun"},
                       headers={"origin": "http://testserver"})
    assert same.status_code == 200


def test_unknown_routes_and_methods_say_what_exists(client):
    assert "/api/models/{id}" in _detail(client.get("/api/nothing"), 404)
    assert "GET is not allowed" in _detail(client.get("/api/models/lm/generate"), 405)


def test_an_unexpected_failure_is_a_500_without_traceback_or_internals(client, monkeypatch):
    import rnnkit.serve.app as app_module

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal state /home/user/model.pt")

    monkeypatch.setattr(app_module, "classify", broken)
    message = _detail(client.post("/api/models/clf_max/classify", json={"text": "fun"}), 500)
    assert "RuntimeError" in message and "secret" not in message and "server's log" in message


def test_a_library_refusal_keeps_its_own_message(client):
    r = client.post("/api/models/tr/translate", json={"text": "one", "max_len": 10**6})
    assert "max_len must be from 1 to 60" in _detail(r, 400)
    r = client.post("/api/models/asr/transcribe", data={"beam": "4", "lm_weight": "1"},
                    files={"audio": ("c.wav", b"RIFF\x00\x00\x00\x00WAVE")})
    assert "has none" in _detail(r, 400)


def test_handlers_need_no_web_framework(served, tiny_models):
    from rnnkit.serve.models import RequestError, Upload, detect, generation_events

    events = list(generation_events(served["lm"], "a", 5, 0.0, None, None, None))
    assert len(events) == 6 and events[-1]["done"] and events[-1]["tokens"] == 5
    with pytest.raises(RequestError, match="no numeric column"):
        detect(served["an"], Upload("w.csv", tiny_models["words"].read_bytes()))
