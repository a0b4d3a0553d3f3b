"""``localrag export`` / ``import``: a data directory as JSON lines, one document per line.

Each line holds the document (namespace, doc_id, title, text, source, metadata, page_starts,
content_hash), the embedding model's vector space and dimension, and its chunks: char spans,
page, and the float32 vector as base64 (little-endian). A chunk's text is its span of the
document's text; a chunk whose stored text differs carries it as ``text``.

Import writes chunks and vectors as they are when the vector space matches the data directory's,
so nothing is re-embedded; otherwise it re-embeds with ``reembed=True`` or refuses.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrag.config import Settings, load_settings
from localrag.errors import ConfigError, InvalidInputError
from localrag.protocols import Embedder
from localrag.store.datadir import connect_read_only, fsync_path, require_store, store_file
from localrag.store.lock import WriterLock
from localrag.store.sqlite import PreparedDocument, SQLiteStore
from localrag.types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT = 1
WRITE_BATCH = 64  # documents per transaction
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ExportReport:
    path: str
    documents: int
    chunks: int
    namespaces: dict[str, int]


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    reembedded: int = 0
    chunks: int = 0
    namespaces: dict[str, int] = field(default_factory=dict)


def export_jsonl(data_dir: Path | str, out: Path | str, *, namespace: str | None = None,
                 progress: Progress | None = None) -> ExportReport:
    """Write every document (of ``namespace``, or all) to ``out``; only reads ``data_dir``."""
    out = Path(out)
    conn = connect_read_only(require_store(data_dir))
    conn.isolation_level = None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    counts: dict[str, int] = {}
    chunks = 0
    try:
        conn.execute("BEGIN")  # one snapshot for the whole file, even beside a live writer
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        space, dim = meta.get("vector_space"), int(meta.get("dim") or 0)
        sql = ("SELECT n.name, d.id, d.doc_id, d.title, d.text, d.source, d.metadata, d.page_starts, d.content_hash"
               " FROM documents d JOIN namespaces n ON n.id = d.namespace_id")
        args: tuple[Any, ...] = ()
        if namespace is not None:
            sql, args = sql + " WHERE n.name = ?", (namespace,)
        # In chunk-key order, so an import assigns keys in the same relative order (equal scores tie alike).
        sql += " ORDER BY d.namespace_id, (SELECT min(c.id) FROM chunks c WHERE c.document_id = d.id), d.id"
        with tmp.open("w", encoding="utf-8") as fh:
            for ns, row_id, doc_id, title, text, source, metadata, page_starts, digest in conn.execute(sql, args):
                rows = conn.execute("SELECT ordinal, char_start, char_end, page, text, vector FROM chunks"
                                    " WHERE document_id = ? ORDER BY ordinal", (row_id,)).fetchall()
                record = {"namespace": ns, "doc_id": doc_id, "title": title, "text": text, "source": source,
                          "metadata": json.loads(metadata), "page_starts": json.loads(page_starts),
                          "content_hash": digest, "vector_space": space, "dim": dim,
                          "chunks": [_chunk_json(text, *r) for r in rows]}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                counts[ns] = counts.get(ns, 0) + 1
                chunks += len(rows)
                if progress is not None:
                    progress(sum(counts.values()))
            fh.flush()
            os.fsync(fh.fileno())
        conn.execute("COMMIT")
        os.replace(tmp, out)
        fsync_path(out.parent)
    finally:
        conn.close()
        tmp.unlink(missing_ok=True)
    return ExportReport(str(out), sum(counts.values()), chunks, counts)


def _chunk_json(doc_text: str, ordinal: int, start: int, end: int, page: int | None, text: str,
                vector: bytes) -> dict[str, Any]:
    item: dict[str, Any] = {"ordinal": ordinal, "char_start": start, "char_end": end, "page": page,
                            "vector": base64.b64encode(vector).decode("ascii")}
    if doc_text[start:end] != text:
        item["text"] = text
    return item


# -- import ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    namespace: str
    document: Document
    content_hash: str
    vector_space: str | None
    chunks: list[Chunk]
    vectors: np.ndarray | None


def import_jsonl(path: Path | str, data_dir: Path | str, *, settings: Settings | None = None,
                 embedder: Embedder | None = None, reembed: bool = False,
                 progress: Progress | None = None) -> ImportReport:
    """Add the documents of an export to ``data_dir`` (created if missing).

    Documents whose vectors come from the data directory's vector space keep their chunks and
    vectors; the others are embedded again with ``reembed``, else nothing is written and a
    ConfigError names both models. A document already stored with the same content hash is
    left as it is.
    """
    path, data_dir = Path(path), Path(data_dir)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    settings = settings or load_settings(data_dir)
    space, dim = _target_space(data_dir, settings, embedder)
    foreign = 0
    for line in _read(path):  # a first pass checks every line before anything is written
        if not _reusable(line, space, dim):
            foreign += 1
            if not reembed:
                raise ConfigError(
                    f"{path} line {line.number}: "
                    + (f"vectors of {line.vector_space!r}" if line.chunks else "no chunks")
                    + f", but {data_dir} searches {space!r} vectors (dim {dim}); pass --reembed to embed "
                    "the documents again with this data directory's model"
                )
    report = ImportReport()
    if foreign < _count(path):
        _write_vectors(path, data_dir, space, dim, report, progress)
    if foreign:
        _reembed(path, data_dir, space, dim, settings, embedder, report, progress)
    if report.added or report.updated:
        from localrag.engine import LocalRAG

        with LocalRAG(data_dir, settings=settings, embedder=embedder) as rag:
            for ns in report.namespaces:  # save index caches now rather than rebuild them on every read
                rag.reindex(ns)
    return report


def _target_space(data_dir: Path, settings: Settings, embedder: Embedder | None) -> tuple[str, int]:
    """The vector space and dimension the data directory uses, or will once it holds documents."""
    store_path = store_file(data_dir)
    if store_path.is_file():
        conn = connect_read_only(store_path)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('vector_space', 'dim')").fetchall())
        finally:
            conn.close()
        if "vector_space" in meta:
            return str(meta["vector_space"]), int(meta["dim"])
    if embedder is None:
        from localrag.embed.factory import load_embedder

        embed = settings.embed
        embedder = load_embedder(embed.model, threads=embed.threads, batch_size=embed.batch_size,
                                 max_tokens=embed.max_tokens)
    return str(getattr(embedder, "vector_space", embedder.name)), int(embedder.dim)


def _reusable(line: _Line, space: str, dim: int) -> bool:
    return bool(line.chunks) and line.vector_space == space and line.vectors is not None \
        and line.vectors.shape[1] == dim


def _write_vectors(path: Path, data_dir: Path, space: str, dim: int, report: ImportReport,
                   progress: Progress | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(data_dir)
    lock.acquire()  # StoreLockedError while another process writes there
    store = SQLiteStore(data_dir)
    try:
        if store.get_meta("vector_space") is None:
            store.set_meta("vector_space", space)
            store.set_meta("dim", str(dim))
        batch: list[_Line] = []
        seen = 0
        for line in _read(path):
            if not _reusable(line, space, dim):
                continue
            if batch and (batch[0].namespace != line.namespace or len(batch) >= WRITE_BATCH):
                _write_batch(store, batch, dim, report)
                batch = []
            batch.append(line)
            seen += 1
            if progress is not None:
                progress(seen)
        _write_batch(store, batch, dim, report)
    finally:
        store.close()
        lock.release()


def _write_batch(store: SQLiteStore, batch: list[_Line], dim: int, report: ImportReport) -> None:
    if not batch:
        return
    namespace = batch[0].namespace
    known = store.content_hashes(namespace, [line.document.doc_id for line in batch])
    prepared: list[PreparedDocument] = []
    for line in {line.document.doc_id: line for line in batch}.values():  # a repeated id: the last wins
        doc_id = line.document.doc_id
        if line.content_hash and known.get(doc_id) == line.content_hash:
            report.unchanged += 1
            continue
        assert line.vectors is not None
        prepared.append(PreparedDocument(line.document, line.content_hash, line.chunks, line.vectors))
        if doc_id in known:
            report.updated += 1
        else:
            report.added += 1
        report.chunks += len(line.chunks)
        report.namespaces[namespace] = report.namespaces.get(namespace, 0) + 1
    if prepared:
        store.write_documents(namespace, prepared, dim)


def _reembed(path: Path, data_dir: Path, space: str, dim: int, settings: Settings, embedder: Embedder | None,
             report: ImportReport, progress: Progress | None) -> None:
    from localrag.engine import LocalRAG

    with LocalRAG(data_dir, settings=settings, embedder=embedder) as rag:
        run: list[Document] = []
        namespace = ""

        def flush() -> None:
            if not run:
                return
            result = rag.add(run, namespace=namespace)
            report.added += len(result.added)
            report.updated += len(result.updated)
            report.unchanged += len(result.unchanged)
            report.reembedded += len(result.added) + len(result.updated)
            report.chunks += result.chunks_added
            if result.added or result.updated:
                report.namespaces[namespace] = report.namespaces.get(namespace, 0) + len(result.added) + len(
                    result.updated)
            run.clear()

        for line in _read(path):
            if _reusable(line, space, dim):
                continue
            if run and (line.namespace != namespace or len(run) >= WRITE_BATCH * 4):
                flush()
            namespace = line.namespace
            run.append(line.document)
            if progress is not None:
                progress(report.reembedded + len(run))
        flush()


def _count(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for raw in fh if raw.strip())


def _read(path: Path) -> Iterator[_Line]:
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield _parse(raw, number, path)


def _parse(raw: str, number: int, path: Path) -> _Line:
    where = f"{path} line {number}"
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{where}: not valid JSON: {e}") from e
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where}: expected a JSON object")
    doc_id, text = item.get("doc_id"), item.get("text")
    if not isinstance(doc_id, str) or not doc_id or not isinstance(text, str):
        raise InvalidInputError(f"{where}: a document needs a non-empty string doc_id and a string text")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"{where}: metadata must be a JSON object")
    try:
        page_starts = tuple(int(p) for p in item.get("page_starts") or ())
        document = Document(doc_id, text, str(item.get("source") or ""), str(item.get("title") or ""), metadata,
                            page_starts)
        chunks, vectors = _chunks(item.get("chunks") or [], text, int(item.get("dim") or 0))
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidInputError(f"{where}: {e}") from e
    space = item.get("vector_space")
    return _Line(number, str(item.get("namespace") or ""), document, str(item.get("content_hash") or ""),
                 str(space) if space else None, chunks, vectors)


def _chunks(items: list[Any], text: str, dim: int) -> tuple[list[Chunk], np.ndarray | None]:
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    for ordinal, c in enumerate(items):
        start, end = int(c["char_start"]), int(c["char_end"])
        if not 0 <= start < end <= len(text):
            raise ValueError(f"chunk {ordinal}: span {start}-{end} is outside the text ({len(text)} chars)")
        page = c.get("page")
        chunks.append(Chunk(str(c.get("text", text[start:end])), start, end, int(c.get("ordinal", ordinal)),
                            None if page is None else int(page)))
        raw = c.get("vector")
        if isinstance(raw, str):
            vector = np.frombuffer(base64.b64decode(raw, validate=True), dtype="<f4")
        elif isinstance(raw, list):
            vector = np.asarray(raw, dtype="<f4")
        else:
            raise ValueError(f"chunk {ordinal}: vector must be base64 float32 or a list of numbers")
        if dim and vector.shape != (dim,):
            raise ValueError(f"chunk {ordinal}: vector has {vector.size} values, the line says dim {dim}")
        vectors.append(vector)
    if not chunks:
        return [], None
    if len({v.size for v in vectors}) != 1:
        raise ValueError("chunk vectors differ in length")
    return chunks, np.stack(vectors).astype(np.float32)
