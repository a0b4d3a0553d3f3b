"""What parsing one untrusted file may cost, and the checks that refuse a file before it costs more.

The cheap checks run before a parser sees the bytes: a zip archive (DOCX, XLSX, PPTX, ODT, EPUB, any
format that is a zip) is judged by its central directory alone, and a PDF by its page count. Time and
memory are bounded by the parser worker (``sandbox.py``), which is killed when it runs over.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from localrag.ingest.errors import ParseLimitError

__all__ = ["MEDIA_SUFFIXES", "OCR_SUFFIXES", "ZIP_MAGIC", "ParseLimits", "check_pdf_pages", "check_zip", "human_size"]

MB = 1024 * 1024
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive
# Below this much unpacked data the ratio is not judged: a small, very regular file (an almost empty
# spreadsheet) may compress 200-fold and still costs nothing to parse.
_RATIO_FLOOR = 8 * MB
_MAX_MEMBERS = 20_000  # each member costs a ZipInfo and, in python-docx, a part object
_MAX_NESTING = 3  # zip inside zip inside zip: legit files embed one level (a chart's workbook in a DOCX)


# Files whose parsing runs a model (OCR or speech) in the worker: slower and bigger than text parsing.
OCR_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
MEDIA_SUFFIXES = frozenset({".mp3", ".wav", ".m4a", ".ogg", ".oga", ".opus", ".flac", ".mp4", ".webm"})


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds for parsing one file, and the few options the worker's model-backed loaders need (OCR
    language, speech model and language, threads). A zero ``timeout_s`` or ``memory_mb`` means no bound."""

    timeout_s: float = 60.0
    memory_mb: int = 2048
    max_unzipped_mb: float = 256.0
    max_zip_ratio: float = 100.0
    max_pdf_pages: int = 5000
    ocr_timeout_s: float = 600.0
    media_timeout_s: float = 3600.0
    media_memory_mb: int = 4096
    media_max_file_mb: float = 300.0
    ocr_language: str = "eng"
    speech_model: str = "whisper-base"
    speech_language: str = ""
    media_threads: int = 0

    def max_bytes_for(self, path: Path, max_bytes: int) -> int:
        """Recordings are bounded by ``media_max_file_mb`` rather than the general file size limit."""
        if path.suffix.lower() in MEDIA_SUFFIXES and self.media_max_file_mb > 0:
            return int(self.media_max_file_mb * MB)
        return max_bytes

    def for_file(self, path: Path) -> ParseLimits:
        """The limits that apply to ``path``: OCR and speech get their own time and memory.

        PDFs count as OCR work because any page may be a scan; the page-count limit still bounds them.
        """
        suffix = path.suffix.lower()
        memory = self.memory_mb
        if suffix in MEDIA_SUFFIXES:
            timeout = self.media_timeout_s
            # The speech model runs inside the worker; OCR runs in a child process with an address space of
            # its own, so images and PDFs keep the worker's limit (and a mixed folder does not restart it).
            memory = max(self.memory_mb, self.media_memory_mb) if self.memory_mb and self.media_memory_mb else 0
        elif suffix in OCR_SUFFIXES or suffix == ".pdf":
            timeout = self.ocr_timeout_s
        else:
            return self
        return replace(self, timeout_s=max(self.timeout_s, timeout) if self.timeout_s and timeout else 0.0,
                       memory_mb=memory)

    @classmethod
    def from_settings(cls, ingest: Any) -> ParseLimits:
        """From ``Settings.ingest`` (``parse_timeout_s``, ``parse_memory_mb``, ``max_unzipped_mb`` …)."""
        return cls(
            timeout_s=float(ingest.parse_timeout_s),
            memory_mb=int(ingest.parse_memory_mb),
            max_unzipped_mb=float(ingest.max_unzipped_mb),
            max_zip_ratio=float(ingest.max_zip_ratio),
            max_pdf_pages=int(ingest.max_pdf_pages),
            ocr_timeout_s=float(ingest.ocr_timeout_s),
            media_timeout_s=float(ingest.media_timeout_s),
            media_memory_mb=int(ingest.media_memory_mb),
            media_max_file_mb=float(ingest.media_max_file_mb),
            ocr_language=str(ingest.ocr_language),
            speech_model=str(ingest.speech_model),
            speech_language=str(ingest.speech_language),
            media_threads=int(ingest.media_threads),
        )


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_zip(data: bytes, path: Path, limits: ParseLimits) -> None:
    """Refuse a zip whose members (nested archives included) unpack to too much, or too much per byte.

    Only the central directory is read, plus the first bytes of each member to spot nested archives.
    The declared sizes are binding: ``zipfile`` never returns more than a member's ``file_size``, so a
    directory that lies about sizes cannot smuggle more data past this check. A file that is no valid
    zip passes; its loader reports it.
    """
    budget = int(limits.max_unzipped_mb * MB)
    total = _unzipped_size(data, path, limits, budget, depth=0)
    if total is None:
        return
    ratio = total / max(len(data), 1)
    if total > _RATIO_FLOOR and ratio > limits.max_zip_ratio:
        raise ParseLimitError(
            path,
            f"zip bomb: {human_size(total)} uncompressed from {human_size(len(data))} "
            f"(ratio {ratio:.0f} > {limits.max_zip_ratio:g}, ingest.max_zip_ratio)",
        )


def _unzipped_size(blob: bytes, path: Path, limits: ParseLimits, budget: int, depth: int) -> int | None:
    """Bytes this archive and the archives inside it unpack to; None when ``blob`` is no readable zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > _MAX_MEMBERS:
            raise ParseLimitError(path, f"zip bomb: {len(members)} archive members, over the limit of {_MAX_MEMBERS}")
        total = sum(m.file_size for m in members)
        if total > budget:
            raise ParseLimitError(
                path,
                f"zip bomb: {human_size(total)} uncompressed"
                f"{' inside a nested archive' if depth else ''} from {human_size(len(blob))}, "
                f"over the limit of {limits.max_unzipped_mb:g} MB (ingest.max_unzipped_mb)",
            )
        for member in members:
            inner = _nested_archive(archive, member)
            if inner is None:
                continue
            if depth + 1 >= _MAX_NESTING:
                raise ParseLimitError(path, f"zip bomb: archives nested more than {_MAX_NESTING} levels deep")
            # The inner bytes were counted already; what they unpack to must fit in what is left.
            total += _unzipped_size(inner, path, limits, budget - total, depth + 1) or 0
    return total


def _nested_archive(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes | None:
    if member.file_size < 22:  # smaller than the shortest zip (an empty archive's end record)
        return None
    try:
        with archive.open(member) as f:
            if f.read(4) not in ZIP_MAGIC:
                return None
        return archive.read(member)  # at most member.file_size bytes, which the budget counted
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError, OSError, EOFError):
        return None  # encrypted or damaged: the parsers cannot open it either


def check_pdf_pages(count: int, path: Path, limits: ParseLimits, *, declared: bool) -> None:
    if limits.max_pdf_pages and count > limits.max_pdf_pages:
        what = "declares" if declared else "has"
        raise ParseLimitError(
            path, f"PDF {what} {count} pages, over the limit of {limits.max_pdf_pages} (ingest.max_pdf_pages)"
        )
