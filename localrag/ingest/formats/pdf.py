"""The PDF loader's OCR fallback: pages without a text layer are read from their embedded images.

A scanned PDF page is one image drawn over the page, so OCR of the page's images is OCR of the page; no PDF
renderer (poppler, pdfium) is needed. A page with several images gets their texts in the order pypdf lists
them, and each paragraph box is a fraction of its own image (of the page, for the usual full-page scan).
Vector-drawn text with no text layer (outlined glyphs) has no image to read and stays empty.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.errors import ModelNotFoundError
from localrag.ingest.formats.image import ocr_pages, page_engine
from localrag.ingest.formats.ocr import OcrBlock, OcrPage
from localrag.ingest.limits import ParseLimits

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

__all__ = ["ScannedPages", "ocr_missing_pages"]

_MIN_SIDE = 32  # smaller images are icons and rules, not page scans


@dataclass(frozen=True, slots=True)
class ScannedPages:
    """OCR of the pages (0-based index) that had no text layer; ``problem`` says why some could not be read."""

    pages: dict[int, OcrPage]
    engine: str = ""
    problem: str = ""


def ocr_missing_pages(pages: Sequence[Any], texts: Sequence[str], path: Path, limits: ParseLimits) -> ScannedPages:
    missing = [i for i, text in enumerate(texts) if not text.strip()]
    if not missing:
        return ScannedPages({})
    try:
        engine = page_engine(limits)
    except ModelNotFoundError as e:
        return ScannedPages({}, problem=f"{len(missing)} page(s) have no text layer and were not OCR'd: {e}")
    found: dict[int, OcrPage] = {}
    for index in missing:
        images = _page_images(pages[index], index + 1, path)
        if images:
            found[index] = _merge(ocr_pages(engine, images, path))
    return ScannedPages(found, engine.name)


def _page_images(page: Any, number: int, path: Path) -> list[Image]:
    images: list[Image] = []
    try:
        for item in page.images:
            try:
                image = item.image
            except Exception as e:  # a filter pypdf cannot decode (JBIG2, broken data): skip that image
                log.info("%s: page %d: unreadable image %s: %s", path, number, getattr(item, "name", "?"), e)
                continue
            if image is not None and min(image.size) >= _MIN_SIDE:
                images.append(image)
    except Exception as e:  # a damaged resource dictionary: the page stays empty
        log.info("%s: page %d: cannot list images: %s", path, number, e)
    return images


def _merge(pages: Sequence[OcrPage]) -> OcrPage:
    if len(pages) == 1:
        return pages[0]
    parts: list[str] = []
    blocks: list[OcrBlock] = []
    offset = 0
    for page in pages:
        if not page.text.strip():
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        parts.append(page.text)
        blocks.extend(OcrBlock(b.char_start + offset, b.char_end + offset, b.box) for b in page.blocks)
        offset += len(page.text)
    return OcrPage("".join(parts), tuple(blocks))
