"""The Documents API over REST: ``POST <host>/namespaces/{namespace}/documents/{operation}``.

The official SDK 10.x sends document operations there (the namespace URL-encoded in the
path, snake_case JSON bodies); each route hands the body to the index's ``DocumentIndex``.
Errors take the data plane's shape (``{"code": 3, "message": ..., "details": []}``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor

from localrag.pinecone import wire

OPERATIONS = ("upsert", "search", "fetch", "delete", "update", "list")


class NamespaceConvertor(PathConvertor):
    """A namespace name in the vector API's ``/namespaces/{name}`` (slashes allowed), except a path
    that is a document operation: without this, ``GET .../namespaces/ns/documents/search`` would
    describe a namespace called ``ns/documents/search`` and ``Allow`` would list GET and DELETE."""

    regex = "(?:(?!/documents/(?:" + "|".join(OPERATIONS) + ")$).)+"


def documents_router(prefix: str, dependencies: list[Any], state: Any, read_json: Any) -> APIRouter:
    """Routes under ``prefix`` (``/data/{index_name}``); ``state(request)`` gives the server state and
    ``read_json(request, limit)`` the parsed body, so the Pinecone server's helpers are reused."""
    router = APIRouter(prefix=prefix, dependencies=[Depends(d) for d in dependencies])

    def add(operation: str) -> None:
        async def handle(index_name: str, namespace: str, request: Request) -> JSONResponse:
            body = await read_json(request, wire.MAX_REQUEST_BYTES)
            index = state(request).backend.documents(index_name)
            method = getattr(index, "list_ids" if operation == "list" else operation)
            result = await run_in_threadpool(method, namespace, body)
            return JSONResponse(result.to_wire())

        router.add_api_route(f"/namespaces/{{namespace}}/documents/{operation}", handle, methods=["POST"],
                             operation_id=f"documents_{operation}")

    for operation in OPERATIONS:
        add(operation)
    return router
