"""Pinecone's error shapes, mapped from localrag's error hierarchy by class (never by message).

Data plane: ``{"code": <gRPC code>, "message": ..., "details": []}``.
Control plane: ``{"error": {"code": "NOT_FOUND", "message": ...}, "status": 404}``.
The in-process client raises ``ApiError`` subclasses that carry ``status_code`` and
``body`` as the official SDK's do, and are still the localrag error they came from.
"""

from __future__ import annotations

from typing import Any

from localrag import errors as core

_CONTROL_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                  405: "UNIMPLEMENTED", 408: "DEADLINE_EXCEEDED", 409: "ALREADY_EXISTS",
                  412: "FAILED_PRECONDITION", 413: "RESOURCE_EXHAUSTED", 423: "ABORTED", 429: "RESOURCE_EXHAUSTED",
                  503: "UNAVAILABLE"}
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 409: 6, 412: 9, 413: 8, 423: 10, 429: 8, 503: 14}


class DeletionProtectedError(core.ConflictError):
    """The index has deletion protection enabled (Pinecone answers 403)."""

    http_status = 403
    grpc_code = 7  # PERMISSION_DENIED


class UnauthorizedError(core.LocalRagError):
    """A request without a valid Api-Key, on a server with keys configured."""

    http_status = 401
    grpc_code = 16  # UNAUTHENTICATED


def status_of(exc: BaseException) -> int:
    # Pinecone reports every bad request as 400, our "too large" (413) included.
    status = core.http_status_for(exc)
    return 400 if status == 413 else status


def data_plane_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    status = status_of(exc)
    message = str(exc) if isinstance(exc, core.LocalRagError) else "Internal error"
    return status, {"code": _GRPC_CODES.get(status, 13), "message": message, "details": []}


def control_plane_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    status = status_of(exc)
    message = str(exc) if isinstance(exc, core.LocalRagError) else "Internal error"
    return status, {"error": {"code": _CONTROL_CODES.get(status, "UNKNOWN"), "message": message},
                    "status": status}


# --------------------------------------------------------------------------- in-process


class ApiError(core.LocalRagError):
    """What the official SDK raises for an error response: status, message and body."""

    def __init__(self, message: str, status_code: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body

    def __str__(self) -> str:
        return f"[{self.status_code}] {self.message}"


class BadRequestError(ApiError, core.InvalidInputError):
    pass


class NotFoundError(ApiError, core.NotFoundError):
    pass


class ConflictError(ApiError, core.ConflictError):
    pass


class ForbiddenError(ApiError, DeletionProtectedError):
    pass


class UnauthorizedApiError(ApiError, UnauthorizedError):
    pass


class ServiceError(ApiError):
    pass


# The older SDKs' names for the same errors.
PineconeApiException = ApiError
NotFoundException = NotFoundError
ForbiddenException = ForbiddenError
UnauthorizedException = UnauthorizedApiError
ServiceException = ServiceError

_BY_STATUS: dict[int, type[ApiError]] = {400: BadRequestError, 401: UnauthorizedApiError, 403: ForbiddenError,
                                         404: NotFoundError, 409: ConflictError}


def api_error(exc: core.LocalRagError, *, control_plane: bool = False) -> ApiError:
    """The SDK-shaped error for a localrag error; raise it ``from exc``."""
    if isinstance(exc, ApiError):
        return exc
    status, body = (control_plane_body if control_plane else data_plane_body)(exc)
    cls = _BY_STATUS.get(status, ServiceError)
    return cls(str(exc), status, body)
