"""One small event bus: what the engine did to which document, and why.

Producers (the ingest pipeline, ``LocalRAG.delete``, folder sync and watch) publish ``Event`` values;
readers subscribe a callback: the CLI's progress line, ``GET /v1/events`` and any desktop tool that
embeds localrag. Callbacks run on the publishing thread, so they must be quick; one that raises is
logged and kept, because a broken listener must never fail an ingest.

Kinds: ``ingest`` (a new document), ``update`` (a changed one), ``delete``, ``skip`` (a file not
indexed, with the reason), ``rename`` (a moved file kept its document), ``duplicate`` (a file whose
text nearly repeats an indexed document, linked to it), ``progress`` (embedding under way: documents
done of the total, chunks embedded, chunks/s and ETA), ``sync`` (a reconcile finished).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

EventKind = Literal["ingest", "update", "delete", "skip", "rename", "duplicate", "progress", "sync"]
KINDS: frozenset[str] = frozenset({"ingest", "update", "delete", "skip", "rename", "duplicate", "progress", "sync"})
Listener = Callable[["Event"], None]


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    doc_id: str = ""
    path: str = ""
    namespace: str = ""
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0  # set by the bus: increasing, so a reader can tell whether it missed any
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "doc_id": self.doc_id, "path": self.path, "namespace": self.namespace,
            "reason": self.reason, "data": dict(self.data), "seq": self.seq, "time": self.time,
        }  # fmt: skip


class EventBus:
    """Thread-safe publish/subscribe; ``subscribe`` returns the function that unsubscribes."""

    def __init__(self) -> None:
        self._listeners: dict[int, tuple[Listener, frozenset[str] | None]] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener, kinds: Collection[str] | None = None) -> Callable[[], None]:
        """Call ``listener`` for every event (or only those of ``kinds``) until unsubscribed."""
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= KINDS:
            from localrag.errors import InvalidInputError

            raise InvalidInputError(f"unknown event kinds {sorted(wanted - KINDS)}; known: {sorted(KINDS)}")
        with self._lock:
            token = next(self._ids)
            self._listeners[token] = (listener, wanted)
        return lambda: self._remove(token)

    def unsubscribe(self, listener: Listener) -> None:
        """Remove every subscription of ``listener`` (no error when there is none)."""
        with self._lock:
            for token in [t for t, (fn, _) in self._listeners.items() if fn == listener]:
                del self._listeners[token]

    def _remove(self, token: int) -> None:
        with self._lock:
            self._listeners.pop(token, None)

    @property
    def active(self) -> bool:
        """Whether anyone listens: producers skip building events nobody reads (progress, mostly)."""
        return bool(self._listeners)

    def publish(self, kind: EventKind, **fields: Any) -> None:
        if not self._listeners:
            return
        with self._lock:
            event = Event(kind, seq=next(self._seq), time=time.time(), **fields)
            listeners = [fn for fn, wanted in self._listeners.values() if wanted is None or kind in wanted]
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not fail the write that reported it
                log.exception("event listener %r failed on a %s event", listener, kind)


class ProgressTracker:
    """Turns "n more chunks embedded" into ``progress`` events with a rate and an ETA.

    The ETA counts a document as done in proportion to its chunks embedded, so one large file moves
    the estimate as it is embedded instead of holding it still until the file commits.
    """

    def __init__(self, bus: EventBus, namespace: str, docs_total: int | None) -> None:
        self.bus = bus
        self.namespace = namespace
        self.docs_total = docs_total
        self.docs_done = 0
        self.chunks = 0
        self.started = time.monotonic()
        # Groups being embedded or waiting to be written (the ingest pipeline embeds one group while it
        # writes the one before, on two threads): their documents, chunks, and chunks embedded so far.
        self._group_docs = 0
        self._group_chunks = 0
        self._group_embedded = 0
        self._lock = threading.Lock()

    def start_group(self, documents: int, chunks: int) -> None:
        with self._lock:
            self._group_docs += documents
            self._group_chunks += chunks

    def embedded(self, n: int) -> None:
        with self._lock:
            self.chunks += n
            self._group_embedded += n
        self._emit()

    def documents_done(self, n: int, chunks: int = 0) -> None:
        """``n`` documents acknowledged; ``chunks``: those of a group started with ``start_group``."""
        with self._lock:
            self.docs_done += n
            if chunks:
                self._group_docs = max(0, self._group_docs - n)
                self._group_chunks = max(0, self._group_chunks - chunks)
                self._group_embedded = max(0, self._group_embedded - chunks)
        self._emit()

    def _emit(self) -> None:
        if not self.bus.active:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        with self._lock:
            partial = self._group_docs * self._group_embedded / self._group_chunks if self._group_chunks else 0.0
            docs_done, chunks = self.docs_done, self.chunks
        effective = docs_done + partial
        eta = None
        if self.docs_total and effective > 0:
            eta = elapsed * max(self.docs_total - effective, 0.0) / effective
        self.bus.publish("progress", namespace=self.namespace, data={
            "docs_done": docs_done, "docs_total": self.docs_total, "chunks": chunks,
            "chunks_per_s": chunks / elapsed, "eta_s": eta, "elapsed_s": elapsed,
        })  # fmt: skip
