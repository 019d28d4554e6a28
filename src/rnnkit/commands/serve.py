r"""``rnnkit serve``: try trained models in the browser, or call them over a JSON API.

    rnnkit serve runs/demo/best.pt                      # then open http://127.0.0.1:8000/
    rnnkit serve runs/demo/best.pt runs/sentiment/best.pt forecast.pt asr.pt
    curl -s http://127.0.0.1:8000/api/models      # ids: demo-best, sentiment-best, forecast, asr
    curl -sN http://127.0.0.1:8000/api/models/demo-best/generate \
        -H 'Content-Type: application/json' -d '{"prime": "def ", "length": 100, "seed": 1}'

Every file is loaded at start-up with ``rnnkit.load`` (a file that is not a servable rnnkit
model is an error before the server starts). The page has one panel per kind: generate text
(streamed token by token), classify (per-token attention for attention pooling), translate
(attention heatmap), forecast (intervals and plot), detect anomalies in an uploaded CSV,
transcribe an uploaded WAV. It uses only the JSON API, whose schema is at /openapi.json and
docs at /docs (Swagger UI, which loads its script from a CDN).

Security defaults: the server listens on 127.0.0.1 only and answers only to the host names
127.0.0.1, localhost and ::1 (``--host 0.0.0.0`` exposes the models to your network: anyone
who can reach the port can run them); requests name models by the ids of /api/models, never
by a path; posts from pages of other origins are refused; request bodies are limited by
``--max-upload-mb``. Needs the ``serve`` extra: ``pip install 'rnnkit[serve]'``.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys

__all__ = ["register"]

DEFAULT_PORT = 8000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="a local web playground and JSON API over models",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="model files to serve: checkpoints of `rnnkit train text`, `classify "
                   "train`, `translate train`, and forecaster, anomaly-detector and speech "
                   "files (anything rnnkit.load reads that has a panel)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; "
                   "0.0.0.0 exposes the models to the network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="TCP port (default: %(default)s; 0: any free port, printed at start)")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest request body, e.g. an uploaded CSV or WAV, in MiB "
                   "(default: %(default)s)")
    p.set_defaults(func=_serve)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int):
    """A listening socket on ``host:port``, with an error naming the fix when it is taken."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ValueError(f"--host {host!r} is not an address of this machine ({err.strerror}); "
                         f"use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
                         ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise OSError(f"--port {port} on {host} is in use by another program; pick another "
                          f"with --port N (0: any free port)") from None
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another "
                      f"--port (ports below 1024 need root) or --host") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be from 0 (any free port) to 65535, got {args.port}")
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise ValueError(f"--max-upload-mb must be a positive number of MiB, got "
                         f"{args.max_upload_mb}")
    from importlib.util import find_spec

    try:
        import fastapi  # noqa: F401
        import uvicorn
        if find_spec("python_multipart") is None and find_spec("multipart") is None:
            raise ImportError("No module named 'python_multipart'", name="python_multipart")
    except ImportError as err:
        raise ImportError(f"rnnkit serve needs the optional packages fastapi, uvicorn and "
                          f"python-multipart ({err.name!r} is missing); install them with: "
                          f"pip install 'rnnkit[serve]'", name=err.name) from None
    from ..serve.app import create_app
    from ..serve.guard import LOOPBACK_HOSTS
    from ..serve.models import load_models

    models = load_models(args.checkpoints)  # every file checked before the port is taken
    loopback = _is_loopback(args.host)
    allowed = (*LOOPBACK_HOSTS, args.host) if loopback else None
    app = create_app(models, max_upload_mb=args.max_upload_mb, allowed_hosts=allowed)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for m in models.values():
        print(f"  {m.id:<16} {m.kind:<15} {m.name}: {m.summary}")
    if not loopback:
        print(f"warning: listening on {args.host}: anyone who can reach port {port} can run "
              f"these models; use --host 127.0.0.1 to keep them on this machine",
              file=sys.stderr)
    print(f"serving {len(models)} model(s) at http://{shown}:{port}/ (API docs: /docs); "
          f"Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
