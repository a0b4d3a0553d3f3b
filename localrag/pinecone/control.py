"""The Pinecone control plane on local storage: the indexes under one data directory.

Vector indexes (``LocalIndex``) and document indexes (``DocumentIndex``) share the catalog
(one folder per index, ``index.json`` written last as the commit point) and the writer lock,
so one process at a time writes a data directory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.errors import ConflictError, InvalidInputError, NotFoundError
from localrag.pinecone import wire
from localrag.pinecone.ann import AnnSettings
from localrag.pinecone.deployment import deployment_of
from localrag.pinecone.errors import DeletionProtectedError
from localrag.pinecone.local import _NAME, METRICS, LocalIndex
from localrag.pinecone.store import Catalog, IndexConfig, RecordStore
from localrag.store.lock import WriterLock

if TYPE_CHECKING:
    from localrag.pinecone.documents_embed import EmbedderSource
    from localrag.pinecone.documents_index import DocumentIndex

log = logging.getLogger(__name__)


class LocalPinecone:
    """The control plane: the indexes under one data directory (one writer process at a time)."""

    def __init__(self, root: str | Path, embedder: EmbedderSource | None = None,
                 ann: AnnSettings | None = None) -> None:
        self.root = Path(root)
        self._embedder = embedder
        self.ann = ann
        self.catalog = Catalog(self.root)
        self._writer = WriterLock(self.root)
        self._writer.acquire()
        self.catalog.purge_trash()
        self._lock = threading.Lock()
        self._open: dict[str, LocalIndex | DocumentIndex] = {}

    def close(self) -> None:
        with self._lock:
            for index in self._open.values():
                if isinstance(index, LocalIndex):
                    index.save_ann()  # so the next open loads the ANN instead of rebuilding it
                index.store.close()
            self._open.clear()
        self._writer.release()

    @staticmethod
    def _check_common(name: Any, deletion_protection: Any, tags: Any) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInputError("Name must be 1-45 characters of lowercase letters, digits or '-', "
                                    "starting and ending with a letter or digit")
        if deletion_protection not in ("enabled", "disabled", None):
            raise InvalidInputError("deletion_protection must be 'enabled' or 'disabled'")
        if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
            raise InvalidInputError("tags must be an object of strings")

    def _register(self, config: IndexConfig, opener: Callable[[RecordStore], LocalIndex | DocumentIndex]) -> None:
        with self._lock:
            if config.name in self.catalog.names():
                raise ConflictError(f"Resource {config.name} already exists")
            self._open[config.name] = opener(self.catalog.create(config))

    def create_index(self, name: Any, dimension: Any, metric: Any, vector_type: Any = "dense",
                     deletion_protection: Any = "disabled", tags: Any = None, cloud: str = "aws",
                     region: str = "us-east-1", deployment: dict[str, Any] | None = None) -> IndexConfig:
        self._check_common(name, deletion_protection, tags)
        vector_type = vector_type or "dense"
        if vector_type not in ("dense", "sparse"):
            raise InvalidInputError(f"vector_type must be 'dense' or 'sparse', got {vector_type!r}")
        if vector_type == "sparse":
            if dimension is not None:
                raise InvalidInputError("Sparse vector indexes must not have a dimension")
            metric = metric or "dotproduct"
            if metric != "dotproduct":
                raise InvalidInputError("Sparse vector indexes must use the dotproduct metric")
        else:
            if isinstance(dimension, bool) or not isinstance(dimension, int):
                raise InvalidInputError("Dense indexes need an integer dimension")
            if not 1 <= dimension <= wire.MAX_DIMENSION:
                raise wire.LimitError(f"Dimension must be between 1 and {wire.MAX_DIMENSION}, got {dimension}")
            metric = metric or "cosine"
        if metric not in METRICS:
            raise InvalidInputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        cloud, region, deployment = _placement(cloud, region, deployment)
        config = IndexConfig(name, dimension, metric, vector_type, deletion_protection or "disabled",
                             tags or None, cloud, region, deployment=deployment)
        self._register(config, lambda store: LocalIndex(config, store, self.ann))
        log.info("created index %s (%s, %s, dim %s)", name, vector_type, metric, dimension)
        return config

    def create_document_index(self, name: Any, schema: Any, deletion_protection: Any = "disabled", tags: Any = None,
                              cloud: str = "aws", region: str = "us-east-1",
                              deployment: dict[str, Any] | None = None) -> IndexConfig:
        """A document index from a 2026-07 schema (full-text, vector and embedded fields)."""
        from localrag.pinecone.documents_index import DocumentIndex
        from localrag.pinecone.documents_schema import parse_schema

        self._check_common(name, deletion_protection, tags)
        embedder = self.embedder()
        declares_embed = any(isinstance(f, dict) and f.get("embed") is not None
                             for f in (schema.get("fields") or {}).values()) if isinstance(schema, dict) else False
        parsed = parse_schema(schema, embedder.dim if declares_embed else None)
        cloud, region, deployment = _placement(cloud, region, deployment)
        config = IndexConfig(name, None, "cosine", "document", deletion_protection or "disabled", tags or None,
                             cloud, region, schema=parsed.to_wire(), deployment=deployment)
        self._register(config, lambda store: DocumentIndex(config, store, embedder))
        log.info("created document index %s (%d fields)", name, len(parsed.fields))
        return config

    def embedder(self) -> EmbedderSource:
        """The local embedder behind ``embed`` fields: the data directory's configured one, loaded on use."""
        if self._embedder is None:
            from localrag.pinecone.documents_embed import default_embedder

            self._embedder = default_embedder(self.root.parent)
        return self._embedder

    def opened(self, name: str) -> LocalIndex | DocumentIndex:
        """The index, of either kind (opened on first use)."""
        with self._lock:
            opened = self._open.get(name)
            if opened is None:
                if name not in self.catalog.names():
                    raise NotFoundError(f"Resource {name} not found")
                folder = self.catalog.folder(name)
                config = IndexConfig.load(folder)
                if config.schema is not None:
                    from localrag.pinecone.documents_index import DocumentIndex

                    opened = DocumentIndex(config, RecordStore(folder), self.embedder())
                else:
                    opened = LocalIndex(config, RecordStore(folder), self.ann)
                self._open[name] = opened
            return opened

    def index(self, name: str) -> LocalIndex:
        opened = self.opened(name)
        if not isinstance(opened, LocalIndex):
            raise InvalidInputError(f"Index {name!r} is a document index: use the Documents API "
                                    "(index.documents.upsert, search, fetch, ...)")
        return opened

    def documents(self, name: str) -> DocumentIndex:
        opened = self.opened(name)
        if isinstance(opened, LocalIndex):
            raise InvalidInputError(f"Index {name!r} is a vector index: the Documents API needs an index created "
                                    "with a schema of named fields")
        return opened

    def configs(self) -> list[IndexConfig]:
        return [self.opened(name).config for name in self.catalog.names()]

    def delete_index(self, name: str) -> None:
        index = self.opened(name)
        if index.config.deletion_protection == "enabled":
            raise DeletionProtectedError(f"Deletion protection is enabled for index {name!r}; disable it "
                                         "before deleting the index")
        with self._lock:
            self._open.pop(name, None)
            index.store.close()
            self.catalog.delete(name)

    def configure_index(self, name: str, deletion_protection: Any = None, tags: Any = None) -> IndexConfig:
        index = self.opened(name)
        config = index.config
        if deletion_protection is not None:
            if deletion_protection not in ("enabled", "disabled"):
                raise InvalidInputError("deletion_protection must be 'enabled' or 'disabled'")
            config.deletion_protection = deletion_protection
        if tags is not None:
            if not isinstance(tags, dict):
                raise InvalidInputError("tags must be an object of strings")
            merged = {**(config.tags or {}), **tags}
            config.tags = {k: v for k, v in merged.items() if v != ""} or None
        config.save(self.catalog.folder(name))
        return config


def _placement(cloud: str, region: str, deployment: dict[str, Any] | None) -> tuple[str, str, dict[str, Any]]:
    """cloud, region and the normalised deployment, which wins when given (a pod or byoc one has no cloud)."""
    resolved = deployment_of(deployment if deployment is not None else {"serverless": {"cloud": cloud,
                                                                                        "region": region}})
    return str(resolved.get("cloud", cloud)), str(resolved.get("region", region)), resolved
