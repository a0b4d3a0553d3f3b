"""The parser worker: a child process that parses one untrusted file per request.

``sandbox.py`` starts it and is its only client. It lives under an address-space limit (so a parser that
balloons gets ``MemoryError`` or dies, never the server's memory) and exits when its parent is gone.
Requests and replies are length-prefixed JSON on stdin and stdout; JSON rather than pickle, so that a
parser subverted by a crafted file cannot make the parent run code by what it sends back.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from localrag.ingest.errors import FileTooLargeError, LoaderError, ParseLimitError
from localrag.ingest.limits import MB, ParseLimits
from localrag.ingest.loaders import parse_file
from localrag.types import Document

HEADER = struct.Struct(">Q")  # the byte length of the JSON that follows
_PARENT_POLL_S = 0.5


def document_to_json(document: Document) -> dict[str, Any]:
    return {
        "doc_id": document.doc_id,
        "text": document.text,
        "source": document.source,
        "title": document.title,
        "metadata": dict(document.metadata),
        "page_starts": list(document.page_starts),
    }


def document_from_json(obj: dict[str, Any]) -> Document:
    return Document(
        doc_id=str(obj["doc_id"]),
        text=str(obj["text"]),
        source=str(obj["source"]),
        title=str(obj["title"]),
        metadata=dict(obj["metadata"]),
        page_starts=tuple(int(p) for p in obj["page_starts"]),
    )


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        piece = stream.read(n - len(data))
        if not piece:
            return None
        data += piece
    return bytes(data)


def _write(stream: BinaryIO, obj: dict[str, Any]) -> None:
    payload = json.dumps(obj).encode("utf-8")  # ASCII escapes keep any lone surrogate intact
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    try:
        import resource
    except ImportError:  # not a POSIX system: the time limit still holds
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb * MB
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _exit_with_parent() -> None:
    """A parser stuck in a loop never reads stdin again, so an orphan would not see the parent go."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _peak_mb() -> float:
    """The most address space this process has held (Linux; 0 where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _handle(request: dict[str, Any], memory_mb: int) -> tuple[dict[str, Any], bool]:
    """The reply, and whether this worker must exit after sending it."""
    path = Path(request["path"])
    try:
        limits = ParseLimits(**request["limits"])
        documents = parse_file(path, max_bytes=int(request["max_bytes"]), limits=limits)
        return {"documents": [document_to_json(d) for d in documents]}, False
    except Exception as e:
        # C parsers report a failed allocation in their own words (lxml: "XMLSyntaxError: unknown error"),
        # so a failure at the edge of the address space counts as running out of memory, whatever it says.
        if not isinstance(e, MemoryError) and not (memory_mb and _peak_mb() >= 0.9 * memory_mb):
            return _error_reply(e, path), False
        reason = f"parsing needed more than {memory_mb} MB of memory (ingest.parse_memory_mb)"
        cause = f"{type(e).__name__}: {e}"
        return {"error": {"kind": "limit", "path": path.as_posix(), "reason": reason, "cause": cause}}, True


def _error_reply(error: Exception, path: Path) -> dict[str, Any]:
    if isinstance(error, LoaderError):
        kind = "loader"
        if isinstance(error, (ParseLimitError, FileTooLargeError)):
            kind = "limit" if isinstance(error, ParseLimitError) else "too_large"
        cause = error.__cause__
        cause_text = f"{type(cause).__name__}: {cause}" if cause is not None else ""
        return {"error": {"kind": kind, "path": error.path, "reason": error.reason, "cause": cause_text}}
    # A loader bug: reported as load_many reports one, with the traceback as the cause.
    reason = f"unexpected error: {type(error).__name__}: {error}"
    cause_text = "".join(traceback.format_exception(error))
    return {"error": {"kind": "unexpected", "path": path.as_posix(), "reason": reason, "cause": cause_text}}


def main(argv: Sequence[str]) -> None:
    memory_mb = int(argv[0])
    requests = sys.stdin.buffer
    # Replies go to a private copy of stdout; whatever a library prints lands on stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.ERROR, format="localrag parser: %(name)s: %(message)s")
    _limit_memory(memory_mb)
    _exit_with_parent()
    while True:
        head = _read_exact(requests, HEADER.size)
        if head is None:
            return  # the parent closed the pipe: done
        body = _read_exact(requests, HEADER.unpack(head)[0])
        if body is None:
            return
        reply, must_exit = _handle(json.loads(body), memory_mb)
        # After running out of memory the heap may be fragmented past use, and VmPeak stays high: start afresh.
        _write(replies, {**reply, "exiting": must_exit})
        if must_exit:
            return
