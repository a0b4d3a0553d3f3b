"""localrag: an offline-first RAG engine (SQLite truth, FAISS + BM25 hybrid search, local models)."""

from localrag.engine import LocalRAG
from localrag.types import Document, Hit, IngestReport, SearchRequest, SearchResult

__all__ = ["Document", "Hit", "IngestReport", "LocalRAG", "SearchRequest", "SearchResult"]
__version__ = "0.1.0"
