"""``localrag recover``: salvage a damaged store into a new one, then rebuild the indexes.

Two readers, best first: the ``sqlite3`` command's ``.recover`` (which reads around damaged
pages at the b-tree level) when that program is installed, then a Python pass that copies each
table row by row, stepping over rowids it cannot read. Either way the rows go into a freshly
created store, checked on the way (types, spans, vector sizes, references), so what comes out
is a valid store; the damaged file is kept beside it, never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrag.errors import ConflictError, StoreError
from localrag.index.manager import INDEX_DIR
from localrag.store.datadir import (
    connect_read_only,
    copy_parts,
    is_empty_dir,
    move_into_place,
    require_store,
    staging_beside,
    store_file,
)
from localrag.store.lock import WriterLock
from localrag.store.sqlite import DB_FILE, SQLiteStore

log = logging.getLogger(__name__)

MAX_GAP = 100_000  # rowids probed past unreadable ones before a table is taken as finished
_WORD = re.compile(r"\w")


@dataclass(slots=True)
class RecoverReport:
    target: str = ""
    method: str = ""  # "sqlite3 .recover" or "row copy"
    documents: int = 0
    chunks: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)  # damaged stretches met, per table
    dropped: dict[str, int] = field(default_factory=dict)  # rows read but unusable, by reason
    incomplete: list[str] = field(default_factory=list)  # "namespace/doc_id" that lost chunks
    damaged_file: str = ""  # where the damaged store was kept (in-place recovery)
    warnings: list[str] = field(default_factory=list)


def recover(data_dir: Path | str, out: Path | str | None = None, *, use_cli: bool = True) -> RecoverReport:
    """Recover ``data_dir``'s store into ``out`` (a new directory), or in place when ``out`` is None.

    In place, the damaged file is renamed ``store.sqlite3.damaged-<time>`` and the index caches
    are dropped; refused while another process writes there. Documents that lost chunks are
    listed in the report and marked so the next ingest of their source writes them again.
    """
    data_dir = Path(data_dir)
    source = require_store(data_dir)
    target = Path(out) if out is not None else data_dir
    if out is not None and target.exists() and not is_empty_dir(target):
        raise ConflictError(f"{target} exists and is not empty; recover into a new directory")
    report = RecoverReport(target=str(target))
    lock = WriterLock(data_dir)
    lock.acquire()  # a live writer would keep writing to the damaged file
    try:
        with staging_beside(target) as staging:
            raw = staging / "raw.sqlite3"
            readable = source
            if use_cli and _cli_recover(source, raw):
                readable, report.method = raw, "sqlite3 .recover"
            else:
                report.method = "row copy"
            SQLiteStore(staging).close()  # the current schema, empty
            _copy_rows(readable, store_file(staging), report)
            raw.unlink(missing_ok=True)
            if out is None:
                report.damaged_file = str(_swap_in_place(data_dir, store_file(staging)))
            else:
                copy_parts(data_dir, staging)
                move_into_place(staging, target)
    finally:
        lock.release()
    from localrag.config import load_settings
    from localrag.engine import LocalRAG

    with LocalRAG(target, settings=load_settings(target)) as rag:
        rag.reindex()
    log.info("recovered %d documents, %d chunks into %s", report.documents, report.chunks, target)
    return report


def _cli_recover(source: Path, raw: Path) -> bool:
    """``sqlite3 SOURCE .recover | sqlite3 RAW``; False when the program is missing or fails."""
    program = shutil.which("sqlite3")
    if program is None:
        return False
    try:
        with subprocess.Popen([program, "-readonly", str(source), ".recover"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as dump:
            load = subprocess.run([program, str(raw)], stdin=dump.stdout, capture_output=True, check=False)
            assert dump.stdout is not None
            dump.stdout.close()
            dump_err = dump.stderr.read() if dump.stderr else b""
            dump.wait()
    except OSError as e:
        log.warning("sqlite3 .recover could not run (%s); copying row by row", e)
        return False
    # Some builds (3.40.x) print "sql error" and stop early yet exit 0: any error output is a failure.
    if dump.returncode != 0 or load.returncode != 0 or dump_err.strip() or load.stderr.strip() or not raw.is_file():
        log.warning("sqlite3 .recover failed (%s); copying row by row",
                    (dump_err or load.stderr).decode(errors="replace").strip()[:200])
        raw.unlink(missing_ok=True)
        return False
    return True


def _swap_in_place(data_dir: Path, recovered: Path) -> Path:
    damaged = data_dir / f"{DB_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("-wal", "-shm"):  # they belong to the damaged file; a new store must not read them
        part = data_dir / (DB_FILE + suffix)
        if part.exists():
            os.replace(part, damaged.with_name(damaged.name + suffix))
    os.replace(store_file(data_dir), damaged)
    os.replace(recovered, store_file(data_dir))
    shutil.rmtree(data_dir / INDEX_DIR, ignore_errors=True)  # caches of the damaged store
    return damaged


# -- the row copy ------------------------------------------------------------------------------------
_COLUMNS = {
    "meta": ("key", "value"),
    "namespaces": ("id", "name", "created_at"),
    "documents": ("id", "namespace_id", "doc_id", "source", "title", "content_hash", "metadata", "text",
                  "page_starts", "created_at", "updated_at"),
    "chunks": ("id", "document_id", "namespace_id", "ordinal", "text", "char_start", "char_end", "page", "vector"),
    "feedback": ("id", "namespace", "query", "chunk_id", "doc_id", "relevant", "created_at"),
}


def _copy_rows(source: Path, target: Path, report: RecoverReport) -> None:
    src = connect_read_only(source)
    try:
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # (sqlite_schema is 3.33+)
    except sqlite3.DatabaseError as e:
        src.close()
        raise StoreError(f"the schema page of {source} cannot be read ({e}), so its tables cannot be found row by "
                         "row; the sqlite3 program's .recover reads pages without it. Nothing was changed") from e
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        dst.execute("BEGIN IMMEDIATE")
        meta = {str(k): str(v) for k, v in _rows(src, "meta", report)}
        namespaces = _copy_namespaces(src, dst, report)
        documents = _copy_documents(src, dst, namespaces, report)
        dim = int(meta["dim"]) if meta.get("dim", "").isdigit() else 0
        dim = _copy_chunks(src, dst, documents, dim, report)
        for row in _rows(src, "feedback", report):
            _insert(dst, "feedback", row, report)
        _finish(dst, meta, dim, report)
        dst.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"recovery could not write {target}: {e}") from e
    finally:
        src.close()
        dst.close()


def _copy_namespaces(src: sqlite3.Connection, dst: sqlite3.Connection, report: RecoverReport) -> set[int]:
    found: set[int] = set()
    for row in _rows(src, "namespaces", report):
        if isinstance(row[0], int) and isinstance(row[1], str) and _insert(dst, "namespaces", row, report):
            found.add(row[0])
    return found


def _copy_documents(src: sqlite3.Connection, dst: sqlite3.Connection, namespaces: set[int],
                    report: RecoverReport) -> dict[int, tuple[str, int]]:
    """Returns each copied document's (text, namespace id) by row id."""
    documents: dict[int, tuple[str, int]] = {}
    for row in _rows(src, "documents", report):
        row_id, ns_id, doc_id, text = row[0], row[1], row[2], row[7]
        if not (isinstance(row_id, int) and isinstance(ns_id, int) and isinstance(doc_id, str)
                and isinstance(text, str) and _is_json(row[6]) and _is_json(row[8])):
            _drop(report, "documents with unreadable fields")
            continue
        if ns_id not in namespaces:  # its namespace row was lost: keep the documents under a stand-in name
            dst.execute("INSERT INTO namespaces (id, name, created_at) VALUES (?, ?, ?)",
                        (ns_id, f"recovered-{ns_id}", time.time()))
            namespaces.add(ns_id)
            report.warnings.append(f"namespace {ns_id} lost its name; its documents are in 'recovered-{ns_id}'")
        if _insert(dst, "documents", row, report):
            documents[row_id] = (text, ns_id)
    return documents


def _copy_chunks(src: sqlite3.Connection, dst: sqlite3.Connection, documents: dict[int, tuple[str, int]],
                 dim: int, report: RecoverReport) -> int:
    if not dim:  # the meta row was lost: take the vector size the chunks share
        sizes = Counter(len(r[8]) // 4 for r in _rows(src, "chunks", RecoverReport()) if isinstance(r[8], bytes))
        dim = sizes.most_common(1)[0][0] if sizes else 0
    for row in _rows(src, "chunks", report):
        document_id, start, end, vector = row[1], row[5], row[6], row[8]
        document = documents.get(document_id) if isinstance(document_id, int) else None
        if document is None:
            _drop(report, "chunks whose document was lost")
        elif not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(document[0])):
            _drop(report, "chunks with a bad span")
        elif not isinstance(vector, bytes) or len(vector) != dim * 4 or not dim:
            _drop(report, "chunks with a vector of the wrong size")
        else:  # the namespace is the document's: a damaged chunk row must not move it elsewhere
            _insert(dst, "chunks", (*row[:2], document[1], *row[3:]), report)
    return dim


def _finish(dst: sqlite3.Connection, meta: dict[str, str], dim: int, report: RecoverReport) -> None:
    """Meta rows, and documents that lost chunks marked for re-ingest (an empty content hash never
    matches, so ingesting their source again replaces them)."""
    generation = int(meta["generation"]) + 1 if meta.get("generation", "").isdigit() else 1
    # The change log is not carried over: caches stamped before this generation rebuild, not replay.
    values = {"generation": str(generation), "changes_floor": str(generation)}
    if "vector_space" in meta:
        values["vector_space"] = meta["vector_space"]
    elif dim:
        report.warnings.append("the store's embedding model was not recorded in the readable rows; "
                               "searching with a different model than the one used would give wrong results")
    if dim:
        values["dim"] = str(dim)
    dst.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())
    spans: dict[int, list[tuple[int, int]]] = {}
    for document_id, ordinal, end in dst.execute("SELECT document_id, ordinal, char_end FROM chunks"):
        spans.setdefault(int(document_id), []).append((int(ordinal), int(end)))
    for row_id, ns, doc_id, text in dst.execute(
        "SELECT d.id, n.name, d.doc_id, d.text FROM documents d JOIN namespaces n ON n.id = d.namespace_id"
        " ORDER BY d.id"
    ).fetchall():
        found = sorted(spans.get(int(row_id), []))
        contiguous = [ordinal for ordinal, _ in found] == list(range(len(found)))
        # A word after the last chunk's end means trailing chunks were lost (chunks end on tokens,
        # so only spaces and punctuation may follow the last one).
        if not found or not contiguous or _WORD.search(text, max(end for _, end in found)):
            report.incomplete.append(f"{ns}/{doc_id}")
            dst.execute("UPDATE documents SET content_hash = '' WHERE id = ?", (row_id,))
    report.documents = int(dst.execute("SELECT count(*) FROM documents").fetchone()[0])
    report.chunks = int(dst.execute("SELECT count(*) FROM chunks").fetchone()[0])


def _insert(dst: sqlite3.Connection, table: str, row: tuple[Any, ...], report: RecoverReport) -> bool:
    columns = _COLUMNS[table]
    try:
        dst.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", row)
    except sqlite3.IntegrityError:  # a NOT NULL, CHECK, UNIQUE or reference the damaged row breaks
        _drop(report, f"{table} rows that break a constraint")
        return False
    return True


def _drop(report: RecoverReport, reason: str) -> None:
    report.dropped[reason] = report.dropped.get(reason, 0) + 1


def _is_json(value: Any) -> bool:
    try:
        json.loads(value)
    except (TypeError, ValueError):
        return False
    return True


def _rows(conn: sqlite3.Connection, table: str, report: RecoverReport) -> Iterator[tuple[Any, ...]]:
    """Every readable row of ``table`` in rowid order (the rowid itself left out).

    A range scan stops at the first damaged page; from there single rowids are probed (each
    lookup walks the b-tree afresh, so only rows on damaged pages fail) until one reads, and the
    scan resumes after it.
    """
    columns = ", ".join(_COLUMNS[table])
    try:
        high = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            report.warnings.append(f"table {table} was not found in the readable schema")
            return
        high = None
    except sqlite3.DatabaseError:
        high = None
    last = -(2**63)
    while True:
        try:
            for row in conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid", (last,)):
                last = row[0]
                yield tuple(row[1:])
            return
        except sqlite3.DatabaseError as e:
            report.unreadable[table] = report.unreadable.get(table, 0) + 1
            log.info("table %s: unreadable after rowid %d (%s)", table, last, e)
        probe, found = max(last, 0) + 1, None
        while found is None and (probe <= high if isinstance(high, int) else probe - last <= MAX_GAP):
            try:
                found = conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid = ?", (probe,)).fetchone()
            except sqlite3.DatabaseError:
                found = None
            probe += 1
        if found is None:
            return
        last = found[0]
        yield tuple(found[1:])
