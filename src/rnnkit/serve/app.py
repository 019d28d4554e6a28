"""The playground's HTTP interface: FastAPI routes over :mod:`rnnkit.serve.models`.

Routes (the OpenAPI schema is at ``/openapi.json``, interactive docs at ``/docs``; the docs
page loads Swagger UI from a CDN, so offline it says to read ``/openapi.json`` instead):

* ``GET /``: the page (``static/index.html`` and ``static/app.js``; it uses only the API);
* ``GET /api/models``: the served models (``id``, ``name`` (the file name, never its
  folder), ``kind``, ``action``, ``endpoint``, ``summary``, ``options``) and the server's
  ``limits``;
* ``GET /api/models/{id}``: one of them;
* ``POST /api/models/{id}/generate`` (language models; JSON; streams newline-delimited JSON),
  ``/classify``, ``/translate`` (JSON), ``/forecast``, ``/detect``, ``/transcribe``
  (multipart forms with file uploads).

Models are named by their id on the served list only: no parameter is a path, and an unknown
id is a 404. Every error is a JSON body ``{"detail": message}`` whose message names the problem
and the fix: 400 for input the model refuses or malformed JSON, 422 for fields of the wrong
type or out of range, 404 for unknown ids and routes, 413 for input over one of the server's
limits (``--max-upload-mb``, ``--max-rows``, ``--max-audio-seconds``; the message names the
flag), 415 for a file that is not what the route takes; an unexpected failure is a 500 that
names the error type only (the traceback goes to the server's log, never to the client). A
message quoting very long input (thousands of column names) is shortened.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..commands.translate import MAX_BEAM
from .guard import LOOPBACK_HOSTS, RequestGuard
from .models import (
    DEFAULT_MAX_AUDIO_SECONDS,
    DEFAULT_MAX_ROWS,
    KIND_NAMES,
    MAX_LENGTH,
    MAX_TEMPERATURE,
    MAX_TEXT_CHARS,
    RequestError,
    ServedModel,
    Upload,
    classify,
    detect,
    forecast,
    generation_events,
    transcribe,
    translate,
)

__all__ = ["DEFAULT_MAX_AUDIO_SECONDS", "DEFAULT_MAX_ROWS", "DEFAULT_MAX_UPLOAD_MB",
           "create_app"]

log = logging.getLogger("rnnkit.serve")

STATIC = Path(__file__).resolve().parent / "static"
#: the default upload limit (``--max-upload-mb``)
DEFAULT_MAX_UPLOAD_MB = 20.0
#: the page's Content-Security-Policy: its own script and styles, plots as data URIs
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            "form-action 'self'")
#: where the routes and fields are described (/docs needs the internet for Swagger UI)
DOCS_HINT = "/docs, or offline the schema at /openapi.json"
ROUTES_HINT = ("the API's routes are GET /api/models, GET /api/models/{id} and "
               "POST /api/models/{id}/{generate|classify|translate|forecast|detect|transcribe}"
               f" (see {DOCS_HINT})")
#: the longest error message sent; a longer one keeps its start and its end (the fix)
MAX_MESSAGE_CHARS = 2000
#: shown above the interactive docs, which load Swagger UI from a CDN
DOCS_NOTE = ('<p style="font-family: sans-serif; margin: 1em">The interactive docs below load '
             'Swagger UI from cdn.jsdelivr.net; if nothing appears (no internet), read the '
             'same API schema at <a href="/openapi.json">/openapi.json</a>, or use the '
             '<a href="/">playground</a>.</p>')
#: optional package -> the extra that installs it
EXTRAS = {"fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "matplotlib": "serve",
          "pandas": "data", "soundfile": "speech", "scipy": "speech", "tokenizers": "text"}


# -- request bodies ----------------------------------------------------------------------------
class _Strict(BaseModel):
    """JSON bodies: exact types (``"200"`` is not a length) and no unknown fields (a typo such
    as ``temprature`` is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class GenerateRequest(_Strict):
    """Sampling settings of ``POST /api/models/{id}/generate`` (as ``rnnkit generate``)."""

    prime: str = Field("\n", min_length=1, max_length=MAX_TEXT_CHARS,
                       description="the text the model continues")
    length: int = Field(200, ge=1, le=MAX_LENGTH, description="tokens to generate")
    temperature: float = Field(0.8, ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False,
                               description="0: greedy; 1: the model's own distribution")
    top_k: int | None = Field(None, ge=1, description="sample among the k likeliest tokens")
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False,
                                description="sample from the smallest set of tokens whose "
                                "probabilities sum to top_p (nucleus sampling)")
    seed: int | None = Field(None, ge=0, le=2**63 - 1,
                             description="sampler seed: the same seed gives the same text; "
                             "null: fresh randomness")
    stream: bool = Field(True, description="true: newline-delimited JSON events as tokens are "
                         "sampled; false: one JSON object when done")


class ClassifyRequest(_Strict):
    """The text of ``POST /api/models/{id}/classify``."""

    text: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the text to classify")


class TranslateRequest(_Strict):
    """The text and search settings of ``POST /api/models/{id}/translate``."""

    text: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the source text")
    beam: int = Field(5, ge=1, le=MAX_BEAM, description="beam size; 1 = greedy")
    max_len: int | None = Field(None, ge=1, description="most target tokens (default: the "
                                "model's own)")


# -- form fields (multipart routes) --------------------------------------------------------------
LevelsForm = Annotated[str, Form(description="interval levels in percent, comma-separated "
                                 "(e.g. 80, 95); empty: the model's default")]
HistoryFile = Annotated[UploadFile | None, File(description="optional CSV with the model's "
                                                "training columns to forecast from (default: "
                                                "the end of the training data)")]
FutureFile = Annotated[UploadFile | None, File(description="known-future covariates over the "
                                               "horizon (models trained with them)")]
CsvFile = Annotated[UploadFile, File(description="UTF-8 CSV with a header row and a numeric "
                                     "column")]
ColumnForm = Annotated[str, Form(description="the numeric column(s) to check, comma-separated "
                                 "(default: the numeric ones)")]
TimeForm = Annotated[str, Form(description="optional time column (rows in time order)")]
AudioFile = Annotated[UploadFile, File(description="a WAV recording (any rate, any channels)")]
BeamForm = Annotated[int, Form(ge=1, le=256, description="beam size; 1 = greedy CTC")]
LmWeightForm = Annotated[float, Form(ge=0, le=100, allow_inf_nan=False,
                                     description="weight of the model's n-gram LM in the beam "
                                     "(models with one)")]


# -- error responses ---------------------------------------------------------------------------
def _error(status: int, message: str) -> JSONResponse:
    if len(message) > MAX_MESSAGE_CHARS:  # keep the problem (start) and the fix (end)
        cut = len(message) - MAX_MESSAGE_CHARS
        message = (f"{message[:MAX_MESSAGE_CHARS * 2 // 3]} [... {cut:,} characters left "
                   f"out ...] {message[-MAX_MESSAGE_CHARS // 3:]}")
    return JSONResponse({"detail": message}, status_code=status)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "the request body"


def _sent_as(content_type: str | None) -> str:
    """How a request body was labelled, in words."""
    if not content_type:
        return "without a Content-Type header"
    return f"with Content-Type {content_type.split(';')[0].strip()!r}"


def _validation_message(errors: list[dict[str, Any]],
                        content_type: str | None = "application/json") -> tuple[int, str]:
    """One readable message (and its status) for pydantic's validation errors of a request
    whose body came with ``content_type``."""
    for e in errors:
        if e.get("type") == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "")
            return 400, (f"the request body is not valid JSON ({why}); send a JSON object, "
                         f"e.g. {{\"text\": \"a gorgeous film\"}}, with Content-Type "
                         f"application/json")
    json_sent = (content_type or "").split(";")[0].strip().lower() == "application/json"
    parts = []
    for e in errors[:5]:
        name, kind, msg = _field(tuple(e.get("loc", ()))), e.get("type", ""), e.get("msg", "")
        got = e.get("input")
        if kind == "missing" and name == "the request body":
            parts.append("the request body is missing: send a JSON object of the route's "
                         "fields with Content-Type application/json")
        elif kind == "missing":
            parts.append(f"{name} is required"
                         + (" (upload it as a file field of the form)"
                            if name in ("csv", "audio") else ""))
        elif kind == "extra_forbidden":
            parts.append(f"{name} is not a field of this request (a typo?)")
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not json_sent:
            parts.append(f"the request body was sent {_sent_as(content_type)}, but this route "
                         f"takes JSON: send a JSON object of its fields with the header "
                         f"Content-Type: application/json (curl: -H 'Content-Type: "
                         f"application/json')")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            parts.append("the request body must be a JSON object of named fields")
        elif "Expected UploadFile" in msg:
            parts.append(f"{name} must be an uploaded file, not text: send it as a file field "
                         f"of a multipart/form-data form (curl: -F {name}=@FILE; a browser "
                         f"form: <input type=file name={name}>)")
        elif got is None and "." not in name:
            parts.append(f"{name} is null; leave the field out to use its default, or give "
                         f"a value ({msg.replace('Input should be', 'it must be')})")
        else:
            shown = json.dumps(got)[:80] if isinstance(got, (str, int, float, bool)) else None
            msg = msg.replace("Input should be", "must be")
            parts.append(f"{name} {msg[0].lower() + msg[1:] if msg else 'is invalid'}"
                         + (f", got {shown}" if shown is not None else ""))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, ("; ".join(parts) + more + f" ({DOCS_HINT} lists the fields, types and "
                 "ranges of every route)")


def _multipart_message(detail: str) -> str:
    """A form the multipart parser refused (starlette's ``MultiPartException`` texts)."""
    why = detail.rstrip(".")
    if why.startswith("Invalid multipart data"):
        why = ("malformed: a part without a proper header, a cut-off body, or a field name or "
               "header far too long")
    return (f"the multipart form could not be read ({why}); send each file as a form field "
            f"with a short name, as a browser or curl -F csv=@data.csv does, and text fields "
            f"under 1 MiB (see {DOCS_HINT})")


def _missing_package(err: ImportError) -> str:
    name = (err.name or "").split(".")[0]
    if str(err) != f"No module named {err.name!r}":
        return str(err)
    extra = EXTRAS.get(name, "all")
    return (f"the optional package {name!r} is missing on the server; install it with "
            f"pip install 'rnnkit[{extra}]' and restart the server")


def _answer(run: Callable[[], Any]) -> Any:
    """``run()``'s result, or the error response for what it raised: a refused request
    (:class:`RequestError`) or a library ``ValueError`` / ``TypeError`` with its own message
    (400), a missing optional package (501), memory (507), anything else a 500 naming only
    the error type (the traceback is logged)."""
    try:
        return run()
    except RequestError as err:
        return _error(err.status, err.message)
    except (ValueError, TypeError) as err:
        return _error(400, str(err) or type(err).__name__)
    except ImportError as err:
        return _error(501, _missing_package(err))
    except MemoryError:
        return _error(507, "not enough memory for this request; ask for less (a shorter "
                      "length, a smaller beam, a shorter file)")
    except Exception as err:  # noqa: BLE001 - the client gets a message, the log the traceback
        log.exception("request failed")
        return _error(500, f"internal error ({type(err).__name__}) while answering; the "
                      f"server's log has the details")


def _upload(file: UploadFile | None) -> Upload | None:
    if file is None:
        return None
    return Upload(file.filename or "", file.file.read())


# -- the app -----------------------------------------------------------------------------------
def create_app(models: dict[str, ServedModel], *,
               max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               allowed_hosts: list[str] | tuple[str, ...] = LOOPBACK_HOSTS,
               max_rows: int = DEFAULT_MAX_ROWS,
               max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS) -> Any:
    """The ASGI app serving ``models`` (from :func:`rnnkit.serve.models.load_models`):
    the FastAPI routes behind a :class:`~rnnkit.serve.guard.RequestGuard` that applies
    ``max_upload_mb`` (request bodies, MiB) and ``allowed_hosts`` (the host names the server
    answers to besides IP addresses; there is no "any"). ``max_rows`` caps the rows of an
    uploaded CSV and ``max_audio_seconds`` the length of an uploaded recording (413 beyond).

    The FastAPI app itself is the returned object's ``.app`` attribute."""
    if not models:
        raise ValueError("create_app needs at least one served model")
    if not max_upload_mb > 0:
        raise ValueError(f"max_upload_mb must be a positive number of MiB, got {max_upload_mb}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive whole number of rows, got {max_rows!r}")
    if not (isinstance(max_audio_seconds, (int, float)) and 0 < max_audio_seconds < math.inf):
        raise ValueError(f"max_audio_seconds must be a positive number of seconds, got "
                         f"{max_audio_seconds!r}")
    api = FastAPI(title="rnnkit serve", version=__version__, docs_url=None,
                  description="Local playground and JSON API over trained rnnkit models. "
                  "Models are referred to by the ids of GET /api/models.")
    limits = {"max_upload_mb": max_upload_mb, "max_text_chars": MAX_TEXT_CHARS,
              "max_rows": max_rows, "max_audio_seconds": max_audio_seconds}

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(list(exc.errors()),
                                              request.headers.get("content-type"))
        return _error(status, message)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            return _error(404, f"no such page or API route: {request.method} "
                          f"{request.url.path}; {ROUTES_HINT}")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}; "
                          f"{ROUTES_HINT}")
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return _error(400, f"the request body could not be read as the form or JSON this "
                          f"route takes; see {DOCS_HINT} for the fields of each route")
        if exc.status_code == 400 and "multipart" in request.headers.get("content-type", ""):
            return _error(400, _multipart_message(str(exc.detail)))
        return _error(exc.status_code, str(exc.detail))

    def lookup(model_id: str) -> ServedModel:
        sm = models.get(model_id)
        if sm is None:
            shown = model_id if len(model_id) <= 80 else model_id[:77] + "..."
            raise RequestError(404, f"no served model has the id {shown!r}; models are named "
                               f"by the ids GET /api/models lists ({', '.join(models)}), "
                               f"never by a file path")
        return sm

    def served(model_id: str, action: str) -> ServedModel:
        sm = lookup(model_id)
        if sm.action != action:
            raise RequestError(400, f"model {sm.id!r} is {KIND_NAMES[sm.kind]}: it answers "
                               f"POST /api/models/{sm.id}/{sm.action}, not {action}")
        return sm

    # -- page and listing ----------------------------------------------------------------------
    @api.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={
            "Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    api.mount("/static", StaticFiles(directory=STATIC), name="static")

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title="rnnkit serve - API docs")
        html = page.body.decode("utf-8").replace('<div id="swagger-ui">',
                                                 DOCS_NOTE + '<div id="swagger-ui">', 1)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @api.get("/api/models", summary="The served models")
    def list_models() -> dict[str, Any]:
        """Every served model: ``id`` (what the routes take), ``name`` (the model's file name;
        where the server keeps it is not shown), ``kind`` (``language_model``, ``classifier``,
        ``translator``, ``forecaster``, ``anomaly``, ``speech``), ``action`` and ``endpoint``
        (the route that runs it), ``summary`` (one line) and ``options`` (what its panel
        needs: classes, interval levels, ...); and the server's ``limits``
        (``max_upload_mb``, ``max_text_chars``, ``max_rows``, ``max_audio_seconds``)."""
        return {"models": [m.describe() for m in models.values()], "limits": limits}

    @api.get("/api/models/{model_id}", summary="One served model")
    def one_model(model_id: str) -> Any:
        """The entry of ``GET /api/models`` for ``model_id``; 404 for an id not served."""
        return _answer(lambda: lookup(model_id).describe())

    # -- actions -------------------------------------------------------------------------------
    @api.post("/api/models/{model_id}/generate", summary="Generate text (streamed)",
              responses={200: {"content": {"application/x-ndjson": {}}}})
    def generate(model_id: str, body: GenerateRequest) -> Any:
        """Continue ``prime`` with a language model, as ``rnnkit generate``.

        ``stream`` true (default): a ``application/x-ndjson`` response, one JSON object per
        line: ``{"token": piece}`` for each token as soon as it is sampled, then
        ``{"done": true, "text": continuation, "tokens": n, "seconds": s}`` (or
        ``{"error": message, "status": code}`` if sampling fails midway). ``stream`` false:
        the last object only (a failure: that status, 400 for settings the library refused).
        The continuation excludes the prime; the same ``seed`` gives the same text."""
        def run() -> Any:
            events = generation_events(served(model_id, "generate"), body.prime, body.length,
                                       body.temperature, body.top_k, body.top_p, body.seed)
            if not body.stream:
                *_, last = events
                if "error" in last:
                    return _error(last.get("status", 500), last["error"])
                return last
            return StreamingResponse(_ndjson(events), media_type="application/x-ndjson",
                                     headers={"Cache-Control": "no-store",
                                              "X-Accel-Buffering": "no"})

        return _answer(run)

    @api.post("/api/models/{model_id}/classify", summary="Classify a text")
    def classify_text(model_id: str, body: ClassifyRequest) -> Any:
        """Class probabilities of ``text``, as ``rnnkit classify predict``: ``label``,
        ``probabilities`` (class -> probability), ``classes``, ``pooling``, ``tokens``
        (``[{"text", "weight"}]``, the attention weight of each token, for models with
        attention pooling; ``null`` otherwise) and ``warnings``."""
        return _answer(lambda: classify(served(model_id, "classify"), body.text))

    @api.post("/api/models/{model_id}/translate", summary="Translate a text")
    def translate_text(model_id: str, body: TranslateRequest) -> Any:
        """Translate ``text`` with beam search (``beam`` 1: greedy), as ``rnnkit translate``:
        ``translation``, ``score``, ``score_name``, and for models with attention
        ``source_tokens``, ``target_tokens``, ``attention`` (``[target][source]`` weights) and
        ``heatmap_png`` (a ``data:image/png`` URI); ``warnings``."""
        return _answer(lambda: translate(served(model_id, "translate"), body.text, body.beam,
                                         body.max_len))

    @api.post("/api/models/{model_id}/forecast", summary="Forecast with intervals")
    def forecast_series(model_id: str, levels: LevelsForm = "", history: HistoryFile = None,
                        future: FutureFile = None) -> Any:
        """A multipart form. Forecasts ``horizon`` steps ahead, as ``rnnkit forecast
        predict``: ``horizon``, ``levels``, ``forecasts`` (per series and target: ``time``,
        ``mean``, ``lower`` / ``upper`` by level), ``plot_png`` (history, forecast and
        intervals) and ``warnings``."""
        return _answer(lambda: forecast(served(model_id, "forecast"), _upload(history),
                                        _upload(future), levels, max_rows=max_rows))

    @api.post("/api/models/{model_id}/detect", summary="Detect anomalies in a CSV")
    def detect_anomalies(model_id: str, csv: CsvFile, column: ColumnForm = "",
                         time: TimeForm = "") -> Any:
        """A multipart form. Flags anomalous rows with the detector: ``rows``, ``columns``,
        ``threshold``, ``flagged`` (row numbers from 0), ``flagged_rows`` (``row``, ``time``,
        ``values``, ``score``; the first 500), ``scores`` (every row's smoothed score),
        ``plot_png`` and ``warnings``. A CSV over the server's ``--max-rows`` is a 413."""
        return _answer(lambda: detect(served(model_id, "detect"), _upload(csv), column, time,
                                      max_rows=max_rows))

    @api.post("/api/models/{model_id}/transcribe", summary="Transcribe a WAV file")
    def transcribe_audio(model_id: str, audio: AudioFile, beam: BeamForm = 1,
                         lm_weight: LmWeightForm = 0.0) -> Any:
        """A multipart form. Transcribes the recording, as ``rnnkit speech transcribe``:
        ``text``, ``score``, ``seconds`` (audio duration), ``chars`` (``[character, time]``)
        and ``warnings``. A recording over the server's ``--max-audio-seconds`` is a 413, a
        header declaring a sample rate outside 4-192 kHz a 400."""
        return _answer(lambda: transcribe(served(model_id, "transcribe"), _upload(audio), beam,
                                          lm_weight, max_seconds=max_audio_seconds))

    guarded = RequestGuard(api, max_body_bytes=int(max_upload_mb * 2**20),
                           allowed_hosts=allowed_hosts)
    return guarded


def _ndjson(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event) + "\n"
