"""The ASGI middleware in front of every route: Host check, API key, body size and body
time limits, and the ``X-Worker-Pid`` header. Plain ASGI (Starlette's
``BaseHTTPMiddleware`` costs about a millisecond a request).

The body is read here, counted as it streams (chunked bodies included) and handed on whole;
a body over the limit is drained (discarded, bounded) before the 413 goes out, so that a
client still sending gets the answer instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from typing import Any

# Paths anyone may read even with an API key set: liveness/readiness and the playground page
# (which holds no data; it asks for the key and sends it with its requests).
PUBLIC_PATHS = frozenset({"/", "/health", "/ready", "/metrics"})
# A body over the limit is read and dropped (never kept) up to the larger of these, so that
# its sender can read the 413; beyond that, or after the time, the connection is closed.
DRAIN_FACTOR = 4
DRAIN_MIN_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT_S = 10.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def send_error(send: Any, status: int, message: str, field: str | None = None,
                     close: bool = False) -> None:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def host_name(host_header: str) -> str:
    """``localhost:8080`` -> ``localhost``; ``[::1]:80`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    def __init__(self, app: Any, settings: Any) -> None:
        self.app = app
        self.settings = settings
        self.pid = str(os.getpid()).encode()
        self.key = settings.api_key.encode("utf-8") if settings.api_key else None
        self.hosts = {h.lower() for h in settings.allowed_hosts} \
            if settings.allowed_hosts else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":  # which replica answered
                message["headers"] = [*message.get("headers", []),
                                      (b"x-worker-pid", self.pid)]
            await send(message)

        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.lower(), value)
        if self.hosts is not None:
            host = host_name(headers.get(b"host", b"").decode("latin-1")).lower()
            if host not in self.hosts:
                await send_error(send_with_pid, 403, "Host header not allowed for this "
                                 "server (see --allow-host)", "host")
                return
        if self.key is not None and scope["path"] not in PUBLIC_PATHS and \
                not self._authorized(headers):
            await send_error(send_with_pid, 401, "missing or wrong API key (send X-API-Key: "
                             "KEY or Authorization: Bearer KEY)", "api_key")
            return
        if scope["method"] in BODY_METHODS:
            body = await self._read_body(receive, headers, send_with_pid)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_pid)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        assert self.key is not None
        given = headers.get(b"x-api-key")
        if given is None:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not token.strip():
                return False
            given = token.strip()
        return hmac.compare_digest(given, self.key)  # bytes: any header byte is safe

    async def _read_body(self, receive: Any, headers: dict[bytes, bytes],
                         send: Any) -> bytes | None:
        """The whole body, or None after answering 408 / 413 / 400 for it."""
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length", b"")
        if declared and not declared.isdigit():
            await send_error(send, 400, "invalid Content-Length", "body", close=True)
            return None
        if declared and int(declared) > limit:
            await self._drain(receive, limit)
            await send_error(send, 413, f"request body over {limit} bytes", "body", close=True)
            return None
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                await send_error(send, 408, "request body not received within "
                                 f"{self.settings.body_timeout_s:g} s", "body", close=True)
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._drain(receive, limit, already=size)
                await send_error(send, 413, f"request body over {limit} bytes", "body",
                                 close=True)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _drain(self, receive: Any, limit: int, already: int = 0) -> None:
        """Read and drop the rest of an oversized body (bounded in bytes and time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_S
        size = already
        while size <= max(DRAIN_FACTOR * limit, DRAIN_MIN_BYTES):
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                return
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            size += len(message.get("body", b""))


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives the body read already, then the connection's own events
    (``http.disconnect`` when the client leaves)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
