"""Hostile files, built by the tests: zip bombs per archive format, PDFs with too many pages or a broken
cross-reference table, deeply nested HTML, binary files with text names, a sparse 1 GB file."""

from __future__ import annotations

import io
import os
import random
import re
import zipfile
from pathlib import Path

from pdfgen import make_pdf

MB = 1024 * 1024
# One Word paragraph; repeated, it compresses about 250-fold, like the reported bombs (90 KB -> 30 MB).
PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
# The part a zip-based format's reader parses first, per format: each bomb inflates that part.
ARCHIVE_PARTS = {
    ".docx": "word/document.xml",
    ".xlsx": "xl/worksheets/sheet1.xml",
    ".pptx": "ppt/slides/slide1.xml",
    ".odt": "content.xml",
    ".epub": "OEBPS/chapter1.xhtml",
}


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx_bomb(xml_mb: float) -> bytes:
    """A valid DOCX whose document.xml holds ``xml_mb`` MB of one-letter paragraphs."""
    import docx

    base = io.BytesIO()
    docx.Document().save(base)
    source = zipfile.ZipFile(io.BytesIO(base.getvalue()))
    members = {}
    for info in source.infolist():
        data = source.read(info)
        if info.filename == ARCHIVE_PARTS[".docx"]:
            head, _, tail = data.partition(b"<w:body>")
            data = head + b"<w:body>" + PARAGRAPH * int(xml_mb * MB / len(PARAGRAPH)) + tail
        members[info.filename] = data
    return zip_of(members)


def archive_bomb(suffix: str, xml_mb: float) -> bytes:
    if suffix == ".docx":
        return docx_bomb(xml_mb)
    members = {ARCHIVE_PARTS[suffix]: PARAGRAPH * int(xml_mb * MB / len(PARAGRAPH))}
    if suffix in (".odt", ".epub"):  # these name their type in a first, stored member
        members = {"mimetype": b"application/" + suffix[1:].encode(), **members}
    return zip_of(members)


def nested_bomb(inner_mb: float) -> bytes:
    """A DOCX that embeds a workbook whose sheet unpacks to ``inner_mb`` MB (incompressible outside)."""
    inner = zip_of({"xl/worksheets/sheet1.xml": b"<row/>" * int(inner_mb * MB / 6)})
    return zip_of({"word/document.xml": b"<w:document/>", "word/embeddings/sheet1.xlsx": inner})


def nested_deep(levels: int) -> bytes:
    data = zip_of({"note.txt": b"the innermost file"})
    for level in range(levels - 1):
        data = zip_of({f"level{level}.zip": data})
    return data


def pdf_pages(pages: int, declared: int | None = None, text: str = "A readable first page.") -> bytes:
    """A valid PDF: one page with ``text``, then blank pages; the page tree says ``declared`` pages."""
    return make_pdf([[text]] + [[] for _ in range(pages - 1)], declared)


def pdf_broken_xref(text: str) -> bytes:
    """A one-page PDF whose cross-reference table points every object at the wrong offset."""
    data = pdf_pages(1, text=text)
    head, xref, tail = data.rpartition(b"xref\n")
    table, trailer, rest = tail.partition(b"trailer\n")
    return head + xref + re.sub(rb"\d{10} 00000 n", b"0000000003 00000 n", table) + trailer + rest


def nested_html(depth: int) -> bytes:
    return (b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"</body></html>")


def binary_blob(size: int = 64 * 1024, seed: int = 0) -> bytes:
    """Random bytes behind a PNG signature: not UTF-8, full of NULs."""
    rng = random.Random(seed)
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(size))


def sparse_file(path: Path, size: int = 1 << 30) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    with path.open("wb") as f:
        f.truncate(size)
    assert os.stat(path).st_size == size
    return path


def flat_html(tags: int) -> bytes:
    """Many sibling paragraphs: html.parser and BeautifulSoup need gigabytes and a minute for 2 million."""
    return b"<html><body>" + b"<p>x</p>" * tags + b"</body></html>"


# -- watching the parser worker from outside ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy(pid: int | None) -> bool:
    """The process has spent half a second of CPU: past start-up, into a parse."""
    try:
        return pid is not None and cpu_seconds(pid) > 0.5
    except (OSError, IndexError):
        return False


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found
