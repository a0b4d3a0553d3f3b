"""OCR through the parser worker: images and image-only PDF pages read by Tesseract, with page numbers and
paragraph boxes that a citation can point at."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_fixtures import PAGE_ONE, PAGE_TWO, char_error_rate, require, write_image_pdf, write_png

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.ingest.formats.image import regions_for_span
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import load_file

pytestmark = pytest.mark.model
LIMITS = ParseLimits(media_threads=1)


@pytest.fixture(autouse=True)
def _tesseract() -> None:
    require("tesseract", "apt-get install -y tesseract-ocr tesseract-ocr-eng")


def test_png_text_is_read_with_a_low_character_error_rate(tmp_path: Path) -> None:
    [doc] = load_file(write_png(tmp_path / "memo.png", PAGE_ONE), limits=LIMITS)
    assert char_error_rate("\n".join(PAGE_ONE), doc.text) <= 0.03, doc.text
    assert doc.metadata["file_type"] == "image" and doc.metadata["ocr_engine"] == "tesseract:eng"
    assert doc.page_starts == (0,) and doc.metadata["pages"] == 1
    # One box per paragraph (one rendered line each), top to bottom, inside the page.
    boxes = doc.metadata["ocr_boxes"]
    assert [doc.text[start:end] for _, start, end, *_ in boxes] == [line for line in doc.text.split("\n\n")]
    tops = [box[4] for box in boxes]
    assert tops == sorted(tops) and all(0 <= v <= 1 for box in boxes for v in box[3:])


def test_image_only_pdf_pages_are_read_and_keep_their_page_numbers(tmp_path: Path) -> None:
    [doc] = load_file(write_image_pdf(tmp_path / "scan.pdf", [PAGE_ONE, PAGE_TWO]), limits=LIMITS)
    assert doc.metadata["ocr_pages"] == [1, 2] and doc.metadata["pages"] == 2
    assert len(doc.page_starts) == 2
    page_one, page_two = doc.text[: doc.page_starts[1]], doc.text[doc.page_starts[1]:]
    assert char_error_rate("\n".join(PAGE_ONE), page_one) <= 0.03, page_one
    assert char_error_rate("\n".join(PAGE_TWO), page_two) <= 0.03, page_two
    glacier = doc.text.index("Glaciers")
    assert doc.page_at(glacier) == 2 and doc.page_at(doc.text.index("Invoice")) == 1
    [region] = regions_for_span(doc.metadata, glacier, glacier + 10)
    assert region["page"] == 2
    x0, y0, x1, y1 = region["box"]
    assert 0.1 < x0 < x1 < 0.95 and 0.05 < y0 < y1 < 0.2  # the first line, one inch from the top left


def test_search_finds_a_scanned_page_and_cites_its_page(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    write_image_pdf(docs / "scan.pdf", [PAGE_ONE, PAGE_TWO])
    write_png(docs / "note.png", ["The lighthouse keeper fed the cat at dawn."])
    (docs / "plain.txt").write_text("Nothing scanned here.\n")
    settings = Settings().with_overrides({"ingest": {"media_threads": 1}, "chunk": {"chunk_tokens": 24,
                                                                                    "overlap_tokens": 0}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:
        report = rag.add([docs])
        assert len(report.added) == 3 and not report.skipped, report
        [hit] = rag.search("glaciers carve valleys", k=1, mode="keyword")
        assert hit.source.endswith("scan.pdf") and hit.page == 2
        regions = regions_for_span(hit.metadata, hit.char_start, hit.char_end)
        assert regions and {r["page"] for r in regions} == {2}
        [note] = rag.search("lighthouse keeper cat", k=1, mode="keyword", filter={"file_type": "image"})
        assert note.source.endswith("note.png") and note.page == 1


def test_a_missing_ocr_language_skips_the_file_with_the_package_to_install(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    write_png(docs / "memo.png", PAGE_ONE)
    (docs / "plain.txt").write_text("Plain text still gets in.\n")
    settings = Settings().with_overrides({"ingest": {"ocr_language": "zzz"}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:
        report = rag.add([docs])
    assert [Path(d).name for d in report.added] == ["plain.txt"]
    [skipped] = report.skipped
    assert Path(skipped.path).name == "memo.png"
    assert "apt-get install tesseract-ocr-zzz" in skipped.reason and skipped.reason.startswith("not indexed")


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_jpeg_and_webp_are_read(tmp_path: Path, suffix: str) -> None:
    from media_fixtures import render_page

    path = tmp_path / f"memo{suffix}"
    render_page(PAGE_TWO).convert("RGB").save(path, quality=90)
    [doc] = load_file(path, limits=LIMITS)
    assert char_error_rate("\n".join(PAGE_TWO), doc.text) <= 0.03, doc.text
    assert doc.metadata["image_format"] == ("jpeg" if suffix == ".jpg" else "webp")


def test_multi_page_tiff_keeps_a_page_per_frame(tmp_path: Path) -> None:
    from media_fixtures import render_page

    path = tmp_path / "fax.tiff"
    first, second = render_page(PAGE_ONE), render_page(PAGE_TWO)
    first.save(path, save_all=True, append_images=[second], compression="tiff_lzw")
    [doc] = load_file(path, limits=LIMITS)
    assert doc.metadata["pages"] == 2 and len(doc.page_starts) == 2
    assert doc.page_at(doc.text.index("Glaciers")) == 2 and doc.page_at(doc.text.index("Invoice")) == 1


def test_an_image_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    from PIL import Image

    from localrag.ingest.errors import ParseLimitError

    path = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000), 1).save(path)  # 144 Mpx of white in a few kB
    with pytest.raises(ParseLimitError, match="image bomb"):
        load_file(path, limits=LIMITS)
