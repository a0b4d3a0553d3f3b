"""Loaders for file families with a module of their own: tables, mail, office documents, ebooks.

Each loader has the signature of ``FormatLoader``: the file's bytes, its path (for names and error messages;
the file is not opened again) and a ``FormatContext``, and returns one or more documents. ``loaders.py`` maps
extensions to them in ``FORMAT_LOADERS`` and runs them inside the parser worker after the cheap limit checks,
so everything here parses untrusted bytes under the worker's time and memory limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrag.ingest.errors import LoaderError
from localrag.ingest.limits import ParseLimits
from localrag.types import Document

__all__ = ["FormatContext", "FormatLoader", "decode_text", "make_document", "normalise"]


@dataclass(frozen=True, slots=True)
class FormatContext:
    """What a format loader may need besides the bytes: the limits, and how deep inside attachments it is."""

    limits: ParseLimits
    max_bytes: int
    depth: int = 0  # 0 for a file on disk, 1 for a mail's attachment, 2 for an attachment of that ...


FormatLoader = Callable[[bytes, Path, FormatContext], list[Document]]


def normalise(text: str) -> str:
    """The light normalisation every loader applies (char offsets must stay meaningful for citations)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 (BOM stripped), else latin-1 for files that are text by their extension; NULs mean binary."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if b"\x00" in data:
            raise LoaderError(path, f"binary content (not UTF-8, NUL bytes) in a {path.suffix or 'text'} file") from e
        return data.decode("latin-1")


def make_document(
    path: Path,
    text: str,
    *,
    title: str = "",
    metadata: Mapping[str, Any] | None = None,
    fragment: str = "",
    page_starts: tuple[int, ...] = (),
) -> Document:
    """A document of the file at ``path``; ``fragment`` ("#sheet=Q3&rows=2-9") tells apart several from one file.

    Every document of a file keeps the file as its ``source`` (and ``metadata["source"]``), so that deleting or
    re-syncing a file by its source reaches all of them, attachments included.
    """
    source = path.as_posix()
    return Document(
        doc_id=source + fragment,
        text=text,
        source=source,
        title=title,
        metadata={"source": source, **(metadata or {})},
        page_starts=page_starts,
    )
