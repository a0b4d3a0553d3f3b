"""The RAG API: search, ask (plain and server-sent events), documents, feedback, stats, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from localrag import failpoints
from localrag.answer.format import answer_dict, hit_dict
from localrag.errors import InvalidInputError, LocalRagError, NotFoundError
from localrag.filters import validate_filter
from localrag.server.concurrency import Slot
from localrag.server.context import ServerContext, authorize, check_question, context_of
from localrag.server.schemas import AskBody, DocumentBody, FeedbackBody, SearchBody
from localrag.server.security import BoundedJSONRoute, error_body, identity_of, presented_key
from localrag.server.uploads import read_upload
from localrag.types import Answer, Document, SearchRequest

log = logging.getLogger(__name__)

UPLOAD_PATH = "/v1/documents"
_END = object()

_DOCUMENT_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DocumentBody"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "a supported file (text, Markdown, HTML, PDF, DOCX, BEIR .jsonl...)"},
                        "namespace": {"type": "string", "maxLength": 512},
                        "doc_id": {"type": "string", "maxLength": 1024,
                                   "description": "the document's id; the file name when absent or empty"},
                        "metadata": {"type": "object", "description": "sent as a JSON text part"},
                    },
                }
            },
        },
    }
}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def iterate(gen: Iterator[Any]) -> AsyncIterator[Any]:
    """A blocking generator (llama.cpp streaming) driven from a thread of its own, closed however it ends.

    Every step and the close run on that one thread: the llama.cpp generator holds the model's lock (an
    RLock, owned by a thread) across its yields, and a step or close on another pool thread could not
    release it, leaving the model locked for every later request (a client pressing Stop did that). The
    close is queued, not awaited, so it also happens when the request task is cancelled mid-await.
    """
    loop = asyncio.get_running_loop()
    results: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
    commands: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: the next item; False: close and stop

    def post(ok: bool, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(results.put_nowait, (ok, value))

    def drive() -> None:
        while commands.get():
            try:
                post(True, next(gen, _END))
            except BaseException as e:  # handed to the request task, which raises it
                post(False, e)
        close = getattr(gen, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.warning("closing an answer stream failed", exc_info=True)

    threading.Thread(target=drive, name="localrag-stream", daemon=True).start()
    try:
        while True:
            commands.put(True)
            ok, item = await results.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        commands.put(False)


async def answer_once(ctx: ServerContext, question: str, options: dict[str, Any], use_cache: bool) -> Answer:
    """An answer from the cache, or generated while holding an LLM queue slot (503 when full)."""
    key = ctx.answer_key(question, options)
    cached = ctx.answer_cache.get(key) if use_cache else None
    if cached is not None:
        return cached
    async with Slot(ctx.llm):
        answer = await run_in_threadpool(lambda: ctx.rag.ask(question, **options))
    ctx.record_answer(answer)
    ctx.answer_cache.put(key, answer)
    return answer


def voter(request: Request) -> str:
    """Who searches or votes: the API key's digest, else the client address (learn/feedback.py)."""
    return identity_of(presented_key(request.headers), request.client.host if request.client else "?")


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["rag"], route_class=BoundedJSONRoute)

    @api.post("/search")
    async def search(body: SearchBody, request: Request) -> JSONResponse:
        ctx = context_of(request)
        mode = body.mode or ctx.rag.settings.search.mode
        search_request = SearchRequest(body.query, body.k, mode, body.namespace, body.filter, body.fusion,
                                       body.alpha, body.rrf_k, body.candidates, body.rerank)
        search_request = replace(search_request, strategy=body.strategy, user=voter(request),
                                 self_query=body.self_query)
        result = await ctx.search(search_request)
        hits = [hit_dict(h) for h in result.hits]
        if not body.include_text:
            for hit in hits:
                hit.pop("text")
        return JSONResponse({"hits": hits, "timings_ms": {k: round(v, 3) for k, v in result.timings.items()},
                             "strategy": result.strategy, "self_query": result.self_query,
                             "route": result.route})

    @api.post("/ask")
    async def ask(body: AskBody, request: Request) -> JSONResponse:
        ctx = context_of(request)
        options = {**body.options(), "user": voter(request)}
        answer = await answer_once(ctx, check_question(body.question), options, body.use_cache)
        return JSONResponse(answer_dict(answer))

    @api.post("/ask/stream", response_class=StreamingResponse,
              responses={200: {"content": {"text/event-stream": {}}, "description": "token events, then answer"}})
    async def ask_stream(body: AskBody, request: Request) -> StreamingResponse:
        ctx = context_of(request)
        question = check_question(body.question)
        validate_filter(body.filter)  # a bad filter is a 400 before the stream's status line, not an event
        slot = Slot(ctx.llm)
        await slot.__aenter__()  # a full queue answers 503 before the stream starts

        async def events() -> AsyncIterator[str]:
            try:
                async for item in iterate(ctx.rag.stream(question, **body.options(), user=voter(request))):
                    if isinstance(item, Answer):
                        ctx.record_answer(item)
                        yield sse("answer", answer_dict(item))
                    else:
                        yield sse("token", {"text": item})
            except LocalRagError as e:
                yield sse("error", error_body(e))
            except Exception as e:  # the status line is sent already: report it as an event
                log.error("answer stream failed", exc_info=e)
                yield sse("error", error_body(RuntimeError("internal error"), 500))
            finally:
                slot.release()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                 background=BackgroundTask(slot.release))

    @api.post("/documents", status_code=201, openapi_extra=_DOCUMENT_UPLOAD_SCHEMA)
    async def add_document(request: Request) -> JSONResponse:
        ctx = context_of(request)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            documents, namespace = await read_upload(request, ctx.rag.path, ctx.settings.max_upload_mb)
        else:
            body = _document_body(await request.body())
            documents = [Document(body.doc_id, body.text, body.source, body.title, body.metadata)]
            namespace = body.namespace
        failpoints.hit("server.upload.before_add")
        report = await run_in_threadpool(lambda: ctx.rag.add(documents, namespace=namespace))
        failpoints.hit("server.upload.after_add")
        if report.skipped and not report.documents_written and not report.unchanged:
            raise InvalidInputError("; ".join(f"{s.path}: {s.reason}" for s in report.skipped))
        return JSONResponse({"added": list(report.added), "updated": list(report.updated),
                             "unchanged": list(report.unchanged), "chunks_added": report.chunks_added,
                             "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped]},
                            status_code=201)

    @api.get("/documents")
    async def list_documents(request: Request, namespace: str = Query("", max_length=512),
                             q: str = Query("", max_length=1024,
                                            description="case-insensitive substring of doc_id, title or source"),
                             limit: int = Query(100, ge=1, le=1000),
                             offset: int = Query(0, ge=0, le=2**31)) -> JSONResponse:
        ctx = context_of(request)
        docs, total = await run_in_threadpool(ctx.rag.find_documents, namespace, q, limit, offset)
        return JSONResponse({"documents": docs, "total": total, "limit": limit, "offset": offset})

    @api.delete("/documents/{doc_id:path}")
    async def delete_document(doc_id: str, request: Request,
                              namespace: str = Query("", max_length=512)) -> JSONResponse:
        ctx = context_of(request)
        deleted = await run_in_threadpool(lambda: ctx.rag.delete(doc_ids=[doc_id], namespace=namespace))
        if not deleted:
            raise NotFoundError(f"no document {doc_id!r} in namespace {namespace!r}")
        return JSONResponse({"deleted": deleted})

    @api.post("/feedback", status_code=201)
    async def feedback(body: FeedbackBody, request: Request) -> JSONResponse:
        ctx = context_of(request)
        relevant = None if body.grade is not None else body.relevant
        await run_in_threadpool(lambda: ctx.rag.feedback(body.query, body.chunk_id, relevant, body.namespace,
                                                         grade=body.grade, source=voter(request)))
        ctx.metrics.inc("feedback_total", relevant=body.relevant)
        return JSONResponse({"recorded": True, "query": body.query, "chunk_id": body.chunk_id,
                             "relevant": body.relevant, "namespace": body.namespace}, status_code=201)

    @api.get("/stats")
    async def stats(request: Request) -> JSONResponse:
        ctx = context_of(request)
        data = await run_in_threadpool(ctx.rag.stats)
        data["server"] = server_figures(ctx)
        return JSONResponse(_jsonable(data))

    return api


def ops_router() -> APIRouter:
    """Health probes (no key needed) and the Prometheus endpoint (key needed when keys are set)."""
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @ops.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        ctx = context_of(request)
        try:
            generation = await run_in_threadpool(ctx.rag.store.generation)
        except Exception as e:  # not ready: the store cannot be read
            return JSONResponse({"status": "unavailable", "reason": str(e)}, status_code=503)
        return JSONResponse({"status": "ready", "generation": generation})

    @ops.get("/metrics", dependencies=[Depends(authorize)], response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        text = await run_in_threadpool(context_of(request).metrics.render)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return ops


def server_figures(ctx: ServerContext) -> dict[str, Any]:
    """The counters /metrics shows, summarised (also written for `localrag stats`)."""
    from localrag.metrics import summary

    return summary(ctx.metrics)


def _document_body(raw: bytes) -> DocumentBody:
    try:
        return DocumentBody.model_validate_json(raw or b"{}")
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInputError(f"{where}: {first['msg']}") from e


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
