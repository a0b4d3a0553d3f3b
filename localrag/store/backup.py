"""``localrag backup`` and ``restore``: whole data directories, copied consistently and moved
into place in one rename, so a reader never finds half of one."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from localrag.errors import ConflictError, InvalidInputError
from localrag.store.datadir import (
    connect_read_only,
    copy_database,
    copy_parts,
    is_empty_dir,
    move_into_place,
    require_store,
    staging_beside,
    store_file,
)
from localrag.store.lock import WriterLock
from localrag.store.sqlite import DB_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    documents: int
    chunks: int
    generation: int
    store_bytes: int
    parts: list[str] = field(default_factory=list)
    replaced: bool = False


def backup(source: Path | str, target: Path | str) -> CopyReport:
    """Copy the data directory ``source`` into the new directory ``target``.

    Only reads ``source`` (no writer lock is taken), so it runs beside a live ``localrag serve``.
    Index caches are left out; the copy rebuilds them from its store when first opened.
    """
    source, target = Path(source), Path(target)
    require_store(source)
    if target.exists() and not is_empty_dir(target):
        raise ConflictError(f"{target} exists and is not empty; back up into a new directory")
    if _same_or_inside(target, source):
        raise InvalidInputError(f"the backup {target} cannot be inside the data directory {source}")
    with staging_beside(target) as staging:
        _copy_directory(source, staging)
        move_into_place(staging, target)
    report = _report(source, target)
    log.info("backed up %s to %s (%d documents)", source, target, report.documents)
    return report


def restore(backup_dir: Path | str, target: Path | str, *, force: bool = False) -> CopyReport:
    """Make ``target`` a copy of the data directory ``backup_dir``.

    Refused while another process writes to ``target``, and, unless ``force``, when ``target`` is
    not empty. ``force`` replaces only a localrag data directory, never an arbitrary folder. The
    copy is made beside ``target`` and renamed into place, so ``target`` is at every moment the
    old directory or the complete new one (after a crash between the two renames, the old one
    waits beside it as ``.NAME.old-*``).
    """
    backup_dir, target = Path(backup_dir), Path(target)
    require_store(backup_dir)
    if _same_or_inside(target, backup_dir) or _same_or_inside(backup_dir, target):
        raise InvalidInputError(f"cannot restore {backup_dir} onto {target}: one contains the other")
    replacing = target.exists() and not is_empty_dir(target)
    if replacing:
        if not target.is_dir():
            raise ConflictError(f"{target} is a file, not a data directory")
        if not force:
            raise ConflictError(f"{target} is not empty; pass --force to replace it with the backup")
        if not store_file(target).is_file():
            raise ConflictError(f"{target} is not a localrag data directory (no {DB_FILE}); refusing to replace it")
    lock = WriterLock(target) if replacing else None
    if lock is not None:
        lock.acquire()  # StoreLockedError while a writer (e.g. `localrag serve`) uses it
    try:
        with staging_beside(target) as staging:
            _copy_directory(backup_dir, staging)
            if replacing:
                old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
                os.replace(target, old)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                move_into_place(staging, target)
    finally:
        if lock is not None:
            lock.release()
    report = _report(backup_dir, target, replaced=replacing)
    log.info("restored %s into %s (%d documents)", backup_dir, target, report.documents)
    return report


def _copy_directory(source: Path, staging: Path) -> None:
    copy_database(store_file(source), store_file(staging))
    copy_parts(source, staging)


def _report(source: Path, target: Path, *, replaced: bool = False) -> CopyReport:
    conn = connect_read_only(store_file(target))
    try:
        documents = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
        chunks = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    finally:
        conn.close()
    parts = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if not p.name.startswith(DB_FILE))
    return CopyReport(str(source), str(target), documents, chunks, int(row[0]) if row else 0,
                      store_file(target).stat().st_size, parts, replaced)


def _same_or_inside(path: Path, directory: Path) -> bool:
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents
