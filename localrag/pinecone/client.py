"""``Pinecone`` and ``Index`` in process: the official SDK's API over local storage, no server.

    from localrag.pinecone import Pinecone
    pc = Pinecone(path="./localrag-data")          # api_key is accepted and ignored
    pc.create_index(name="docs", dimension=384, metric="cosine")
    index = pc.Index("docs")
    index.upsert(vectors=[("a", [0.1] * 384, {"genre": "news"})], namespace="ns1")

Requests go through the same parsing and limits as the server (``wire.py``), so a
call refused here is refused over REST with the same class of error. Errors are
``localrag.pinecone.errors.ApiError`` subclasses with ``status_code`` and ``body``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from localrag.errors import InvalidInputError, LocalRagError
from localrag.pinecone import models as m
from localrag.pinecone import wire
from localrag.pinecone.ann import AnnSettings
from localrag.pinecone.control import LocalPinecone
from localrag.pinecone.deployment import deployment_of, legacy_spec
from localrag.pinecone.documents_client import Documents, Indexes
from localrag.pinecone.documents_embed import EmbedderSource
from localrag.pinecone.documents_index import DocumentIndex
from localrag.pinecone.errors import api_error
from localrag.pinecone.local import LocalIndex
from localrag.pinecone.store import IndexConfig

log = logging.getLogger(__name__)

DEFAULT_PATH_ENV = "LOCALRAG_DATA"
DEFAULT_PATH = "./localrag-data"
SUBDIR = "pinecone"  # the same folder ``localrag serve --data DIR`` serves
LOCAL_HOST_SCHEME = "local://"
T = TypeVar("T")


def _api(control_plane: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except LocalRagError as e:
                raise api_error(e, control_plane=control_plane) from e
        return inner
    return wrap


@_api()
def _call(fn: Callable[[], T]) -> T:
    return fn()


def index_model(config: IndexConfig, host: str) -> m.IndexModel:
    deployment = config.deployment or {"deployment_type": "managed", "cloud": config.cloud, "region": config.region}
    return m.IndexModel(config.name, config.dimension, config.metric, host, config.vector_type,
                        config.deletion_protection, dict(config.tags) if config.tags else None, m.IndexStatus(),
                        legacy_spec(deployment), config.schema, dict(deployment))


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


class Pinecone:
    """The control plane, in process, over the indexes in ``<path>/pinecone``.

    ``path`` is a localrag data directory (default $LOCALRAG_DATA or ./localrag-data), the
    same one ``localrag serve --data`` serves, so data written here is served there.
    ``embedder`` (a localrag extension) serves document indexes' ``embed`` fields; by default
    the data directory's configured embedder, loaded on first use. ``ann`` (also an extension)
    sets when legacy dense queries use ANN candidates (``localrag.pinecone.ann.AnnSettings``).
    """

    def __init__(self, api_key: str | None = None, *, path: str | Path | None = None,
                 embedder: EmbedderSource | None = None, ann: AnnSettings | None = None, **_: Any) -> None:
        self.path = Path(path or os.environ.get(DEFAULT_PATH_ENV, DEFAULT_PATH))
        self._local = LocalPinecone(self.path / SUBDIR, embedder, ann)

    def __enter__(self) -> Pinecone:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._local.close()

    @_api(control_plane=True)
    def create_index(self, name: str, spec: Any = None, dimension: int | None = None, metric: Any = None,
                     timeout: int | None = None, deletion_protection: Any = None, vector_type: Any = None,
                     tags: Mapping[str, str] | None = None, **_: Any) -> m.IndexModel:
        config = self._local.create_index(name, dimension, _enum(metric), _enum(vector_type) or "dense",
                                          _enum(deletion_protection) or "disabled",
                                          dict(tags) if tags else None, deployment=deployment_of(spec))
        return index_model(config, LOCAL_HOST_SCHEME + name)

    @property
    def indexes(self) -> Indexes:
        """The 10.x control-plane namespace: ``pc.indexes.create(schema=...)`` and friends."""
        return Indexes(self)

    @_api(control_plane=True)
    def _create_document_index(self, name: str, schema: Mapping[str, Any], placement: Any,
                               deletion_protection: Any, tags: Mapping[str, str] | None) -> m.IndexModel:
        config = self._local.create_document_index(name, dict(schema), _enum(deletion_protection) or "disabled",
                                                   dict(tags) if tags else None, deployment=deployment_of(placement))
        return index_model(config, LOCAL_HOST_SCHEME + name)

    @_api(control_plane=True)
    def describe_index(self, name: str) -> m.IndexModel:
        return index_model(self._local.opened(name).config, LOCAL_HOST_SCHEME + name)

    @_api(control_plane=True)
    def list_indexes(self) -> m.IndexList:
        return m.IndexList(index_model(c, LOCAL_HOST_SCHEME + c.name) for c in self._local.configs())

    def has_index(self, name: str) -> bool:
        return name in self._local.catalog.names()

    @_api(control_plane=True)
    def delete_index(self, name: str, timeout: int | None = None) -> None:
        self._local.delete_index(name)

    @_api(control_plane=True)
    def configure_index(self, name: str, deletion_protection: Any = None, tags: Mapping[str, str] | None = None,
                        **_: Any) -> m.IndexModel:
        config = self._local.configure_index(name, _enum(deletion_protection), dict(tags) if tags else None)
        return index_model(config, LOCAL_HOST_SCHEME + name)

    @_api(control_plane=True)
    def index(self, name: str = "", host: str = "", **_: Any) -> Index:
        if not name and host:
            name = host.removeprefix(LOCAL_HOST_SCHEME).rstrip("/").rsplit("/", 1)[-1]
        if not name:
            raise InvalidInputError("Either name or host must be provided to create an Index client.")
        return Index(self._local.opened(name))

    def Index(self, name: str = "", host: str = "", **kwargs: Any) -> Index:
        return self.index(name=name, host=host, **kwargs)


def _vector_dict(item: Any) -> dict[str, Any]:
    """A tuple, dict or Vector object (ours or the SDK's) as a wire dict."""
    if isinstance(item, tuple):
        if len(item) not in (2, 3):
            raise InvalidInputError(f"Vector tuple must have 2 or 3 elements, got {len(item)}")
        return {"id": item[0], "values": item[1], "metadata": item[2] if len(item) == 3 else None}
    if isinstance(item, Mapping):
        unknown = set(item) - {"id", "values", "sparse_values", "sparseValues", "metadata"}
        if unknown:
            raise InvalidInputError(f"Vector dict contains unrecognized keys: {sorted(unknown)}")
        return dict(item)
    if hasattr(item, "id"):
        sparse = getattr(item, "sparse_values", None)
        if sparse is not None and not isinstance(sparse, Mapping):
            sparse = {"indices": list(sparse.indices), "values": list(sparse.values)}
        return {"id": item.id, "values": getattr(item, "values", None), "sparse_values": sparse,
                "metadata": getattr(item, "metadata", None)}
    raise InvalidInputError(f"cannot upsert a {type(item).__name__}; give tuples, dicts or Vectors")


def _sparse_dict(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return value
    return {"indices": list(value.indices), "values": list(value.values)}


class Index:
    """The data plane of one index, in process. Method names and arguments follow the SDK."""

    def __init__(self, local: LocalIndex | DocumentIndex) -> None:
        self._opened = local

    @property
    def _index(self) -> LocalIndex:
        if not isinstance(self._opened, LocalIndex):
            raise InvalidInputError(f"Index {self._opened.config.name!r} is a document index: use index.documents")
        return self._opened

    @property
    def documents(self) -> Documents:
        """The Documents API of a document index (created with a schema of named fields)."""
        if not isinstance(self._opened, DocumentIndex):
            raise api_error(InvalidInputError(f"Index {self._opened.config.name!r} is a vector index: the Documents "
                                              "API needs an index created with a schema of named fields"))
        return Documents(self._opened, _call)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: the ``Pinecone`` object owns the storage."""

    @_api()
    def upsert(self, vectors: Sequence[Any], namespace: str = "", batch_size: int | None = None,
               show_progress: bool = True, **_: Any) -> m.UpsertResponse:
        items = [_vector_dict(v) for v in vectors]
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise InvalidInputError("batch_size must be a positive integer")
        step = batch_size or max(1, len(items))
        total = 0
        for start in range(0, max(1, len(items)), step):
            request = wire.upsert_request({"vectors": items[start:start + step], "namespace": namespace})
            wire.check_request_size(wire.estimated_size(request))
            total += self._index.upsert(request).upserted_count
        return m.UpsertResponse(total)

    @_api()
    def query(self, *, top_k: int, vector: Sequence[float] | None = None, id: str | None = None,
              namespace: str = "", filter: Mapping[str, Any] | None = None, include_values: bool = False,
              include_metadata: bool = False, sparse_vector: Any = None, **_: Any) -> m.QueryResponse:
        body = {"topK": top_k, "vector": vector, "id": id, "namespace": namespace, "filter": filter,
                "includeValues": include_values, "includeMetadata": include_metadata,
                "sparseVector": _sparse_dict(sparse_vector)}
        return self._index.query(wire.query_request(body))

    @_api()
    def fetch(self, ids: Sequence[str], namespace: str = "", **_: Any) -> m.FetchResponse:
        return self._index.fetch(wire.fetch_ids(list(ids)), wire.namespace_of(namespace))

    @_api()
    def fetch_by_metadata(self, filter: Mapping[str, Any], namespace: str = "", limit: int | None = None,
                          pagination_token: str | None = None, **_: Any) -> m.FetchByMetadataResponse:
        body = {"filter": filter, "namespace": namespace, "limit": limit, "paginationToken": pagination_token}
        return self._index.fetch_by_metadata(*wire.fetch_by_metadata_request(body))

    @_api()
    def delete(self, ids: Sequence[str] | None = None, delete_all: bool = False,
               filter: Mapping[str, Any] | None = None, namespace: str = "", **_: Any) -> dict[str, Any]:
        body = {"ids": None if ids is None else list(ids), "deleteAll": delete_all, "filter": filter,
                "namespace": namespace}
        self._index.delete(wire.delete_request(body))
        return {}

    @_api()
    def update(self, id: str | None = None, values: Sequence[float] | None = None, sparse_values: Any = None,
               set_metadata: Mapping[str, Any] | None = None, namespace: str = "",
               filter: Mapping[str, Any] | None = None, dry_run: bool = False, **_: Any) -> m.UpdateResponse:
        body = {"id": id, "values": values, "sparseValues": _sparse_dict(sparse_values),
                "setMetadata": set_metadata, "namespace": namespace, "filter": filter, "dryRun": dry_run}
        return self._index.update(wire.update_request(body))

    @_api()
    def describe_index_stats(self, filter: Mapping[str, Any] | None = None, **_: Any) -> m.DescribeIndexStatsResponse:
        if isinstance(self._opened, DocumentIndex):  # it checks its own filters ($match_* included)
            return self._opened.stats(None if filter is None else dict(filter))
        return self._opened.stats(wire.filter_of(filter))

    @_api()
    def list_paginated(self, prefix: str | None = None, limit: int | None = None,
                       pagination_token: str | None = None, namespace: str = "", **_: Any) -> m.ListResponse:
        return self._index.list_ids(wire.page_request(namespace, prefix, limit, pagination_token))

    def list(self, prefix: str | None = None, limit: int | None = None, namespace: str = "",
             **_: Any) -> Iterator[m.ListResponse]:
        token: str | None = None
        while True:
            page = self.list_paginated(prefix=prefix, limit=limit, pagination_token=token, namespace=namespace)
            if page.vectors:
                yield page
            if page.pagination is None or page.pagination.next is None:
                return
            token = page.pagination.next

    @_api()
    def create_namespace(self, name: str, schema: Mapping[str, Any] | None = None) -> m.NamespaceDescription:
        if not isinstance(name, str) or not name or name == m.DEFAULT_NAMESPACE_ALIAS:
            raise InvalidInputError(f"namespace name {name!r} cannot be created")
        return self._opened.create_namespace(wire.namespace_of(name), None if schema is None else dict(schema))

    @_api()
    def describe_namespace(self, name: str) -> m.NamespaceDescription:
        return self._opened.describe_namespace(wire.namespace_of(name))

    @_api()
    def delete_namespace(self, name: str, **_: Any) -> None:
        self._opened.delete_namespace(wire.namespace_of(name))

    @_api()
    def list_namespaces_paginated(self, prefix: str | None = None, limit: int | None = None,
                                  pagination_token: str | None = None) -> m.ListNamespacesResponse:
        return self._opened.list_namespaces(wire.page_request(None, prefix, limit, pagination_token))

    def list_namespaces(self, prefix: str | None = None, limit: int | None = None
                        ) -> Iterator[m.ListNamespacesResponse]:
        token: str | None = None
        while True:
            page = self.list_namespaces_paginated(prefix=prefix, limit=limit, pagination_token=token)
            if page.namespaces:
                yield page
            if page.pagination is None or page.pagination.next is None:
                return
            token = page.pagination.next
