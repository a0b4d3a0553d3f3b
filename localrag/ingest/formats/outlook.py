"""Outlook ``.msg`` files: the MAPI properties a mail loader needs, read with olefile.

A .msg is an OLE compound file: each property is a stream named ``__substg1.0_IIIITTTT`` (property id, type),
fixed-size ones (dates) sit in ``__properties_version1.0``, and each attachment is a storage
``__attach_version1.0_#NNNNNNNN`` holding its name and bytes. extract-msg reads all of this and more, but it is
GPL-3.0 (and brings six dependencies); olefile (BSD) is the OLE reader extract-msg itself is built on, and the
dozen properties used here are documented in [MS-OXMSG] and [MS-OXPROPS].
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import logging
import struct
from pathlib import Path
from typing import Any

from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import normalise
from localrag.ingest.formats.mail import MAX_ATTACHMENTS, Attachment, Mail
from localrag.ingest.html import html_to_text

log = logging.getLogger(__name__)

__all__ = ["read_msg"]

_SUBJECT, _TRANSPORT_HEADERS, _SENDER_NAME, _SENDER_EMAIL, _SENDER_SMTP = 0x0037, 0x007D, 0x0C1A, 0x0C1F, 0x5D01
_DISPLAY_TO, _DISPLAY_CC, _BODY, _HTML, _MESSAGE_ID = 0x0E04, 0x0E03, 0x1000, 0x1013, 0x1035
_SUBMIT_TIME, _DELIVERY_TIME = 0x0039, 0x0E06
_ATTACH_DATA, _ATTACH_LONG_NAME, _ATTACH_NAME, _DISPLAY_NAME = 0x3701, 0x3707, 0x3704, 0x3001
_UNICODE, _STRING8, _BINARY, _SYSTIME, _OBJECT = 0x001F, 0x001E, 0x0102, 0x0040, 0x000D
_PROPERTY_ENTRY = struct.Struct("<IIQ")  # tag (type in the low half), flags, value
_TOP_HEADER = 32  # the message's own property stream starts with 32 bytes of counts; an attachment's with 8
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)


class _Storage:
    def __init__(self, ole: Any, prefix: list[str]) -> None:
        self.ole = ole
        self.prefix = prefix

    def _stream(self, name: str) -> bytes | None:
        path = [*self.prefix, name]
        if not self.ole.exists(path) or self.ole.get_type(path) != 2:  # 2: olefile.STGTY_STREAM
            return None
        data: bytes = self.ole.openstream(path).read()
        return data

    def text(self, prop: int) -> str:
        data = self._stream(f"__substg1.0_{prop:04X}{_UNICODE:04X}")
        if data is not None:
            return data.decode("utf-16-le", "replace").rstrip("\x00")
        data = self._stream(f"__substg1.0_{prop:04X}{_STRING8:04X}")
        # 8-bit strings are in the message's code page; cp1252 decodes any byte and is the usual one.
        return data.decode("cp1252", "replace").rstrip("\x00") if data is not None else ""

    def binary(self, prop: int) -> bytes | None:
        return self._stream(f"__substg1.0_{prop:04X}{_BINARY:04X}")

    def has_object(self, prop: int) -> bool:
        path = [*self.prefix, f"__substg1.0_{prop:04X}{_OBJECT:04X}"]
        return bool(self.ole.exists(path))

    def time(self, prop: int, header: int) -> str:
        data = self._stream("__properties_version1.0") or b""
        for offset in range(header, len(data) - _PROPERTY_ENTRY.size + 1, _PROPERTY_ENTRY.size):
            tag, _, value = _PROPERTY_ENTRY.unpack_from(data, offset)
            if tag == (prop << 16 | _SYSTIME) and value:
                try:
                    return (_FILETIME_EPOCH + dt.timedelta(microseconds=value // 10)).isoformat()
                except OverflowError:
                    return ""
        return ""


def _header_date(headers: str) -> str:
    if not headers:
        return ""
    parsed = email.message_from_string(headers, policy=email.policy.default)
    try:
        date = parsed["Date"]
        return date.datetime.isoformat() if date is not None and date.datetime is not None else ""
    except (AttributeError, TypeError, ValueError):
        return ""


def read_msg(data: bytes, path: Path) -> Mail:
    import olefile

    if not olefile.isOleFile(io.BytesIO(data)):
        raise LoaderError(path, "not an Outlook message (no OLE compound file header)")
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return _read(ole)
    except LoaderError:
        raise
    except Exception as e:  # olefile raises OSError, struct.error, IndexError ... for damaged files
        raise LoaderError(path, f"cannot read MSG: {type(e).__name__}: {e}") from e


def _read(ole: Any) -> Mail:
    root = _Storage(ole, [])
    name, address = root.text(_SENDER_NAME), root.text(_SENDER_SMTP) or root.text(_SENDER_EMAIL)
    sender = f"{name} <{address}>" if name and address and name != address else (name or address)
    body = normalise(root.text(_BODY)).strip()
    if not body:
        html = root.binary(_HTML)
        markup = html.decode("utf-8", "replace") if html is not None else root.text(_HTML)
        body = normalise(html_to_text(markup)[0]).strip() if markup else ""
    date = root.time(_SUBMIT_TIME, _TOP_HEADER) or root.time(_DELIVERY_TIME, _TOP_HEADER)
    date = date or _header_date(root.text(_TRANSPORT_HEADERS))
    attachments: list[Attachment] = []
    storages = sorted({entry[0] for entry in ole.listdir(streams=True, storages=True)
                       if entry and entry[0].startswith("__attach_version1.0_#")})  # fmt: skip
    for number, storage in enumerate(storages, start=1):
        if number > MAX_ATTACHMENTS:
            log.warning("a message has more than %d attachments; the rest are not read", MAX_ATTACHMENTS)
            break
        part = _Storage(ole, [storage])
        label = part.text(_ATTACH_LONG_NAME) or part.text(_ATTACH_NAME) or part.text(_DISPLAY_NAME)
        payload = part.binary(_ATTACH_DATA)
        if payload is None:
            # An embedded Outlook item is a storage of its own, not bytes another loader could read.
            what = "an embedded Outlook item" if part.has_object(_ATTACH_DATA) else "an attachment without data"
            log.info("%s (%s) is not read", label or storage, what)
            continue
        attachments.append(Attachment(label or f"attachment-{number}", payload))
    return Mail(
        sender=sender,
        to=root.text(_DISPLAY_TO),
        cc=root.text(_DISPLAY_CC),
        date=date,
        subject=root.text(_SUBJECT),
        message_id=root.text(_MESSAGE_ID).strip().strip("<>"),
        body=body,
        attachments=tuple(attachments),
    )
