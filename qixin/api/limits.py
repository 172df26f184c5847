"""Request body limits, enforced while the body streams in — before authentication, before buffering.

``BodyLimit`` wraps the whole ASGI application (the send fast path included). Each request gets the
limit of the first route rule that matches its method and path, else ``DEFAULT_LIMIT``:

- a declared ``Content-Length`` above the limit is refused at once, without reading the body (one
  within the limit needs no counting: the server never delivers more than the declared length);
- a chunked (or under-declared) body is counted as it arrives and refused the moment it passes the
  limit: the application's reading fails, whatever it had started to answer is dropped, and the client
  gets ``413 BODY_TOO_LARGE`` with ``Connection: close``.

The server reads a body only as fast as the application asks for it (uvicorn pauses the socket above
64 KiB buffered), so an oversized body never grows the process by more than one limit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.errors import CATALOGUE, QxError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MiB = 1024 * 1024


@dataclass(frozen=True)
class RouteLimit:
    method: str
    path: re.Pattern[str]  # matched against the whole path
    max_bytes: int


def route(method: str, path: str, max_bytes: int) -> RouteLimit:
    """A rule: ``path`` is a regular expression over the whole path (``[^/]+`` for a path parameter)."""
    return RouteLimit(method.upper(), re.compile(path), max_bytes)


DEFAULT_LIMIT = 1 * MiB  # every route not listed: JSON forms, queries
ROUTE_LIMITS: tuple[RouteLimit, ...] = (
    route("POST", r"/v1/sms", 16 * MiB),  # 100,000 numbers take about 1.4 MB
    # qualification documents: 5 MB files as base64 inside JSON (services/compliance/documents.py)
    route("POST", r"/v1/signatures/[^/]+/documents", 8 * MiB),
    # number lists (up to 100,000 numbers or csv rows, api/compliance.py MAX_IMPORT)
    route("POST", r"/v1/optouts", 16 * MiB),
    route("POST", r"/admin/blacklist(/remove)?", 16 * MiB),
    route("POST", r"/admin/accounts/[^/]+/optouts", 16 * MiB),
    route("POST", r"/admin/ported-numbers", 16 * MiB),
)


class BodyTooLarge(QxError):
    def __init__(self, limit: int) -> None:
        super().__init__("BODY_TOO_LARGE", f"请求体超过此接口的上限 {_size(limit)}", limit_bytes=limit)


def _size(n: int) -> str:
    return f"{n // MiB} MB" if n >= MiB and n % MiB == 0 else f"{n} 字节"


class BodyLimit:
    """ASGI middleware: refuse bodies larger than the route's limit (see the module docstring)."""

    def __init__(self, app: Any, routes: Sequence[RouteLimit] = ROUTE_LIMITS, default: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.default = default

    def limit_for(self, method: str, path: str) -> int:
        for r in self.routes:
            if r.method == method and r.path.fullmatch(path):
                return r.max_bytes
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None:
            # the server's HTTP parser hands the application exactly the declared length (bytes beyond
            # it belong to the next request on the connection): nothing to count
            if declared > limit:
                await _refuse(send, limit)
            else:
                await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the answer is ours (413), not whatever the application made of the failed read
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    err = BodyTooLarge(limit)
    body = orjson.dumps(err.to_dict())
    await send(
        {
            "type": "http.response.start",
            "status": CATALOGUE["BODY_TOO_LARGE"][0],
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
