"""What the web app reads beyond search and answers: one document with its chunks, the namespaces,
the feedback given, the effective settings (secrets hidden) and the watched folders' state.

Every route is under ``/v1`` and asks for the key like the rest of the RAG API; store reads run in
the thread pool. The list of documents (with ``q`` and ``total``) stays in ``routes.py`` beside the
other document routes.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from localrag.config import Settings
from localrag.docview import DocumentView
from localrag.server.context import ServerContext, authorize, context_of
from localrag.server.security import BoundedJSONRoute

REDACTED = "***"
# Settings whose values are credentials: shown as "***" when set ("" when not), never in clear.
_SECRET_NAME = re.compile(r"(^|_)(api_keys?|password|secret|token)$")
MAX_FEEDBACK = 1000


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["rag"], route_class=BoundedJSONRoute)

    @api.get("/documents/{doc_id:path}")
    async def get_document(doc_id: str, request: Request,
                           namespace: str = Query("", max_length=512)) -> JSONResponse:
        """A document's text (whole up to 5,000,000 characters, then cut with ``truncated``), its chunks'
        spans, page starts, and ``kind``: pdf, sheet, media (with transcript ``segments``), mail or text."""
        ctx = context_of(request)
        view = await run_in_threadpool(ctx.rag.document_view, doc_id, namespace)
        return JSONResponse(view_json(view))

    @api.get("/namespaces")
    async def namespaces(request: Request) -> JSONResponse:
        """Every namespace with its counts of documents and chunks, by name."""
        stats = await run_in_threadpool(context_of(request).rag.store.stats)
        listed = [{"name": name, "documents": ns["documents"], "chunks": ns["chunks"]}
                  for name, ns in sorted(stats["namespaces"].items())]
        return JSONResponse({"namespaces": listed})

    @api.get("/feedback")
    async def list_feedback(request: Request,
                            namespace: str | None = Query(None, max_length=512,
                                                          description="only this namespace (default: all)"),
                            limit: int = Query(100, ge=1, le=MAX_FEEDBACK)) -> JSONResponse:
        """Relevance judgments, newest first."""
        rag = context_of(request).rag
        items = await run_in_threadpool(lambda: rag.feedback_items(namespace, limit, newest_first=True))
        return JSONResponse({"feedback": items})

    @api.get("/settings")
    async def settings(request: Request) -> JSONResponse:
        """The settings the server runs with, by section; keys and other secrets read "***" when set."""
        ctx = context_of(request)
        return JSONResponse({"settings": settings_json(ctx), "data_dir": str(ctx.rag.path.resolve())})

    @api.get("/watch")
    async def watch(request: Request) -> JSONResponse:
        """The watched folders (`serve --watch`): state, last reconcile, last errors and skips."""
        status = context_of(request).watch
        return JSONResponse({"folders": status.snapshot() if status is not None else []})

    return api


def view_json(view: DocumentView) -> dict[str, Any]:
    data = {
        "doc_id": view.doc_id, "namespace": view.namespace, "title": view.title, "source": view.source,
        "metadata": view.metadata, "kind": view.kind, "text": view.text, "text_chars": view.text_chars,
        "truncated": view.truncated, "page_starts": list(view.page_starts),
        "chunks": [dataclasses.asdict(c) for c in view.chunks],
    }  # fmt: skip
    if view.kind == "media":
        data["segments"] = [dataclasses.asdict(s) for s in view.segments]
    return data


def settings_json(ctx: ServerContext) -> dict[str, dict[str, Any]]:
    """The engine's settings with the server's own section (keys from --api-key and the environment
    count as set), credentials redacted."""
    effective: Settings = dataclasses.replace(ctx.rag.settings, server=ctx.settings)
    sections = dataclasses.asdict(effective)
    for section, values in sections.items():
        for name, value in values.items():
            if _SECRET_NAME.search(name):
                values[name] = REDACTED if value else ""
            elif isinstance(value, str) and "@" in value and "://" in value:
                values[name] = _without_password(value)
        if section == "server":
            values["api_keys"] = REDACTED if ctx.api_keys else ""
    return sections


def _without_password(url: str) -> str:
    """``http://user:secret@host/`` → ``http://user:***@host/`` (a base URL may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}"))
