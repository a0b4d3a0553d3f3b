"""Writes store_v1.sql: a small data directory's store as the first release wrote it (schema version 1,
before migration 2 added the feedback table), as an SQL dump a test loads with ``executescript``.

The v1 schema is spelled out here, not taken from localrag.store.migrations, so the fixture keeps
describing the old release whatever later code does. Vectors come from the tests' HashingEmbedder
(64 dimensions, vector space "fake-hashing"), so a test searches it with ``fake_embedder``.

    python tests/data/make_store_v1.py      # rewrites tests/data/store_v1.sql
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fakes import HashingEmbedder  # noqa: E402

SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE namespaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY, namespace_id INTEGER NOT NULL REFERENCES namespaces(id), doc_id TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', text TEXT NOT NULL, page_starts TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (namespace_id, doc_id)
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    namespace_id INTEGER NOT NULL REFERENCES namespaces(id), ordinal INTEGER NOT NULL, text TEXT NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, page INTEGER, vector BLOB NOT NULL
);
CREATE INDEX chunks_document ON chunks (document_id);
CREATE INDEX chunks_namespace ON chunks (namespace_id);
CREATE TABLE changes (
    generation INTEGER NOT NULL, namespace_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove'))
);
CREATE INDEX changes_generation ON changes (generation);
"""

DOCUMENTS = [
    ("", "tides", "Tides", {"topic": "sea"},
     "Spring tides happen when the sun and the moon line up. Neap tides come when they pull at right angles."),
    ("", "bees", "Honeybees", {"topic": "insects"},
     "A forager bee dances on the comb to show her sisters where the flowers are. The waggle run points the way."),
    ("", "volcano", "Volcanoes", {"topic": "geology"},
     "Magma rises through cracks in the crust and erupts as lava. Ash clouds can travel around the world."),
    ("archive", "comets", "Comets", {"topic": "space"},
     "A comet grows a tail of gas and dust as it nears the sun. The tail always points away from the sun."),
]
CREATED = 1_700_000_000.0  # fixed, so the dump is the same on every run


def build(path: Path) -> None:
    embedder = HashingEmbedder()
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    namespaces = {name: i for i, name in enumerate(dict.fromkeys(d[0] for d in DOCUMENTS), start=1)}
    for name, ns_id in namespaces.items():
        conn.execute("INSERT INTO namespaces VALUES (?, ?, ?)", (ns_id, name, CREATED))
    chunk_id = 0
    for row_id, (ns, doc_id, title, metadata, text) in enumerate(DOCUMENTS, start=1):
        conn.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?)",
                     (row_id, namespaces[ns], doc_id, f"{doc_id}.txt", title, f"v1-{doc_id}",
                      json.dumps(metadata, sort_keys=True), text, CREATED, CREATED))
        for ordinal, match in enumerate(re.finditer(r"[^.]+\.", text)):
            start = match.start() + (len(match.group()) - len(match.group().lstrip()))
            chunk = text[start:match.end()]
            vector = embedder.embed_documents([f"{title}\n{chunk}"])[0]
            chunk_id += 1
            conn.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                         (chunk_id, row_id, namespaces[ns], ordinal, chunk, start, match.end(), vector.tobytes()))
            conn.execute("INSERT INTO changes VALUES (1, ?, ?, 'add')", (namespaces[ns], chunk_id))
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [("generation", "1"), ("vector_space", embedder.vector_space), ("dim", str(embedder.dim))])
    conn.commit()
    dump = "\n".join(conn.iterdump()) + "\nPRAGMA user_version = 1;\n"
    conn.close()
    (HERE / "store_v1.sql").write_text(dump, encoding="utf-8")


if __name__ == "__main__":
    scratch = HERE / "store_v1.tmp.sqlite3"
    scratch.unlink(missing_ok=True)
    try:
        build(scratch)
    finally:
        scratch.unlink(missing_ok=True)
    print(f"wrote {HERE / 'store_v1.sql'}")
