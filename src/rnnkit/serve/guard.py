"""The guard in front of the playground's routes: a plain ASGI middleware that refuses, before
any route runs,

* a request whose ``Host`` header is not one the server answers to (a web page that rebinds its
  own domain name to 127.0.0.1, "DNS rebinding", would otherwise read the API as same-origin):
  400. The check is always on, whatever address the server listens on: it answers to IP
  addresses (``127.0.0.1``, ``[::1]``, ``192.168.1.20``: a rebinding page has a domain name)
  and to the names it is given (``localhost``, this machine's host name and FQDN, the
  ``--host`` name, each ``--allow-host``; :func:`machine_host_names`);
* a ``POST`` (any state-changing method) sent by a page of another origin (its ``Origin``
  header names another host: a site the user visits cannot make the local server run models
  or take uploads): 403;
* a request body larger than the upload limit (``--max-upload-mb``): 413, decided from
  ``Content-Length`` before anything is read, or while reading a body sent without one;

and adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer`` to every response. Every refusal is a JSON body
``{"detail": message}``, like every other error of the API.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "RequestGuard", "host_name", "is_ip_address",
           "machine_host_names"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: the names a server bound to a loopback address answers to
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: methods that change state or run work: checked for a foreign ``Origin``
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: an oversized body is read and dropped up to this many bytes past the limit before the 413
#: is sent (so a browser still uploading sees the answer instead of a reset connection)
DRAIN_BYTES = 256 * 2**20
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer")]


def host_name(host: str) -> str:
    """The host name of a ``Host`` header value, without port, IPv6 brackets or the trailing
    dot of a fully qualified name, lower case.

    >>> host_name("127.0.0.1:8000"), host_name("[::1]:8000"), host_name("LocalHost.:80")
    ('127.0.0.1', '::1', 'localhost')
    """
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


def is_ip_address(name: str) -> bool:
    """Whether a host name (:func:`host_name`) is an IPv4 or IPv6 address, not a name.

    >>> is_ip_address("192.168.1.20"), is_ip_address("::1"), is_ip_address("evil.example")
    (True, True, False)
    """
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def machine_host_names() -> list[str]:
    """This machine's host name and fully qualified name (lower case), the names a browser on
    the network may use for it."""
    import socket

    names = []
    for get in (socket.gethostname, socket.getfqdn):
        try:
            name = host_name(get())
        except OSError:
            continue
        if name and name not in names:
            names.append(name)
    return names


def _size(n: int) -> str:
    """A byte count in words.

    >>> _size(20_000), _size(30 * 2**20)
    ('19.5 KiB', '30.0 MiB')
    """
    return f"{n / 1024:.1f} KiB" if n < 2**20 else f"{n / 2**20:.1f} MiB"


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: allowed hosts, same-origin state-changing requests, the body size
    limit and security headers (module docstring).

    Args:
        app: the ASGI app behind the guard.
        max_body_bytes: the largest request body accepted.
        allowed_hosts: host names the server answers to, besides IP addresses (which it
            always answers to). There is no "any": a server exposed with ``--host 0.0.0.0``
            still refuses names it was not given.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], *, max_body_bytes: int,
                 allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> None:
        if allowed_hosts is None or isinstance(allowed_hosts, str):
            raise ValueError(f"allowed_hosts must be a list of host names (IP addresses are "
                             f"always answered), e.g. ['localhost', 'myserver.lan'], got "
                             f"{allowed_hosts!r}; there is no 'any host' (it would let a web "
                             f"page rebind its domain to this server)")
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.allowed_hosts = {host_name(h) for h in allowed_hosts}

    def host_allowed(self, host: str) -> bool:
        """Whether the server answers to the ``Host`` header value ``host``."""
        name = host_name(host)
        return name in self.allowed_hosts or is_ip_address(name)

    def _too_large(self, size: int | None = None) -> str:
        got = f" ({_size(size)})" if size is not None else ""
        return (f"the upload{got} is larger than this server's limit of "
                f"{self.max_body_bytes / 2**20:.3g} MiB; send a smaller file, or restart the "
                f"server with a higher --max-upload-mb")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.host_allowed(host):
            names = ", ".join(sorted(n for n in self.allowed_hosts if not is_ip_address(n)))
            shown = host if len(host) <= 100 else host[:97] + "..."
            wanted = host_name(shown) or "NAME"
            await _reply(send, 400, f"this server answers only to IP addresses and the host "
                         f"names {names}, not {shown!r} (a guard against DNS rebinding); open "
                         f"it as http://127.0.0.1:PORT/ or by this machine's IP address, or "
                         f"restart it with --allow-host {wanted} if that name is yours")
            return
        origin = headers.get("origin")
        if scope.get("method", "GET").upper() in UNSAFE_METHODS and origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                await _reply(send, 403, f"cross-origin request refused: a page from {origin} "
                             f"may not use this server's API; use the playground page the "
                             f"server itself serves (http://{host}/) or a client that sends "
                             f"no Origin header (curl, Python)")
                return
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and \
                int(length) > self.max_body_bytes:
            await self._drain(receive, int(length))
            await _reply(send, 413, self._too_large(int(length)))
            return
        await self._guarded(scope, receive, send)

    async def _drain(self, receive: Receive, expected: int | None = None) -> None:
        """Read and drop the rest of the body (up to :data:`DRAIN_BYTES`)."""
        seen = 0
        while seen < DRAIN_BYTES and (expected is None or seen < expected):
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, counting body bytes as it reads them; past the limit the app sees a
        disconnected client and whatever it answers is replaced by a 413."""
        state = {"received": 0, "too_large": False, "started": False, "replied": False}

        async def guarded_receive() -> Message:
            if state["too_large"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    state["too_large"] = True
                    if message.get("more_body", False):
                        await self._drain(receive)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["too_large"] and not state["started"]:
                if not state["replied"]:
                    state["replied"] = True
                    await _reply(send, 413, self._too_large())
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                message = {**message,
                           "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not (state["too_large"] and not state["started"]):
                raise
        if state["too_large"] and not state["started"] and not state["replied"]:
            state["replied"] = True
            await _reply(send, 413, self._too_large())
