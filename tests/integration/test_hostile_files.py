"""Hostile files are refused or bounded: zip bombs (every archive format, nested ones too), PDFs with too
many pages or a broken cross-reference table, 100,000 nested <div>, binary files with text names, a
sparse 1 GB file; a parse past its time or memory limit is killed and the next file still loads."""

from __future__ import annotations

import io
import os
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest
from hostile import (
    ARCHIVE_PARTS,
    archive_bomb,
    binary_blob,
    busy,
    docx_bomb,
    nested_bomb,
    nested_deep,
    nested_html,
    pdf_broken_xref,
    pdf_pages,
    sparse_file,
    zip_of,
)

from localrag.errors import RequestTooLargeError
from localrag.ingest.loaders import FileTooLargeError, LoaderError, ParseLimitError, ParseLimits, load_file
from localrag.ingest.sandbox import ParserPool, shared_pool
from localrag.types import Document

MB = 1024 * 1024
# The zip checks out of the way, so that a bomb reaches python-docx (about 30 s of CPU for 30 MB of XML).
NO_ZIP_CHECKS = {"max_zip_ratio": 1e9, "max_unzipped_mb": 1e6}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def load(path: Path, **limits: float) -> list[Document]:
    return load_file(path, max_bytes=20 * MB, limits=ParseLimits(**limits))  # type: ignore[arg-type]


def refusal(path: Path, **limits: float) -> LoaderError:
    with pytest.raises(LoaderError) as info:
        load(path, **limits)
    return info.value


@pytest.mark.parametrize("suffix", sorted(ARCHIVE_PARTS))
def test_zip_bomb_is_refused_from_its_directory_alone(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"bomb{suffix}", archive_bomb(suffix, 30))
    assert path.stat().st_size < 200 * 1024
    error = refusal(path)
    assert isinstance(error, ParseLimitError) and isinstance(error, RequestTooLargeError)  # HTTP 413
    m = re.fullmatch(r"zip bomb: (\d+) MB uncompressed from (\d+) KB \(ratio (\d+) > 100, ingest.max_zip_ratio\)",
                     error.reason)
    assert m is not None, error.reason
    unzipped = sum(info.file_size for info in zipfile.ZipFile(path).infolist())
    assert int(m.group(1)) == round(unzipped / MB) and int(m.group(2)) == round(path.stat().st_size / 1024)
    assert int(m.group(3)) == round(unzipped / path.stat().st_size)


def test_zip_over_the_unzipped_limit_and_nested_archives(tmp_path: Path) -> None:
    bomb = write(tmp_path / "big.docx", docx_bomb(30))
    assert refusal(bomb, max_unzipped_mb=16).reason.endswith("over the limit of 16 MB (ingest.max_unzipped_mb)")
    nested = write(tmp_path / "nested.docx", nested_bomb(20))
    reason = refusal(nested, max_unzipped_mb=16).reason
    assert "inside a nested archive" in reason and "ingest.max_unzipped_mb" in reason
    # The outer file is small and its members incompressible; the ratio counts what the inner one unpacks to.
    assert re.match(r"zip bomb: 20 MB uncompressed from \d+ (bytes|KB) \(ratio \d+ > 100", refusal(nested).reason)
    deep = write(tmp_path / "deep.epub", nested_deep(5))
    assert refusal(deep).reason == "zip bomb: archives nested more than 3 levels deep"


def test_a_docx_embedding_a_workbook_still_loads(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Quarterly figures are in the embedded sheet.")
    buf = io.BytesIO()
    d.save(buf)
    source = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    members = {info.filename: source.read(info) for info in source.infolist()}
    members["word/embeddings/sheet1.xlsx"] = zip_of({"xl/worksheets/sheet1.xml": b"<row/>" * 10_000})
    [doc] = load(write(tmp_path / "report.docx", zip_of(members)))
    assert doc.text == "Quarterly figures are in the embedded sheet."


def test_pdf_page_limits(tmp_path: Path) -> None:
    many = write(tmp_path / "many.pdf", pdf_pages(6000))
    error = refusal(many)
    assert isinstance(error, ParseLimitError)
    assert error.reason == "PDF declares 6000 pages, over the limit of 5000 (ingest.max_pdf_pages)"
    # A page tree that understates its size is counted as it is walked.
    lying = write(tmp_path / "lying.pdf", pdf_pages(600, declared=1))
    assert refusal(lying, max_pdf_pages=500).reason == "PDF has 600 pages, over the limit of 500 (ingest.max_pdf_pages)"
    [doc] = load(lying, max_pdf_pages=600)
    assert doc.text.strip() == "A readable first page." and len(doc.page_starts) == 600


def test_pdf_with_a_broken_xref_table_is_read_or_refused_cleanly(tmp_path: Path) -> None:
    path = write(tmp_path / "broken-xref.pdf", pdf_broken_xref("Recovered by scanning the file."))
    [doc] = load(path, timeout_s=120)
    assert doc.text.strip() == "Recovered by scanning the file."
    garbage = write(tmp_path / "garbage.pdf", b"%PDF-1.7\n" + binary_blob(200_000, seed=3))
    assert refusal(garbage, timeout_s=120).reason.startswith(("cannot read PDF", "empty"))


def test_deeply_nested_html_loads_in_linear_time(tmp_path: Path) -> None:
    # Inserting break markers into the tree took time proportional to the depth per element: minutes here.
    path = write(tmp_path / "deep.html", nested_html(100_000))
    [doc] = load(path, timeout_s=120)
    assert doc.text == "deep text"


@pytest.mark.parametrize("name", ["photo.txt", "notes.md", "table.csv", "page.html", "corpus.jsonl"])
def test_binary_content_with_a_text_name_is_refused(tmp_path: Path, name: str) -> None:
    reason = refusal(write(tmp_path / name, binary_blob())).reason
    assert reason == f"binary content (not UTF-8, NUL bytes) in a {Path(name).suffix} file"


def test_latin1_text_still_loads(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path / "latin.txt", "café crème brûlée\n".encode("latin-1")))
    assert doc.text == "café crème brûlée\n"


def test_sparse_gigabyte_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "huge.txt")
    with pytest.raises(FileTooLargeError) as info:
        load(path)
    assert info.value.reason == f"file is {1 << 30} bytes, over the limit of {20 * MB} bytes"


def test_parse_past_its_time_limit_is_killed_and_the_next_file_loads(tmp_path: Path) -> None:
    small = write(tmp_path / "small.txt", b"a small file after the slow one")
    load(small)
    pid = shared_pool().pid
    load(small)
    assert shared_pool().pid == pid is not None  # one worker serves file after file
    error = refusal(write(tmp_path / "slow.docx", docx_bomb(30)), timeout_s=2, **NO_ZIP_CHECKS)
    assert isinstance(error, ParseLimitError)
    assert error.reason == "parsing took longer than 2 s (ingest.parse_timeout_s); the parser was stopped"
    assert shared_pool().pid is None
    [doc] = load(small)
    assert doc.text == "a small file after the slow one"
    assert shared_pool().pid not in (None, pid)


def test_parse_past_its_memory_limit_is_refused(tmp_path: Path) -> None:
    # python-docx holds about 600 MB for this file; the worker may have 300.
    error = refusal(write(tmp_path / "fat.docx", docx_bomb(30)), memory_mb=300, timeout_s=300, **NO_ZIP_CHECKS)
    assert "300 MB of memory (ingest.parse_memory_mb)" in error.reason
    [doc] = load(write(tmp_path / "after.txt", b"still parsing"), memory_mb=300)
    assert doc.text == "still parsing"


def test_interrupt_kills_a_parse_in_flight_and_the_pool_goes_on(tmp_path: Path) -> None:
    pool = ParserPool()
    path = write(tmp_path / "slow.docx", docx_bomb(30))
    outcome: list[BaseException | list[Document]] = []

    def parse() -> None:
        try:
            outcome.append(pool.parse(path, 20 * MB, ParseLimits(timeout_s=600, **NO_ZIP_CHECKS)))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=parse, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not busy(pool.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = pool.pid
    assert busy(killed), "the worker never started parsing"
    pool.interrupt()
    thread.join(timeout=60)
    assert not thread.is_alive()
    [error] = outcome
    assert isinstance(error, LoaderError) and error.reason == "parsing was interrupted: localrag is stopping"
    [doc] = pool.parse(write(tmp_path / "next.txt", b"next file"), 20 * MB, ParseLimits())
    assert doc.text == "next file" and pool.pid not in (None, killed)
    pool.close()
    with pytest.raises(LoaderError, match="the parser pool is closed"):
        pool.parse(path, 20 * MB, ParseLimits())


def test_the_worker_gets_no_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PINECONE_API_KEY", "pc-secret")
    monkeypatch.setenv("LOCALRAG_API_KEYS", "k1,k2")
    monkeypatch.setenv("LOCALRAG_INGEST__MAX_FILE_MB", "5")
    pool = ParserPool()
    try:
        pool.parse(write(tmp_path / "a.txt", b"text"), MB, ParseLimits())
        assert pool.pid is not None
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pool.pid}/environ").read_text().split("\0") if "=" in item
        )
    finally:
        pool.close()
    assert "PINECONE_API_KEY" not in environ and "LOCALRAG_API_KEYS" not in environ
    assert environ["LOCALRAG_INGEST__MAX_FILE_MB"] == "5" and environ["PATH"] == os.environ["PATH"]


def test_ingest_skips_hostile_files_with_reasons_and_keeps_the_rest(tmp_path: Path, fake_embedder: object) -> None:
    from localrag.config import Settings
    from localrag.engine import LocalRAG

    folder = tmp_path / "inbox"
    folder.mkdir()
    write(folder / "bomb.docx", archive_bomb(".docx", 30))
    write(folder / "photo.txt", binary_blob())
    write(folder / "long.pdf", pdf_pages(20))
    write(folder / "notes.md", b"# Notes\n\nThe only file worth reading.\n")
    settings = Settings().with_overrides({"ingest": {"max_pdf_pages": 10}})  # reaches the worker from settings
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        report = rag.add(folder)
    assert [Path(d).name for d in report.added] == ["notes.md"]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons.keys() == {"bomb.docx", "photo.txt", "long.pdf"}
    assert reasons["bomb.docx"].startswith("zip bomb: ") and "ingest.max_zip_ratio" in reasons["bomb.docx"]
    assert reasons["photo.txt"] == "binary content (not UTF-8, NUL bytes) in a .txt file"
    assert reasons["long.pdf"] == "PDF declares 20 pages, over the limit of 10 (ingest.max_pdf_pages)"


def test_hostile_attachments_and_sheets_cost_only_themselves(tmp_path: Path, fake_embedder: object) -> None:
    from email.message import EmailMessage

    import openpyxl

    from localrag.config import Settings
    from localrag.engine import LocalRAG

    folder = tmp_path / "inbox"
    folder.mkdir()
    mail = EmailMessage()
    mail["Subject"] = "Minutes and a bomb"
    mail.set_content("The minutes are attached.")
    mail.add_attachment(archive_bomb(".docx", 30), maintype="application", subtype="octet-stream",
                        filename="minutes.docx")  # fmt: skip
    write(folder / "mail.eml", bytes(mail))
    book = openpyxl.Workbook()
    book.active["A1"], book.active["XFD1048576"] = "top left", "bottom right"  # a dense range of 17e9 cells
    book.save(folder / "corners.xlsx")
    settings = Settings().with_overrides({"ingest": {"parse_memory_mb": 1024}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        report = rag.add(folder)
        stored = rag.get_document(report.added[0])
    assert [Path(d).name for d in report.added] == ["mail.eml"]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons.keys() == {"corners.xlsx"} and "the parser process died" in reasons["corners.xlsx"]
    [refused] = stored.metadata["attachments_skipped"]
    assert refused.startswith("minutes.docx: zip bomb: ") and "ingest.max_zip_ratio" in refused
    assert stored.text.startswith("Subject: Minutes and a bomb\n\nThe minutes are attached.")
