"""Which backend holds the engine's corpus: the local store and indexes, or one hosted document index.

``vector.backend = "pinecone_documents"`` keeps every chunk on one hosted Pinecone document index
shared by any number of replicas (localrag/pinecone/hosted_docs.py): keyword and dense search run
there, the local store and indexes stay empty. Every other backend searches the local indexes,
fed from the SQLite store. The hosted modules are imported only when that backend is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localrag.config import Settings
from localrag.index.manager import IndexManager
from localrag.protocols import Embedder
from localrag.retrieval import Retriever
from localrag.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from localrag.pinecone.hosted_docs import HostedCorpus


def open_backend(
    settings: Settings, store: SQLiteStore, indexes: IndexManager, embedder: Callable[[], Embedder]
) -> tuple[HostedCorpus | None, Retriever]:
    """The hosted corpus (None when local) and the retriever that searches the chosen backend."""
    if settings.vector.backend != "pinecone_documents":
        return None, Retriever(store, indexes, embedder, settings.search, settings.server)
    from localrag.pinecone.hosted_docs import HostedCorpus
    from localrag.pinecone.hosted_search import HostedRetriever

    hosted = HostedCorpus.open(settings)
    return hosted, HostedRetriever(hosted, store, indexes, embedder, settings.search, settings.server)


def write_target(store: SQLiteStore, hosted: HostedCorpus | None, embedder: Embedder) -> Any:
    """Where the ingest pipeline commits: the SQLite store, or the hosted index (stamped with the
    embedder's vector space, so a replica with another embedder is refused)."""
    if hosted is None:
        return store
    from localrag.pinecone.hosted_docs import HostedWrites

    return HostedWrites(hosted, getattr(embedder, "vector_space", embedder.name))
