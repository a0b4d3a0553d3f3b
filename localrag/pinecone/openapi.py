"""OpenAPI descriptions of Pinecone's request bodies and query parameters, as ``wire.py`` reads them.

The routes parse their JSON themselves (camelCase or snake_case, unknown keys ignored), so FastAPI
cannot describe them; these schemas state the constraints ``wire.py`` and ``local.py`` enforce,
in camelCase. Optional fields may be ``null`` (the server treats it as absent). What depends on
the index (dimension, dense or sparse) cannot be said in a schema and is checked per request.
The filter language's schema (``MetadataFilter``) is shared with the RAG API.
"""

from __future__ import annotations

from typing import Any

from localrag.filters import MAX_IN_VALUES
from localrag.pinecone import wire

_REF = "#/components/schemas/"
_FLOAT32_MAX = 3.4028234663852886e38


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_SCALAR = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
_NUMBER = {"type": "number"}
_IN = {"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": _SCALAR}

FILTER_SCHEMAS: dict[str, Any] = {
    # localrag.filters: fields map to a value or an operator object; $and/$or hold non-empty filters.
    "MetadataFilter": {
        "type": "object",
        "properties": {
            "$and": {"type": "array", "minItems": 1, "items": {"$ref": _REF + "MetadataFilterClause"}},
            "$or": {"type": "array", "minItems": 1, "items": {"$ref": _REF + "MetadataFilterClause"}},
        },
        "patternProperties": {"^[^$]": {"$ref": _REF + "FieldCondition"}},
        "additionalProperties": False,
        "description": "Pinecone's metadata filter language (at most 16 levels of $and/$or)",
    },
    "MetadataFilterClause": {},  # MetadataFilter with at least one key: filled in below
    "FieldCondition": {"anyOf": [*_SCALAR["anyOf"], {"$ref": _REF + "FieldOperators"}]},
    "FieldOperators": {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {"$eq": _SCALAR, "$ne": _SCALAR, "$gt": _NUMBER, "$gte": _NUMBER, "$lt": _NUMBER,
                       "$lte": _NUMBER, "$in": _IN, "$nin": _IN, "$exists": {"type": "boolean"}},
    },
}

FILTER_SCHEMAS["MetadataFilterClause"] = {**FILTER_SCHEMAS["MetadataFilter"], "minProperties": 1}
_FILTER = {"$ref": _REF + "MetadataFilter"}
_NON_EMPTY_FILTER = {"$ref": _REF + "MetadataFilterClause"}
_NAMESPACE = _nullable({"type": "string", "maxLength": wire.MAX_NAMESPACE_LENGTH})
_ID = {"type": "string", "minLength": 1, "maxLength": wire.MAX_ID_LENGTH, "pattern": "^[\\u0001-\\u007f]+$"}
_FLOAT = {"type": "number", "minimum": -_FLOAT32_MAX, "maximum": _FLOAT32_MAX}
_VALUES = {"type": "array", "maxItems": wire.MAX_DIMENSION, "items": _FLOAT}
_SPARSE = {
    "type": "object", "required": ["indices", "values"],
    "properties": {
        "indices": {"type": "array", "minItems": 1, "maxItems": wire.MAX_SPARSE_NNZ, "uniqueItems": True,
                    "items": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}},
        "values": {"type": "array", "minItems": 1, "maxItems": wire.MAX_SPARSE_NNZ, "items": _FLOAT},
    },
    "description": "indices and values of the same length",
}
_METADATA = {
    "type": "object", "propertyNames": {"minLength": 1},
    "additionalProperties": {"anyOf": [*_SCALAR["anyOf"], {"type": "array", "items": {"type": "string"}}]},
    "description": f"at most {wire.MAX_METADATA_BYTES} bytes as JSON",
}
_BOOL = _nullable({"type": "boolean"})
_VECTOR = {
    "type": "object", "required": ["id"],
    "properties": {"id": _ID, "values": _nullable(_VALUES), "sparseValues": _nullable(_SPARSE),
                   "metadata": _nullable(_METADATA)},
    "anyOf": [{"required": ["values"], "properties": {"values": {"type": "array", "minItems": 1}}},
              {"required": ["sparseValues"], "properties": {"sparseValues": {"type": "object"}}}],
}
_TOKEN = _nullable({"type": "string"})


def _query_param(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_PAGE_PARAMS = [
    _query_param("prefix", {"type": "string", "maxLength": wire.MAX_ID_LENGTH}),
    _query_param("limit", {"type": "integer", "minimum": 1, "maximum": wire.MAX_LIST_LIMIT}),
    _query_param("paginationToken", {"type": "string"}),
]

# Every month from the oldest to the current version: exactly what server.api_version accepts.
_VERSIONS = [v for v in (f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13))
             if "2024-07" <= v <= "2026-07"]
VERSION_HEADER = {
    "name": "X-Pinecone-Api-Version", "in": "header", "required": False,
    "description": "2024-07 to 2026-07; absent means 2024-07",
    "schema": {"type": "string", "enum": _VERSIONS},
}

_DATA = "/data/{index_name}"

# The Documents API (2026-07): snake_case bodies; which fields a document needs depends on the index.
_DOC_FILTER = {"type": "object", "description": "metadata operators on undeclared fields, $match_phrase / "
               "$match_all / $match_any on full-text fields, under $and / $or"}
_FIELDS = {"type": "array", "items": {"type": "string"}}
_DOCUMENT = {"type": "object", "required": ["_id"], "properties": {"_id": _ID},
             "description": "_id plus the schema's fields and metadata (string, number, boolean, list of strings)"}
_CLAUSE = {"type": "object", "required": ["type"], "properties": {"type": {"enum": [
    "text", "query_string", "dense_vector", "sparse_vector", "embed", "sparse_embed"]}}}
def _optional_null(body: dict[str, Any]) -> dict[str, Any]:
    """Optional properties may be null: the server reads null as absent."""
    required = set(body.get("required", []))
    properties = {k: v if k in required else _nullable(v) for k, v in body["properties"].items()}
    return {**body, "properties": properties}


_DOCUMENT_BODIES: dict[str, dict[str, Any]] = {
    "upsert": {"type": "object", "required": ["documents"],
               "properties": {"documents": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _DOCUMENT}}},
    "search": {"type": "object", "required": ["score_by", "top_k"],
               "properties": {"score_by": {"type": "array", "minItems": 1, "maxItems": 100, "items": _CLAUSE},
                              "top_k": {"type": "integer", "minimum": 1, "maximum": wire.MAX_TOP_K},
                              "filter": _DOC_FILTER, "include_fields": _FIELDS}},
    "fetch": {"type": "object", "properties": {
        "ids": {"type": "array", "maxItems": wire.MAX_IDS, "items": _ID}, "filter": _DOC_FILTER,
        "include_fields": _FIELDS, "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "pagination_token": {"type": "string"}}, "description": "exactly one of ids or filter"},
    "delete": {"type": "object", "properties": {
        "ids": {"type": "array", "maxItems": wire.MAX_IDS, "items": _ID}, "filter": _DOC_FILTER,
        "delete_all": {"type": "boolean"}}, "description": "exactly one of ids, filter or delete_all"},
    "update": {"type": "object", "properties": {
        "documents": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _DOCUMENT},
        "filter": _DOC_FILTER, "set_fields": {"type": "object"}, "remove_fields": _FIELDS},
        "description": "documents (per-id patches), or filter with set_fields / remove_fields"},
    "list": {"type": "object", "properties": {
        "prefix": {"type": "string", "maxLength": wire.MAX_ID_LENGTH},
        "limit": {"type": "integer", "minimum": 1, "maximum": wire.MAX_LIST_LIMIT},
        "pagination_token": {"type": "string"}}},
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", _DATA + "/vectors/upsert"): {"requestBody": _json({
        "type": "object", "required": ["vectors"],
        "properties": {"vectors": {"type": "array", "maxItems": wire.MAX_UPSERT_VECTORS, "items": _VECTOR},
                       "namespace": _NAMESPACE}})},
    ("post", _DATA + "/query"): {"requestBody": _json({
        "type": "object", "required": ["topK"],
        "properties": {"topK": {"type": "integer", "minimum": 1, "maximum": wire.MAX_TOP_K},
                       "vector": _nullable(_VALUES), "id": _nullable(_ID), "sparseVector": _nullable(_SPARSE),
                       "filter": _nullable(_FILTER), "namespace": _NAMESPACE, "includeValues": _BOOL,
                       "includeMetadata": _BOOL},
        "description": "one of vector and/or sparseVector, or id"})},
    ("post", _DATA + "/vectors/fetch_by_metadata"): {"requestBody": _json({
        "type": "object", "required": ["filter"],
        "properties": {"filter": _NON_EMPTY_FILTER, "namespace": _NAMESPACE,
                       "limit": _nullable({"type": "integer", "minimum": 1,
                                           "maximum": wire.MAX_FETCH_BY_METADATA_LIMIT}),
                       "paginationToken": _TOKEN}})},
    ("post", _DATA + "/vectors/delete"): {"requestBody": _json({
        "type": "object",
        "properties": {"ids": _nullable({"type": "array", "maxItems": wire.MAX_IDS, "items": _ID}),
                       "deleteAll": _BOOL, "filter": _nullable(_NON_EMPTY_FILTER), "namespace": _NAMESPACE},
        "description": "one of ids, deleteAll or filter"})},
    ("post", _DATA + "/vectors/update"): {"requestBody": _json({
        "type": "object",
        "properties": {"id": _nullable(_ID), "values": _nullable(_VALUES), "sparseValues": _nullable(_SPARSE),
                       "setMetadata": _nullable(_METADATA), "filter": _nullable(_NON_EMPTY_FILTER),
                       "namespace": _NAMESPACE, "dryRun": _BOOL},
        "description": "exactly one of id or filter"})},
    ("post", _DATA + "/describe_index_stats"): {"requestBody": _json({
        "type": "object", "properties": {"filter": _nullable(_FILTER)}}, required=False)},
    ("get", _DATA + "/vectors/fetch"): {"parameters": [
        _query_param("ids", {"type": "array", "minItems": 1, "maxItems": wire.MAX_IDS, "items": _ID}, True),
        _query_param("namespace", {"type": "string", "maxLength": wire.MAX_NAMESPACE_LENGTH})]},
    ("get", _DATA + "/vectors/list"): {"parameters": [
        _query_param("namespace", {"type": "string", "maxLength": wire.MAX_NAMESPACE_LENGTH}), *_PAGE_PARAMS]},
    ("get", _DATA + "/namespaces"): {"parameters": _PAGE_PARAMS},
    ("post", _DATA + "/namespaces"): {"requestBody": _json({
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": wire.MAX_NAMESPACE_LENGTH,
                                "not": {"const": "__default__"}},
                       "schema": {}}})},
    **{("post", _DATA + f"/namespaces/{{namespace}}/documents/{op}"): {"requestBody": _json(_optional_null(body),
                                                                                            op != "list")}
       for op, body in _DOCUMENT_BODIES.items()},
    ("post", "/indexes"): {"requestBody": _json({
        "type": "object", "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$"},
            "dimension": _nullable({"type": "integer", "minimum": 1, "maximum": wire.MAX_DIMENSION}),
            "metric": _nullable({"enum": ["cosine", "dotproduct", "euclidean"]}),
            "vector_type": _nullable({"enum": ["dense", "sparse"]}),
            "spec": _nullable({"type": "object"}),
            "deletion_protection": _nullable({"enum": ["enabled", "disabled"]}),
            "tags": _nullable({"type": "object", "additionalProperties": {"type": "string"}}),
        },
        "description": "a dense index needs a dimension; a sparse one has none and uses dotproduct "
                       "(API 2026-07 also takes schema.fields and deployment)"})},
    ("patch", "/indexes/{name}"): {"requestBody": _json({
        "type": "object",
        "properties": {"deletion_protection": _nullable({"enum": ["enabled", "disabled"]}),
                       "tags": _nullable({"type": "object", "additionalProperties": {"type": "string"}})}},
        required=False)},
}
