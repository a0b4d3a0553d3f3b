"""Serves the web app: ``GET /`` is the shell page, ``GET /app/{path}`` the files under ``static/``.

These routes are public on purpose: the files hold no data, and every data call the app makes goes
to ``/v1/*``, which asks for the key when keys are set. Files are read once and kept in memory (the
whole app is a few tens of KB); each answer carries an ETag so a reload costs a 304, and
``Cache-Control: no-cache`` so an upgraded package is never hidden behind a stale cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from localrag.errors import NotFoundError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
APP_PREFIX = "/app/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# Document text shown by the app is untrusted: scripts only from the app itself, no inline script,
# no framing, and the browser may only talk to this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class StaticFiles:
    """The files under ``root`` by relative path, read on first use and kept; anything else is a 404."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, StaticFile] = {}
        self._lock = threading.Lock()

    def get(self, relative: str) -> StaticFile:
        with self._lock:
            cached = self._files.get(relative)
        if cached is not None:
            return cached
        found = self._read(relative)
        with self._lock:
            self._files[relative] = found
        return found

    def _read(self, relative: str) -> StaticFile:
        missing = NotFoundError(f"no app file {relative!r}")
        parts = relative.split("/")
        # '..', hidden names, backslashes and empty segments never name a shipped file
        if not relative or any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
            raise missing
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise missing
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise missing
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return StaticFile(body, content_type, etag)


def _respond(request: Request, found: StaticFile) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": found.etag}
    tags = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if found.etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


def router(root: Path = STATIC) -> APIRouter:
    files = StaticFiles(root)
    web = APIRouter(tags=["web app"], include_in_schema=False)

    @web.get("/")
    async def index(request: Request) -> Response:
        return _respond(request, files.get("index.html"))

    @web.get(APP_PREFIX + "{path:path}")
    async def asset(path: str, request: Request) -> Response:
        return _respond(request, files.get(path))

    return web
