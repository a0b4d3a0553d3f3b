"""Multipart uploads to ``POST /v1/documents``: each one parsed from a private temporary folder.

Uploads were once written to a folder shared by every request with the same file name and
parsed from there, so concurrent uploads of ``same.txt`` could each read another's bytes.
Now every upload gets its own ``mkdtemp`` folder (mode 0700) under ``<data>/uploads``, removed
once the file is parsed, whether it was accepted or refused. The client's file name is kept only
for the loader's type detection (its suffix) and as the document's id and source; error messages
name it and never the server-side path.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from localrag.errors import InvalidInputError, RequestTooLargeError
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import LoaderError, load_file
from localrag.jsonsafe import check_metadata, loads
from localrag.server.context import context_of
from localrag.server.security import MB, safe_upload_path
from localrag.types import Document

log = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
_TMP_PREFIX = "upload-"
MAX_DOC_ID = 1024
MAX_NAMESPACE = 512


async def read_upload(request: Request, data_dir: Path, max_upload_mb: float) -> tuple[list[Document], str]:
    """The documents of a multipart upload (``file``, optional ``namespace``, ``doc_id``, ``metadata``)."""
    limit = int(max_upload_mb * MB)
    form = await request.form(max_files=1, max_fields=8, max_part_size=limit)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInputError("multipart upload needs a 'file' part (a file, with a file name)")
        namespace = _text_field(form.get("namespace"), "namespace", MAX_NAMESPACE)
        doc_id = _text_field(form.get("doc_id"), "doc_id", MAX_DOC_ID)
        metadata = _metadata_field(form.get("metadata"))
        data = await upload.read()
        limits = ParseLimits.from_settings(context_of(request).rag.settings.ingest)
        docs = await run_in_threadpool(_parse_privately, data_dir, upload.filename, data, limit, limits)
    finally:
        await form.close()
    name = (upload.filename or "").strip()
    if len(docs) == 1:  # a plain file: its id is the given one or its name, never a server path
        docs = [replace(docs[0], doc_id=doc_id or name)]
    return [replace(d, source=name, metadata={**d.metadata, "source": name, **metadata}) for d in docs], namespace


def _parse_privately(
    data_dir: Path, filename: str | None, data: bytes, limit: int, limits: ParseLimits
) -> list[Document]:
    root = data_dir / UPLOADS_DIR
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=root))
    try:
        target = safe_upload_path(folder, filename)
        target.write_bytes(data)
        try:
            return load_file(target, max_bytes=limit, limits=limits)
        except LoaderError as e:
            # The loader names the file by its full path; the client only knows the name it sent.
            reason = e.reason.replace(folder.resolve().as_posix() + "/", "").replace(str(folder) + "/", "")
            error = RequestTooLargeError if isinstance(e, RequestTooLargeError) else InvalidInputError
            raise error(f"{target.name}: {reason}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_uploads(data_dir: Path) -> None:
    """Folders left by a server that died mid-upload (one server per data directory, so none is live)."""
    root = data_dir / UPLOADS_DIR
    if not root.is_dir():
        return
    for folder in root.glob(_TMP_PREFIX + "*"):
        log.info("removing a stale upload folder %s", folder.name)
        shutil.rmtree(folder, ignore_errors=True)


def _text_field(value: Any, name: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a text field, not a file")
    if len(value) > max_length:
        raise InvalidInputError(f"{name} must be at most {max_length} characters")
    return value


def _metadata_field(value: Any) -> dict[str, Any]:
    text = _text_field(value, "metadata", 1 << 30)
    if not text.strip():
        return {}
    metadata = loads(text, "metadata")
    if not isinstance(metadata, dict):
        raise InvalidInputError("metadata must be a JSON object")
    check_metadata(metadata)
    return metadata
