"""Pinecone's response objects, with the attribute names the official SDK uses.

The in-process client returns these; the server turns them into JSON with
``to_wire()`` (camelCase on the data plane, as Pinecone sends). They read like the
SDK's models: attributes, ``obj["field"]``, ``"field" in obj`` and ``to_dict()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

# The SDK and the REST API call the default namespace "" in requests; newer API versions
# report it as "__default__" in stats and namespace listings, and accept that name anywhere.
DEFAULT_NAMESPACE_ALIAS = "__default__"


class _DictLike:
    """Mapping-style access, as the SDK's models allow (``res["matches"]``)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._names()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._names() else default

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self._names()}

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, _DictLike):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(slots=True)
class SparseValues(_DictLike):
    indices: list[int]
    values: list[float]

    def to_wire(self) -> dict[str, Any]:
        return {"indices": list(self.indices), "values": list(self.values)}


@dataclass(slots=True)
class Vector(_DictLike):
    id: str
    values: list[float] = field(default_factory=list)
    sparse_values: SparseValues | None = None
    metadata: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "values": list(self.values)}
        if self.sparse_values is not None:
            out["sparseValues"] = self.sparse_values.to_wire()
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(slots=True)
class ScoredVector(_DictLike):
    id: str
    score: float
    values: list[float] = field(default_factory=list)
    sparse_values: SparseValues | None = None
    metadata: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "score": self.score, "values": list(self.values)}
        if self.sparse_values is not None:
            out["sparseValues"] = self.sparse_values.to_wire()
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(slots=True)
class Usage(_DictLike):
    read_units: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {} if self.read_units is None else {"readUnits": self.read_units}


@dataclass(slots=True)
class Pagination(_DictLike):
    next: str | None = None


@dataclass(slots=True)
class UpsertResponse(_DictLike):
    upserted_count: int

    def to_wire(self) -> dict[str, Any]:
        return {"upsertedCount": self.upserted_count}


@dataclass(slots=True)
class UpdateResponse(_DictLike):
    matched_records: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {} if self.matched_records is None else {"matchedRecords": self.matched_records}


@dataclass(slots=True)
class QueryResponse(_DictLike):
    matches: list[ScoredVector]
    namespace: str = ""
    usage: Usage | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"results": [], "matches": [m.to_wire() for m in self.matches], "namespace": self.namespace,
                "usage": (self.usage or Usage()).to_wire()}


@dataclass(slots=True)
class FetchResponse(_DictLike):
    vectors: dict[str, Vector]
    namespace: str = ""
    usage: Usage | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"vectors": {k: v.to_wire() for k, v in self.vectors.items()}, "namespace": self.namespace,
                "usage": (self.usage or Usage()).to_wire()}


@dataclass(slots=True)
class FetchByMetadataResponse(_DictLike):
    vectors: dict[str, Vector]
    namespace: str = ""
    usage: Usage | None = None
    pagination: Pagination | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vectors": {k: v.to_wire() for k, v in self.vectors.items()},
                               "namespace": self.namespace, "usage": (self.usage or Usage()).to_wire()}
        if self.pagination is not None:
            out["pagination"] = {"next": self.pagination.next}
        return out


@dataclass(slots=True)
class ListItem(_DictLike):
    id: str


@dataclass(slots=True)
class ListResponse(_DictLike):
    vectors: list[ListItem]
    pagination: Pagination | None = None
    namespace: str = ""
    usage: Usage | None = None

    def __iter__(self) -> Iterator[ListItem]:
        return iter(self.vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vectors": [{"id": v.id} for v in self.vectors], "namespace": self.namespace,
                               "usage": (self.usage or Usage()).to_wire()}
        if self.pagination is not None:
            out["pagination"] = {"next": self.pagination.next}
        return out


@dataclass(slots=True)
class NamespaceSummary(_DictLike):
    vector_count: int = 0


@dataclass(slots=True)
class DescribeIndexStatsResponse(_DictLike):
    namespaces: dict[str, NamespaceSummary]
    dimension: int | None
    total_vector_count: int
    metric: str
    vector_type: str
    index_fullness: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return {"namespaces": {k: {"vectorCount": v.vector_count} for k, v in self.namespaces.items()},
                "dimension": self.dimension, "indexFullness": self.index_fullness,
                "totalVectorCount": self.total_vector_count, "metric": self.metric, "vectorType": self.vector_type}


@dataclass(slots=True)
class NamespaceDescription(_DictLike):
    name: str
    record_count: int = 0
    schema: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        # The namespace API sends record_count as a string-encoded int64 (proto3 JSON).
        out: dict[str, Any] = {"name": self.name, "record_count": str(self.record_count)}
        if self.schema is not None:
            out["schema"] = self.schema
        return out


@dataclass(slots=True)
class ListNamespacesResponse(_DictLike):
    namespaces: list[NamespaceDescription]
    pagination: Pagination | None = None
    total_count: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespaces": [n.to_wire() for n in self.namespaces],
                               "total_count": self.total_count}
        if self.pagination is not None:
            out["pagination"] = {"next": self.pagination.next}
        return out


@dataclass(slots=True)
class IndexStatus(_DictLike):
    ready: bool = True
    state: str = "Ready"


@dataclass(frozen=True, slots=True)
class ServerlessSpec(_DictLike):
    cloud: str = "aws"
    region: str = "us-east-1"


@dataclass(slots=True)
class IndexModel(_DictLike):
    """An index description, with the 9.x attributes (dimension, metric, spec) kept."""

    name: str
    dimension: int | None
    metric: str
    host: str
    vector_type: str = "dense"
    deletion_protection: str = "disabled"
    tags: dict[str, str] | None = None
    status: IndexStatus = field(default_factory=IndexStatus)
    spec: dict[str, Any] = field(default_factory=lambda: {"serverless": {"cloud": "aws", "region": "us-east-1"}})
    schema: dict[str, Any] | None = None  # a document index's fields, as created (resolved)
    deployment: dict[str, Any] | None = None  # as created, in the 2026-07 shape (None: serverless from spec)

    def legacy_wire(self) -> dict[str, Any]:
        """The 2025-01 (and earlier) control-plane shape."""
        return {"name": self.name, "dimension": self.dimension, "metric": self.metric, "host": self.host,
                "spec": self.spec, "status": {"ready": self.status.ready, "state": self.status.state},
                "deletion_protection": self.deletion_protection, "tags": self.tags,
                "vector_type": self.vector_type}

    def current_wire(self) -> dict[str, Any]:
        """The 2026-07 shape: vector fields in a schema, placement in a deployment."""
        fields_: dict[str, Any] = {}
        if self.schema is not None:
            fields_ = self.schema["fields"]
        elif self.vector_type == "sparse":
            fields_["_sparse_values"] = {"type": "sparse_vector"}
        else:
            fields_["_values"] = {"type": "dense_vector", "dimension": self.dimension, "metric": self.metric}
        serverless = self.spec.get("serverless") or {}
        deployment = self.deployment or {"deployment_type": "managed", "cloud": serverless.get("cloud", "aws"),
                                         "region": serverless.get("region", "us-east-1")}
        return {"name": self.name, "host": self.host,
                "status": {"ready": self.status.ready, "state": self.status.state},
                "schema": {"fields": fields_},
                "deployment": deployment,
                "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
                "deletion_protection": self.deletion_protection, "tags": self.tags}


class IndexList(list[IndexModel]):
    """What ``list_indexes()`` returns: a list of IndexModel with ``names()``."""

    def names(self) -> list[str]:
        return [index.name for index in self]

    @property
    def indexes(self) -> list[IndexModel]:
        return list(self)
