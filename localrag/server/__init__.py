"""``localrag serve``: the RAG API, OpenAI-compatible chat and Pinecone's REST API on one FastAPI app."""

from localrag.server.app import create_app, is_loopback, serve

__all__ = ["create_app", "is_loopback", "serve"]
