"""One stored document as a reader sees it: its text, where each chunk lies, and what kind of source it is.

The web app's source panel opens a citation at its page (PDFs, slides, chapters), its rows (sheets) or
its timestamp (recordings); ``kind`` tells it which, from what the loaders already store: page starts,
the ``row_start``/``row_end`` metadata of sheet blocks, the ``[mm:ss.s]`` lines of transcripts, the
``file_type`` of mail. The text is returned whole up to ``MAX_VIEW_CHARS``; past it the view is cut
and says so (``truncated``), so one enormous file cannot make a response of hundreds of megabytes.
Offsets are in characters of the full text, so chunks and segments keep pointing at the right place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from localrag.errors import InvalidInputError
from localrag.ingest.formats.media import MARKER, time_markers
from localrag.store.browse import ChunkSpan, StoreBrowser
from localrag.store.sqlite import SQLiteStore
from localrag.types import Document

DocumentKind = Literal["pdf", "sheet", "media", "mail", "text"]

MAX_VIEW_CHARS = 5_000_000  # ~5 MB of ASCII; a 1,000-page PDF is ~3M characters
MEDIA_TYPES = frozenset({"audio", "video"})
MAIL_TYPES = frozenset({"eml", "mbox", "msg"})


@dataclass(frozen=True, slots=True)
class Segment:
    """A transcript line: where it starts in the text, and when in the recording."""

    char_start: int
    start_s: float


@dataclass(frozen=True, slots=True)
class DocumentView:
    doc_id: str
    namespace: str
    title: str
    source: str
    metadata: dict[str, Any]
    text: str  # the first ``MAX_VIEW_CHARS`` characters when ``truncated``
    text_chars: int  # the full text's length
    truncated: bool
    page_starts: tuple[int, ...]
    chunks: tuple[ChunkSpan, ...]
    kind: DocumentKind
    segments: tuple[Segment, ...] = ()  # media only


def kind_of(document: Document) -> DocumentKind:
    """Which view fits a document, from what its loader stored."""
    meta = document.metadata
    file_type = str(meta.get("file_type", "")).lower()
    if "row_start" in meta and "row_end" in meta:
        return "sheet"
    if file_type in MEDIA_TYPES or (not file_type and MARKER.match(document.text)):
        return "media"
    if document.page_starts or file_type == "pdf" or (not file_type and document.source.lower().endswith(".pdf")):
        return "pdf"
    if file_type in MAIL_TYPES:
        return "mail"
    return "text"


def document_view(
    store: SQLiteStore, doc_id: str, namespace: str = "", max_chars: int = MAX_VIEW_CHARS
) -> DocumentView:
    """The view of one stored document; NotFoundError when ``namespace`` holds no ``doc_id``."""
    if max_chars < 1:
        raise InvalidInputError(f"max_chars must be at least 1; got {max_chars}")
    document = store.get_document(namespace, doc_id)
    chunks = StoreBrowser(store).chunk_spans(namespace, doc_id)
    kind = kind_of(document)
    full = document.text
    text = full[:max_chars]
    segments = tuple(Segment(at, seconds) for at, seconds in time_markers(text)) if kind == "media" else ()
    return DocumentView(
        doc_id=document.doc_id,
        namespace=namespace,
        title=document.title,
        source=document.source,
        metadata=dict(document.metadata),
        text=text,
        text_chars=len(full),
        truncated=len(full) > len(text),
        page_starts=tuple(document.page_starts),
        chunks=tuple(chunks),
        kind=kind,
        segments=segments,
    )
