"""The models ``rnnkit serve`` serves, and what each kind does with a request.

:func:`load_models` reads every file named on the command line with :func:`rnnkit.load` (the
one loader for every rnnkit file) and gives each a short, URL-safe id (:func:`model_ids`): the
API refers to models by these ids only, so no request can name a file. Each served kind has one
action and one handler here, plain Python without a web framework (text, bytes and numbers in,
JSON-able dicts out), which :mod:`rnnkit.serve.app` exposes as
``POST /api/models/{id}/{action}``:

========================  ==============  ===============================================
kind                      action          handler
========================  ==============  ===============================================
``language_model``        ``generate``    :func:`generation_events` (token by token)
``classifier``            ``classify``    :func:`classify` (per-token attention weights)
``translator``            ``translate``   :func:`translate` (attention matrix and heatmap)
``forecaster``            ``forecast``    :func:`forecast` (intervals, plot)
``anomaly``               ``detect``      :func:`detect` (on an uploaded CSV, plot)
``speech``                ``transcribe``  :func:`transcribe` (an uploaded WAV)
========================  ==============  ===============================================

Handlers call the same library functions as the CLI commands (``rnnkit generate``,
``classify predict``, ``translate``, ``forecast predict``, ``speech transcribe``) and raise
:class:`RequestError` (an HTTP status and a message naming the problem and the fix) for input
they refuse; the library's own ``ValueError`` / ``TypeError`` messages, which name the fix too,
become 400 responses in :mod:`rnnkit.serve.app`.

Inference is read-only (every model is in eval mode, gradients off), so requests for the same
model may run side by side in the server's thread pool; each collects its own warnings
(:func:`rnnkit.serve.capture.collected_warnings`).

Work grows with the input, so the handlers take the server's limits: ``max_rows`` (rows of an
uploaded CSV, ``--max-rows``) and ``max_seconds`` (audio length, ``--max-audio-seconds``);
input over a limit is a 413 naming the flag.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capture import STATE_LOCK, collected_warnings

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_AUDIO_SECONDS",
    "DEFAULT_MAX_ROWS",
    "MAX_LENGTH",
    "MAX_TEMPERATURE",
    "MAX_TEXT_CHARS",
    "RequestError",
    "ServedModel",
    "Upload",
    "classify",
    "detect",
    "forecast",
    "generation_events",
    "load_models",
    "model_ids",
    "transcribe",
    "translate",
]

#: served kind -> the action (last URL segment) it answers
ACTIONS: dict[str, str] = {
    "language_model": "generate",
    "classifier": "classify",
    "translator": "translate",
    "forecaster": "forecast",
    "anomaly": "detect",
    "speech": "transcribe",
}
#: the class :func:`rnnkit.load` returns -> the served kind
CLASS_KINDS: dict[str, str] = {
    "LanguageModel": "language_model",
    "TextClassifier": "classifier",
    "Translator": "translator",
    "Forecaster": "forecaster",
    "ForecastEnsemble": "forecaster",
    "AnomalyDetector": "anomaly",
    "AnomalyUnion": "anomaly",
    "SpeechRecognizer": "speech",
}
#: what each kind is, in words (errors and the page)
KIND_NAMES: dict[str, str] = {
    "language_model": "a language model",
    "classifier": "a text classifier",
    "translator": "a translator",
    "forecaster": "a forecaster",
    "anomaly": "an anomaly detector",
    "speech": "a speech recogniser",
}

#: most tokens one generate request may ask for
MAX_LENGTH = 5000
#: highest sampling temperature accepted (beyond it every token is about equally likely)
MAX_TEMPERATURE = 10.0
#: longest text (characters) a prime, a text to classify or to translate may have
MAX_TEXT_CHARS = 20_000
#: most flagged rows an anomaly response lists one by one (all are in ``flagged``)
MAX_LISTED_ROWS = 500
#: the default limit on the rows of an uploaded CSV (``--max-rows``)
DEFAULT_MAX_ROWS = 200_000
#: the default limit on the length of an uploaded recording, seconds (``--max-audio-seconds``)
DEFAULT_MAX_AUDIO_SECONDS = 600.0
#: most names an error message lists (then "... and N more")
MAX_LISTED_NAMES = 20


class RequestError(Exception):
    """Input a handler refuses: ``status`` (an HTTP 4xx code) and a ``message`` naming the
    problem and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Upload:
    """An uploaded file: the ``filename`` the browser gave (for messages only; nothing is
    ever read from or written to that name) and its bytes."""

    filename: str
    data: bytes


@dataclass
class ServedModel:
    """One model on the served list.

    Attributes:
        id: the URL-safe id requests use (:func:`model_ids`).
        name: the file's name, without its folder (shown on the page; the API never shows
            where the server's files are).
        kind: one of :data:`ACTIONS`' keys.
        summary: one line saying what the model is.
        model: the object :func:`rnnkit.load` returned.
        options: what the page needs to build the kind's panel (classes, levels, ...).
        path: the path as given on the command line (the server's console only).
    """

    id: str
    name: str
    kind: str
    summary: str
    model: Any
    options: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def action(self) -> str:
        """The action this model answers (``generate``, ``classify``, ...)."""
        return ACTIONS[self.kind]

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/models`` lists for this model."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "action": self.action,
                "endpoint": f"/api/models/{self.id}/{self.action}", "summary": self.summary,
                "options": self.options}


# -- loading -----------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_") or "model"


def model_ids(paths: Sequence[str]) -> list[str]:
    """A short, unique, URL-safe id per path: the file's stem, prefixed by its folder where
    stems repeat (``runs/a/best.pt`` and ``runs/b/best.pt``), numbered where even that
    repeats. Ids hold only ``a-z 0-9 _ -``, so none is a path.

    >>> model_ids(["runs/a/best.pt", "runs/b/best.pt", "lm.pt", "../x/lm.pt", "../x/lm.pt"])
    ['a-best', 'b-best', 'lm', 'x-lm', 'x-lm-2']
    """
    stems = [_slug(Path(p).stem) for p in paths]
    ids = [s if stems.count(s) == 1 else _slug(f"{Path(p).parent.name}-{s}")
           for p, s in zip(paths, stems)]
    out: list[str] = []
    for i in ids:
        new, k = i, 2
        while new in out:
            new, k = f"{i}-{k}", k + 1
        out.append(new)
    return out


def load_models(paths: Sequence[str]) -> dict[str, ServedModel]:
    """Load every file in ``paths`` with :func:`rnnkit.load` and return the served models by
    id, in the order given. A missing, unreadable or non-rnnkit file, or an rnnkit file that
    has no panel (a tokenizer, an n-gram LM), raises a ``ValueError`` / ``OSError`` naming the
    file and what to give instead."""
    from ..saving import load

    if not paths:
        raise ValueError("give at least one model file to serve, e.g. rnnkit serve "
                         "runs/demo/best.pt")
    served: dict[str, ServedModel] = {}
    for mid, path in zip(model_ids(paths), paths):
        obj = load(path)
        kind = CLASS_KINDS.get(type(obj).__name__)
        if kind is None:
            raise ValueError(f"{path} holds a {type(obj).__name__}, which rnnkit serve has no "
                             f"panel for; serve a model: a language model, text classifier, "
                             f"translator, forecaster, anomaly detector or speech recogniser")
        if kind == "language_model" and obj.tokenizer is None:
            raise ValueError(f"{path} is a language model without a tokenizer, so it cannot "
                             f"turn text into tokens; serve a checkpoint of `rnnkit train text`")
        served[mid] = ServedModel(mid, Path(path).name, kind, summarize(obj, kind), obj,
                                  panel_options(obj, kind), os.fspath(path))
    return served


def _members(model: Any) -> list[Any]:
    """A forecaster's members (an ensemble's, or the model itself)."""
    return list(getattr(model, "members", [model]))


def _detectors(model: Any) -> list[Any]:
    """An anomaly model's detectors (a union's, or the detector itself)."""
    return list(getattr(model, "detectors", [model]))


def summarize(obj: Any, kind: str) -> str:
    """One line saying what a served model is."""
    if kind == "language_model":
        c, tok = obj.config, obj.tokenizer
        return (f"{c.cell} language model, {c.num_layers} x {c.hidden_size} units, "
                f"{tok.kind}-level vocabulary of {len(tok)} tokens")
    if kind == "classifier":
        c = obj.model.config
        return (f"text classifier ({c.cell}, {c.pooling} pooling) over "
                f"{len(obj.vocab)} tokens; classes: {', '.join(obj.classes)}")
    if kind == "translator":
        c = obj.model.config
        return (f"translator ({c.cell} encoder-decoder, {c.attention} attention), "
                f"{len(obj.src_vocab)} source / {len(obj.tgt_vocab)} target tokens")
    if kind == "forecaster":
        members = _members(obj)
        c = members[0].config
        ens = f", mean of {len(members)} networks" if len(members) > 1 else ""
        names = [s.name for s in members[0].series]
        return (f"forecaster ({c.cell}, {c.head} head{ens}): {c.horizon} steps ahead from the "
                f"last {c.input_len}; series: {', '.join(names[:5])}"
                + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
    if kind == "anomaly":
        dets = _detectors(obj)
        methods = " + ".join(d.config.method for d in dets)
        return (f"anomaly detector ({methods}, input_len "
                f"{', '.join(str(d.config.input_len) for d in dets)}) of "
                f"{dets[0].n_features} column(s)")
    c = obj.config
    return (f"speech recogniser ({c.cell}, {c.num_layers} x {c.hidden_size}, "
            f"{'bi' if c.bidirectional else 'uni'}directional, {c.rate} Hz), "
            f"{len(obj.alphabet) - 1} symbols" + (", n-gram LM" if obj.lm is not None else ""))


def panel_options(obj: Any, kind: str) -> dict[str, Any]:
    """What the page needs to lay out the panel of a model of ``kind``."""
    if kind == "language_model":
        return {"level": obj.tokenizer.kind, "max_length": MAX_LENGTH,
                "max_temperature": MAX_TEMPERATURE}
    if kind == "classifier":
        return {"classes": list(obj.classes), "attention": obj.model.attention is not None}
    if kind == "translator":
        from ..commands.translate import MAX_BEAM

        return {"attention": obj.model.attention is not None, "max_beam": MAX_BEAM}
    if kind == "forecaster":
        from ..commands.forecast import _trained_columns

        first = _members(obj)[0]
        return {"horizon": first.config.horizon, "input_len": first.config.input_len,
                "head": first.config.head, "levels": list(first.config.interval_levels()),
                "series": [s.name for s in first.series],
                "history_columns": _trained_columns(first, "past_covariates"),
                "future_columns": list(first.series[0].future_names)}
    if kind == "anomaly":
        dets = _detectors(obj)
        return {"columns": dets[0].n_features,
                "min_rows": max(d.config.input_len for d in dets) + 2}
    from ..speech.config import DecodeConfig

    return {"rate": obj.config.rate, "max_beam": DecodeConfig.MAX_BEAM,
            "lm": obj.lm is not None}


# -- shared helpers ----------------------------------------------------------------------------
#: the library's warnings (unknown words, clipped audio) of one request, for its response
_collected_warnings = collected_warnings


def _clip(text: Any, limit: int = 60) -> str:
    """``repr`` of a name from the user, shortened to about ``limit`` characters.

    >>> _clip("value"), _clip("x" * 100, 10)
    ("'value'", "'xxxxxxx...'")
    """
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:max(limit - 3, 1)] + "...")


def listed(names: Sequence[Any], limit: int = MAX_LISTED_NAMES) -> str:
    """Names for a message: at most ``limit`` of them, each shortened, then how many more.

    >>> listed(["a", "b"]), listed([f"c{i}" for i in range(100)], 3)
    ("['a', 'b']", "['c0', 'c1', 'c2', ... and 97 more]")
    """
    names = list(names)
    shown = ", ".join(_clip(n) for n in names[:limit])
    more = len(names) - limit
    return f"[{shown}{f', ... and {more:,} more' if more > 0 else ''}]"


def _text(value: str, what: str, blank_ok: bool = False) -> str:
    """``value`` checked to be text, not blank (unless ``blank_ok``: a prime of whitespace is
    fine) and at most :data:`MAX_TEXT_CHARS` long."""
    if not isinstance(value, str) or not value or (not blank_ok and not value.strip()):
        raise RequestError(400, f"{what} is empty; give some text to work on")
    if len(value) > MAX_TEXT_CHARS:
        raise RequestError(413, f"{what} has {len(value):,} characters, more than the "
                           f"{MAX_TEXT_CHARS:,} one request may send; send a shorter text")
    return value


def _token_texts(vocab: Any, text: str, ids: list[int]) -> list[str]:
    """The piece of ``text`` behind each of its token ``ids`` (the tokenizer's offsets, so
    unknown words show as written), else each id's own spelling."""
    tok = getattr(vocab, "tokenizer", None)
    if tok is not None and hasattr(tok, "encode"):
        try:
            enc = tok.encode(text, add_special_tokens=False)
            if list(enc.ids) == list(ids):
                return [text[a:b] for a, b in enc.offsets]
        except (TypeError, AttributeError, ValueError):
            pass
    return [_spelling(vocab, i) for i in ids]


def _spelling(vocab: Any, i: int) -> str:
    tok = getattr(vocab, "tokenizer", None)
    if tok is not None and hasattr(tok, "id_to_token"):
        return str(tok.id_to_token(int(i)))
    return vocab.decode([int(i)]) or f"<{int(i)}>"


def _tempfile_errors(err: Exception, path: Path, label: str, name: str = "") -> str:
    """A library message about a temporary copy of an upload, in terms of the upload: its
    path is ``label``, and its bare file name (in suggested commands) the upload's ``name``
    (``INPUT`` when it had none)."""
    message = str(err).replace(str(path), label)
    return re.sub(rf"(?<![\w.-]){re.escape(path.name)}\b", os.path.basename(name) or "INPUT",
                  message)


def _upload_label(upload: Upload, what: str) -> str:
    name = os.path.basename(upload.filename or "")
    return f"the uploaded {what}" + (f" {name!r}" if name else "")


def read_upload_csv(upload: Upload, what: str, needs: str | None = None,
                    max_rows: int = DEFAULT_MAX_ROWS) -> Any:
    """The uploaded CSV as a DataFrame, checked by the library's reader
    (:func:`rnnkit.data.timeseries.read_csv`: encoding, binary content, no rows, ...), its
    messages naming the upload; more than ``max_rows`` rows is a 413 naming ``--max-rows``."""
    from ..data.timeseries import read_csv

    label = _upload_label(upload, what)
    with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(upload.data)
        try:
            df = read_csv(path, None, needs)
        except (ValueError, OSError) as err:
            raise RequestError(400, _tempfile_errors(err, path, label)) from None
    if len(df) > max_rows:
        raise RequestError(413, f"{label} has {len(df):,} rows, more than this server's limit "
                           f"of {max_rows:,}; send at most {max_rows:,} rows (e.g. the most "
                           f"recent ones), or restart the server with a higher --max-rows")
    return df


def _check_columns(df: Any, wanted: list[str], label: str) -> None:
    """The CSV ``label`` holds the columns the model was trained on (as ``rnnkit forecast
    predict`` checks, with shortened lists)."""
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise RequestError(400, f"{label} lacks the column(s) {listed(missing)} the model was "
                           f"trained on; give a CSV with the columns {listed(wanted)} (it has "
                           f"{listed(df.columns)})")


def _png(draw: Any) -> str:
    from .plots import png_data_uri

    return png_data_uri(draw)


def _time_value(t: Any) -> Any:
    """A time stamp as JSON: ISO text for datetimes, a number for integer steps."""
    if hasattr(t, "isoformat"):
        return t.isoformat()
    if hasattr(t, "item"):
        return t.item()
    return t


def _floats(values: Any) -> list[float | None]:
    """Numbers as JSON (NaN/inf -> null)."""
    return [float(v) if math.isfinite(float(v)) else None for v in values]


# -- generate ----------------------------------------------------------------------------------
def generation_events(served: ServedModel, prime: str, length: int, temperature: float,
                      top_k: int | None, top_p: float | None,
                      seed: int | None) -> Iterator[dict[str, Any]]:
    """Continue ``prime`` with the language model, as events: ``{"token": piece}`` per token
    as soon as it is sampled, then ``{"done": true, "text": the continuation, "tokens": n,
    "seconds": s}`` (or ``{"error": message, "status": code}`` if sampling fails midway: 400
    when the library refused the settings, 500 otherwise). The settings are
    checked here, before the first event, so a bad request fails as a whole
    (:class:`RequestError` or ``ValueError``). The same ``seed`` gives the same text as
    ``rnnkit generate --seed``."""
    from ..decoding.sampling import check_sampling

    lm = served.model
    _text(prime, "prime (the text the model continues)", blank_ok=True)
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH:
        raise RequestError(400, f"length must be a number of tokens from 1 to {MAX_LENGTH}, "
                           f"got {length!r}")
    if isinstance(temperature, (int, float)) and temperature > MAX_TEMPERATURE:
        raise RequestError(400, f"temperature must be at most {MAX_TEMPERATURE:g} (0: greedy, "
                           f"1: the model's own distribution), got {temperature!r}")
    check_sampling(temperature, top_k, top_p)
    if not lm.tokenizer.encode(prime):
        raise RequestError(400, "the prime encodes to no tokens; give at least one character")
    return _events(lm.stream_text(prime, length, temperature, top_k, top_p, seed))


def _events(pieces: Iterator[str]) -> Iterator[dict[str, Any]]:
    start, out = time.perf_counter(), []
    try:
        for piece in pieces:
            out.append(piece)
            yield {"token": piece}
    except (ValueError, RuntimeError) as err:  # the status line is sent: report in the stream
        yield {"error": f"generation stopped after {len(out)} tokens: {err}",
               "status": 400 if isinstance(err, ValueError) else 500}
        return
    yield {"done": True, "text": "".join(out), "tokens": len(out),
           "seconds": round(time.perf_counter() - start, 4)}


# -- classify ----------------------------------------------------------------------------------
def classify(served: ServedModel, text: str) -> dict[str, Any]:
    """Class probabilities of ``text`` (as ``rnnkit classify predict``) and, for a model with
    attention pooling, each token's attention weight.

    Returns ``label`` (the most probable class), ``probabilities`` (class -> probability, in
    the model's class order), ``classes``, ``pooling``, ``tokens`` (``[{"text", "weight"}]``
    over the text's tokens, weights summing to 1; ``null`` without attention pooling) and
    ``warnings`` (e.g. a text mostly unknown to the vocabulary)."""
    from ..data.vocab import unknown_warnings

    clf = served.model
    text = _text(text, "text")
    with _collected_warnings() as notes:
        probs = clf.predict_proba([text])[0].tolist()
        tokens = _attention_tokens(clf, text) if clf.model.attention is not None else None
    notes[:0] = unknown_warnings(clf.vocab, [text], ["the text"])
    best = max(range(len(probs)), key=probs.__getitem__)
    return {"label": clf.classes[best],
            "probabilities": {c: float(p) for c, p in zip(clf.classes, probs)},
            "classes": list(clf.classes), "pooling": clf.model.config.pooling,
            "tokens": tokens, "warnings": notes}


def _attention_tokens(clf: Any, text: str) -> list[dict[str, Any]]:
    """Per-token weights of an attention-pooling classifier on ``text``: the model's own
    encoder and attention modules, run as its ``pool`` runs them."""
    import torch

    from ..attention import lengths_to_mask
    from ..text.classifier import encode_sequence

    model = clf.model
    x, lengths = clf.encode([text])
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out, _, lengths = encode_sequence(model.embed, model.rnn, x, lengths,
                                              model.in_drop)
            mask = lengths_to_mask(lengths, out.shape[1], device=out.device)
            _, weights = model.attention(model.query.expand(1, -1), out, mask=mask)
    finally:
        model.train(was)
    n = int(lengths[0])
    ids = x[0, :n].tolist()
    return [{"text": t, "weight": float(w)}
            for t, w in zip(_token_texts(clf.vocab, text, ids), weights[0, :n].tolist())]


# -- translate ---------------------------------------------------------------------------------
def translate(served: ServedModel, text: str, beam: int = 5,
              max_len: int | None = None) -> dict[str, Any]:
    """Translate ``text`` with beam search (``beam`` 1: greedy), as ``rnnkit translate``.

    Returns ``translation``, ``score`` and ``score_name`` (what the score is), and for a model
    with attention ``source_tokens``, ``target_tokens`` (ending in ``<eos>``), ``attention``
    (``[target][source]`` weights, teacher-forced on the translation, rows summing to 1) and
    ``heatmap_png`` (a ``data:image/png`` URI of the library's heatmap); ``null`` without
    attention. ``warnings``: e.g. a text mostly unknown to the source vocabulary."""
    import torch

    from ..commands.translate import MAX_BEAM, MAX_LEN, MAX_LEN_FACTOR, _score_name
    from ..data.vocab import unknown_warnings
    from ..text.translation import save_attention_heatmap

    tr = served.model
    text = _text(text, "text")
    if not isinstance(beam, int) or isinstance(beam, bool) or not 1 <= beam <= MAX_BEAM:
        raise RequestError(400, f"beam must be from 1 (greedy) to {MAX_BEAM}, got {beam!r} "
                           f"(5-10 is usual)")
    longest = MAX_LEN_FACTOR * tr.max_len if tr.max_len else MAX_LEN
    if max_len is not None and not 1 <= max_len <= longest:
        raise RequestError(400, f"max_len must be from 1 to {longest} target tokens, got "
                           f"{max_len!r}; leave it out for the model's own")
    with _collected_warnings() as notes:
        translation, score = tr.translate([text], beam_size=beam, max_len=max_len)[0]
    notes[:0] = unknown_warnings(tr.src_vocab, [text], ["the text"])
    result: dict[str, Any] = {"translation": translation, "score": float(score),
                              "score_name": _score_name(beam, 1.0), "source_tokens": None,
                              "target_tokens": None, "attention": None, "heatmap_png": None,
                              "warnings": notes}
    if tr.model.attention is None:
        notes.append("this model has no attention (attention='none'), so there is no heatmap")
        return result
    src_ids = tr.src_vocab.encode(text) or [tr.src_vocab.unk_id]
    tgt_ids = tr.tgt_vocab.encode(translation, bos=True, eos=True)
    weights = tr.model.attention_map(torch.tensor(src_ids), torch.tensor(tgt_ids))  # [T, S]
    src_tokens = _token_texts(tr.src_vocab, text, src_ids)
    tgt_tokens = [_spelling(tr.tgt_vocab, i) for i in tgt_ids[1:]]
    title = text if len(text) <= 60 else text[:57] + "..."
    result.update(source_tokens=src_tokens, target_tokens=tgt_tokens,
                  attention=weights.tolist(),
                  heatmap_png=_png(lambda path: save_attention_heatmap(
                      weights, src_tokens, tgt_tokens, path, title=title)))
    return result


# -- forecast ----------------------------------------------------------------------------------
def parse_levels(levels: str | Sequence[float] | None) -> tuple[float, ...] | None:
    """Interval levels from the form field (``"80, 95"``; empty: the model's default).

    >>> parse_levels("80, 95"), parse_levels(""), parse_levels([50])
    ((80.0, 95.0), None, (50.0,))
    """
    if levels is None:
        return None
    if isinstance(levels, str):
        parts = [p for p in re.split(r"[,\s]+", levels.strip()) if p]
        if not parts:
            return None
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise RequestError(400, f"levels must be percentages separated by commas, e.g. "
                               f"80, 95; got {levels!r}") from None
    else:
        values = tuple(float(v) for v in levels)
    bad = [v for v in values if not 0 < v < 100]
    if bad:
        raise RequestError(400, f"levels must each lie strictly between 0 and 100 (central "
                           f"interval widths in percent, e.g. 80, 95); got {bad}")
    return values


def forecast(served: ServedModel, history: Upload | None = None,
             future: Upload | None = None,
             levels: str | Sequence[float] | None = None,
             max_rows: int = DEFAULT_MAX_ROWS) -> dict[str, Any]:
    """Forecast ``horizon`` steps ahead with prediction intervals, as ``rnnkit forecast
    predict``: from the end of the training data, or from an uploaded ``history`` CSV with
    the model's training columns; ``future``: the known-future covariates' next ``horizon``
    values (models trained with them only); ``levels``: interval levels in percent (empty:
    the model's default); ``max_rows``: the most rows either CSV may have (413 beyond).

    Returns ``horizon``, ``levels``, ``forecasts`` (per series and target: ``series``,
    ``target``, ``time`` (ISO dates or step numbers), ``mean``, and ``lower`` / ``upper``
    by level) and ``plot_png`` (history, forecast and intervals; a ``data:image/png`` URI)."""
    from ..commands.forecast import _trained_columns
    from ..forecast.plots import plot_forecast

    model = served.model
    first = _members(model)[0]
    known = list(first.series[0].future_names)
    if known and future is None:
        raise RequestError(400, f"this model uses known-future covariates {known}: upload their "
                           f"next {first.config.horizon} values as the 'future' CSV (the time"
                           f"{', series' if first.columns.get('series') else ''} and covariate "
                           f"columns)")
    lv = parse_levels(levels)
    hist = fut = None
    if history is not None:
        wanted = _trained_columns(first, "past_covariates")
        hist = read_upload_csv(history, "history CSV", needs=f"the model's columns {wanted}",
                               max_rows=max_rows)
        _check_columns(hist, wanted, _upload_label(history, "history CSV"))
    if future is not None:
        wanted = _trained_columns(first, "future_covariates")
        fut = read_upload_csv(future, "future CSV", needs=f"the columns {wanted}",
                              max_rows=max_rows)
        _check_columns(fut, wanted, _upload_label(future, "future CSV"))
    with _collected_warnings() as notes:
        fc = model.predict(history=hist, future=fut, levels=lv)
    rows = []
    for i, name in enumerate(fc.names):
        for j, target in enumerate(fc.target_names):
            rows.append({"series": name, "target": target,
                         "time": [_time_value(t) for t in fc.time[i]],
                         "mean": _floats(fc.mean[i][:, j]),
                         "lower": {f"{k:g}": _floats(fc.lower[k][i][:, j])
                                   for k in sorted(fc.lower)},
                         "upper": {f"{k:g}": _floats(fc.upper[k][i][:, j])
                                   for k in sorted(fc.upper)}})
    plot = _png(lambda path: plot_forecast(model._history(hist), fc, path))
    return {"horizon": first.config.horizon, "levels": [f"{k:g}" for k in sorted(fc.lower)],
            "forecasts": rows, "plot_png": plot, "warnings": notes}


# -- detect ------------------------------------------------------------------------------------
def detect(served: ServedModel, csv: Upload, column: str | None = None,
           time_column: str | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> dict[str, Any]:
    """Flag anomalous rows of an uploaded CSV with the detector (its threshold and scores as
    fitted). ``column``: the numeric column(s) to check (comma-separated for a detector of
    several columns; default: the CSV's numeric columns when there are as many as the detector
    takes); ``time_column``: an optional time column (rows must then be in time order; the
    plot's x-axis); ``max_rows``: the most rows the CSV may have (413 beyond).

    Returns ``rows``, ``columns`` (those checked), ``threshold``, ``flagged`` (every flagged
    row number, from 0), ``flagged_rows`` (the first 500: ``row``, ``time``, ``values``,
    ``score``), ``scores`` (the smoothed score of every row) and ``plot_png`` (drawn from at
    most a few thousand rows of a long CSV, spikes and flags kept:
    :func:`rnnkit.serve.plots.decimate`)."""
    import numpy as np
    import pandas as pd

    from ..anomaly import plot_anomalies
    from ..data.timeseries import check_time_order
    from .plots import decimate

    det = served.model
    width = _detectors(det)[0].n_features
    label = _upload_label(csv, "CSV")
    df = read_upload_csv(csv, "CSV", needs="a numeric column of values", max_rows=max_rows)
    names = [c.strip() for c in (column or "").split(",") if c.strip()]
    time_column = (time_column or "").strip() or None
    for name in [*names, *([time_column] if time_column else [])]:
        if name not in df.columns:
            raise RequestError(400, f"{_clip(name)} is not a column of {label}; choose from its "
                               f"columns {listed(df.columns)}")
    numeric = [c for c in df.columns
               if c != time_column and pd.api.types.is_numeric_dtype(df[c])]
    if not names:
        if not numeric:
            raise RequestError(400, f"{label} has no numeric column (columns "
                               f"{listed(df.columns)}); upload a CSV with a column of numbers, "
                               f"e.g. a header 'value' and one number per row")
        if len(numeric) != width:
            raise RequestError(400, f"{label} has {len(numeric)} numeric columns "
                               f"{listed(numeric)} and the detector checks {width}; name the "
                               f"column{'s' if width > 1 else ''} to check in 'column'"
                               + (" (comma-separated)" if width > 1 else ""))
        names = numeric
    for name in names:
        if not pd.api.types.is_numeric_dtype(df[name]):
            raise RequestError(400, f"column {_clip(name)} of {label} is not numeric "
                               f"({df[name].dtype}); pick a numeric column: {listed(numeric)}")
    if len(names) != width:
        raise RequestError(400, f"the detector checks {width} column(s), got {len(names)} "
                           f"({listed(names)}); name {width} numeric column(s) in 'column'")
    times = check_time_order(df[time_column], time_column) if time_column else None
    y = df[names].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise RequestError(400, f"{listed(names)} of {label} hold "
                           f"{int((~np.isfinite(y)).sum())} empty/NaN/inf values; fill or drop "
                           f"those rows and upload again")
    values = y[:, 0] if width == 1 else y
    with _collected_warnings() as notes:
        detection = det.detect(values)
    flagged = np.nonzero(detection.flags)[0]
    tvals = None if times is None else times.to_numpy()
    rows = [{"row": int(i), "time": None if tvals is None else _time_value(times.iloc[i]),
             "values": _floats(y[i]), "score": float(detection.smoothed[i])}
            for i in flagged[:MAX_LISTED_ROWS]]
    title = f"{', '.join(names)} ({' + '.join(d.config.method for d in _detectors(det))})"
    if len(title) > 120:
        title = title[:117] + "..."
    # a long CSV is drawn from a few thousand of its rows (each bucket's extremes and flags)
    idx = decimate(len(y), [*y.T[:8], detection.smoothed], keep=detection.flags)
    shown = dataclasses.replace(detection, scores=detection.scores[idx],
                                smoothed=detection.smoothed[idx], flags=detection.flags[idx],
                                extra={})
    plot = _png(lambda path: plot_anomalies(values[idx], shown, None, path, title=title,
                                            time=idx if tvals is None else tvals[idx]))
    return {"rows": len(y), "columns": names, "threshold": float(detection.threshold),
            "flagged": flagged.tolist(), "flagged_rows": rows,
            "scores": _floats(detection.smoothed), "plot_png": plot, "warnings": notes}


# -- transcribe --------------------------------------------------------------------------------
def _is_wav(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE"


def transcribe(served: ServedModel, audio: Upload, beam: int = 1,
               lm_weight: float = 0.0,
               max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS) -> dict[str, Any]:
    """Transcribe an uploaded WAV file (any rate and channels; resampled to the model's), as
    ``rnnkit speech transcribe``: greedy CTC (``beam`` 1) or prefix beam search, with the
    model's n-gram LM weighted by ``lm_weight`` when it has one.

    The WAV's header is checked before any sample is decoded: a recording longer than
    ``max_seconds`` is a 413 naming ``--max-audio-seconds``, a sample rate outside 4-192 kHz
    (a crafted header that would cost gigabytes to resample) a 400
    (:func:`rnnkit.speech.audio.load_audio`).

    Returns ``text``, ``score``, ``seconds`` (the audio's duration), ``chars``
    (``[character, time in s]`` of each emitted character) and ``warnings`` (e.g. clipping)."""
    from ..speech.config import DecodeConfig

    rec = served.model
    label = _upload_label(audio, "audio")
    if not audio.data:
        raise RequestError(400, f"{label} is empty (0 bytes); upload a WAV recording")
    if not _is_wav(audio.data):
        head = audio.data[:4]
        raise RequestError(415, f"{label} is not a WAV file (it starts with {head!r}, not "
                           f"RIFF....WAVE); convert it, e.g. `ffmpeg -i INPUT -ar "
                           f"{rec.config.rate} -ac 1 out.wav`, and upload that")
    if lm_weight and rec.lm is None:
        raise RequestError(400, "lm_weight needs the model's n-gram LM and this recogniser has "
                           "none; send lm_weight 0 (or train with `rnnkit speech train "
                           "--lm-order 3`)")
    try:
        decode = DecodeConfig(beam_size=beam, lm_weight=lm_weight)
    except ValueError as err:
        raise RequestError(400, str(err).replace("beam_size", "beam")) from None
    from ..speech.audio import load_audio

    with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as folder:
        path = Path(folder) / "upload.wav"
        path.write_bytes(audio.data)
        seconds = _declared_seconds(path)
        if seconds is not None and seconds > max_seconds:
            raise RequestError(413, f"{label} is {seconds:,.1f} s of audio, longer than this "
                               f"server's limit of {max_seconds:g} s; upload a shorter "
                               f"recording (e.g. `ffmpeg -i INPUT -t {max_seconds:g} "
                               f"out.wav`), or restart the server with a higher "
                               f"--max-audio-seconds")
        try:
            with _collected_warnings() as notes:
                with STATE_LOCK:  # load_audio swaps the warning machinery itself
                    samples = load_audio(path, rec.config.rate, max_seconds=max_seconds)
                out = rec.decode_log_probs(rec.log_probs(samples), decode)
        except ValueError as err:
            raise RequestError(400, _tempfile_errors(err, path, label, audio.filename)) from None
    notes = [n.replace(str(path), label) for n in notes]
    return {"text": out.text, "score": float(out.score),
            "seconds": round(len(samples) / rec.config.rate, 3),
            "chars": [[c, round(t, 3)] for c, t in out.chars], "warnings": notes}


def _declared_seconds(path: Path) -> float | None:
    """The duration a sound file's header declares (``None`` when soundfile cannot read the
    header or its sample rate is absurd: :func:`~rnnkit.speech.audio.load_audio` then says
    what is wrong)."""
    import soundfile

    from ..speech.audio import MAX_FILE_RATE, MIN_FILE_RATE

    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError):
        return None
    if not MIN_FILE_RATE <= info.samplerate <= MAX_FILE_RATE:
        return None
    return info.frames / info.samplerate
