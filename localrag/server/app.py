"""The ``localrag serve`` app: Pinecone's REST API and the RAG API on one FastAPI server.

Routes: ``/v1/*`` (RAG API and OpenAI-compatible chat), ``/healthz``, ``/readyz``,
``/metrics``, and Pinecone's ``/indexes`` and ``/data/{index}`` (see localrag.pinecone.server).
Errors map from the error hierarchy by class: the RAG API answers
``{"error": {"message", "type", "code"}}``, the Pinecone routes keep Pinecone's shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localrag.config import Settings, load_settings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, InvalidInputError, LocalRagError, RateLimitedError, http_status_for
from localrag.ingest.sandbox import interrupt_parsing
from localrag.ingest.watch import WatchThread
from localrag.metrics import SNAPSHOT_FILE, Metrics
from localrag.pinecone import server as pinecone_server
from localrag.pinecone.server import is_loopback
from localrag.server import dashboard, events_route, openai_chat, routes, webapi
from localrag.server.connections import uvicorn_options
from localrag.server.context import ServerContext, context_of
from localrag.server.docs import DOCS_PATHS, docs_router
from localrag.server.openapi import install_openapi
from localrag.server.security import (
    MB,
    BodyLimitMiddleware,
    check_key,
    check_keys,
    error_body,
    presented_key,
    rag_error,
    retry_after_header,
    split_keys,
)
from localrag.server.uploads import remove_stale_uploads
from localrag.web import routes as web_routes

log = logging.getLogger(__name__)
access_log = logging.getLogger("localrag.server.access")

RAG_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics", web_routes.APP_PREFIX, *DOCS_PATHS)


def _is_rag_path(path: str) -> bool:
    return path.startswith(RAG_PREFIXES)


def render_error(path: str, exc: Exception) -> tuple[int, dict[str, Any]]:
    """Status and body for an error raised outside the routes (body limits, slow clients), by path."""
    return rag_error(path, exc) if _is_rag_path(path) else pinecone_server.error_shape(path, exc)


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    if not _is_rag_path(request.url.path):
        return pinecone_server._error_response(request, exc)
    if isinstance(exc, StarletteHTTPException):  # no route, wrong method, unreadable body
        exc = pinecone_server.from_http_exception(request, exc)
    status = http_status_for(exc)
    if status >= 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    body = error_body(exc) if isinstance(exc, LocalRagError) else error_body(RuntimeError("internal error"), 500)
    headers = pinecone_server.allow_header(exc)
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_response(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    message = "invalid request: " + ("; ".join(parts) or "the body could not be read")
    if not _is_rag_path(request.url.path):
        return pinecone_server._error_response(request, InvalidInputError(message))
    return JSONResponse(error_body(InvalidInputError(message)), status_code=400)


class RequestMetricsMiddleware:
    """Counts requests and errors, times them per route, and writes the optional JSON log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, json_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.json_log = json_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            ms = (time.perf_counter() - started) * 1000
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.inc("http_requests_total", route=route, method=method, status=status)
            if status >= 400:
                self.metrics.inc("http_errors_total", route=route, status=status)
            self.metrics.observe("http_request_ms", ms, route=route)
            if self.json_log:
                client = scope.get("client") or ("", 0)
                access_log.info(json.dumps({"ts": round(time.time(), 3), "method": method,
                                            "path": scope.get("path", ""), "route": route, "status": status,
                                            "ms": round(ms, 2), "client": client[0]}))


def create_app(
    data_dir: str | Path,
    api_keys: Sequence[str] = (),
    *,
    settings: Settings | None = None,
    rag: LocalRAG | None = None,
    watch: Sequence[str | Path] = (),
) -> FastAPI:
    """The server app over ``data_dir``. Keys: ``api_keys`` plus ``server.api_keys``. ``watch``: folders
    kept in sync while it runs (``localrag.ingest.watch``).

    A ``rag`` passed in is used as is and left open (tests pass one with a fake generator).
    """
    data_dir = Path(data_dir)
    settings = settings or (rag.settings if rag is not None else load_settings(data_dir))
    server = settings.server
    keys = split_keys(server.api_keys, api_keys)
    check_keys(keys)
    app = pinecone_server.create_app(data_dir, keys, docs=False)
    app.title = "localrag"
    app.description = "Offline RAG: search, answers with citations, documents, OpenAI-compatible chat, Pinecone API."
    owned = rag is None
    engine = rag if rag is not None else LocalRAG(data_dir, settings=settings)
    ctx = ServerContext(engine, server, keys)
    app.state.rag = ctx
    app.include_router(routes.router())
    app.include_router(openai_chat.router())
    app.include_router(routes.ops_router())
    app.include_router(docs_router(app, docs_guard))
    app.include_router(events_route.router())  # GET /v1/events (issue 19)
    app.include_router(webapi.router())  # documents, namespaces, feedback, settings, watch for the web app (issue 13)
    app.include_router(dashboard.router())  # GET /v1/dashboard (issue 13)
    if server.web_ui:
        app.include_router(web_routes.router())  # the browser app at / (issue 13)
    install_openapi(app, secured=bool(keys))
    remove_stale_uploads(engine.path)
    app.add_exception_handler(LocalRagError, _error_response)
    app.add_exception_handler(StarletteHTTPException, _error_response)
    app.add_exception_handler(Exception, _error_response)
    app.add_exception_handler(RequestValidationError, _validation_response)
    origins = [o.strip() for o in server.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["Retry-After"])
    app.add_middleware(BodyLimitMiddleware, body_limit=int(server.max_body_mb * MB),
                       upload_limit=int(server.max_upload_mb * MB), upload_path=routes.UPLOAD_PATH,
                       render=render_error)
    app.add_middleware(RequestMetricsMiddleware, metrics=ctx.metrics, json_log=server.json_log)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            if owned:
                # Loading the embedder holds the GIL for most of a second: do it before the server
                # says it is ready, not in the middle of the first ingest while /healthz waits.
                await run_in_threadpool(_warm_up, engine)
            flusher = asyncio.create_task(_flush_metrics(ctx))
            sampling = dashboard.start(app)
            watching = WatchThread(engine, watch).start() if watch else None
            ctx.watch = watching.status if watching is not None else None
            try:
                yield state
            finally:
                if watching is not None:
                    await run_in_threadpool(watching.stop)
                interrupt_parsing()  # an upload mid-parse would otherwise hold the exit for ingest.parse_timeout_s
                await dashboard.stop(sampling)
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                await ctx.batcher.close()
                await run_in_threadpool(_save_metrics, ctx)
                if owned:
                    await run_in_threadpool(engine.close)

    app.router.lifespan_context = lifespan
    return app


def _warm_up(engine: LocalRAG) -> None:
    try:
        _ = engine.embedder
    except LocalRagError as e:  # a missing model is reported on the requests that need it
        log.warning("embedder not loaded at start: %s", e)


def _save_metrics(ctx: ServerContext) -> None:
    try:
        ctx.metrics.save(ctx.rag.path / SNAPSHOT_FILE)
    except (OSError, LocalRagError) as e:  # metrics are a convenience: never take the server down
        log.warning("could not write the metrics snapshot: %s", e)


async def _flush_metrics(ctx: ServerContext) -> None:
    period = ctx.settings.metrics_flush_s
    if period <= 0:
        return
    while True:
        await asyncio.sleep(period)
        await run_in_threadpool(_save_metrics, ctx)


def serve(data_dir: str | Path, host: str = "127.0.0.1", port: int = 5080, api_keys: Sequence[str] = (),
          settings: Settings | None = None, watch: Sequence[str | Path] = ()) -> None:
    """Run the server (blocks). Without an API key it binds only a loopback address."""
    settings = settings or load_settings(Path(data_dir))
    keys = split_keys(settings.server.api_keys, api_keys)
    check_keys(keys)
    if not keys and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without an API key: pass --api-key (or set "
                          "LOCALRAG_API_KEYS or server.api_keys), or bind 127.0.0.1")
    import uvicorn

    class StoppingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # A file mid-parse would hold the graceful shutdown for up to ingest.parse_timeout_s.
            interrupt_parsing()
            super().handle_exit(sig, frame)

    # uvicorn's access log is off: the optional JSON line per request (server.json_log) replaces it.
    app = create_app(data_dir, keys, settings=settings, watch=watch)
    server = StoppingServer(uvicorn.Config(app, host=host, port=port,
                                           log_level="warning", access_log=False,
                                           **uvicorn_options(settings.server, render_error)))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)  # what uvicorn.run exits with when the server cannot start (a port in use)


def docs_guard(request: Request) -> None:
    """/openapi.json, /docs and /redoc need a key when keys are set, unless server.expose_docs is on."""
    ctx = context_of(request)
    if ctx.api_keys and not ctx.settings.expose_docs:
        check_key(presented_key(request.headers), ctx.api_keys)
