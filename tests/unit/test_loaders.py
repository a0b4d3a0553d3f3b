"""Loaders and file discovery: every format, every failure mode, and load_many's carry-on."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from pdfgen import make_pdf

from localrag.errors import InvalidInputError, RequestTooLargeError
from localrag.ingest.chunking import Chunker
from localrag.ingest.discover import matches
from localrag.ingest.loaders import FileTooLargeError, LoaderError, discover, load_file, load_many
from localrag.types import Document, SkippedFile

MB = 1024 * 1024


PAGES = [
    ["Alpha page one starts here.", "It talks about apples."],
    ["Beta page two is about bananas."],
    ["Gamma page three mentions cherries."],
]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def reason(path: Path, max_bytes: int = MB) -> str:
    """The reason a load fails (the message minus the path, which may hold any word)."""
    with pytest.raises(LoaderError) as info:
        load_file(path, max_bytes=max_bytes)
    assert str(info.value) == f"{info.value.path}: {info.value.reason}"
    assert Path(info.value.path).name == path.name
    return info.value.reason


def load_one(path: Path, max_bytes: int = MB) -> Document:
    docs = load_file(path, max_bytes=max_bytes)
    assert len(docs) == 1
    return docs[0]


# ----------------------------------------------------------------------------- formats


def test_txt_keeps_text_and_sets_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", "line one\r\nline two\x00 end\n")
    doc = load_one(path)
    assert doc.text == "line one\nline two end\n"
    assert doc.doc_id == doc.source == path.resolve().as_posix()
    assert doc.metadata == {"source": doc.source, "file_type": "text"}
    assert doc.page_starts == ()


def test_utf8_bom_is_dropped_and_latin1_falls_back(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "bom.txt", b"\xef\xbb\xbfcaf\xc3\xa9")).text == "café"
    assert load_one(write(tmp_path / "latin.txt", b"caf\xe9 cr\xe8me")).text == "café crème"


def test_markdown_title_is_first_h1_outside_code(tmp_path: Path) -> None:
    text = "```sh\n# not a title\n```\n\nIntro\n\n## Sub\n\n# Real Title #\n\nBody text.\n"
    doc = load_one(write(tmp_path / "guide.md", text))
    assert doc.text == text
    assert doc.title == "Real Title"
    assert doc.metadata["file_type"] == "markdown"
    assert load_one(write(tmp_path / "plain.markdown", "no heading here")).title == ""


def test_html_drops_scripts_keeps_paragraphs(tmp_path: Path) -> None:
    html = """<!doctype html><html><head><title> My  Page </title><style>p{color:red}</style>
    <script>var x = "hidden";</script></head><body>
    <h1>Header</h1><p>First   paragraph
    spans lines.</p><p>Second &amp; last<br>with a break.</p>
    <!-- a comment --><ul><li>one</li><li>two</li></ul>
    <pre>code  line1
  indented</pre><table><tr><td>a</td><td>b</td></tr></table></body></html>"""
    doc = load_one(write(tmp_path / "page.html", html))
    assert doc.title == "My Page"
    assert "hidden" not in doc.text and "color" not in doc.text and "comment" not in doc.text
    assert "My Page" not in doc.text
    assert doc.text == (
        "Header\n\nFirst paragraph spans lines.\n\nSecond & last\nwith a break.\n\none\n\ntwo\n\n"
        "code  line1\n  indented\n\na b"
    )
    assert doc.metadata["file_type"] == "html"


def test_pdf_pages_and_page_starts(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "report.pdf", make_pdf(PAGES)))
    assert doc.metadata["file_type"] == "pdf" and doc.metadata["pages"] == 3
    assert len(doc.page_starts) == 3 and doc.page_starts[0] == 0
    for number, lines in enumerate(PAGES, start=1):
        first_word = lines[0].split()[0]
        at = doc.text.index(first_word)
        assert doc.text.startswith(first_word, doc.page_starts[number - 1])
        assert doc.page_at(at) == number
    assert "apples" in doc.text[doc.page_starts[0] : doc.page_starts[1]]
    assert doc.text[doc.page_starts[1] - 2 : doc.page_starts[1]] == "\n\n"
    chunks = Chunker(_WordTokenizer(), chunk_tokens=8, overlap_tokens=0).split(doc)
    assert {c.page for c in chunks} == {1, 2, 3}
    assert all(c.page == doc.page_at(c.char_start) for c in chunks)


def test_pdf_corrupt_encrypted_and_textless_raise(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is not a pdf at all\n")
    assert reason(broken).startswith("cannot read PDF")
    with pytest.raises(LoaderError) as info:
        load_file(broken, max_bytes=MB)
    assert info.value.__cause__ is not None  # the pypdf error is chained

    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(PAGES))))
    writer.encrypt("secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    assert reason(write(tmp_path / "locked.pdf", buf.getvalue())).startswith("encrypted PDF")
    assert reason(write(tmp_path / "blank.pdf", make_pdf([[], []]))).startswith("empty")


def test_docx_paragraphs_tables_and_title(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Quarterly Notes"
    d.add_paragraph("First paragraph.")
    d.add_paragraph("")
    d.add_paragraph("Second paragraph.")
    table = d.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "k"
    table.cell(0, 1).text = "v"
    path = tmp_path / "notes.docx"
    d.save(str(path))
    doc = load_one(path)
    assert doc.title == "Quarterly Notes"
    assert doc.text == "First paragraph.\n\nSecond paragraph.\n\nk | v"
    assert doc.metadata["file_type"] == "docx"
    assert reason(write(tmp_path / "bad.docx", b"PK\x03\x04 not really a zip")).startswith("cannot read DOCX")


def test_beir_jsonl(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "One", "text": "first text", "metadata": {"year": 2020}},
        {"_id": 7, "title": "Title only", "text": ""},
        {"_id": "d3", "text": "no title"},
    ]
    path = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    docs = load_file(path, max_bytes=MB)
    assert [d.doc_id for d in docs] == ["d1", "7", "d3"]
    assert docs[0].title == "One" and docs[0].text == "first text"
    assert docs[0].metadata == {"year": 2020, "source": path.resolve().as_posix(), "file_type": "jsonl"}
    assert docs[1].text == "Title only"
    assert docs[2].title == ""


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("{not json", "invalid JSON"),
        ('["a"]', "JSON object"),
        ('{"title": "x", "text": "y"}', "_id"),
        ('{"_id": "z", "text": 3}', "'text'"),
        ('{"_id": "a", "text": "dup"}', "duplicate"),
        ('{"_id": "z", "text": "t", "metadata": [1]}', "metadata"),
    ],
)
def test_beir_bad_line_names_line_number(tmp_path: Path, bad: str, why: str) -> None:
    good = json.dumps({"_id": "a", "text": "fine"})
    path = write(tmp_path / "corpus.jsonl", f"{good}\n\n{bad}\n")
    assert re.match(f"line 3: .*{why}", reason(path))


def test_unknown_extensions_sniffed(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "README", "just text")).text == "just text"
    assert load_one(write(tmp_path / "script.rb", "puts 'hi'")).metadata["file_type"] == "text"
    assert reason(write(tmp_path / "blob.bin", b"\xff\xfe\xfa" * 10)) == "binary or unsupported file type"
    # .png is a supported type now (OCR): a damaged one is refused by the image loader
    broken_png = reason(write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00"))
    assert broken_png == "cannot read image: damaged, or not a PNG, JPEG, WebP or TIFF image"


def test_sniff_tolerates_multibyte_char_cut_at_8k(tmp_path: Path) -> None:
    text = "a" * 8191 + "é" * 10  # the 8 KB sample ends inside the first "é"
    assert load_one(write(tmp_path / "notes.unknown", text)).text == text


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n"])
def test_empty_files_raise(tmp_path: Path, content: bytes) -> None:
    for name in ("e.txt", "e.md", "e.html", "e.pdf", "e.docx", "e.jsonl", "e"):
        assert reason(write(tmp_path / name, content)) == "file is empty"
    with pytest.raises(InvalidInputError):  # the error family servers map to HTTP 400
        load_file(write(tmp_path / "x.txt", content), max_bytes=MB)


def test_whitespace_only_text_is_empty(tmp_path: Path) -> None:
    for name in ("nbsp.txt", "nbsp.md", "nbsp"):
        assert reason(write(tmp_path / name, "\u00a0 \u3000\n")) == "file is empty"
    assert (
        reason(write(tmp_path / "tags.html", "<html><script>x()</script><p> </p></html>")) == "file is empty"
    )
    assert reason(write(tmp_path / "c.jsonl", '{"_id": "a", "text": " "}\n')).startswith("empty")


def test_oversize_raises_request_too_large(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "x" * 2000)
    with pytest.raises(RequestTooLargeError, match="2000 bytes, over the limit of 1000") as info:
        load_file(path, max_bytes=1000)
    assert isinstance(info.value, FileTooLargeError) and info.value.http_status == 413
    assert load_one(path, max_bytes=2000).text == "x" * 2000


def test_missing_and_directory_raise(tmp_path: Path) -> None:
    assert reason(tmp_path / "nope.txt") == "not found"
    (tmp_path / "sub").mkdir()
    assert reason(tmp_path / "sub") == "not a regular file"


# ----------------------------------------------------------------------------- discovery


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in [
        "a.txt", "b.md", "docs/c.md", "docs/deep/d.md", "docs/deep/e.txt", "build/out.txt",
        ".hidden.txt", ".git/config.txt", "docs/.secret/f.md",
    ]:  # fmt: skip
        write(tmp_path / rel, f"content of {rel}")
    return tmp_path


def rels(files: list[Path], root: Path) -> list[str]:
    return [f.relative_to(root.resolve()).as_posix() for f in files]


def test_discover_sorted_and_skips_hidden(tree: Path) -> None:
    files, skipped = discover([tree])
    assert rels(files, tree) == [
        "a.txt", "b.md", "build/out.txt", "docs/c.md", "docs/deep/d.md", "docs/deep/e.txt",
    ]  # fmt: skip
    assert skipped == []
    # A hidden file named explicitly is taken; a repeated path is not listed twice.
    files, _ = discover([tree / ".hidden.txt", tree / "a.txt", str(tree / "a.txt")])
    assert rels(files, tree) == [".hidden.txt", "a.txt"]


def test_discover_include_exclude(tree: Path) -> None:
    files, _ = discover([tree], include=["*.md"])
    assert rels(files, tree) == ["b.md", "docs/c.md", "docs/deep/d.md"]
    files, _ = discover([tree], include=["docs/*.md"])
    assert rels(files, tree) == ["docs/c.md"]
    files, _ = discover([tree], include=["docs/**/*.md"])
    assert rels(files, tree) == ["docs/c.md", "docs/deep/d.md"]
    files, _ = discover([tree], exclude=["build/**", "deep"])
    assert rels(files, tree) == ["a.txt", "b.md", "docs/c.md"]
    files, _ = discover([tree / "docs"], include=["deep/*.txt"])
    assert rels(files, tree) == ["docs/deep/e.txt"]
    # An explicitly named file is taken whatever the patterns say.
    files, _ = discover([tree / "a.txt"], include=["*.md"])
    assert rels(files, tree) == ["a.txt"]


def test_glob_semantics() -> None:
    assert matches("x/y/z.md", ["**/*.md"]) and matches("z.md", ["**/*.md"])
    assert matches("x/y/z.md", ["x/**"]) and not matches("xx/y.md", ["x/**"])
    assert not matches("x/y/z.md", ["x/*.md"]) and matches("x/z.md", ["x/*.md"])
    assert matches("a/file1.txt", ["file?.txt"]) and matches("b/v2.txt", ["v[0-9].txt"])
    assert not matches("b/va.txt", ["v[!a].txt"]) and matches("b/vb.txt", ["v[!a].txt"])
    assert not matches("a/B.MD", ["*.md"])  # case-sensitive


def test_discover_reports_missing(tmp_path: Path) -> None:
    files, skipped = discover(["does/not/exist.txt"])
    assert files == []
    assert len(skipped) == 1 and skipped[0].path.endswith("does/not/exist.txt")
    assert "no such file" in skipped[0].reason


def test_discover_accepts_single_path(tree: Path) -> None:
    files, _ = discover(str(tree / "docs" / "deep"))
    assert rels(files, tree) == ["docs/deep/d.md", "docs/deep/e.txt"]


def test_load_many_goes_on_after_failures(tmp_path: Path) -> None:
    write(tmp_path / "1.txt", "good one")
    write(tmp_path / "2.pdf", b"%PDF-1.4 broken")
    write(tmp_path / "3.bin", b"\x00\x01\x02")
    write(tmp_path / "4.txt", "x" * 5000)
    write(tmp_path / "5.md", "# T\n\ngood two")
    out = list(load_many([tmp_path, tmp_path / "missing.txt"], max_bytes=4000))
    docs = [x for x in out if isinstance(x, Document)]
    skipped = [x for x in out if isinstance(x, SkippedFile)]
    assert [Path(d.source).name for d in docs] == ["1.txt", "5.md"]
    assert {Path(s.path).name: s.reason.split(":")[0] for s in skipped} == {
        "missing.txt": "no such file or directory",
        "2.pdf": "cannot read PDF",
        "3.bin": "binary or unsupported file type",
        "4.txt": "file is 5000 bytes, over the limit of 4000 bytes",
    }
    assert not any(str(tmp_path) in s.reason for s in skipped)


class _WordTokenizer:
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]
