"""Telling a new data directory from one whose store was lost: a blank store beside index caches,
uploads or a write-ahead log means the data was there and is gone, so it is never opened as new."""

from __future__ import annotations

from pathlib import Path

from localrag.errors import CorruptStoreError

# Written only beside a store that held data (index.manager.INDEX_DIR, server.uploads.UPLOADS_DIR);
# named here because the store sits below both layers.
_INDEX_DIR = "indexes"
_UPLOADS_DIR = "uploads"


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.is_file()]


def refuse_lost_store(path: Path, state: str) -> None:
    """A blank store is a new one only in a directory with no trace of data; otherwise the data was lost.

    Creating a fresh store there would silently drop every document the index caches still describe.
    """
    found: list[str] = []
    caches = _files_under(path.parent / _INDEX_DIR)
    if caches:
        spaces = {p.relative_to(path.parent / _INDEX_DIR).parts[0] for p in caches}
        size = sum(file_size(p) for p in caches)
        found.append(f"index caches of {len(spaces)} namespace(s) in {_INDEX_DIR}/ ({len(caches)} files, {size} bytes)")
    uploads = _files_under(path.parent / _UPLOADS_DIR)
    if uploads:
        found.append(f"{len(uploads)} uploaded file(s) in {_UPLOADS_DIR}/")
    wal = path.with_name(path.name + "-wal")
    if file_size(wal) > 0:
        found.append(f"a write-ahead log {wal.name} of {file_size(wal)} bytes")
    if found:
        raise CorruptStoreError(
            f"{path} {state}, but the data directory holds {' and '.join(found)}: the store was lost or "
            f"truncated, so it is not opened as a new, empty one. Restore {path.name} from a backup, or run "
            "`localrag recover` on the directory"
        )


