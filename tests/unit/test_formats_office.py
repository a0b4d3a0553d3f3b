"""pptx (slide numbers as pages), odt, rtf and epub (chapters as pages), with fixtures written by the tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from localrag.ingest.chunking import Chunker
from localrag.ingest.errors import ParseLimitError
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import LoaderError, load_file, parse_file


def make_pptx(path: Path, slides: list[tuple[str, str, str]], *, table: bool = False) -> Path:
    """Slides of (title, body, notes); an empty title and body make a slide without text."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    deck.core_properties.title = "Roadmap deck"
    for number, (title, body, notes) in enumerate(slides, start=1):
        slide = deck.slides.add_slide(deck.slide_layouts[1] if title else deck.slide_layouts[6])
        if title:
            slide.shapes.title.text = title
            slide.placeholders[1].text_frame.text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
        if table and number == len(slides):
            shape = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1))
            for r, row in enumerate([["Team", "Head count"], ["Search", "7"]]):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


def test_pptx_one_page_per_slide(tmp_path: Path) -> None:
    slides = [
        ("Welcome", "Agenda for the offsite", ""),
        ("", "", ""),  # a slide without text keeps its number
        ("Hiring", "Two engineers in spring", "Say the budget is approved"),
    ]
    path = make_pptx(tmp_path / "deck.pptx", slides, table=True)
    [doc] = load_file(path)
    assert doc.title == "Roadmap deck"
    assert doc.metadata["file_type"] == "pptx" and doc.metadata["page_label"] == "slide"
    assert doc.metadata["pages"] == 3 and doc.metadata["slide_titles"] == ["Welcome", "", "Hiring"]
    assert len(doc.page_starts) == 3
    assert doc.text.startswith("Welcome\n\nAgenda for the offsite")
    hiring = doc.text.index("Hiring")
    assert doc.page_at(hiring) == 3 and doc.page_at(doc.text.index("Agenda")) == 1
    assert doc.page_at(doc.text.index("Notes: Say the budget is approved")) == 3
    assert doc.page_at(doc.text.index("Team | Head count\nSearch | 7")) == 3


def test_pptx_chunks_carry_the_slide_number(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    slides = [(f"Slide {n}", " ".join(f"word{n}x{i}" for i in range(40)), "") for n in range(1, 6)]
    [doc] = parse_file(make_pptx(tmp_path / "long.pptx", slides))
    chunks = Chunker(fake_embedder.tokenizer, chunk_tokens=30, overlap_tokens=0).split(doc)
    assert len(chunks) >= 5
    for chunk in chunks:
        first_word = next(w for w in chunk.text.split() if w.startswith("word"))
        assert chunk.page == int(first_word[4 : first_word.index("x")])


def test_odt_headings_lists_and_tables(tmp_path: Path) -> None:
    from odfdo import Document as OdfDocument
    from odfdo import Header, List, Paragraph, Table

    doc = OdfDocument("text")
    doc.meta.set_title("Field notes")
    doc.body.append(Header(1, "Chapter One"))
    doc.body.append(Paragraph("The  heron\twaits by the reeds."))
    doc.body.append(List(["first item", "second item"]))
    table = Table("Counts")
    table.set_values([["Bird", "Count"], ["Heron", "3"]])
    doc.body.append(table)
    doc.save(str(tmp_path / "notes.odt"))
    [loaded] = load_file(tmp_path / "notes.odt")
    assert loaded.title == "Field notes" and loaded.metadata["file_type"] == "odt"
    assert loaded.text == (
        "Chapter One\n\nThe heron waits by the reeds.\n\nfirst item\n\nsecond item\n\nBird | Count\nHeron | 3"
    )


def test_an_ods_named_odt_is_refused(tmp_path: Path) -> None:
    from odfdo import Document as OdfDocument

    OdfDocument("spreadsheet").save(str(tmp_path / "sheet.odt"))
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "sheet.odt")
    assert info.value.reason == "not a text document: an ODF spreadsheet"


def test_rtf(tmp_path: Path) -> None:
    rtf = rb"{\rtf1\ansi\deff0{\fonttbl{\f0 Times;}}\f0\pard The {\b caf\'e9} opens at nine.\par Closed on Sunday.\par}"
    (tmp_path / "sign.rtf").write_bytes(rtf)
    [doc] = load_file(tmp_path / "sign.rtf")
    assert doc.text == "The café opens at nine.\nClosed on Sunday."
    assert doc.metadata["file_type"] == "rtf"
    (tmp_path / "fake.rtf").write_text("plain text, no header", encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "fake.rtf")
    assert info.value.reason == "not an RTF file (no {\\rtf header)"


def make_epub(chapters: list[tuple[str, str]], *, cover: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        items = ['<item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>'] if cover else []
        refs = ['<itemref idref="cover"/>'] if cover else []
        if cover:
            z.writestr("OEBPS/cover.xhtml", '<html><body><img src="c.png"/></body></html>')
        for n, (title, body) in enumerate(chapters, start=1):
            items.append(f'<item id="c{n}" href="text/ch%20{n}.xhtml" media-type="application/xhtml+xml"/>')
            refs.append(f'<itemref idref="c{n}"/>')
            page = f"<html><head><title>t{n}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>"
            z.writestr(f"OEBPS/text/ch {n}.xhtml", page)
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Lighthouse</dc:title>'
            "<dc:creator>A. Keeper</dc:creator><dc:language>en</dc:language></metadata>"
            f"<manifest>{''.join(items)}</manifest><spine>{''.join(refs)}</spine></package>",
        )
    return buffer.getvalue()


def test_epub_chapters_are_pages_in_spine_order(tmp_path: Path) -> None:
    chapters = [("The Storm", "Waves broke over the rocks."), ("The Lamp", "The keeper trimmed the wick.")]
    (tmp_path / "book.epub").write_bytes(make_epub(chapters))
    [doc] = load_file(tmp_path / "book.epub")
    assert doc.title == "The Lighthouse"
    meta = doc.metadata
    assert (meta["author"], meta["language"], meta["file_type"]) == ("A. Keeper", "en", "epub")
    assert meta["chapters"] == ["The Storm", "The Lamp"] and meta["page_label"] == "chapter"
    assert doc.text == "The Storm\n\nWaves broke over the rocks.\n\nThe Lamp\n\nThe keeper trimmed the wick."
    assert doc.page_at(doc.text.index("Waves")) == 1  # the cover has no text and spends no number
    assert doc.page_at(doc.text.index("keeper")) == 2


def test_broken_epubs_are_refused_with_a_reason(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
    (tmp_path / "bare.epub").write_bytes(buffer.getvalue())
    with pytest.raises(LoaderError) as info:
        load_file(tmp_path / "bare.epub")
    assert info.value.reason == "broken EPUB: META-INF/container.xml is missing"
    (tmp_path / "cover.epub").write_bytes(make_epub([]))
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "cover.epub")
    assert info.value.reason == "empty: no chapter holds text"


def test_an_epub_entity_bomb_is_not_expanded(tmp_path: Path) -> None:
    data = make_epub([("One", "text")])
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY d "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><container xmlns="urn:oasis:names:tc:opendocument:xmlns:'
        'container"><rootfiles><rootfile full-path="&d;"/></rootfiles></container>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buffer, "w") as out:
        for item in src.infolist():
            out.writestr(item, bomb if item.filename == "META-INF/container.xml" else src.read(item))
    (tmp_path / "bomb.epub").write_bytes(buffer.getvalue())
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "bomb.epub")
    assert info.value.reason == "refused EPUB: META-INF/container.xml declares XML entities"


def test_zip_based_formats_meet_the_zip_limits(tmp_path: Path) -> None:
    for suffix in (".pptx", ".odt", ".epub"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("content.xml", b"<a/>" + b" " * (40 * 1024 * 1024))
        (tmp_path / f"bomb{suffix}").write_bytes(buffer.getvalue())
        with pytest.raises(ParseLimitError) as info:
            load_file(tmp_path / f"bomb{suffix}", limits=ParseLimits(max_unzipped_mb=16))
        assert info.value.reason.startswith("zip bomb"), suffix
