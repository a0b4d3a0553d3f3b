"""What a data directory holds, and the read-only and staging helpers that copy one.

A data directory is ``store.sqlite3`` (the truth) plus optional parts: ``localrag.toml``, the
folders trained models are written to, and the Pinecone-API indexes under ``pinecone/``. Index
caches (``indexes/``) are not part of it: they are rebuilt from the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localrag.config import CONFIG_FILE
from localrag.errors import ConflictError, NotFoundError, StoreError
from localrag.fileio import fsync_path
from localrag.store.sqlite import DB_FILE

log = logging.getLogger(__name__)

# Folders `train-reranker` and `train-embedder` write into a data directory by default (kept in
# step with rerank.factory.DATA_DIR_NAME and embed.build.DATA_DIR_NAME, which import torch-side code).
MODEL_FOLDERS = ("reranker", "embedder")
PINECONE_DIR = "pinecone"
PINECONE_FILES = ("index.json", "records.sqlite3")


def store_file(directory: Path | str) -> Path:
    return Path(directory) / DB_FILE


def require_store(directory: Path | str) -> Path:
    """The store file of an existing data directory; a clear error (nothing created) otherwise."""
    path = store_file(directory)
    if not path.is_file():
        where = Path(directory)
        detail = "does not exist" if not where.exists() else f"holds no {DB_FILE}"
        raise NotFoundError(
            f"{where} is not a localrag data directory ({detail}); check --data (or $LOCALRAG_DATA), "
            "or create one with `localrag ingest PATH`"
        )
    return path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can never write to ``path`` (so it works beside a live writer)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open {path} read-only: {e}") from e
    return conn


def copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite database with the online backup API: one consistent snapshot, even while
    another process writes to ``source``, taken through a read-only connection."""
    src = connect_read_only(source)
    try:
        dst = sqlite3.connect(target)
        try:
            # pages=-1: the whole database in one step, inside one read transaction, so a
            # concurrent commit can neither tear the copy nor restart it.
            src.backup(dst, pages=-1)
            result = dst.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise StoreError(f"the copy of {source} fails its check ({result}); run `localrag recover`")
        finally:
            dst.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot copy {source}: {e}; if the store is damaged, run `localrag recover`") from e
    finally:
        src.close()
    fsync_path(target)


def copy_parts(source: Path, target: Path) -> list[str]:
    """Copy everything of a data directory but its store and caches; returns what was copied."""
    copied: list[str] = []
    settings = source / CONFIG_FILE
    if settings.is_file():
        shutil.copy2(settings, target / CONFIG_FILE)
        copied.append(CONFIG_FILE)
    for name in MODEL_FOLDERS:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, symlinks=True)
            copied.append(name + "/")
    pinecone = source / PINECONE_DIR
    if pinecone.is_dir():
        for config in sorted(pinecone.glob(f"*/{PINECONE_FILES[0]}")):
            folder = target / PINECONE_DIR / config.parent.name
            folder.mkdir(parents=True)
            records = config.parent / PINECONE_FILES[1]
            if records.is_file():
                copy_database(records, folder / PINECONE_FILES[1])
            # the config last, as the index's own writer does: an index exists once it is complete
            shutil.copy2(config, folder / PINECONE_FILES[0])
            copied.append(f"{PINECONE_DIR}/{config.parent.name}/")
    return copied


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and next(path.iterdir(), None) is None


@contextmanager
def staging_beside(target: Path) -> Iterator[Path]:
    """A fresh hidden folder next to ``target`` (same file system, so a rename moves it in
    atomically); removed unless the caller renamed it away."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes 0700; the result is an ordinary directory
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def move_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, which must be missing or an empty directory."""
    if target.exists() and not is_empty_dir(target):
        raise ConflictError(f"{target} is not empty")
    os.replace(staging, target)  # POSIX rename replaces an empty directory in one step
    fsync_path(target.parent)
