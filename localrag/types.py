"""Frozen dataclasses for the data that flows between components."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SearchMode = Literal["dense", "keyword", "hybrid"]
FusionMethod = Literal["rrf", "weighted"]
Metadata = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Document:
    """A whole source document, as a loader produced it.

    ``page_starts`` holds the char offset at which each page begins (page 1 first),
    empty for formats without pages.
    """

    doc_id: str
    text: str
    source: str = ""
    title: str = ""
    metadata: Metadata = field(default_factory=dict)
    page_starts: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """1-based page holding char ``offset``, or None for page-less documents."""
        if not self.page_starts:
            return None
        page = 1
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i + 1
            else:
                break
        return page


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of a document: ``document.text[char_start:char_end] == text``."""

    text: str
    char_start: int
    char_end: int
    ordinal: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk with where it came from and how it scored.

    ``scores`` keeps each stage's score ("dense", "keyword", "fused", "rerank").
    """

    chunk_id: int
    doc_id: str
    text: str
    score: float
    source: str = ""
    title: str = ""
    char_start: int = 0
    char_end: int = 0
    page: int | None = None
    namespace: str = ""
    metadata: Metadata = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ``add`` did: counts, and every input skipped with its reason."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    chunks_added: int = 0
    seconds: float = 0.0

    @property
    def documents_written(self) -> int:
        return len(self.added) + len(self.updated)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 10
    mode: SearchMode = "hybrid"
    namespace: str = ""
    filter: Mapping[str, Any] | None = None
    fusion: FusionMethod | None = None
    alpha: float | None = None
    rrf_k: int | None = None
    candidates: int | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits plus per-stage timings in milliseconds (``embed`` is reported apart from the rest)."""

    hits: tuple[Hit, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
