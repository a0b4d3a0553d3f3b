"""Pinecone compatibility: the official SDK's API in process, over REST (``localrag serve``), and a
``PineconeVectorIndex`` that runs the RAG pipeline's dense side on hosted Pinecone."""

from localrag.pinecone.client import Index, Pinecone
from localrag.pinecone.errors import ApiError, NotFoundError
from localrag.pinecone.models import ServerlessSpec, SparseValues, Vector

__all__ = ["ApiError", "Index", "NotFoundError", "Pinecone", "ServerlessSpec", "SparseValues", "Vector"]
