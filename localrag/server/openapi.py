"""The OpenAPI schema ``/openapi.json`` serves, completed so that it describes what the server does.

FastAPI documents a route's success and its 422; the server answers validation errors with 400
and adds statuses of its own (keys, rate limits, body limits, slow clients, queues). Here every
operation gets exactly the statuses it can answer, each with its error shape (the RAG API's, or
Pinecone's data- or control-plane shape); request bodies the routes read themselves get their
schemas (Pinecone's, the document upload's, the filter language's); and the security schemes
appear only when keys are configured.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from localrag.pinecone.openapi import FILTER_SCHEMAS, VERSION_HEADER
from localrag.pinecone.openapi import OPERATIONS as PINECONE_OPERATIONS
from localrag.server.schemas import DocumentBody

_REF = "#/components/schemas/"
_ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorResponse": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                 "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                                "code": {"type": "integer"}}}},
    },
    "PineconeDataError": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "details": {"type": "array"}},
    },
    "PineconeControlError": {
        "type": "object", "required": ["error", "status"],
        "properties": {"error": {"type": "object", "required": ["code", "message"],
                                 "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                       "status": {"type": "integer"}},
    },
}
_DESCRIPTIONS = {400: "Invalid request (body, parameters or JSON)", 401: "Missing or invalid API key",
                 403: "Deletion protection is enabled", 404: "Not found", 408: "The request was not received in time",
                 409: "Already exists", 413: "Request body over the limit", 429: "Rate limited (see Retry-After)",
                 503: "Overloaded (answer queue full) or a model is missing"}

# Statuses beyond the success one. Every operation may also answer 408 and 413 (a body of any
# method is timed and bounded), and 401 when keys are configured (probes excepted).
_SEARCHING = {400, 429, 503}
_RAG: dict[tuple[str, str], set[int]] = {
    ("post", "/v1/search"): _SEARCHING,
    ("post", "/v1/ask"): _SEARCHING,
    ("post", "/v1/ask/stream"): _SEARCHING,
    ("post", "/v1/chat/completions"): _SEARCHING,
    ("post", "/v1/documents"): _SEARCHING,
    ("get", "/v1/documents"): {400, 429},
    ("delete", "/v1/documents/{doc_id}"): {400, 404, 429},
    ("get", "/v1/documents/{doc_id}"): {400, 404, 429},
    ("get", "/v1/namespaces"): {429},
    ("get", "/v1/feedback"): {400, 429},
    ("get", "/v1/settings"): {429},
    ("get", "/v1/watch"): {429},
    ("get", "/v1/dashboard"): {400, 429},
    ("post", "/v1/feedback"): {400, 404, 429},
    ("get", "/v1/stats"): {429},
    ("get", "/metrics"): {429},
    ("get", "/healthz"): set(),
    ("get", "/readyz"): {503},
}
_OPEN = {"/healthz", "/readyz"}
_PINECONE_CONTROL: dict[tuple[str, str], set[int]] = {
    ("post", "/indexes"): {400, 409},
    ("get", "/indexes"): {400},
    ("get", "/indexes/{name}"): {400, 404},
    ("delete", "/indexes/{name}"): {400, 403, 404},
    ("patch", "/indexes/{name}"): {400, 404},
}
_PINECONE_DATA = {400, 404}
_PINECONE_DATA_EXTRA = {("post", "/data/{index_name}/namespaces"): {409}}


def install_openapi(app: FastAPI, *, secured: bool) -> None:
    """Replace ``app.openapi`` by one that completes FastAPI's schema (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            complete(schema, secured=secured)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], *, secured: bool) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(copy.deepcopy(_ERROR_SCHEMAS))
    components.update(copy.deepcopy(FILTER_SCHEMAS))
    components["DocumentBody"] = DocumentBody.model_json_schema(ref_template=_REF + "{model}")
    for name in ("SearchBody", "AskBody", "ChatCompletionBody", "DocumentBody"):
        if name in components and "filter" in components[name].get("properties", {}):
            components[name]["properties"]["filter"] = {"anyOf": [{"$ref": _REF + "MetadataFilter"}, {"type": "null"}]}
    if secured:
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "xApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "Api-Key"},
        }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _complete_operation(path, method, operation, secured)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    _add_links(schema["paths"])


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from the operations that create things to those that use them (stateful tests)."""

    def link(source: tuple[str, str, str], prefix: str, values: dict[str, str]) -> None:
        method, path, status = source
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            return
        links = response.setdefault("links", {})
        for target, item in paths.items():
            if not target.startswith(prefix) or (target, method) == (path, method):
                continue
            for verb in item:
                needed = {k: v for k, v in values.items() if "{" + k + "}" in target}
                if needed:
                    pointer = target.replace("~", "~0").replace("/", "~1")
                    name = f"{verb}{target}".replace("/", "_").replace("{", "").replace("}", "")
                    links[name] = {"operationRef": f"#/paths/{pointer}/{verb}", "parameters": needed}

    link(("post", "/indexes", "201"), "/indexes/", {"name": "$response.body#/name"})
    link(("post", "/indexes", "201"), "/data/", {"index_name": "$response.body#/name"})
    link(("post", "/data/{index_name}/namespaces", "200"), "/data/{index_name}/namespaces/",
         {"index_name": "$request.path.index_name", "namespace": "$response.body#/name"})
    link(("post", "/v1/documents", "201"), "/v1/documents/", {"doc_id": "$response.body#/added/0"})


def _complete_operation(path: str, method: str, operation: dict[str, Any], secured: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    if (method, path) in _RAG:
        error, statuses = "ErrorResponse", set(_RAG[(method, path)])
        if secured and path not in _OPEN:
            statuses.add(401)
            operation["security"] = [{"bearer": []}, {"xApiKey": []}, {"apiKey": []}]
    else:
        data_plane = path.startswith("/data/")
        error = "PineconeDataError" if data_plane else "PineconeControlError"
        statuses = set(_PINECONE_DATA | _PINECONE_DATA_EXTRA.get((method, path), set()) if data_plane
                       else _PINECONE_CONTROL.get((method, path), {400}))
        statuses.add(400)  # X-Pinecone-Api-Version is checked on every Pinecone route
        if secured:
            statuses.add(401)
            operation["security"] = [{"apiKey": []}]
        extra = PINECONE_OPERATIONS.get((method, path), {})
        if "requestBody" in extra:
            operation["requestBody"] = copy.deepcopy(extra["requestBody"])
        params = [p for p in operation.get("parameters", []) if p.get("in") == "path"]
        operation["parameters"] = [*params, *copy.deepcopy(extra.get("parameters", [])), copy.deepcopy(VERSION_HEADER)]
    # Pinecone reports a body over the limit as 400, like its own limits; the RAG API as 413.
    statuses |= {408} | ({413} if error == "ErrorResponse" else set())
    for status in sorted(statuses):
        responses.setdefault(str(status), {
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": _REF + error}}},
        })
    if (method, path) == ("post", "/v1/chat/completions"):  # "stream": true answers server-sent events
        responses["200"].setdefault("content", {})["text/event-stream"] = {}
    # A request the HTTP parser cannot read (a URL too long, say) is refused by uvicorn itself, in text.
    bad = responses.setdefault("400", {"description": "The HTTP request could not be parsed", "content": {}})
    bad.setdefault("content", {})["text/plain"] = {"schema": {"type": "string"}}
