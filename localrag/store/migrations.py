"""Numbered schema migrations, each applied in its own transaction."""

from __future__ import annotations

import logging
import sqlite3

from localrag.errors import StoreError

log = logging.getLogger(__name__)

# chunks.id is AUTOINCREMENT so a rowid is never reused: index keys stay unique for the
# store's lifetime, which keeps change-log replay unambiguous.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE namespaces (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        namespace_id INTEGER NOT NULL REFERENCES namespaces(id),
        doc_id TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        text TEXT NOT NULL,
        page_starts TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (namespace_id, doc_id)
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        namespace_id INTEGER NOT NULL REFERENCES namespaces(id),
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        page INTEGER,
        vector BLOB NOT NULL
    );
    CREATE INDEX chunks_document ON chunks (document_id);
    CREATE INDEX chunks_namespace ON chunks (namespace_id);
    CREATE TABLE changes (
        generation INTEGER NOT NULL,
        namespace_id INTEGER NOT NULL,
        chunk_id INTEGER NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('add', 'remove'))
    );
    CREATE INDEX changes_generation ON changes (generation);
    INSERT INTO meta (key, value) VALUES ('generation', '0');
    """,
    # 2: relevance judgments (rag.feedback), read by train-reranker and tune. The doc_id is kept
    # beside the chunk id because a re-ingested document gets new chunk ids.
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        query TEXT NOT NULL,
        chunk_id INTEGER NOT NULL,
        doc_id TEXT NOT NULL,
        relevant INTEGER NOT NULL CHECK (relevant IN (0, 1)),
        created_at REAL NOT NULL
    );
    CREATE INDEX feedback_namespace ON feedback (namespace, query);
    """,
    # 3: what folder sync last saw of each file (ingest/sync.py), so an unchanged file is judged by
    # one stat (size, mtime) without reading it. status: indexed | duplicate | skipped.
    """
    CREATE TABLE file_states (
        namespace TEXT NOT NULL,
        path TEXT NOT NULL,
        root TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('indexed', 'duplicate', 'skipped')),
        doc_ids TEXT NOT NULL DEFAULT '[]',
        duplicate_of TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        signature BLOB,
        updated_at REAL NOT NULL,
        PRIMARY KEY (namespace, path)
    );
    CREATE INDEX file_states_root ON file_states (namespace, root);
    CREATE INDEX file_states_sha ON file_states (namespace, sha256);
    """,
    # 4: online learning from feedback (learn/feedback.py): a graded judgment in [-1, 1] (NULL: from
    # relevant), who voted (an API key's digest or a client address; '' for the library) and the
    # query's embedding, so a search compares itself with past queries without re-embedding them.
    """
    ALTER TABLE feedback ADD COLUMN grade REAL;
    ALTER TABLE feedback ADD COLUMN source TEXT NOT NULL DEFAULT '';
    ALTER TABLE feedback ADD COLUMN vector BLOB;
    """,
)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the resulting version.

    The connection must be in autocommit mode (isolation_level=None) so each
    migration's BEGIN/COMMIT is ours.
    """
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"store schema version {version} is newer than this localrag supports ({len(MIGRATIONS)}); upgrade localrag"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        log.info("applying store migration %d", number)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
