"""The in-process ``index.documents`` and ``pc.indexes`` of the official SDK 10.x, over local storage.

    pc = Pinecone(path="./localrag-data")
    pc.indexes.create(name="articles", schema={"fields": {
        "title": {"type": "string", "full_text_search": {}},
        "embedding": {"type": "dense_vector", "dimension": 4, "metric": "cosine"}}})
    docs = pc.index(name="articles").documents
    docs.upsert(namespace="ns", documents=[{"_id": "a", "title": "hello", "embedding": [0.1] * 4}])
    docs.search(namespace="ns", top_k=5, score_by=[{"type": "text", "query": "hello", "fields": ["title"]}])

Each call builds the wire body the SDK would send and hands it to the same ``DocumentIndex``
the server uses, so a request refused here is refused over REST with the same error class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from localrag.errors import InvalidInputError, LocalRagError
from localrag.pinecone import documents_models as dm
from localrag.pinecone import wire
from localrag.pinecone.documents_index import DocumentIndex, request_size
from localrag.pinecone.errors import api_error

if TYPE_CHECKING:
    from localrag.pinecone.client import Pinecone
    from localrag.pinecone.models import IndexList, IndexModel


_PRIMITIVE = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """An SDK object (a typed clause, ``SparseValues``, a ``DocumentRecord``) as plain JSON data."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) in _PRIMITIVE for v in value):  # vectors: thousands of floats, no recursion
            return list(value)
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _plain(to_dict())
    try:  # msgspec structs (the SDK's clause classes), tagged with their ``type``
        import msgspec

        return _plain(msgspec.to_builtins(value))
    except (ImportError, TypeError):
        raise InvalidInputError(f"cannot send a {type(value).__name__}") from None


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class Documents:
    """``index.documents``: keyword-only, as in the SDK."""

    def __init__(self, index: DocumentIndex, api: Callable[[Callable[[], Any]], Any]) -> None:
        self._index = index
        self._api = api

    def upsert(self, *, namespace: str, documents: Sequence[Any], timeout: float | None = None
               ) -> dm.UpsertDocumentsResponse:
        body = {"documents": _plain(list(documents))}

        def run() -> dm.UpsertDocumentsResponse:
            wire.check_request_size(request_size(body))
            return self._index.upsert(namespace, body)
        return self._api(run)

    def batch_upsert(self, *, namespace: str, documents: Sequence[Any], batch_size: int = 50,
                     **_: Any) -> dm.BatchResult:
        """Upserts in batches one after another; a refused batch is recorded in ``errors``, not raised."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 1000:
            raise api_error(InvalidInputError("batch_size must be an integer between 1 and 1000"))
        items = [_plain(d) for d in documents]
        errors: list[dm.BatchError] = []
        batches = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
        for i, batch in enumerate(batches):
            try:
                self.upsert(namespace=namespace, documents=batch)
            except LocalRagError as e:
                errors.append(dm.BatchError(i, batch, e, str(e)))
        failed = sum(len(e.items) for e in errors)
        return dm.BatchResult(len(items), len(items) - failed, failed, len(batches), len(batches) - len(errors),
                              len(errors), errors)

    def search(self, *, namespace: str, score_by: Sequence[Any], top_k: int,
               include_fields: Sequence[str] | None = None, filter: Mapping[str, Any] | None = None,
               timeout: float | None = None) -> dm.SearchDocumentsResponse:
        if isinstance(score_by, (str, Mapping)):
            raise InvalidInputError("score_by must be a list of scoring clauses; wrap one clause as [clause]")
        body = _drop_none({"score_by": _plain(list(score_by)), "top_k": top_k,
                           "include_fields": None if include_fields is None else list(include_fields),
                           "filter": _plain(filter)})
        return self._api(lambda: self._index.search(namespace, body))

    def fetch(self, *, namespace: str, ids: Sequence[str] | None = None, filter: Mapping[str, Any] | None = None,
              include_fields: Sequence[str] | None = None, pagination_token: str | None = None,
              limit: int | None = None, timeout: float | None = None) -> dm.FetchDocumentsResponse:
        body = _drop_none({"ids": None if ids is None else list(ids), "filter": _plain(filter),
                           "include_fields": None if include_fields is None else list(include_fields),
                           "pagination_token": pagination_token, "limit": limit})
        return self._api(lambda: self._index.fetch(namespace, body))

    def delete(self, *, namespace: str, ids: Sequence[str] | None = None, filter: Mapping[str, Any] | None = None,
               delete_all: bool = False, timeout: float | None = None) -> dm.MatchedResponse:
        body = _drop_none({"ids": None if ids is None else list(ids), "filter": _plain(filter),
                           "delete_all": True if delete_all else None})
        return self._api(lambda: self._index.delete(namespace, body))

    def update(self, *, namespace: str, documents: Sequence[Any] | None = None,
               filter: Mapping[str, Any] | None = None, set_fields: Mapping[str, Any] | None = None,
               remove_fields: Sequence[str] | None = None, timeout: float | None = None) -> dm.MatchedResponse:
        body = _drop_none({"documents": None if documents is None else _plain(list(documents)),
                           "filter": _plain(filter), "set_fields": _plain(set_fields),
                           "remove_fields": None if remove_fields is None else list(remove_fields)})
        return self._api(lambda: self._index.update(namespace, body))

    def list(self, *, namespace: str, prefix: str | None = None, limit: int | None = None,
             pagination_token: str | None = None, timeout: float | None = None) -> dm.Paginator:
        def page(token: str | None) -> dm.ListDocumentsResponse:
            body = _drop_none({"prefix": prefix, "limit": limit, "pagination_token": token})
            return self._api(lambda: self._index.list_ids(namespace, body))
        page(pagination_token)  # bad arguments raise here, as the SDK's do, not on first iteration
        return dm.Paginator(page, pagination_token)


class Indexes:
    """``pc.indexes``: create (schema or the deprecated dimension), describe, list, exists, delete."""

    def __init__(self, pc: Pinecone) -> None:
        self._pc = pc

    def create(self, *, schema: Any = None, name: str | None = None, deployment: Mapping[str, Any] | None = None,
               deletion_protection: Any = None, tags: Mapping[str, str] | None = None, spec: Any = None,
               dimension: int | None = None, metric: Any = None, vector_type: Any = None,
               timeout: int | None = None, **_: Any) -> IndexModel:
        if schema is not None and (dimension is not None or metric is not None or vector_type is not None):
            raise InvalidInputError("create() got both schema= and dimension=/metric=/vector_type=; pass one")
        schema = _plain(schema)
        if isinstance(schema, Mapping) and isinstance(schema.get("fields"), Mapping):
            from localrag.pinecone.documents_schema import is_document_schema

            if is_document_schema(schema):
                return self._pc._create_document_index(str(name), schema, deployment or spec,
                                                       deletion_protection, tags)
            field = next(iter(schema["fields"].values()))
            dimension, metric = field.get("dimension"), field.get("metric")
            vector_type = "sparse" if field.get("type") == "sparse_vector" else "dense"
        elif schema is None and dimension is None and vector_type is None:
            raise InvalidInputError("schema is required: pass schema={'fields': {...}}")
        return self._pc.create_index(name=name, spec=deployment or spec, dimension=dimension, metric=metric,
                                     vector_type=vector_type, deletion_protection=deletion_protection, tags=tags)

    def describe(self, name: str) -> IndexModel:
        return self._pc.describe_index(name)

    def list(self) -> IndexList:
        return self._pc.list_indexes()

    def exists(self, name: str) -> bool:
        return self._pc.has_index(name)

    def delete(self, name: str, *, timeout: int | None = None) -> None:
        self._pc.delete_index(name)
