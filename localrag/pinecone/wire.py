"""Data-plane requests: parsed from camelCase (or snake_case) JSON, checked against Pinecone's limits.

The server and the in-process client both build requests here, so a request refused
over REST is refused in process with the same error class and message. Limits are
Pinecone's operation limits (docs.pinecone.io, "Database limits"); checks that need the
index (dimension, metric) live in ``local.py``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.errors import InvalidInputError
from localrag.filters import validate_filter
from localrag.pinecone.models import DEFAULT_NAMESPACE_ALIAS

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_TOP_K = 10_000
MAX_IDS = 1000
MAX_DIMENSION = 20_000
MAX_ID_LENGTH = 512
MAX_NAMESPACE_LENGTH = 512
MAX_SPARSE_NNZ = 2048
MAX_LIST_LIMIT = 100
MAX_FETCH_BY_METADATA_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 100
_UINT32 = 2**32

Sparse = tuple[NDArray[np.uint32], NDArray[np.float32]]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class LimitError(InvalidInputError):
    """A request broke one of Pinecone's operation limits (Pinecone answers 400, gRPC code 3)."""


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    values: NDArray[np.float32] | None
    sparse: Sparse | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class UpsertRequest:
    vectors: list[Record]
    namespace: str


@dataclass(frozen=True, slots=True)
class QueryRequest:
    top_k: int
    namespace: str
    vector: NDArray[np.float32] | None
    id: str | None
    sparse: Sparse | None
    filter: dict[str, Any] | None
    include_values: bool
    include_metadata: bool


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    ids: list[str] | None
    delete_all: bool
    filter: dict[str, Any] | None
    namespace: str


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    id: str | None
    values: NDArray[np.float32] | None
    sparse: Sparse | None
    set_metadata: dict[str, Any] | None
    filter: dict[str, Any] | None
    namespace: str
    dry_run: bool


@dataclass(frozen=True, slots=True)
class PageRequest:
    namespace: str
    prefix: str
    limit: int
    token: str | None


def snake_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys in snake_case; where both spellings are given the camelCase one wins."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        snake = _CAMEL.sub("_", key).lower() if isinstance(key, str) else key
        if snake not in out or key != snake:
            out[snake] = value
    return out


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInputError("request body must be a JSON object")
    return snake_keys(body)


def namespace_of(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError("namespace must be a string")
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise LimitError(f"Namespace name exceeds the maximum length of {MAX_NAMESPACE_LENGTH} characters")
    return "" if value == DEFAULT_NAMESPACE_ALIAS else value


def vector_id(value: Any, what: str = "id") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise LimitError(f"ID exceeds the maximum length of {MAX_ID_LENGTH} characters: {value[:64]!r}...")
    if not value.isascii() or "\x00" in value:
        raise InvalidInputError(f"ID must contain only ASCII characters and no NUL: {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a boolean")
    return value


def _int(value: Any, name: str, *, strict: bool = True) -> int:
    """An integer; ``strict=False`` also takes its decimal text (query-string parameters)."""
    allowed = (int, float) if strict else (int, float, str)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise InvalidInputError(f"{name} must be an integer")
    if isinstance(value, float) and not value.is_integer():  # also NaN and the infinities
        raise InvalidInputError(f"{name} must be an integer")
    try:
        return int(value)
    except ValueError as e:
        raise InvalidInputError(f"{name} must be an integer") from e


def dense_values(value: Any, name: str = "values") -> NDArray[np.float32] | None:
    """None for absent or empty values (a sparse-only record)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise InvalidInputError(f"{name} must be a list of numbers")
    if len(value) == 0:
        return None
    if not isinstance(value, np.ndarray) and bool in set(map(type, value)):  # numpy would read true as 1.0
        raise InvalidInputError(f"{name} must be a list of numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{name} must be a list of numbers") from e
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be a flat list of numbers")
    if not np.isfinite(array).all() or (np.abs(array) > np.finfo(np.float32).max).any():
        raise InvalidInputError(f"{name} must hold finite 32-bit floats")
    return array.astype(np.float32)


def sparse_values(value: Any, name: str = "sparseValues") -> Sparse | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{name} must be an object with indices and values")
    indices, values = value.get("indices"), value.get("values")
    if not isinstance(indices, (list, tuple)) or not isinstance(values, (list, tuple)):
        raise InvalidInputError(f"{name} must have lists of indices and values")
    if len(indices) != len(values):
        raise InvalidInputError(f"Sparse vector indices and values must have the same length, got "
                                f"{len(indices)} and {len(values)}")
    if not indices:
        raise InvalidInputError("Sparse vector must contain at least one value")
    if len(indices) > MAX_SPARSE_NNZ:
        raise LimitError(f"Sparse vector has {len(indices)} non-zero values; the maximum is {MAX_SPARSE_NNZ}")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < _UINT32 for i in indices):
        raise InvalidInputError("Sparse vector indices must be integers in [0, 2^32)")
    if len(set(indices)) != len(indices):
        raise InvalidInputError("Sparse vector indices must be unique")
    vals = dense_values(list(values), f"{name}.values")
    assert vals is not None
    order = np.argsort(np.asarray(indices, dtype=np.int64))
    return np.asarray(indices, dtype=np.uint32)[order], vals[order]


def metadata_of(value: Any, what: str = "metadata") -> dict[str, Any] | None:
    """Validate Pinecone metadata; numbers become floats, as Pinecone stores them."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"{what} keys must be non-empty strings")
        if isinstance(item, (bool, str)):
            out[key] = item
        elif isinstance(item, (int, float)):
            number = float(item)
            if not math.isfinite(number):
                raise InvalidInputError(f"Metadata value for field '{key}' must be a finite number")
            out[key] = number
        elif isinstance(item, (list, tuple)) and all(isinstance(e, str) for e in item):
            out[key] = list(item)
        else:
            shown = "null" if item is None else json.dumps(item, default=str)[:16]
            raise InvalidInputError(f"Metadata value must be a string, number, boolean or list of strings, "
                                    f"got '{shown}' for field '{key}'")
    size = len(json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise LimitError(f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} "
                         "bytes per vector")
    return out


def filter_of(value: Any, *, required: str | None = None) -> dict[str, Any] | None:
    """Validate a filter; ``required`` is the message for a missing or empty one where it is mandatory."""
    if value is None or (isinstance(value, Mapping) and not value):
        if required is not None:
            raise InvalidInputError(required)
        return None if value is None else {}
    if not isinstance(value, Mapping):
        raise InvalidInputError("filter must be an object")
    validate_filter(value)
    return dict(value)


def check_request_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        mb = math.ceil(size / (1024 * 1024))
        raise LimitError(f"Request size {mb}MB exceeds the maximum supported size of 2MB")


def estimated_size(request: UpsertRequest) -> int:
    """The compact-JSON size of an in-process upsert: an upper bound, made exact only near the limit.

    Serialising every float costs ~1 us each, so it is done only when the bound (25 bytes per
    number, the longest float repr) could pass 2 MB.
    """
    bound = 64
    for r in request.vectors:
        numbers = (0 if r.values is None else len(r.values)) + (0 if r.sparse is None else 2 * len(r.sparse[0]))
        meta = 0 if r.metadata is None else len(json.dumps(r.metadata, separators=(",", ":")).encode())
        bound += 25 * numbers + len(r.id) + meta + 80
    if bound <= MAX_REQUEST_BYTES:
        return bound
    body = {"vectors": [{"id": r.id, "values": [] if r.values is None else r.values.tolist(),
                         **({} if r.sparse is None else {"sparseValues": {"indices": r.sparse[0].tolist(),
                                                                          "values": r.sparse[1].tolist()}}),
                         **({} if r.metadata is None else {"metadata": r.metadata})} for r in request.vectors],
            "namespace": request.namespace}
    return len(json.dumps(body, separators=(",", ":"), default=_jsonable).encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


# --------------------------------------------------------------------------- requests


def upsert_request(body: Any) -> UpsertRequest:
    b = _body(body)
    vectors = b.get("vectors")
    if not isinstance(vectors, (list, tuple)):
        raise InvalidInputError("vectors must be a list")
    if len(vectors) > MAX_UPSERT_VECTORS:
        raise LimitError(f"Request contains {len(vectors)} vectors; the maximum number of vectors per upsert "
                         f"request is {MAX_UPSERT_VECTORS}")
    records = []
    for item in vectors:
        if not isinstance(item, Mapping):
            raise InvalidInputError("each vector must be an object with an id")
        v = snake_keys(item)
        record_id = vector_id(v.get("id"), "vector id")
        values = dense_values(v.get("values"))
        sparse = sparse_values(v.get("sparse_values"))
        if values is None and sparse is None:
            raise InvalidInputError(f"Vector {record_id!r} must have at least one of non-empty dense values "
                                    "or sparse values")
        records.append(Record(record_id, values, sparse, metadata_of(v.get("metadata"))))
    return UpsertRequest(records, namespace_of(b.get("namespace")))


def query_request(body: Any) -> QueryRequest:
    b = _body(body)
    if b.get("top_k") is None:
        raise InvalidInputError("topK is required")
    top_k = _int(b["top_k"], "topK")
    if not 1 <= top_k <= MAX_TOP_K:
        raise LimitError(f"Invalid request: topK must be between 1 and {MAX_TOP_K}, got {top_k}")
    vector = dense_values(b.get("vector"), "vector")
    query_id = None if b.get("id") is None else vector_id(b.get("id"))
    sparse = sparse_values(b.get("sparse_vector"), "sparseVector")
    if query_id is not None and vector is not None:
        raise InvalidInputError("Cannot provide both 'ID' and 'vector' at the same time")
    if query_id is not None and sparse is not None:
        raise InvalidInputError("Cannot provide both 'ID' and 'sparse_vector' at the same time")
    if query_id is None and vector is None and sparse is None:
        raise InvalidInputError("No query provided: give a vector, a sparse vector or an id")
    return QueryRequest(top_k, namespace_of(b.get("namespace")), vector, query_id, sparse,
                        filter_of(b.get("filter")), _bool(b.get("include_values"), "includeValues"),
                        _bool(b.get("include_metadata"), "includeMetadata"))


def id_list(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError("ids must be a list of strings")
    if len(value) > MAX_IDS:
        raise LimitError(f"Request contains {len(value)} ids; the maximum is {MAX_IDS} per request")
    return [vector_id(v) for v in value]


def fetch_ids(ids: Any) -> list[str]:
    found = id_list(ids)
    if not found:
        raise InvalidInputError("ids must contain at least one id")
    return found


def fetch_by_metadata_request(body: Any) -> tuple[dict[str, Any], str, int, str | None]:
    b = _body(body)
    flt = filter_of(b.get("filter"), required="Empty filter provided for fetch by metadata request")
    assert flt is not None
    limit = DEFAULT_LIST_LIMIT if b.get("limit") is None else _int(b["limit"], "limit")
    if not 1 <= limit <= MAX_FETCH_BY_METADATA_LIMIT:
        raise LimitError(f"limit must be between 1 and {MAX_FETCH_BY_METADATA_LIMIT}")
    token = b.get("pagination_token")
    if token is not None and not isinstance(token, str):
        raise InvalidInputError("paginationToken must be a string")
    return flt, namespace_of(b.get("namespace")), limit, token


def delete_request(body: Any) -> DeleteRequest:
    b = _body(body)
    delete_all = _bool(b.get("delete_all"), "deleteAll")
    ids = None if b.get("ids") is None else id_list(b.get("ids"))
    flt = b.get("filter")
    if flt is not None:
        flt = filter_of(flt, required="Delete with empty metadata filter is not allowed")
    if delete_all and (ids or flt is not None):
        raise InvalidInputError("No explicit IDs or filter allowed when deleteAll is true")
    if not delete_all and ids is None and flt is None:
        raise InvalidInputError("Delete requires one of ids, deleteAll or filter")
    return DeleteRequest(ids, delete_all, flt, namespace_of(b.get("namespace")))


def update_request(body: Any) -> UpdateRequest:
    b = _body(body)
    update_id = None if b.get("id") is None else vector_id(b.get("id"))
    flt = b.get("filter")
    if flt is not None:
        flt = filter_of(flt, required="Update with empty metadata filter is not allowed")
    if (update_id is None) == (flt is None):
        raise InvalidInputError("Exactly one of id or filter must be provided")
    values = dense_values(b.get("values"))
    sparse = sparse_values(b.get("sparse_values"))
    if flt is not None and (values is not None or sparse is not None):
        raise InvalidInputError("Update by metadata request does not support updating vector values.")
    return UpdateRequest(update_id, values, sparse, metadata_of(b.get("set_metadata"), "setMetadata"), flt,
                         namespace_of(b.get("namespace")), _bool(b.get("dry_run"), "dryRun"))


def page_request(namespace: Any, prefix: Any, limit: Any, token: Any,
                 max_limit: int = MAX_LIST_LIMIT) -> PageRequest:
    if prefix is not None and not isinstance(prefix, str):
        raise InvalidInputError("prefix must be a string")
    if prefix and len(prefix) > MAX_ID_LENGTH:
        raise LimitError(f"prefix exceeds the maximum length of {MAX_ID_LENGTH} characters")
    size = DEFAULT_LIST_LIMIT if limit is None else _int(limit, "limit", strict=False)
    if not 1 <= size <= max_limit:
        raise LimitError(f"limit must be between 1 and {max_limit}, got {size}")
    if token is not None and not isinstance(token, str):
        raise InvalidInputError("paginationToken must be a string")
    return PageRequest(namespace_of(namespace), prefix or "", size, token or None)


def ids_from_query(values: Sequence[str]) -> list[str]:
    """``ids`` given as repeated query parameters (or one comma-free value each)."""
    return fetch_ids(list(values))
