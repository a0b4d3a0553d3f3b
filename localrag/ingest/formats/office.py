"""Presentations and word-processor files: pptx (python-pptx), odt (odfdo) and rtf (striprtf).

A presentation is one document whose "pages" are its slides: ``page_starts`` holds where each slide's text
begins, so a hit's ``page`` is its slide number (``page_label`` "slide" says so), and every slide keeps its
number even when it has no text. Speaker notes follow their slide's text. An odt becomes headings,
paragraphs, list items and table rows in reading order; an rtf its plain text.

Libraries: python-pptx (MIT) is the reference reader of the format. odfdo (Apache-2.0) over odfpy: both
read ODF, odfdo is maintained (odfpy's last release was 2020) and gives typed elements (tables as values).
striprtf (BSD) is small and dependency-free; RTF's own text model is simple enough that its output is what a
reader sees.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import FormatContext, make_document, normalise
from localrag.types import Document

log = logging.getLogger(__name__)

__all__ = ["load_odt", "load_pptx", "load_rtf"]

_MAX_GROUP_DEPTH = 32  # shapes grouped inside groups: real decks nest a few levels


def _shape_texts(shapes: Any, depth: int = 0) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            if depth < _MAX_GROUP_DEPTH:
                yield from _shape_texts(shape.shapes, depth + 1)
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [" | ".join(" ".join(cell.text.split()) for cell in row.cells) for row in shape.table.rows]
            yield "\n".join(r for r in rows if r.strip(" |"))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text.strip()


def _slide_title(slide: Any) -> str:
    title = slide.shapes.title
    return " ".join(title.text_frame.text.split()) if title is not None and title.has_text_frame else ""


def load_pptx(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    import pptx

    try:
        deck = pptx.Presentation(io.BytesIO(data))
        slides: list[str] = []
        titles: list[str] = []
        for slide in deck.slides:
            title = _slide_title(slide)
            # The title shape first: shape order is z-order, which need not put it on top.
            parts = [title] if title else []
            parts += [t for t in _shape_texts(slide.shapes) if t and " ".join(t.split()) != title]
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    parts.append("Notes: " + notes.text.strip())
            slides.append(normalise("\n\n".join(parts)))
            titles.append(title)
        deck_title = (deck.core_properties.title or "").strip()
    except Exception as e:  # python-pptx / zipfile / lxml errors for damaged files
        raise LoaderError(path, f"cannot read PPTX: {type(e).__name__}: {e}") from e
    text, starts = _join_pages(slides)
    if not text.strip():
        raise LoaderError(path, "empty: no slide holds text")
    meta = {"file_type": "pptx", "pages": len(slides), "page_label": "slide", "slide_titles": titles}
    title = deck_title or next((t for t in titles if t), "")
    return [make_document(path, text, title=title, metadata=meta, page_starts=starts)]


def _join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    starts: list[int] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + 2  # the "\n\n" joining pages
    return "\n\n".join(pages), tuple(starts)


def _odf_blocks(element: Any, depth: int = 0) -> Iterator[str]:
    for child in element.children:
        tag = child.tag
        if tag in ("text:h", "text:p"):
            yield " ".join(child.text_recursive.split())
        elif tag == "table:table":
            rows = [" | ".join(" ".join(str(v).split()) for v in row) for row in child.get_values(get_type=False)]
            yield "\n".join(r for r in rows if r.strip(" |"))
        elif tag in ("office:forms", "text:sequence-decls", "text:tracked-changes", "office:annotation"):
            continue
        elif depth < _MAX_GROUP_DEPTH:  # lists, sections, frames: their paragraphs are the text
            yield from _odf_blocks(child, depth + 1)


def load_odt(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    from odfdo import Document as OdfDocument

    try:
        doc = OdfDocument(io.BytesIO(data))
        if doc.get_type() not in ("text", "text-template", "text-master"):
            raise LoaderError(path, f"not a text document: an ODF {doc.get_type()}")
        blocks = [b for b in _odf_blocks(doc.body) if b.strip()]
        title = (doc.meta.get_title() or "").strip()
    except LoaderError:
        raise
    except Exception as e:  # odfdo / zipfile / lxml errors for damaged files
        raise LoaderError(path, f"cannot read ODT: {type(e).__name__}: {e}") from e
    text = normalise("\n\n".join(blocks))
    if not text.strip():
        raise LoaderError(path, "file is empty")
    return [make_document(path, text, title=title, metadata={"file_type": "odt"})]


def load_rtf(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise LoaderError(path, "not an RTF file (no {\\rtf header)")
    try:
        # RTF is 7-bit: other characters come as escapes that striprtf decodes in the document's code page.
        text = rtf_to_text(data.decode("latin-1"), errors="replace")
    except Exception as e:  # striprtf is a regex walk; a safety net for what it cannot follow
        raise LoaderError(path, f"cannot read RTF: {type(e).__name__}: {e}") from e
    text = normalise(text).strip()
    if not text:
        raise LoaderError(path, "file is empty")
    return [make_document(path, text, metadata={"file_type": "rtf"})]
