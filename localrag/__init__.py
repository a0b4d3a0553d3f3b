"""localrag: an offline-first RAG engine (SQLite truth, FAISS + BM25 hybrid search, local models)."""

import os
import sys

# onnxruntime (1.29 and later, on every OS) starts a telemetry uploader when it is imported, which resolves
# mobile.events.data.microsoft.com a few seconds into each process. Only this variable, read at that import,
# stops it (disable_telemetry_events() afterwards does not), so it is set before anything here imports
# onnxruntime, and forced: offline is a hard rule.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_ORT_IMPORTED_FIRST = "onnxruntime" in sys.modules

from localrag.engine import LocalRAG  # noqa: E402
from localrag.types import Document, Hit, IngestReport, SearchRequest, SearchResult  # noqa: E402

__all__ = ["Document", "Hit", "IngestReport", "LocalRAG", "SearchRequest", "SearchResult"]
__version__ = "0.1.0"
