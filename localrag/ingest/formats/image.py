"""Images (png, jpg, webp, tiff): text by OCR, one page per frame, and EXIF date and camera fields.

A document's text is the OCR text of its pages (frames of a multi-page TIFF) in order, with ``page_starts``,
so every chunk keeps its page number. Where each paragraph sits on its page goes into the metadata as
``ocr_boxes``: ``[page, char_start, char_end, x0, y0, x1, y1]`` rows, coordinates as fractions of the page
image (0..1, origin top left), so a citation's char span can be turned into regions with ``regions_for_span``.
Paragraph boxes rather than word or line boxes: a chunk spans several paragraphs anyway, and the metadata
rides along with every hit, so it must stay small.

The same page OCR serves PDF pages without a text layer (``ocr_pages``, used by the PDF loader).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.errors import ModelNotFoundError
from localrag.ingest.errors import LoaderError, ParseLimitError
from localrag.ingest.formats import FormatContext, make_document
from localrag.ingest.formats.ocr import OcrEngine, OcrError, OcrPage, ocr_engine
from localrag.ingest.limits import ParseLimits
from localrag.types import Document

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

__all__ = ["exif_metadata", "load_image", "ocr_pages", "page_engine", "regions_for_span"]

MAX_PIXELS = 120_000_000  # a 600-dpi A3 scan is ~70 Mpx; more is a decompression bomb, not a page
MAX_FRAMES = 2000
# Tesseract reads glyphs of ~20-40 px best: a small screenshot is enlarged before OCR (boxes are fractions,
# so they do not change).
_UPSCALE_BELOW = 1000

_EXIF_IFD = 0x8769
_BASE_TAGS = {0x010F: "camera_make", 0x0110: "camera_model", 0x0131: "software"}
_EXIF_TAGS = {0xA434: "lens_model", 0xA433: "lens_make"}
_DATE_TAGS = (0x9003, 0x9004)  # DateTimeOriginal, DateTimeDigitized (in the Exif IFD)
_BASE_DATE = 0x0132  # DateTime: when the file was last changed; a fallback only
_OFFSET_ORIGINAL = 0x9011


def page_engine(limits: ParseLimits) -> OcrEngine:
    """The OCR engine the settings name; a missing one raises ``ModelNotFoundError`` with its install line."""
    return ocr_engine(limits.ocr_language, limits.media_threads, limits.ocr_timeout_s)


def load_image(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    from PIL import Image as PILImage

    try:
        engine = page_engine(ctx.limits)
    except ModelNotFoundError as e:
        raise LoaderError(path, f"not indexed: {e}") from e
    try:
        with _open(data, path, PILImage) as image:
            metadata: dict[str, Any] = {
                "file_type": "image",
                "image_format": (image.format or path.suffix.lstrip(".")).lower(),
                "width": image.width,
                "height": image.height,
                **exif_metadata(image),
            }
            pages = ocr_pages(engine, _frames(image, path), path)
    except (LoaderError, ModelNotFoundError):
        raise
    except Exception as e:  # Pillow raises many types for damaged files
        raise LoaderError(path, f"cannot read image: {type(e).__name__}: {e}") from e
    text, starts, boxes = join_pages(pages)
    if not text.strip():
        raise LoaderError(path, "empty: OCR found no text in the image")
    metadata.update({"pages": len(pages), "ocr_engine": engine.name, "ocr_boxes": boxes})
    return [make_document(path, text, metadata=metadata, page_starts=starts)]


def _open(data: bytes, path: Path, module: Any) -> Image:
    module.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", module.DecompressionBombWarning)
        try:
            image: Image = module.open(io.BytesIO(data))
        except (module.DecompressionBombError, module.DecompressionBombWarning) as e:
            raise ParseLimitError(path, f"image bomb: more than {MAX_PIXELS} pixels") from e
        except module.UnidentifiedImageError as e:  # its message names a BytesIO object, not the file
            raise LoaderError(path, "cannot read image: damaged, or not a PNG, JPEG, WebP or TIFF image") from e
        except Exception as e:
            raise LoaderError(path, f"cannot read image: {type(e).__name__}: {e}") from e
    if image.width * image.height > MAX_PIXELS:
        raise ParseLimitError(path, f"image bomb: {image.width}x{image.height} pixels, over {MAX_PIXELS}")
    return image


def _frames(image: Image, path: Path) -> Iterator[Image]:
    count = int(getattr(image, "n_frames", 1) or 1)
    if count > MAX_FRAMES:
        raise ParseLimitError(path, f"image has {count} frames, over the limit of {MAX_FRAMES}")
    for index in range(count):
        image.seek(index)
        yield image.copy()


def _prepared(image: Image) -> Image:
    """Grayscale on white (transparency flattened) and large enough for Tesseract."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, rgba)
    gray = image.convert("L")
    if max(gray.size) < _UPSCALE_BELOW:
        factor = 2 if max(gray.size) >= _UPSCALE_BELOW // 2 else 3
        gray = gray.resize((gray.width * factor, gray.height * factor), PILImage.Resampling.LANCZOS)
    return gray


def ocr_pages(engine: OcrEngine, images: Iterable[Image], path: Path) -> list[OcrPage]:
    """Each image's OCR page, in order; an engine failure names the file and the page."""
    pages: list[OcrPage] = []
    for number, image in enumerate(images, start=1):
        try:
            pages.append(engine.recognize(_prepared(image)))
        except OcrError as e:
            raise LoaderError(path, f"OCR failed on page {number}: {e}") from e
    return pages


def join_pages(pages: Sequence[OcrPage], *, first_page: int = 1) -> tuple[str, tuple[int, ...], list[list[Any]]]:
    """Text of the pages joined by blank lines, each page's start offset, and the boxes with document offsets."""
    parts: list[str] = []
    starts: list[int] = []
    boxes: list[list[Any]] = []
    offset = 0
    for number, page in enumerate(pages, start=first_page):
        starts.append(offset)
        parts.append(page.text)
        boxes.extend(box_rows(page, number, offset))
        offset += len(page.text) + 2
    return "\n\n".join(parts), tuple(starts), boxes


def box_rows(page: OcrPage, number: int, offset: int) -> list[list[Any]]:
    return [[number, offset + b.char_start, offset + b.char_end, *b.box] for b in page.blocks]


def regions_for_span(metadata: Mapping[str, Any], char_start: int, char_end: int) -> list[dict[str, Any]]:
    """The page regions under ``document.text[char_start:char_end]`` (a hit's or citation's span).

    One region per page touched: the union of the paragraph boxes the span overlaps, as
    ``{"page": n, "box": [x0, y0, x1, y1]}`` with fractions of the page.
    """
    merged: dict[int, list[float]] = {}
    for row in metadata.get("ocr_boxes") or ():
        page, start, end, *box = row
        if start < char_end and end > char_start:
            old = merged.get(page)
            merged[page] = box if old is None else [min(old[0], box[0]), min(old[1], box[1]),
                                                    max(old[2], box[2]), max(old[3], box[3])]
    return [{"page": page, "box": box} for page, box in sorted(merged.items())]


def exif_metadata(image: Image) -> dict[str, str]:
    """EXIF date (ISO 8601, with its UTC offset when recorded) and camera fields, as strings."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception as e:  # broken EXIF must not lose a readable image
        log.debug("unreadable EXIF: %s", e)
        return {}
    found: dict[str, str] = {}
    for tags, source in ((_BASE_TAGS, exif), (_EXIF_TAGS, sub)):
        for tag, key in tags.items():
            value = _text(source.get(tag))
            if value:
                found[key] = value
    date = next((d for d in (_exif_date(sub.get(t)) for t in _DATE_TAGS) if d), "") or _exif_date(exif.get(_BASE_DATE))
    if date:
        offset = _text(sub.get(_OFFSET_ORIGINAL))
        found["exif_datetime"] = date + (offset if len(offset) == 6 and offset[0] in "+-" else "")
    return found


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()[:200] if value is not None else ""


def _exif_date(value: Any) -> str:
    """``2024:03:05 14:22:01`` -> ``2024-03-05T14:22:01``; anything else -> ""."""
    text = _text(value)
    if len(text) < 19 or text[4] != ":" or text[7] != ":" or not text[:4].isdigit() or text.startswith("0000"):
        return ""
    return f"{text[:4]}-{text[5:7]}-{text[8:10]}T{text[11:19]}"
