"""One error hierarchy for the whole library.

Every class carries the HTTP status a server should answer with, so servers map
errors by class and never by message text.
"""

from __future__ import annotations

from collections.abc import Sequence


class LocalRagError(Exception):
    """Base class of every error localrag raises on purpose."""

    http_status: int = 500
    grpc_code: int = 13  # INTERNAL


class InvalidInputError(LocalRagError):
    """The caller gave something malformed (bad argument, bad filter, bad file)."""

    http_status = 400
    grpc_code = 3  # INVALID_ARGUMENT


class FilterError(InvalidInputError):
    """A metadata filter is not valid in Pinecone's filter language."""


class DimensionMismatchError(InvalidInputError):
    """A vector's dimension differs from the index's dimension."""


class ConfigError(InvalidInputError):
    """A setting is missing, of the wrong type, or out of range."""


class RequestTooLargeError(InvalidInputError):
    """A request, file or batch is over a configured limit."""

    http_status = 413
    grpc_code = 8  # RESOURCE_EXHAUSTED


class MethodNotAllowedError(LocalRagError):
    """The path exists but does not take this HTTP method (the response lists those it takes)."""

    http_status = 405
    grpc_code = 12  # UNIMPLEMENTED

    def __init__(self, message: str, allow: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.allow = tuple(allow)


class RequestTimeoutError(LocalRagError):
    """A client took too long to send its request headers or body."""

    http_status = 408
    grpc_code = 4  # DEADLINE_EXCEEDED


class NotFoundError(LocalRagError):
    """A document, namespace or index does not exist."""

    http_status = 404
    grpc_code = 5  # NOT_FOUND


class ConflictError(LocalRagError):
    """The thing to create exists already, or the state forbids the change."""

    http_status = 409
    grpc_code = 6  # ALREADY_EXISTS


class StoreLockedError(ConflictError):
    """Another process holds the writer lock of this data directory."""

    http_status = 423
    grpc_code = 10  # ABORTED


class UnauthorizedError(LocalRagError):
    """A request came without a valid API key."""

    http_status = 401
    grpc_code = 16  # UNAUTHENTICATED


class RateLimitedError(LocalRagError):
    """A key sent requests faster than its rate limit; ``retry_after`` is in seconds."""

    http_status = 429
    grpc_code = 8  # RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverloadedError(LocalRagError):
    """The server's queue for this kind of work is full; try again later."""

    http_status = 503
    grpc_code = 14  # UNAVAILABLE


class ModelNotFoundError(LocalRagError):
    """A model's weights are not installed; the message names the pip package."""

    http_status = 503
    grpc_code = 14  # UNAVAILABLE


class DependencyMissingError(LocalRagError):
    """An optional Python dependency is not installed; the message names it."""

    http_status = 503
    grpc_code = 14


class CorruptIndexError(LocalRagError):
    """A persisted index file cannot be read; it is rebuilt from the store."""

    http_status = 500
    grpc_code = 15  # DATA_LOSS


class StoreError(LocalRagError):
    """The SQLite store failed or holds data this version cannot read."""

    http_status = 500
    grpc_code = 13


class CorruptStoreError(StoreError):
    """The store file is missing, empty or unreadable although the data directory shows it held data."""

    grpc_code = 15  # DATA_LOSS


def http_status_for(exc: BaseException) -> int:
    """HTTP status for any exception: the class's status, or 500 for foreign ones."""
    if isinstance(exc, LocalRagError):
        return exc.http_status
    return 500
