"""localrag: offline-first RAG engine."""
