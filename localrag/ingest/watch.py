"""Keep folders live: ``localrag watch`` and ``localrag serve --watch``.

File events come from ``watchfiles`` (Rust ``notify``: inotify/FSEvents/ReadDirectoryChangesW).
It was chosen over watchdog because it already debounces and batches (it waits for a quiet ``step``
before yielding everything that changed), stops on an event and can wake on a timeout, which this
loop uses for retries; watchdog hands over one callback per raw event and leaves batching to us.

The loop, crash-safe because the store and its file states are the only memory:

1. a full reconcile (``sync.Syncer``), so whatever changed while nothing watched (a crash, a
   restart, a laptop asleep) is caught up before the watch resumes;
2. once the watcher runs, a second full reconcile, cheap because every file is stat-only by then,
   closes the gap between the first reconcile and the watcher's start;
3. each debounced batch of changed paths is reconciled (only those paths; a rename inside one batch
   keeps its document); files skipped for now (unreadable, still being written) are retried with
   backoff, from 0.25 s up to a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from localrag.errors import DependencyMissingError, LocalRagError
from localrag.ingest.sync import Syncer, SyncOptions, SyncReport, _root

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.25
TICK_MS = 100  # how often the loop wakes without file events, to run retries that are due
RETRY_MAX_S = 60.0


class Watcher:
    def __init__(
        self,
        rag: LocalRAG,
        roots: Sequence[str | Path],
        options: SyncOptions | None = None,
        *,
        debounce_ms: int = 1000,
        step_ms: int = 50,
        settle_s: float = 0.25,
    ) -> None:
        self.rag = rag
        self.roots = [_root(r) for r in roots]
        self.syncer = Syncer(rag, replace(options or SyncOptions(), settle_s=settle_s))
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.stop_event = threading.Event()
        self._retry: dict[str, tuple[int, float]] = {}  # path -> (attempts, when to try next)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, on_ready: Callable[[SyncReport], None] | None = None) -> None:
        """Reconcile, then watch until ``stop()``; ``on_ready`` gets the restart reconcile's report."""
        try:
            import watchfiles
        except ImportError as e:  # a core dependency; a broken install still gets a clear message
            raise DependencyMissingError("folder watching needs watchfiles: pip install watchfiles") from e
        report = self._reconcile(None)
        if on_ready is not None:
            on_ready(report)
        started = False
        for changes in watchfiles.watch(
            *self.roots, watch_filter=None, debounce=self.debounce_ms, step=self.step_ms,
            stop_event=self.stop_event, rust_timeout=TICK_MS, yield_on_timeout=True,
            raise_interrupt=False, ignore_permission_denied=True,
        ):  # fmt: skip
            if not started:  # the watcher is up: anything that changed before it started is caught now
                started = True
                self._reconcile(None)
            now = time.monotonic()
            paths = {path for _, path in changes}
            paths.update(p for p, (_, due) in self._retry.items() if due <= now)
            if paths:
                self._reconcile(paths)

    def _reconcile(self, scope: set[str] | None) -> SyncReport:
        try:
            report = self.syncer.reconcile(self.roots, scope)
        except LocalRagError as e:  # a root gone or unreadable: say so and keep watching the others
            log.error("watch: reconcile failed: %s", e)
            return SyncReport()
        now = time.monotonic()
        for path in scope or ():
            if path not in report.retry:
                self._retry.pop(path, None)
        if scope is None:
            self._retry = {p: v for p, v in self._retry.items() if p in report.retry}
        for path in report.retry:
            attempts = self._retry.get(path, (0, 0.0))[0] + 1
            self._retry[path] = (attempts, now + min(RETRY_FIRST_S * 2 ** (attempts - 1), RETRY_MAX_S))
        return report


class WatchThread:
    """A ``Watcher`` on a daemon thread, for ``localrag serve --watch``: the server keeps serving while
    the folders are reconciled and watched, through the same engine (its one writer)."""

    def __init__(self, rag: LocalRAG, roots: Sequence[str | Path], options: SyncOptions | None = None) -> None:
        self.watcher = Watcher(rag, roots, options)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="localrag-watch", daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run(on_ready=lambda _: self.ready.set())
        except Exception:  # the server stays up without the watch; the log says why
            log.exception("watch stopped by an error")

    def start(self) -> WatchThread:
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self.watcher.stop()
        self.thread.join(timeout_s)
