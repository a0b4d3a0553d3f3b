"""Mail (eml, mbox, msg): one document per message, and each attachment as documents of its own linked to it.

A message's document holds its headers (From, To, Cc, Date, Subject) as the first lines of its text and as
metadata (``from``, ``to``, ``cc``, ``date`` in ISO 8601, ``subject``, ``message_id``), then the body: the
plain-text part where there is one, else the HTML part as text. Its ``attachments`` and ``attachment_ids``
metadata list what it carried; each attachment is parsed by the loader its file name picks (``parse_data``,
with the same size and zip checks as a file on disk) and its documents carry ``attachment_of`` (the message's
doc id, also as ``parent_doc_id``) and ``attachment``. An attachment that cannot be read is listed in
``attachments_skipped`` with its reason; the message is still ingested.

eml and mbox use the standard library's ``email`` package (``policy.default``); an mbox is split at its
"From " lines as ``mailbox.mbox`` does, from the bytes already read, so the file is not opened twice. Outlook's
msg is read by ``outlook.py``.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass, replace
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import FormatContext, make_document, normalise
from localrag.ingest.html import html_to_text
from localrag.types import Document

log = logging.getLogger(__name__)

__all__ = ["Attachment", "Mail", "load_eml", "load_mbox", "load_msg", "mail_documents", "safe_name"]

MAX_ATTACHMENTS = 100  # per message; more is a crafted file, not correspondence
MAX_DEPTH = 3  # a mail attached to a mail attached to a mail
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\#&=]+")
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_HEADER_FIELDS = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("date", "Date"), ("subject", "Subject"))


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Mail:
    """One message as the loaders see it, whatever its container."""

    sender: str = ""
    to: str = ""
    cc: str = ""
    date: str = ""  # ISO 8601 where the header parses, else as written
    subject: str = ""
    message_id: str = ""
    body: str = ""
    attachments: tuple[Attachment, ...] = ()


def safe_name(name: str, fallback: str) -> str:
    """An attachment's file name fit for a doc id: its last path part, no control characters or separators."""
    name = re.split(r"[/\\]", name.strip())[-1] if name else ""
    name = _UNSAFE.sub("_", name).strip(" ._")[:200]
    return name or fallback


def _iso_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return value.strip()


def _one_line(value: Any) -> str:
    return " ".join(str(value or "").split())


def _header(message: Message, name: str) -> str:
    try:
        return _one_line(message.get(name, ""))
    except Exception as e:  # policy.default parses structured headers on access; a broken one is not fatal
        log.debug("unreadable %s header: %s", name, e)
        raw = message.get_all(name, failobj=[]) if hasattr(message, "get_all") else []
        return _one_line(raw[0]) if raw else ""


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken transfer encoding
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if part.get_content_type() == "text/html":
        content, _ = html_to_text(content)
    return normalise(content).strip()


def _attachment_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return bytes(inner[0].as_bytes(policy=email.policy.default))
        return b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def parse_message(data: bytes) -> Mail:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what policy.default builds
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = _part_text(body_part) if body_part is not None else ""
    attachments: list[Attachment] = []
    for number, part in enumerate(message.iter_attachments(), start=1):
        if number > MAX_ATTACHMENTS:
            log.warning("a message has more than %d attachments; the rest are not read", MAX_ATTACHMENTS)
            break
        fallback = f"attachment-{number}.eml" if part.get_content_type() == "message/rfc822" else f"attachment-{number}"
        attachments.append(Attachment(part.get_filename() or fallback, _attachment_bytes(part)))
    return Mail(
        sender=_header(message, "From"),
        to=_header(message, "To"),
        cc=_header(message, "Cc"),
        date=_iso_date(_header(message, "Date")),
        subject=_header(message, "Subject"),
        message_id=_header(message, "Message-ID").strip("<>"),
        body=body,
        attachments=tuple(attachments),
    )


def mail_documents(mail: Mail, path: Path, ctx: FormatContext, *, fragment: str = "") -> list[Document]:
    """The message's document first, then its attachments' documents."""
    from localrag.ingest.loaders import parse_data  # loaders dispatches here: imported at call time

    mail_id = path.as_posix() + fragment
    file_type = path.suffix.lower().lstrip(".") or "eml"
    names: list[str] = []
    attachment_ids: list[str] = []
    skipped: list[str] = []
    attached: list[Document] = []
    for number, attachment in enumerate(mail.attachments, start=1):
        name = safe_name(attachment.name, f"attachment-{number}")
        names.append(name)
        virtual = Path(f"{mail_id}#attachment={number}:{name}")
        try:
            if ctx.depth + 1 > MAX_DEPTH:
                raise LoaderError(virtual, f"attachments nested more than {MAX_DEPTH} deep")
            docs = parse_data(attachment.data, virtual, replace(ctx, depth=ctx.depth + 1))
        except LoaderError as e:  # the message stands without the attachment; the reason goes with it
            log.info("attachment %s of %s skipped: %s", name, mail_id, e.reason)
            skipped.append(f"{name}: {e.reason}")
            continue
        for doc in docs:
            # An attachment of an attached mail keeps its own parent: the chain leads back to this message.
            doc_meta = {"attachment_of": mail_id, "parent_doc_id": mail_id, "attachment": name, **doc.metadata}
            doc_meta["source"] = path.as_posix()
            title = doc.title.replace(virtual.name, name, 1) if doc.title else name  # "book.xlsx: sheet Q3, ..."
            attached.append(replace(doc, source=path.as_posix(), title=title, metadata=doc_meta))
            if doc_meta["attachment_of"] == mail_id:
                attachment_ids.append(doc.doc_id)
    fields = (("From", mail.sender), ("To", mail.to), ("Cc", mail.cc), ("Date", mail.date), ("Subject", mail.subject))
    text = "\n".join(f"{label}: {value}" for label, value in fields if value)
    if mail.body:
        text += "\n\n" + mail.body
    if names:
        text += "\n\nAttachments: " + ", ".join(names)
    if not (mail.body or names or mail.subject):
        raise LoaderError(path, "empty: a message with no subject, body or attachment")
    meta: dict[str, Any] = {"file_type": file_type}
    for label, value in (*fields, ("Message-ID", mail.message_id)):
        if value:
            meta[label.lower().replace("-", "_")] = value
    if names:
        meta.update(attachments=names, attachment_ids=attachment_ids)
    if skipped:
        meta["attachments_skipped"] = skipped
    message_doc = make_document(path, text.strip(), title=mail.subject, metadata=meta, fragment=fragment)
    return [message_doc, *attached]


def load_eml(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    try:
        mail = parse_message(data)
    except LoaderError:
        raise
    except Exception as e:  # the email package is lenient; this is a safety net
        raise LoaderError(path, f"cannot read message: {type(e).__name__}: {e}") from e
    return mail_documents(mail, path, ctx)


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox: each starts at a "From " line (mboxo/mboxrd; ">From " in bodies unquoted)."""
    starts = [m.start() for m in _FROM_LINE.finditer(data)]
    messages: list[bytes] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        block = data[start:end]
        newline = block.find(b"\n")
        body = block[newline + 1 :] if newline != -1 else b""
        messages.append(_QUOTED_FROM.sub(rb"\1", body))
    return messages


def load_mbox(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    if not data.lstrip().startswith(b"From "):
        raise LoaderError(path, 'not an mbox: the file does not start with a "From " line')
    documents: list[Document] = []
    used: set[str] = set()
    for number, raw in enumerate(split_mbox(data), start=1):
        try:
            mail = parse_message(raw)
        except Exception as e:  # one damaged message must not lose the others
            log.info("%s: message %d unreadable: %s", path, number, e)
            continue
        # The Message-ID keeps a message's doc id when messages before it are deleted from the box.
        key = safe_name(mail.message_id, "") if mail.message_id else ""
        if not key or key in used:
            key = str(number)
        used.add(key)
        try:
            documents.extend(mail_documents(mail, path, ctx, fragment=f"#message={key}"))
        except LoaderError as e:
            log.info("%s: message %d skipped: %s", path, number, e.reason)
    if not documents:
        raise LoaderError(path, "empty: no readable message in the mbox")
    return documents


def load_msg(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    from localrag.ingest.formats.outlook import read_msg

    return mail_documents(read_msg(data, path), path, ctx)
