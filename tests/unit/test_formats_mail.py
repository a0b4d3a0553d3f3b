"""Mail: headers as metadata, the body as text, attachments as documents linked to their message.

Messages are built with the ``email`` package, .msg files with tests/olewriter.py; nothing is read from outside.
"""

from __future__ import annotations

import io
import struct
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from olewriter import write_cfb  # tests/ is on the path, as for tests/hostile.py

from localrag.ingest.formats.mail import safe_name, split_mbox
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import LoaderError, load_file, parse_file
from localrag.types import Document

XLSX_MIME = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def workbook_bytes() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Q3"
    sheet.append(["Metric", "Value"])
    sheet.append(["ARR", 1500000])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def message(subject: str, body: str, **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = headers.get("sender", "Alice Example <alice@example.org>")
    m["To"] = headers.get("to", "bob@example.org")
    m["Subject"] = subject
    m["Date"] = headers.get("date", "Tue, 01 Oct 2024 09:30:00 +0200")
    if "message_id" in headers:
        m["Message-ID"] = headers["message_id"]
    m.set_content(body)
    return m


def by_id(docs: list[Document]) -> dict[str, Document]:
    return {d.doc_id: d for d in docs}


def test_eml_headers_body_and_attachments_linked_both_ways(tmp_path: Path) -> None:
    m = message("Quarterly numbers", "Hi Bob,\nthe Q3 numbers are attached.\n", message_id="<q3@example.org>")
    m["Cc"] = "carol@example.org"
    m.add_alternative("<p>Hi Bob, this <b>HTML</b> copy must not win</p>", subtype="html")
    m.add_attachment(workbook_bytes(), maintype=XLSX_MIME[0], subtype=XLSX_MIME[1], filename="../../numbers.xlsx")
    m.add_attachment(b"meeting notes: the pelican budget", maintype="text", subtype="plain", filename="notes.txt")
    m.add_attachment(b"\x89PNG\r\n\x1a\n\x00\x00\x00", maintype="image", subtype="x-unknown", filename="logo.bin")
    path = tmp_path / "mail.eml"
    path.write_bytes(bytes(m))
    docs = load_file(path)
    mail = docs[0]
    assert mail.doc_id == mail.source == path.as_posix()
    assert mail.title == "Quarterly numbers"
    meta = mail.metadata
    assert meta["from"] == "Alice Example <alice@example.org>"
    assert (meta["to"], meta["cc"]) == ("bob@example.org", "carol@example.org")
    assert meta["date"] == "2024-10-01T09:30:00+02:00"
    assert (meta["subject"], meta["message_id"], meta["file_type"]) == ("Quarterly numbers", "q3@example.org", "eml")
    assert mail.text.startswith("From: Alice Example <alice@example.org>\nTo: bob@example.org\nCc: carol@example.org\n")
    assert "the Q3 numbers are attached." in mail.text and "must not win" not in mail.text  # plain part preferred
    assert mail.text.endswith("Attachments: numbers.xlsx, notes.txt, logo.bin")
    assert meta["attachments"] == ["numbers.xlsx", "notes.txt", "logo.bin"]  # the "../" of a hostile name is gone
    assert meta["attachments_skipped"] == ["logo.bin: binary or unsupported file type"]
    attached = docs[1:]
    assert meta["attachment_ids"] == [d.doc_id for d in attached]
    sheet, notes = attached
    assert sheet.doc_id == f"{path.as_posix()}#attachment=1:numbers.xlsx#sheet=Q3&rows=2-2"
    assert sheet.title == "numbers.xlsx: sheet Q3, rows 2-2"
    assert sheet.text == "Sheet Q3, rows 2-2\nMetric | Value\nARR | 1500000"
    assert notes.text == "meeting notes: the pelican budget" and notes.title == "notes.txt"
    for d in attached:
        assert d.metadata["attachment_of"] == d.metadata["parent_doc_id"] == mail.doc_id
        assert d.source == d.metadata["source"] == path.as_posix()  # deleting the file's documents reaches them
    assert (sheet.metadata["attachment"], sheet.metadata["sheet"]) == ("numbers.xlsx", "Q3")


def test_html_only_body_is_converted_to_text(tmp_path: Path) -> None:
    m = EmailMessage()
    m["Subject"] = "Newsletter"
    m.set_content("<html><body><h1>Spring</h1><p>Bees are back.</p><script>alert(1)</script></body></html>",
                  subtype="html")  # fmt: skip
    (tmp_path / "n.eml").write_bytes(bytes(m))
    [doc] = parse_file(tmp_path / "n.eml")
    assert doc.text == "Subject: Newsletter\n\nSpring\n\nBees are back."


def test_attachments_meet_the_zip_limits_and_the_message_stands(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<a/>" + b" " * (40 * 1024 * 1024))
    m = message("One bad, one good", "see attached")
    m.add_attachment(buffer.getvalue(), maintype="application", subtype="octet-stream", filename="bomb.docx")
    m.add_attachment(b"the good attachment", maintype="text", subtype="plain", filename="good.txt")
    (tmp_path / "bad.eml").write_bytes(bytes(m))
    mail, good = load_file(tmp_path / "bad.eml", limits=ParseLimits(max_unzipped_mb=16))
    [skipped] = mail.metadata["attachments_skipped"]
    assert skipped.startswith("bomb.docx: zip bomb: 40 MB uncompressed")
    assert mail.metadata["attachments"] == ["bomb.docx", "good.txt"]
    assert mail.metadata["attachment_ids"] == [good.doc_id]
    assert good.text == "the good attachment"


def test_nested_mails_keep_their_chain_and_the_depth_is_bounded(tmp_path: Path) -> None:
    inner = message("Level 4", "deepest words")
    for level in (3, 2, 1, 0):
        outer = message(f"Level {level}", f"words of level {level}")
        outer.add_attachment(inner)
        inner = outer
    (tmp_path / "nest.eml").write_bytes(bytes(inner))
    docs = parse_file(tmp_path / "nest.eml")
    assert [d.title for d in docs] == ["Level 0", "Level 1", "Level 2", "Level 3"]
    top, one, two, three = docs
    assert one.metadata["attachment_of"] == top.doc_id
    assert two.metadata["attachment_of"] == one.doc_id  # its own parent, not the top message
    assert three.metadata["attachment_of"] == two.doc_id
    assert top.metadata["attachment_ids"] == [one.doc_id]
    assert "words of level 2" in two.text
    assert three.metadata["attachments_skipped"] == ["attachment-1.eml: attachments nested more than 3 deep"]


def test_mbox_messages_and_their_attachments(tmp_path: Path) -> None:
    first = message("First", "From the start, a body line that mbox quotes.", message_id="<one@x>")
    second = message("Second", "plain second body", message_id="<one@x>")  # a duplicate id
    second.add_attachment(b"the attached minutes", maintype="text", subtype="plain", filename="minutes.txt")
    third = message("Third", "third body")
    box = b""
    for m in (first, second, third):
        raw = bytes(m).replace(b"\nFrom the start", b"\n>From the start")
        box += b"From alice@example.org Tue Oct  1 09:30:00 2024\n" + raw + b"\n"
    path = tmp_path / "archive.mbox"
    path.write_bytes(box)
    docs = load_file(path)
    ids = [d.doc_id for d in docs]
    base = path.as_posix()
    assert ids == [f"{base}#message=one@x", f"{base}#message=2", f"{base}#message=2#attachment=1:minutes.txt",
                   f"{base}#message=3"]  # fmt: skip
    assert "From the start, a body line" in docs[0].text  # the mboxrd quote is undone
    assert docs[2].metadata["attachment_of"] == docs[1].doc_id
    assert docs[1].metadata["attachment_ids"] == [docs[2].doc_id]
    assert all(d.source == base and d.metadata["file_type"] in {"mbox", "text"} for d in docs)
    assert len(split_mbox(box)) == 3


def test_an_mbox_must_start_with_a_from_line(tmp_path: Path) -> None:
    (tmp_path / "x.mbox").write_text("Subject: no envelope\n\nbody\n", encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "x.mbox")
    assert info.value.reason == 'not an mbox: the file does not start with a "From " line'


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def msg_bytes(*, html: bool = False, attachments: dict[str, bytes] | None = None) -> bytes:
    # 2024-09-05 08:53:20 UTC as a FILETIME (100 ns ticks since 1601).
    props = b"\x00" * 32 + struct.pack("<IIQ", 0x0039 << 16 | 0x0040, 6, 133_700_000_000_000_000)
    tree: dict[str, object] = {
        "__substg1.0_0037001F": utf16("Budget for Q3"),
        "__substg1.0_0C1A001F": utf16("Dana Writer"),
        "__substg1.0_5D01001F": utf16("dana@example.org"),
        "__substg1.0_0E04001F": utf16("Erin Reader"),
        "__substg1.0_1035001F": utf16("<msg-1@example.org>"),
        "__properties_version1.0": props,
    }
    if html:
        tree["__substg1.0_10130102"] = b"<html><body><p>Rendered <i>only</i> in HTML.</p></body></html>"
    else:
        tree["__substg1.0_1000001F"] = utf16("The budget for Q3 is in the sheet.")
    for number, (name, data) in enumerate((attachments or {}).items()):
        tree[f"__attach_version1.0_#{number:08X}"] = {"__substg1.0_3707001F": utf16(name), "__substg1.0_37010102": data}
    return write_cfb(tree)  # type: ignore[arg-type]


def test_outlook_msg(tmp_path: Path) -> None:
    path = tmp_path / "budget.msg"
    path.write_bytes(msg_bytes(attachments={"q3.xlsx": workbook_bytes(), "readme.txt": b"x" * 5000}))
    docs = load_file(path)
    mail, sheet, readme = docs
    meta = mail.metadata
    assert (meta["from"], meta["to"], meta["subject"]) == (
        "Dana Writer <dana@example.org>",
        "Erin Reader",
        "Budget for Q3",
    )
    assert (meta["date"], meta["message_id"], meta["file_type"]) == (
        "2024-09-05T08:53:20+00:00",
        "msg-1@example.org",
        "msg",
    )
    assert "The budget for Q3 is in the sheet." in mail.text
    assert meta["attachments"] == ["q3.xlsx", "readme.txt"]
    assert meta["attachment_ids"] == [sheet.doc_id, readme.doc_id]
    assert sheet.metadata["attachment_of"] == mail.doc_id and sheet.metadata["sheet"] == "Q3"
    assert readme.text == "x" * 5000  # over the 4096-byte mini-stream cutoff: read from regular sectors


def test_outlook_msg_html_body_and_a_file_that_is_no_msg(tmp_path: Path) -> None:
    (tmp_path / "h.msg").write_bytes(msg_bytes(html=True))
    [doc] = parse_file(tmp_path / "h.msg")
    assert doc.text.endswith("Rendered only in HTML.")
    (tmp_path / "fake.msg").write_text("Subject: hello\n\nnot an OLE file\n", encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        parse_file(tmp_path / "fake.msg")
    assert info.value.reason == "not an Outlook message (no OLE compound file header)"


def test_safe_name() -> None:
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("C:\\temp\\report#1.pdf", "x") == "report_1.pdf"
    assert safe_name("\x00\x01", "fallback") == "fallback"
