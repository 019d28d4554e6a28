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
docs at /docs (Swagger UI, which loads its script from a CDN: offline, read /openapi.json).

Security defaults: the server listens on 127.0.0.1 only (``--host 0.0.0.0`` exposes the
models to your network: anyone who can reach the port can run them). Whatever it listens on,
it answers only to IP addresses and to the names localhost, this machine's host name and
FQDN, the ``--host`` name and each ``--allow-host NAME`` (other names are refused, a guard
against DNS rebinding); requests name models by the ids of /api/models, never by a path, and
the listing shows file names, not where they are; posts from pages of other origins are
refused; request bodies are limited by ``--max-upload-mb``, CSV rows by ``--max-rows`` and
recordings by ``--max-audio-seconds`` (over a limit: 413 naming the flag). Ctrl-C stops the
server within a few seconds, cutting off work in progress. Needs the ``serve`` extra:
``pip install 'rnnkit[serve]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import re
import sys

__all__ = ["register"]

DEFAULT_PORT = 8000
#: seconds work in progress gets after Ctrl-C before the server closes its connections
GRACEFUL_SHUTDOWN_S = 3
#: a host name: dot-separated labels of letters, digits, "-" and "_" (an optional final dot)
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$", re.IGNORECASE)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="a local web playground and JSON API over models",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="model files to serve: checkpoints of `rnnkit train text`, `classify "
                   "train`, `translate train`, and forecaster, anomaly-detector and speech "
                   "files (anything rnnkit.load reads that has a panel)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address or host name to listen on (default: %(default)s, this "
                   "machine only; a name that resolves to loopback addresses only stays "
                   "local; 0.0.0.0 exposes the models to the network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="TCP port (default: %(default)s; 0: any free port, printed at start)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer to requests for this host name (repeatable), e.g. the "
                   "name a reverse proxy or another machine uses; IP addresses, localhost and "
                   "this machine's own names are always answered")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest request body, e.g. an uploaded CSV or WAV, in MiB "
                   "(default: %(default)s)")
    p.add_argument("--max-rows", type=int, default=200_000,
                   help="most rows of an uploaded CSV (detect, forecast history) "
                   "(default: %(default)s)")
    p.add_argument("--max-audio-seconds", type=float, default=600.0,
                   help="longest uploaded recording to transcribe, in seconds "
                   "(default: %(default)s)")
    p.set_defaults(func=_serve)


def _addresses(host: str) -> list[str]:
    """The IP addresses ``--host`` stands for (an address: itself; a name: what it resolves
    to), with an error naming the fix when a name does not resolve."""
    import socket

    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ValueError(f"--host {host!r} is not an address or a name of this machine "
                         f"({err.strerror}); use 127.0.0.1 (this machine only) or 0.0.0.0 "
                         f"(every interface)") from None
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


def _is_loopback(host: str) -> bool:
    """Whether ``--host`` keeps the server on this machine: a loopback address, or a name
    (``localhost``, a host name mapped to 127.0.1.1 in /etc/hosts) all of whose addresses are
    loopback ones."""
    if host.lower().rstrip(".") == "localhost":
        return True
    addresses = _addresses(host)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The host names the server answers to (IP addresses are always answered): localhost,
    this machine's names, ``--host`` when it is a name, and each ``--allow-host``."""
    from ..serve.guard import LOOPBACK_HOSTS, host_name, is_ip_address, machine_host_names

    for name in extra:
        if not _HOST_NAME.match(name):
            raise ValueError(f"--allow-host takes a host name as a browser sends it, e.g. "
                             f"myserver.lan, without scheme, port or path; got {name!r}")
    names = [*LOOPBACK_HOSTS, *machine_host_names(), *(host_name(n) for n in extra)]
    if not is_ip_address(host_name(host)):
        names.append(host_name(host))
    return list(dict.fromkeys(names))


def _url(host: str, bound: str, port: int) -> str:
    """The URL to open: the ``--host`` name as given, a loopback address for a server on every
    interface (0.0.0.0 is not an address a browser can open), else the bound address."""
    from ..serve.guard import is_ip_address

    if not is_ip_address(host.strip("[]")):
        name = host
    elif ipaddress.ip_address(bound).is_unspecified:
        name = "127.0.0.1" if ipaddress.ip_address(bound).version == 4 else "::1"
    else:
        name = bound
    return f"http://{f'[{name}]' if ':' in name else name}:{port}/"


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


class _QuietCutOff(logging.Filter):
    """Drops uvicorn's traceback of a request cut off at Ctrl-C (after
    :data:`GRACEFUL_SHUTDOWN_S`): stopping is what was asked; uvicorn's own line says how many
    requests were cut off."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be from 0 (any free port) to 65535, got {args.port}")
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise ValueError(f"--max-upload-mb must be a positive number of MiB, got "
                         f"{args.max_upload_mb}")
    if args.max_rows < 1:
        raise ValueError(f"--max-rows must be a positive number of rows, got {args.max_rows}")
    if not (math.isfinite(args.max_audio_seconds) and args.max_audio_seconds > 0):
        raise ValueError(f"--max-audio-seconds must be a positive number of seconds, got "
                         f"{args.max_audio_seconds}")
    allowed = _allowed_hosts(args.host, args.allow_host)
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
    from ..serve.guard import machine_host_names
    from ..serve.models import load_models

    loopback = _is_loopback(args.host)
    models = load_models(args.checkpoints)  # every file checked before the port is taken
    app = create_app(models, max_upload_mb=args.max_upload_mb, allowed_hosts=allowed,
                     max_rows=args.max_rows, max_audio_seconds=args.max_audio_seconds)
    sock = _bind(args.host, args.port)
    bound, port = sock.getsockname()[:2]
    for m in models.values():
        print(f"  {m.id:<16} {m.kind:<15} {m.path or m.name}: {m.summary}")
    if not loopback:
        names = [n for n in reversed(machine_host_names())  # the FQDN first
                 if n != "localhost" and not n.startswith("localhost.")]
        there = f"http://{names[0]}:{port}/" if names else f"http://THIS-MACHINE'S-IP:{port}/"
        print(f"warning: listening on {args.host}: anyone who can reach port {port} can run "
              f"these models (other machines open {there}; names other than this machine's "
              f"need --allow-host NAME); use --host 127.0.0.1 to keep them on this machine",
              file=sys.stderr)
    print(f"serving {len(models)} model(s) at {_url(args.host, bound, port)} (API docs: "
          f"/docs; offline: /openapi.json); Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    quiet, errors = _QuietCutOff(), logging.getLogger("uvicorn.error")
    errors.addFilter(quiet)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        errors.removeFilter(quiet)
        sock.close()
    return 0
