"""Response objects of the Documents API, read as the official SDK's are, with their 2026-07 JSON.

A ``Document`` is ``doc.id``, ``doc.score`` and your own fields as attributes or keys
(``doc.title``, ``doc["title"]``); the JSON keys are ``_id`` and ``_score``. The Documents
API's JSON is snake_case (``upserted_count``, ``read_units``), unlike the legacy data plane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


class Document:
    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    @property
    def id(self) -> str:
        return str(self._data["_id"])

    @property
    def score(self) -> float | None:
        return self._data.get("_score")

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get({"id": "_id", "score": "_score"}.get(key, key), default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"document {self._data.get('_id')!r} has no field {name!r}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Document) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self._data.get("_id"))

    def __repr__(self) -> str:
        return f"Document({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


@dataclass(slots=True)
class Pagination:
    next: str | None = None


def _usage(read_units: int | None, tokens: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if read_units is not None:
        out["read_units"] = read_units
    if tokens is not None:
        out["embed_total_tokens"] = tokens
    return out


@dataclass(slots=True)
class Usage:
    read_units: int | None = None
    embed_total_tokens: int | None = None


@dataclass(slots=True)
class UpsertDocumentsResponse:
    upserted_count: int
    usage: Usage | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"upserted_count": self.upserted_count}
        if self.usage is not None:
            out["usage"] = _usage(None, self.usage.embed_total_tokens)
        return out


@dataclass(slots=True)
class SearchDocumentsResponse:
    matches: list[Document]
    namespace: str
    usage: Usage

    def to_wire(self) -> dict[str, Any]:
        return {"matches": [d.to_dict() for d in self.matches], "namespace": self.namespace,
                "usage": _usage(self.usage.read_units, self.usage.embed_total_tokens)}


@dataclass(slots=True)
class FetchDocumentsResponse:
    documents: dict[str, Document]
    namespace: str
    usage: Usage
    pagination: Pagination | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"documents": {k: d.to_dict() for k, d in self.documents.items()},
                               "namespace": self.namespace, "usage": _usage(self.usage.read_units, None)}
        if self.pagination is not None:
            out["pagination"] = {"next": self.pagination.next}
        return out


@dataclass(slots=True)
class ListedDocumentRecord:
    id: str

    @property
    def _id(self) -> str:
        return self.id


@dataclass(slots=True)
class ListDocumentsResponse:
    documents: list[ListedDocumentRecord]
    namespace: str
    usage: Usage
    pagination: Pagination | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"documents": [{"_id": d.id} for d in self.documents], "namespace": self.namespace,
                               "usage": _usage(self.usage.read_units, None)}
        if self.pagination is not None:
            out["pagination"] = {"next": self.pagination.next}
        return out


@dataclass(slots=True)
class MatchedResponse:
    """What delete and update answer: the filter's match count (None when selected by id)."""

    matched_records: int | None = None
    usage: Usage | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.matched_records is not None:
            out["matched_records"] = self.matched_records
        if self.usage is not None and self.usage.embed_total_tokens is not None:
            out["usage"] = _usage(None, self.usage.embed_total_tokens)
        return out


@dataclass(slots=True)
class BatchError:
    batch_index: int
    items: list[dict[str, Any]]
    error: Exception
    error_message: str
    retryable: bool = False  # a local refusal is the request's fault: resending fails the same way


@dataclass(slots=True)
class BatchResult:
    """What ``batch_upsert`` answers, as the SDK's: per-batch refusals are recorded, not raised."""

    total_item_count: int
    successful_item_count: int
    failed_item_count: int
    total_batch_count: int
    successful_batch_count: int
    failed_batch_count: int
    errors: list[BatchError]
    timed_out: bool = False

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def failed_items(self) -> list[dict[str, Any]]:
        return [item for error in self.errors for item in error.items]


DeleteDocumentsResponse = MatchedResponse
UpdateDocumentsResponse = MatchedResponse


@dataclass(slots=True)
class Page:
    items: list[ListedDocumentRecord]
    pagination_token: str | None


class Paginator:
    """What ``documents.list`` returns: iterate records (pages fetched lazily), or ``pages()``."""

    def __init__(self, fetch_page: Callable[[str | None], ListDocumentsResponse], token: str | None) -> None:
        self._fetch = fetch_page
        self._token = token

    def pages(self) -> Iterator[Page]:
        token = self._token
        while True:
            response = self._fetch(token)
            token = response.pagination.next if response.pagination is not None else None
            yield Page(response.documents, token)
            if token is None:
                return

    def __iter__(self) -> Iterator[ListedDocumentRecord]:
        for page in self.pages():
            yield from page.items

    def to_list(self) -> list[ListedDocumentRecord]:
        return list(self)
