"""``rnnkit serve``: a local web playground and JSON API over trained rnnkit models.

    rnnkit serve runs/demo/best.pt runs/sentiment/best.pt forecast.pt --port 8000

The models named on the command line are loaded once with :func:`rnnkit.load` and served at
``http://127.0.0.1:8000``: a page with one panel per kind (generate text, classify with
attention, translate with an attention heatmap, forecast with intervals, detect anomalies in a
CSV, transcribe a WAV) that uses only the JSON API, and the API itself (OpenAPI schema at
``/openapi.json``, interactive docs at ``/docs``).

The wing has one concept per module:

* :mod:`rnnkit.serve.models`: loading the served models and one handler per kind (plain
  Python, no web framework: text, bytes and numbers in, JSON-able dicts out);
* :mod:`rnnkit.serve.app`: the FastAPI routes, request schemas and error responses;
* :mod:`rnnkit.serve.guard`: the ASGI guard in front of them (allowed hosts, same-origin
  posts, the upload size limit, security headers);
* :mod:`rnnkit.serve.capture`: each request's own warnings, collected safely side by side;
* :mod:`rnnkit.serve.plots`: PNG plots drawn by the library's own plot functions, as data URIs;
* ``static/``: ``index.html`` and ``app.js``, the page.

Importing this package is cheap; FastAPI is imported by :mod:`rnnkit.serve.app` only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_models"]


def load_models(paths: list[str]) -> Any:
    """:func:`rnnkit.serve.models.load_models` (imported on first use)."""
    from .models import load_models as _load

    return _load(paths)


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`rnnkit.serve.app.create_app` (imports FastAPI on first use)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)
