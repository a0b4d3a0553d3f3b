"""Pinecone's REST API (data plane and control plane) as FastAPI routers, and the app factory.

An index's ``host`` is ``<server>/data/<name>``: the official SDK sends data-plane
requests to ``host + "/vectors/upsert"`` and so on, so one server serves every index.
More routers (the RAG API) can be mounted on the app ``create_app`` returns.

Headers: ``Api-Key`` (required when keys are configured) and ``X-Pinecone-Api-Version``
(2024-07 up to the current SDK's 2026-07; absent means the oldest shape). Newer
versions get the 2026-07 index description and ``__default__`` for the default namespace.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from localrag import jsonsafe
from localrag.errors import (
    ConfigError,
    InvalidInputError,
    LocalRagError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTooLargeError,
)
from localrag.pinecone import wire
from localrag.pinecone.client import SUBDIR, index_model
from localrag.pinecone.control import LocalPinecone
from localrag.pinecone.deployment import deployment_of
from localrag.pinecone.documents_embed import EmbedderSource
from localrag.pinecone.documents_index import DocumentIndex
from localrag.pinecone.documents_routes import NamespaceConvertor, documents_router
from localrag.pinecone.documents_schema import is_document_schema
from localrag.pinecone.errors import UnauthorizedError, control_plane_body, data_plane_body
from localrag.pinecone.local import LocalIndex
from localrag.pinecone.models import DEFAULT_NAMESPACE_ALIAS

log = logging.getLogger(__name__)

API_VERSION_HEADER = "X-Pinecone-Api-Version"
OLDEST_VERSION = "2024-07"
CURRENT_VERSION = "2026-07"
DEFAULT_NAMESPACE_VERSION = "2025-04"  # from this version on the default namespace reads "__default__"
DATA_PREFIX = "/data"
_VERSION = re.compile(r"^\d{4}-\d{2}$")
register_url_convertor("namespace", NamespaceConvertor())


class ServerState:
    def __init__(self, backend: LocalPinecone, api_keys: Sequence[str]) -> None:
        self.backend = backend
        self.api_keys = tuple(k for k in api_keys if k)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.pinecone
    return state


def api_version(request: Request) -> str:
    version = request.headers.get(API_VERSION_HEADER)
    if version is None:
        return OLDEST_VERSION
    if not _VERSION.match(version) or not OLDEST_VERSION <= version <= CURRENT_VERSION:
        raise InvalidInputError(f"Unsupported API version {version!r}; this server speaks {OLDEST_VERSION} "
                                f"to {CURRENT_VERSION}")
    return version


def authorize(request: Request) -> None:
    keys = _state(request).api_keys
    if not keys:
        return
    given = request.headers.get("Api-Key", "")
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise UnauthorizedError("Invalid API Key")


async def _json(request: Request, limit: int | None = None) -> Any:
    raw = await request.body()
    if limit is not None:
        wire.check_request_size(len(raw))
    if not raw:
        return {}
    return jsonsafe.loads(raw)  # nesting bounded before parsing: json.loads recurses per level


def _ok(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


# --------------------------------------------------------------------------- data plane


def data_router() -> APIRouter:
    router = APIRouter(prefix=DATA_PREFIX + "/{index_name}", dependencies=[Depends(authorize), Depends(api_version)])

    def index_of(request: Request, name: str) -> LocalIndex:
        return _state(request).backend.index(name)

    def either(request: Request, name: str) -> LocalIndex | DocumentIndex:
        """Stats and namespaces work on both kinds of index."""
        return _state(request).backend.opened(name)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    @router.post("/vectors/upsert")
    async def upsert(index_name: str, request: Request) -> JSONResponse:
        body = await _json(request, limit=wire.MAX_REQUEST_BYTES)
        index = index_of(request, index_name)
        return _ok((await run(index.upsert, wire.upsert_request(body))).to_wire())

    @router.post("/query")
    async def query(index_name: str, request: Request) -> JSONResponse:
        body = await _json(request)
        index = index_of(request, index_name)
        return _ok((await run(index.query, wire.query_request(body))).to_wire())

    @router.get("/vectors/fetch")
    async def fetch(index_name: str, request: Request) -> JSONResponse:
        ids = wire.fetch_ids(request.query_params.getlist("ids"))
        namespace = wire.namespace_of(request.query_params.get("namespace"))
        index = index_of(request, index_name)
        return _ok((await run(index.fetch, ids, namespace)).to_wire())

    @router.post("/vectors/fetch_by_metadata")
    async def fetch_by_metadata(index_name: str, request: Request) -> JSONResponse:
        args = wire.fetch_by_metadata_request(await _json(request))
        index = index_of(request, index_name)
        return _ok((await run(index.fetch_by_metadata, *args)).to_wire())

    @router.post("/vectors/delete")
    async def delete(index_name: str, request: Request) -> JSONResponse:
        parsed = wire.delete_request(await _json(request))
        await run(index_of(request, index_name).delete, parsed)
        return _ok({})

    @router.post("/vectors/update")
    async def update(index_name: str, request: Request) -> JSONResponse:
        parsed = wire.update_request(await _json(request))
        return _ok((await run(index_of(request, index_name).update, parsed)).to_wire())

    async def stats(index_name: str, request: Request) -> JSONResponse:
        body = await _json(request) if request.method == "POST" else {}
        if not isinstance(body, dict):
            raise InvalidInputError("request body must be a JSON object")
        index = either(request, index_name)
        flt = wire.snake_keys(body).get("filter")
        if isinstance(index, LocalIndex):  # a document index checks its own filters ($match_* included)
            flt = wire.filter_of(flt)
        default = DEFAULT_NAMESPACE_ALIAS if api_version(request) >= DEFAULT_NAMESPACE_VERSION else ""
        return _ok((await run(index.stats, flt, default)).to_wire())

    # one handler, two methods: each gets its own OpenAPI operation id
    for method in ("POST", "GET"):
        router.add_api_route("/describe_index_stats", stats, methods=[method],
                             operation_id=f"describe_index_stats_{method.lower()}")

    @router.get("/vectors/list")
    async def list_ids(index_name: str, request: Request) -> JSONResponse:
        q = request.query_params
        page = wire.page_request(q.get("namespace"), q.get("prefix"), q.get("limit"), q.get("paginationToken"))
        return _ok((await run(index_of(request, index_name).list_ids, page)).to_wire())

    @router.post("/namespaces")
    async def create_namespace(index_name: str, request: Request) -> JSONResponse:
        body = await _json(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name or name == DEFAULT_NAMESPACE_ALIAS:
            raise InvalidInputError(f"namespace name {name!r} cannot be created")
        wire.namespace_of(name)
        index = either(request, index_name)
        return _ok((await run(index.create_namespace, name, body.get("schema"))).to_wire())

    @router.get("/namespaces")
    async def list_namespaces(index_name: str, request: Request) -> JSONResponse:
        q = request.query_params
        page = wire.page_request(None, q.get("prefix"), q.get("limit"), q.get("paginationToken"))
        return _ok((await run(either(request, index_name).list_namespaces, page)).to_wire())

    @router.get("/namespaces/{namespace:namespace}")
    async def describe_namespace(index_name: str, namespace: str, request: Request) -> JSONResponse:
        index = either(request, index_name)
        return _ok((await run(index.describe_namespace, wire.namespace_of(namespace))).to_wire())

    @router.delete("/namespaces/{namespace:namespace}", status_code=202)
    async def delete_namespace(index_name: str, namespace: str, request: Request) -> JSONResponse:
        await run(either(request, index_name).delete_namespace, wire.namespace_of(namespace))
        return _ok({}, 202)

    return router


# --------------------------------------------------------------------------- control plane


def _describe(request: Request, name: str) -> dict[str, Any]:
    config = _state(request).backend.opened(name).config
    host = f"{str(request.base_url).rstrip('/')}{DATA_PREFIX}/{name}"
    model = index_model(config, host)
    return model.current_wire() if api_version(request) >= CURRENT_VERSION else model.legacy_wire()


def _create_args(body: Any) -> dict[str, Any]:
    """Both create shapes: 2026-07 (schema + deployment) and the older (dimension, metric, spec)."""
    if not isinstance(body, dict):
        raise InvalidInputError("request body must be a JSON object")
    args: dict[str, Any] = {"name": body.get("name"), "deletion_protection": body.get("deletion_protection"),
                            "tags": body.get("tags")}
    schema = body.get("schema")
    if isinstance(schema, dict) and isinstance(schema.get("fields"), dict):
        fields = [f for f in schema["fields"].values() if isinstance(f, dict)]
        dense = [f for f in fields if f.get("type") == "dense_vector"]
        sparse = [f for f in fields if f.get("type") == "sparse_vector"]
        if len(dense) > 1 or not (dense or sparse):
            raise InvalidInputError("schema must declare one dense_vector field, or one sparse_vector field")
        if dense:
            args.update(dimension=dense[0].get("dimension"), metric=dense[0].get("metric"), vector_type="dense")
        else:
            args.update(dimension=None, metric="dotproduct", vector_type="sparse")
        args["deployment"] = _deployment(body.get("deployment"), "deployment")
    else:
        args.update(dimension=body.get("dimension"), metric=body.get("metric"),
                    vector_type=body.get("vector_type") or "dense")
        args["deployment"] = _deployment(body.get("spec"), "spec")
    return args


def _deployment(value: Any, name: str) -> dict[str, Any]:
    """The normalised deployment of a create body's ``deployment`` (2026-07) or ``spec`` (older)."""
    if value is not None and not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be an object")
    return deployment_of(value)


def control_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(authorize), Depends(api_version)])

    @router.post("/indexes", status_code=201)
    async def create_index(request: Request) -> JSONResponse:
        body = await _json(request)
        backend = _state(request).backend
        if isinstance(body, dict) and is_document_schema(body.get("schema")):
            deployment = _deployment(body.get("deployment"), "deployment")
            config = await run_in_threadpool(lambda: backend.create_document_index(
                body.get("name"), body["schema"], body.get("deletion_protection"), body.get("tags"),
                deployment=deployment))
            return _ok(_describe(request, config.name), 201)
        args = _create_args(body)
        config = await run_in_threadpool(lambda: backend.create_index(**args))
        return _ok(_describe(request, config.name), 201)

    @router.get("/indexes")
    async def list_indexes(request: Request) -> JSONResponse:
        configs = await run_in_threadpool(_state(request).backend.configs)
        return _ok({"indexes": [_describe(request, c.name) for c in configs]})

    @router.get("/indexes/{name}")
    async def describe_index(name: str, request: Request) -> JSONResponse:
        return _ok(_describe(request, name))

    @router.delete("/indexes/{name}", status_code=202, response_class=Response)
    async def delete_index(name: str, request: Request) -> Response:
        await run_in_threadpool(_state(request).backend.delete_index, name)
        return Response(status_code=202)

    @router.patch("/indexes/{name}")
    async def configure_index(name: str, request: Request) -> JSONResponse:
        body = await _json(request)
        if not isinstance(body, dict):
            raise InvalidInputError("request body must be a JSON object")
        tags = body.get("tags")
        if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
            raise InvalidInputError("tags must be an object of strings")
        await run_in_threadpool(_state(request).backend.configure_index, name, body.get("deletion_protection"), tags)
        return _ok(_describe(request, name))

    return router


# --------------------------------------------------------------------------- app


def error_shape(path: str, exc: Exception) -> tuple[int, dict[str, Any]]:
    """Pinecone's status and body for ``exc``: the data-plane shape under /data, else the control plane's."""
    shape = data_plane_body if path.startswith(DATA_PREFIX + "/") else control_plane_body
    return shape(exc)


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StarletteHTTPException):
        exc = from_http_exception(request, exc)
    status, body = error_shape(request.url.path, exc)
    if status >= 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(body, status_code=status, headers=allow_header(exc))


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's own 405 names only the first route's).

    Each method is tried against the routes as if the request had used it, which works for
    included routers as well as plain routes.
    """
    routes = request.app.router.routes
    return [m for m in _METHODS
            if any(route.matches({**request.scope, "method": m})[0] == Match.FULL for route in routes)]


def from_http_exception(request: Request, exc: StarletteHTTPException) -> LocalRagError:
    """Starlette's own errors (no such route, wrong method, unreadable body) as errors of the hierarchy."""
    detail = str(exc.detail or "")
    if exc.status_code == 404:
        return NotFoundError(f"no route {request.method} {request.url.path}")
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        return MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}; "
                                     f"allowed: {', '.join(allowed)}", allowed)
    if exc.status_code == 413:
        return RequestTooLargeError(detail or "request body is too large")
    if 400 <= exc.status_code < 500:
        return InvalidInputError(detail or "bad request")
    return LocalRagError(detail or "internal error")


def allow_header(exc: Exception) -> dict[str, str] | None:
    return {"Allow": ", ".join(exc.allow)} if isinstance(exc, MethodNotAllowedError) else None


def create_app(data_dir: str | Path, api_keys: Sequence[str] = (), *, docs: bool = True,
               embedder: EmbedderSource | None = None) -> FastAPI:
    """A FastAPI app serving Pinecone's API over the indexes in ``data_dir``/pinecone.

    ``embedder`` serves document indexes' ``embed`` fields (default: the data directory's
    configured embedder, loaded on first use).

    ``docs=False`` leaves out FastAPI's /docs, /redoc and /openapi.json (``localrag serve`` adds
    its own: offline assets, and a key required when keys are set).
    """
    backend = LocalPinecone(Path(data_dir) / SUBDIR, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        backend.close()

    paths = {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"} if docs else \
        {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="localrag", lifespan=lifespan, **paths)
    app.state.pinecone = ServerState(backend, api_keys)
    app.include_router(control_router())
    app.include_router(data_router())
    app.include_router(documents_router(DATA_PREFIX + "/{index_name}", [authorize, api_version], _state, _json))
    app.add_exception_handler(LocalRagError, _error_response)
    app.add_exception_handler(StarletteHTTPException, _error_response)
    app.add_exception_handler(Exception, _error_response)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(data_dir: str | Path, host: str = "127.0.0.1", port: int = 5080, api_keys: Sequence[str] = ()) -> None:
    """Run the server (blocks). Without API keys it only binds a loopback address."""
    keys = [k for k in api_keys if k]
    if not keys and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without an API key: pass --api-key (or set "
                          "LOCALRAG_API_KEYS), or bind 127.0.0.1")
    import uvicorn

    uvicorn.run(create_app(data_dir, keys), host=host, port=port, log_level="warning")
