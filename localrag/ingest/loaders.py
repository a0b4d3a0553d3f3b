"""Turn files into ``Document`` values: text, Markdown, HTML, PDF, DOCX and BEIR ``.jsonl`` here; the
families listed in ``FORMAT_LOADERS`` (spreadsheets, mail, office documents, ebooks) in ``ingest/formats/``.

Text is normalised only lightly (``\\r\\n`` -> ``\\n``, NULs dropped) so that char offsets into
``Document.text`` stay meaningful for citations. Every failure raises a ``LoaderError`` (an
``InvalidInputError``) whose message names the file and the reason; ``load_many`` turns those
into ``SkippedFile`` entries and carries on.

Files are untrusted: ``load_file`` parses in a worker process with time and memory limits
(``sandbox.py``), after the cheap checks of ``limits.py``; ``parse_file`` is the same work in
this process, and is what the worker runs.
"""

from __future__ import annotations

import codecs
import importlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from localrag.ingest.discover import discover
from localrag.ingest.errors import FileTooLargeError, LoaderError, ParseLimitError
from localrag.ingest.formats import FormatContext, FormatLoader
from localrag.ingest.html import html_to_text
from localrag.ingest.limits import ZIP_MAGIC, ParseLimits, check_pdf_pages, check_zip
from localrag.types import Document, SkippedFile

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT_LOADERS",
    "TEXT_EXTENSIONS",
    "FileTooLargeError",
    "LoaderError",
    "ParseLimitError",
    "ParseLimits",
    "discover",
    "load_file",
    "load_many",
    "parse_data",
    "parse_file",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
SNIFF_BYTES = 8192

# Plain-text formats: loaded as they are, with a latin-1 fallback when they are not UTF-8.
TEXT_EXTENSIONS = frozenset(
    {".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".tsv", ".log", ".json", ".xml",
     ".yaml", ".yml", ".toml", ".ini", ".cfg", ".tex", ".org", ".adoc", ".py"}
)  # fmt: skip
_MARKDOWN = frozenset({".md", ".markdown"})

_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\x00", "")


def _decode(data: bytes, path: Path, *, known_text: bool) -> str:
    """UTF-8 (BOM stripped) first; latin-1 only for files known or sniffed to be text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and known_text:
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoaderError(path, f"invalid UTF-16 text: {e}") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if not known_text:
            raise LoaderError(path, "binary or unsupported file type") from e
        if b"\x00" in data:  # latin-1 text has no NULs; a renamed image or executable does
            raise LoaderError(path, f"binary content (not UTF-8, NUL bytes) in a {path.suffix or 'text'} file") from e
        log.info("%s is not valid UTF-8 (%s); decoding as latin-1", path, e.reason)
        return data.decode("latin-1")


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        # Incremental decoding tolerates a multi-byte character cut at the end of the sample.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return True
    return False


def _check_not_empty(text: str, path: Path, what: str = "file is empty") -> None:
    if not text.strip():
        raise LoaderError(path, what)


# --------------------------------------------------------------------------- formats


def _load_text(data: bytes, path: Path, *, known_text: bool) -> tuple[str, str, dict[str, Any]]:
    text = _normalise(_decode(data, path, known_text=known_text))
    title = ""
    if path.suffix.lower() in _MARKDOWN:
        # The first "# heading" outside fenced code blocks (a "# comment" in code is no title).
        unfenced = _FENCE.sub("", text)
        m = _H1.search(unfenced)
        title = m.group(1).strip() if m else ""
        return text, title, {"file_type": "markdown"}
    return text, title, {"file_type": "text"}


def _load_html(data: bytes, path: Path) -> tuple[str, str, dict[str, Any]]:
    try:
        text, title = html_to_text(_decode(data, path, known_text=True))
    except LoaderError:
        raise
    except Exception as e:  # html.parser is lenient; this is a safety net
        raise LoaderError(path, f"cannot parse HTML: {e}") from e
    return _normalise(text), title, {"file_type": "html"}


def _load_pdf(data: bytes, path: Path, limits: ParseLimits) -> tuple[str, str, dict[str, Any], tuple[int, ...]]:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise LoaderError(path, "encrypted PDF (a password is needed)")
        declared = _declared_pages(reader)
        if declared is not None:  # refused before the page tree is walked
            check_pdf_pages(declared, path, limits, declared=True)
        pages = list(reader.pages)
        check_pdf_pages(len(pages), path, limits, declared=False)  # /Count may lie
    except LoaderError:
        raise
    except Exception as e:  # pypdf raises many types for damaged files
        raise LoaderError(path, f"cannot read PDF: {type(e).__name__}: {e}") from e
    parts: list[str] = []
    for number, page in enumerate(pages, start=1):
        try:
            parts.append(_normalise(page.extract_text() or "").strip())
        except Exception as e:
            raise LoaderError(path, f"cannot extract text of page {number}: {type(e).__name__}: {e}") from e
    from localrag.ingest.formats.pdf import ocr_missing_pages  # pages without a text layer: OCR of their images

    scanned = ocr_missing_pages(pages, parts, path, limits)
    starts: list[int] = []
    boxes: list[list[Any]] = []
    offset = 0
    for index, page_text in enumerate(parts):
        if index in scanned.pages:
            page_text = parts[index] = scanned.pages[index].text
            boxes.extend([index + 1, offset + b.char_start, offset + b.char_end, *b.box]
                         for b in scanned.pages[index].blocks)
        starts.append(offset)
        offset += len(page_text) + 2  # the "\n\n" joining pages
    text = "\n\n".join(parts)
    if scanned.problem:
        log.warning("%s: %s", path, scanned.problem)
    _check_not_empty(text, path, f"empty: {scanned.problem}" if scanned.problem else
                     "empty: the PDF has no extractable text (scanned images?)")
    title = ""
    try:
        info = reader.metadata
        title = str(info.get("/Title") or "").strip() if info is not None else ""
    except Exception as e:  # broken metadata must not lose a readable document
        log.debug("%s: unreadable PDF metadata: %s", path, e)
    meta: dict[str, Any] = {"file_type": "pdf", "pages": len(pages)}
    if scanned.pages:  # where each OCR'd paragraph sits: see ingest/formats/image.py
        meta.update(ocr_pages=sorted(i + 1 for i in scanned.pages), ocr_engine=scanned.engine, ocr_boxes=boxes)
    return text, title, meta, tuple(starts)


def _declared_pages(reader: Any) -> int | None:
    try:
        count = reader.root_object["/Pages"]["/Count"]
        return int(count) if isinstance(count, int) else None
    except Exception:  # a broken catalog: the page tree walk reports it
        return None


def _load_docx(data: bytes, path: Path) -> tuple[str, str, dict[str, Any]]:
    import docx
    from docx.table import Table

    try:
        doc = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        for item in doc.iter_inner_content():
            if isinstance(item, Table):
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in item.rows]
                block = "\n".join(r for r in rows if r.strip(" |"))
            else:
                block = item.text.strip()
            if block:
                blocks.append(block)
        title = (doc.core_properties.title or "").strip()
    except Exception as e:  # python-docx / zipfile / lxml errors for damaged files
        raise LoaderError(path, f"cannot read DOCX: {type(e).__name__}: {e}") from e
    return _normalise("\n\n".join(blocks)), title, {"file_type": "docx"}


def _load_beir(data: bytes, path: Path, base_meta: dict[str, Any]) -> list[Document]:
    """BEIR corpus: one ``{"_id", "title", "text", "metadata"?}`` object per line."""
    text = _decode(data, path, known_text=True)
    docs: list[Document] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise LoaderError(path, f"line {number}: invalid JSON: {e.msg}") from e
        if not isinstance(obj, dict):
            raise LoaderError(path, f"line {number}: expected a JSON object")
        doc_id, title, body, meta = obj.get("_id"), obj.get("title", ""), obj.get("text"), obj.get("metadata")
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            raise LoaderError(path, f"line {number}: '_id' must be a non-empty string")
        if not isinstance(body, str):
            raise LoaderError(path, f"line {number}: 'text' must be a string")
        if title is None:
            title = ""
        if not isinstance(title, str):
            raise LoaderError(path, f"line {number}: 'title' must be a string")
        if meta is not None and not isinstance(meta, dict):
            raise LoaderError(path, f"line {number}: 'metadata' must be an object")
        if doc_id in seen:
            raise LoaderError(path, f"line {number}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        body = _normalise(body)
        if not body.strip():
            # Some BEIR corpora hold title-only documents; the title is then all there is to search.
            body = _normalise(title)
        if not body.strip():
            log.warning("%s: line %d: document %r has neither text nor title; skipped", path, number, doc_id)
            continue
        docs.append(
            Document(
                doc_id=doc_id,
                text=body,
                source=base_meta["source"],
                title=title.strip(),
                metadata={**(meta or {}), **base_meta},
            )
        )
    if not docs:
        raise LoaderError(path, "empty: no documents in the corpus file")
    return docs


# --------------------------------------------------------------------------- entry points

_Simple = Callable[[bytes, Path], tuple[str, str, dict[str, Any]]]
_SIMPLE: dict[str, _Simple] = {".html": _load_html, ".htm": _load_html, ".docx": _load_docx}

# Families with a module of their own under ingest/formats/: extension -> "module:function", one line each.
# A module is imported on its first file, so the worker never imports a parser it has no file for.
FORMAT_LOADERS: dict[str, str] = {
    ".xlsx": "tables:load_workbook",
    ".xlsm": "tables:load_workbook",
    ".xls": "tables:load_workbook",
    ".ods": "tables:load_workbook",
    ".csv": "tables:load_delimited",
    ".tsv": "tables:load_delimited",
    ".png": "image:load_image",
    ".jpg": "image:load_image",
    ".jpeg": "image:load_image",
    ".webp": "image:load_image",
    ".tif": "image:load_image",
    ".tiff": "image:load_image",
    ".mp3": "media:load_media",
    ".wav": "media:load_media",
    ".m4a": "media:load_media",
    ".ogg": "media:load_media",
    ".oga": "media:load_media",
    ".opus": "media:load_media",
    ".flac": "media:load_media",
    ".mp4": "media:load_media",
    ".webm": "media:load_media",
    ".eml": "mail:load_eml",
    ".mbox": "mail:load_mbox",
    ".msg": "mail:load_msg",
    ".pptx": "office:load_pptx",
    ".odt": "office:load_odt",
    ".rtf": "office:load_rtf",
    ".epub": "ebook:load_epub",
}


def _format_loader(suffix: str) -> FormatLoader | None:
    target = FORMAT_LOADERS.get(suffix)
    if target is None:
        return None
    module, _, name = target.partition(":")
    loader: FormatLoader = getattr(importlib.import_module(f"localrag.ingest.formats.{module}"), name)
    return loader


def load_file(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, limits: ParseLimits | None = None
) -> list[Document]:
    """Load one file into documents (one, or one per line for BEIR ``.jsonl``), parsed in the worker.

    Raises ``LoaderError`` (an ``InvalidInputError``) naming the file and the reason,
    ``FileTooLargeError`` above ``max_bytes``, or ``ParseLimitError`` when the file would cost more
    than ``limits`` allow (both also ``RequestTooLargeError``).
    """
    from localrag.ingest.sandbox import parse_in_worker  # the sandbox imports this module's neighbours

    limits = limits or ParseLimits()
    max_bytes = limits.max_bytes_for(Path(path), max_bytes)  # recordings have a size limit of their own
    resolved = _check_file(Path(path), max_bytes)  # no worker round trip for a missing or oversized file
    return parse_in_worker(resolved, max_bytes, limits)


def _check_file(path: Path, max_bytes: int) -> Path:
    try:
        resolved = path.resolve()
        if not resolved.is_file():
            raise LoaderError(path.absolute(), "not a regular file" if resolved.exists() else "not found")
        size = resolved.stat().st_size
    except OSError as e:
        raise LoaderError(path.absolute(), f"cannot read: {e.strerror or e}") from e
    if size > max_bytes:
        raise FileTooLargeError(resolved, f"file is {size} bytes, over the limit of {max_bytes} bytes")
    return resolved


def parse_file(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, limits: ParseLimits | None = None
) -> list[Document]:
    """``load_file``'s work in this process, with the cheap limit checks but no bound on time or memory."""
    limits = limits or ParseLimits()
    resolved = _check_file(Path(path), max_bytes)
    try:
        with resolved.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise LoaderError(resolved, f"cannot read: {e.strerror or e}") from e
    if len(data) > max_bytes:  # grew between stat and read
        raise FileTooLargeError(resolved, f"file is over the limit of {max_bytes} bytes")
    return parse_data(data, resolved, FormatContext(limits, max_bytes))


def parse_data(data: bytes, resolved: Path, ctx: FormatContext) -> list[Document]:
    """Documents of ``data``, the bytes of ``resolved`` (whose suffix picks the parser; it is not read again).

    Also the way in for bytes that were never a file of their own, such as a mail's attachments, so that
    they meet the same checks.
    """
    limits = ctx.limits
    if len(data) > ctx.max_bytes:
        raise FileTooLargeError(resolved, f"{len(data)} bytes, over the limit of {ctx.max_bytes} bytes")
    if not data.strip():
        raise LoaderError(resolved, "file is empty")
    if data.startswith(ZIP_MAGIC):  # any zip-based format, whatever its name says
        check_zip(data, resolved, limits)

    source = resolved.as_posix()
    suffix = resolved.suffix.lower()
    page_starts: tuple[int, ...] = ()
    format_loader = _format_loader(suffix)
    if format_loader is not None:
        return format_loader(data, resolved, ctx)
    if suffix == ".jsonl":
        return _load_beir(data, resolved, {"source": source, "file_type": "jsonl"})
    if suffix == ".pdf":
        text, title, meta, page_starts = _load_pdf(data, resolved, limits)
    elif suffix in _SIMPLE:
        text, title, meta = _SIMPLE[suffix](data, resolved)
    elif suffix in TEXT_EXTENSIONS:
        text, title, meta = _load_text(data, resolved, known_text=True)
    else:
        if _looks_binary(data[:SNIFF_BYTES]):
            raise LoaderError(resolved, "binary or unsupported file type")
        text, title, meta = _load_text(data, resolved, known_text=True)
    _check_not_empty(text, resolved)
    return [
        Document(
            doc_id=source,
            text=text,
            source=source,
            title=title,
            metadata={"source": source, **meta},
            page_starts=page_starts,
        )
    ]


def load_many(
    paths: Sequence[str | Path] | str | Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: ParseLimits | None = None,
) -> Iterator[Document | SkippedFile]:
    """Discover and load files lazily, yielding documents and ``SkippedFile`` for failures.

    One bad file never stops the iteration: its error becomes a ``SkippedFile`` whose reason
    is the error message without the path.
    """
    files, skipped = discover(paths, include, exclude)
    yield from skipped
    for path in files:
        try:
            yield from load_file(path, max_bytes=max_bytes, limits=limits)
        except LoaderError as e:
            log.info("skipped %s", e)
            yield SkippedFile(e.path, e.reason)
        except Exception as e:  # a loader bug must not abort a large ingest
            log.warning("skipped %s: unexpected %s", path, type(e).__name__, exc_info=True)
            yield SkippedFile(path.as_posix(), f"unexpected error: {type(e).__name__}: {e}")
