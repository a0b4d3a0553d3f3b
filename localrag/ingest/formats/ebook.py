"""EPUB: one document per book, its "pages" the chapters in reading order.

``page_starts`` holds where each chapter (each spine item with text) begins, so a hit's ``page`` is its
chapter number (``page_label`` "chapter"); ``chapters`` lists the chapter titles (the first heading, else the
XHTML title) in the same order. Metadata also keeps the book's ``title``, ``author`` and ``language``.

EbookLib, the usual reader, is AGPL-3.0, which this Apache-2.0 package cannot take as a dependency. The part
of EPUB needed to read a book is small and fixed by the OCF and OPF specifications: ``META-INF/container.xml``
names the package document, whose manifest and spine list the XHTML files in order. That is read here with
zipfile and lxml (no DTDs, no entities, no network), and each chapter goes through ``html_to_text``.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import FormatContext, make_document, normalise
from localrag.ingest.html import html_to_text
from localrag.types import Document

log = logging.getLogger(__name__)

__all__ = ["load_epub"]

_XHTML_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/x-dtbook+xml"})
_HEADING = re.compile(r"<h[1-3][^>]*>(.*?)</h[1-3]>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def _xml(data: bytes, name: str, path: Path) -> Any:
    from lxml import etree

    # libxml2 expands internal entities inside attribute values even with resolve_entities=False, so a
    # declaration is refused outright, as defusedxml does: a container or package document never needs one.
    if b"<!ENTITY" in data:
        raise LoaderError(path, f"refused EPUB: {name} declares XML entities")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(data, parser=parser)


def _read(book: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return book.read(name)  # sizes were bounded by check_zip before this file was opened
    except KeyError as e:
        raise LoaderError(path, f"broken EPUB: {name} is missing") from e


def _chapter_title(markup: str, fallback: str) -> str:
    m = _HEADING.search(markup[:65536])  # a heading is near the top; an unclosed one must not cost a scan
    heading = " ".join(_TAG.sub(" ", m.group(1)).split()) if m else ""
    return heading or fallback


def _first(root: Any, xpath: str) -> str:
    found = root.xpath(xpath, namespaces=_NS)
    return " ".join(str(found[0]).split()) if found else ""


def load_epub(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise LoaderError(path, f"cannot read EPUB: not a zip archive ({e})") from e
    try:
        with book:
            return _load(book, path)
    except LoaderError:
        raise
    except Exception as e:  # lxml, zipfile and decoding errors of damaged books
        raise LoaderError(path, f"cannot read EPUB: {type(e).__name__}: {e}") from e


def _load(book: zipfile.ZipFile, path: Path) -> list[Document]:
    container = _xml(_read(book, "META-INF/container.xml", path), "META-INF/container.xml", path)
    opf_name = _first(container, "//c:rootfile/@full-path")
    if not opf_name:
        raise LoaderError(path, "broken EPUB: container.xml names no package document")
    package = _xml(_read(book, opf_name, path), opf_name, path)
    base = posixpath.dirname(opf_name)
    manifest = {
        item.get("id"): (item.get("href") or "", item.get("media-type") or "")
        for item in package.xpath("//opf:manifest/opf:item", namespaces=_NS)
    }
    chapters: list[str] = []
    titles: list[str] = []
    seen: set[str] = set()
    for ref in package.xpath("//opf:spine/opf:itemref/@idref", namespaces=_NS):
        href, media_type = manifest.get(ref, ("", ""))
        if not href or media_type not in _XHTML_TYPES:
            continue
        name = posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0])))
        if name in seen:
            continue
        seen.add(name)
        markup = _read(book, name, path).decode("utf-8", "replace")
        text, html_title = html_to_text(markup)
        text = normalise(text).strip()
        if not text:  # a cover image or a blank page: no chapter number spent on it
            continue
        chapters.append(text)
        titles.append(_chapter_title(markup, html_title))
    if not chapters:
        raise LoaderError(path, "empty: no chapter holds text")
    starts: list[int] = []
    offset = 0
    for chapter in chapters:
        starts.append(offset)
        offset += len(chapter) + 2  # the "\n\n" joining chapters
    meta: dict[str, Any] = {"file_type": "epub", "pages": len(chapters), "page_label": "chapter", "chapters": titles}
    for key, xpath in (("author", "//dc:creator/text()"), ("language", "//dc:language/text()")):
        value = _first(package, xpath)
        if value:
            meta[key] = value
    title = _first(package, "//dc:title/text()")
    return [make_document(path, "\n\n".join(chapters), title=title, metadata=meta, page_starts=tuple(starts))]
