"""Failpoints: named places in the write paths where a crash test can kill this process on purpose.

``LOCALRAG_FAILPOINTS="store.write.after_commit=3"`` SIGKILLs the process the 3rd time that point
is reached; several points are separated by commas (``a=2,b=1``; a bare name means ``=1``). The
variable is read once, at import, and a name this module does not list is refused then, so a typo
cannot leave a crash test waiting for a kill that never comes. The kill is ``SIGKILL`` sent to
ourselves: nothing is flushed, no ``finally`` runs, exactly as when the machine loses the process.
A point that is not armed costs one dict lookup.

Points, in the order a write reaches them:

- ``store.write.before_commit``: ``SQLiteStore.write_documents``, every row written, before COMMIT.
- ``store.write.after_commit``: the same, after COMMIT, before the indexes see the write.
- ``store.delete.before_commit`` / ``store.delete.after_commit``: ``SQLiteStore.delete_documents``.
- ``engine.after_apply``: ``LocalRAG._apply``, the committed write applied to the in-memory indexes,
  before the index files are saved and before the caller is answered.
- ``index.save.before_replace``: ``fileio.save_arrays`` (every index cache file: FAISS, BM25, the
  Pinecone backend's key map), the temp file written and fsynced, before ``os.replace``.
- ``pinecone.upsert.before_commit`` / ``pinecone.upsert.after_commit``: ``RecordStore.upsert`` (the
  Pinecone-compatible indexes' upserts and updates), around COMMIT; after it, memory is not yet updated.
- ``pinecone.delete.before_commit`` / ``pinecone.delete.after_commit``: ``RecordStore.delete``.
- ``server.upload.before_add``: ``POST /v1/documents``, the upload parsed, before the engine sees it.
- ``server.upload.after_add``: the engine acknowledged the upload, before the response is sent.
- ``sync.mid_batch``: folder sync (``ingest/sync.py``), a batch of files' documents committed and
  indexed, before the batch's file states are recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

ENV = "LOCALRAG_FAILPOINTS"
POINTS = frozenset({
    "store.write.before_commit",
    "store.write.after_commit",
    "store.delete.before_commit",
    "store.delete.after_commit",
    "engine.after_apply",
    "index.save.before_replace",
    "pinecone.upsert.before_commit",
    "pinecone.upsert.after_commit",
    "pinecone.delete.before_commit",
    "pinecone.delete.after_commit",
    "server.upload.before_add",
    "server.upload.after_add",
    "sync.mid_batch",
})


def parse(spec: str) -> dict[str, int]:
    """``"a=3,b"`` → ``{"a": 3, "b": 1}``; ValueError naming the fault on anything else."""
    armed: dict[str, int] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, count = item.partition("=")
        name = name.strip()
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown failpoint {name!r}; known: {', '.join(sorted(POINTS))}")
        try:
            hits = int(count) if sep else 1
        except ValueError:
            raise ValueError(f"{ENV}: {item!r}: the hit count must be an integer") from None
        if hits < 1:
            raise ValueError(f"{ENV}: {item!r}: the hit count counts from 1")
        if name in armed:
            raise ValueError(f"{ENV}: {name!r} is armed twice")
        armed[name] = hits
    return armed


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Failpoints:
    """Counts the hits of armed points and calls ``kill`` on the one each is armed for."""

    def __init__(self, armed: Mapping[str, int], kill: Callable[[], None] = _sigkill) -> None:
        self._armed = dict(armed)
        self._hits = dict.fromkeys(self._armed, 0)
        self._kill = kill
        self._lock = threading.Lock()  # server requests reach the same point from several threads

    def hit(self, name: str) -> None:
        if name not in self._armed:
            return
        with self._lock:
            self._hits[name] += 1
            fire = self._hits[name] == self._armed[name]
        if fire:
            self._kill()

    def hits(self, name: str) -> int:
        """How often an armed point was reached (0 for one not armed: those are not counted)."""
        with self._lock:
            return self._hits.get(name, 0)


_ACTIVE = Failpoints(parse(os.environ.get(ENV, "")))
if _ACTIVE._armed:
    log.warning("failpoints armed (%s): this process will kill itself", os.environ.get(ENV))

hit = _ACTIVE.hit
