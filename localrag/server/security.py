"""API keys, per-key token-bucket rate limits, request size and nesting limits, and safe upload paths."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localrag.errors import (
    ConfigError,
    InvalidInputError,
    RateLimitedError,
    RequestTooLargeError,
    UnauthorizedError,
    http_status_for,
)
from localrag.jsonsafe import check_depth

KEY_HEADERS = ("api-key", "x-api-key")
MB = 1024 * 1024

# (request path, error) -> (status, JSON body): the error shape differs between the RAG and Pinecone routes.
Render = Callable[[str, Exception], tuple[int, dict[str, Any]]]


MIN_KEY_LENGTH = 16


def split_keys(*sources: str | Sequence[str]) -> tuple[str, ...]:
    """Keys from comma-separated strings or lists, blanks dropped, order kept, duplicates removed."""
    keys: list[str] = []
    for source in sources:
        items = source.split(",") if isinstance(source, str) else source
        keys.extend(k.strip() for k in items if k and k.strip())
    return tuple(dict.fromkeys(keys))


def check_keys(keys: Sequence[str]) -> None:
    """Refuse short keys: a key like ``,`` or ``abc`` would guard a public address in name only."""
    short = [k for k in keys if len(k.strip()) < MIN_KEY_LENGTH]
    if short:
        shown = ", ".join(f"{len(k.strip())} characters" for k in short)
        raise ConfigError(f"API keys must be at least {MIN_KEY_LENGTH} characters long (after stripping "
                          f"spaces); got {len(short)} shorter ({shown}). Generate one with: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(32))'")


def presented_key(headers: Any) -> str:
    """``Authorization: Bearer <key>`` (what OpenAI clients send), ``Api-Key`` or ``X-API-Key``."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return str(token.strip())
    for name in KEY_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    return ""


def check_key(given: str, keys: Sequence[str]) -> None:
    """Constant-time comparison against every configured key (no early exit on a match)."""
    if not keys:
        return
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    if not matched:
        raise UnauthorizedError("missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")


class RateLimiter:
    """A token bucket per identity: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, identity: str) -> None:
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(identity, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[identity] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitedError(f"rate limit of {self.rate:g} requests/s exceeded; retry in {wait:.2f}s",
                                       retry_after=wait)
            self._buckets[identity] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle identities rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}


def identity_of(key: str, client_host: str) -> str:
    # Keys are never kept in memory tables as-is; a digest identifies the bucket.
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16] if key else "ip:" + client_host


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413: by Content-Length up front, else while reading.

    Multipart uploads to ``upload_path`` get ``upload_limit``; every other request ``body_limit``.
    """

    def __init__(self, app: ASGIApp, body_limit: int, upload_limit: int, upload_path: str,
                 render: Render | None = None) -> None:
        self.app = app
        self.body_limit = body_limit
        self.upload_limit = upload_limit
        self.upload_path = upload_path
        self.render = render or rag_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        upload = scope.get("path") == self.upload_path and headers.get("content-type", "").startswith("multipart/")
        limit = self.upload_limit if upload else self.body_limit
        error = RequestTooLargeError(f"request body is larger than the limit of {limit / MB:g} MB")
        status, error_json = self.render(str(scope.get("path", "")), error)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await send_json(send, status, error_json)
            return
        seen = 0
        exceeded = False
        replaced = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Reading stops here; the app sees a disconnect and whatever it answers is replaced
                    # by the 413, so a truncated body is never processed as if it were whole.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if exceeded:
                if not replaced:
                    replaced = True
                    await send_json(send, status, error_json)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not replaced:
            await send_json(send, status, error_json)


def rag_error(path: str, exc: Exception) -> tuple[int, dict[str, Any]]:
    """The RAG API's status and body for ``exc`` (the default ``Render``)."""
    return http_status_for(exc), error_body(exc)


async def send_json(send: Send, status: int, payload: dict[str, Any],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def error_body(exc: Exception, status: int | None = None) -> dict[str, Any]:
    """The RAG API's error shape (OpenAI's): ``{"error": {"message", "type", "code"}}``."""
    code = status if status is not None else http_status_for(exc)
    kind = "".join("_" + c.lower() if c.isupper() else c for c in type(exc).__name__).lstrip("_")
    message = str(exc) or type(exc).__name__
    return {"error": {"message": message, "type": kind, "code": code}}


class BoundedJSONRoute(APIRoute):
    """A route whose body nesting is checked on the raw bytes before FastAPI parses it.

    ``json.loads`` recurses once per level, so a few thousand brackets would raise
    ``RecursionError`` inside FastAPI's body parsing; here they are a 400 naming the limit.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method in _BODY_METHODS and not request.headers.get("content-type", "").startswith(
                "multipart/"
            ):
                check_depth(await request.body())
            return await handler(request)

        return bounded


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- uploads ---------------------------------------------------------------------------------
_FORBIDDEN_CHARS = set('/\\\x00:')


def safe_upload_path(folder: Path, filename: str | None) -> Path:
    """Where an uploaded file is written: ``folder/<name>``, never outside ``folder``.

    A name with a path separator, a drive, ``..`` or control characters is refused rather than
    cleaned up, so a traversal attempt fails loudly.
    """
    name = (filename or "").strip()
    if not name:
        raise InvalidInputError("the uploaded file has no file name")
    if any(c in _FORBIDDEN_CHARS or ord(c) < 32 for c in name) or name in {".", ".."} or name.startswith(".."):
        raise InvalidInputError(f"upload file name {name!r} must be a plain file name (path traversal refused)")
    if len(name.encode()) > 255:
        raise InvalidInputError("upload file name is longer than 255 bytes")
    target = (folder / name).resolve()
    if folder.resolve() not in target.parents:
        raise InvalidInputError(f"upload file name {name!r} resolves outside the upload folder (refused)")
    return target
