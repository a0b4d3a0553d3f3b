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

``WatchStatus`` says what the loop is doing (state, the last reconcile's counts, the last errors and
skips per folder) for ``GET /v1/watch``; the loop writes it, any thread reads it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from localrag.errors import DependencyMissingError, LocalRagError
from localrag.ingest.sync import Syncer, SyncOptions, SyncReport, _root

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.25
TICK_MS = 100  # how often the loop wakes without file events, to run retries that are due
RETRY_MAX_S = 60.0
KEEP_NOTICES = 50  # errors and skips remembered per folder, newest kept

WatchState = Literal["starting", "syncing", "watching", "stopped", "error"]


@dataclass(frozen=True, slots=True)
class Notice:
    """An error of the watch or a file it skipped: which path, why, when (Unix time)."""

    path: str
    reason: str
    time: float
    retry: bool = False  # a skip that will be tried again (unreadable, still being written)


class WatchStatus:
    """The state of one watcher over its folders; thread-safe (the watch thread writes, servers read)."""

    def __init__(self, roots: Sequence[Path], keep: int = KEEP_NOTICES) -> None:
        self.roots = tuple(r.as_posix() for r in roots)
        self._lock = threading.Lock()
        self._state: WatchState = "starting"
        self._last_sync: dict[str, Any] | None = None
        self._syncs = 0
        self._errors: dict[str, deque[Notice]] = {r: deque(maxlen=keep) for r in self.roots}
        self._skips: dict[str, deque[Notice]] = {r: deque(maxlen=keep) for r in self.roots}

    @property
    def state(self) -> WatchState:
        return self._state

    def set_state(self, state: WatchState) -> None:
        with self._lock:
            self._state = state

    def _folders_of(self, path: str) -> tuple[str, ...]:
        # A notice about no folder in particular (the reconcile itself failed) concerns them all.
        inside = tuple(r for r in self.roots if path == r or path.startswith(r + "/"))
        return inside or self.roots

    def error(self, reason: str, path: str = "") -> None:
        notice = Notice(path, reason, time.time())
        with self._lock:
            self._state = "error"
            for root in self._folders_of(path):
                self._errors[root].append(notice)

    def synced(self, report: SyncReport, *, full: bool) -> None:
        now = time.time()
        retry = set(report.retry)
        with self._lock:
            self._syncs += 1
            self._last_sync = {
                "time": now, "full": full, "seconds": round(report.seconds, 4), "added": len(report.added),
                "updated": len(report.updated), "unchanged": report.unchanged, "deleted": len(report.deleted),
                "renamed": len(report.renamed), "duplicates": len(report.duplicates),
                "skipped": len(report.skipped), "retry": len(report.retry),
            }  # fmt: skip
            for skipped in report.skipped:
                notice = Notice(skipped.path, skipped.reason, now, skipped.path in retry)
                for root in self._folders_of(skipped.path):
                    self._skips[root].append(notice)

    def snapshot(self) -> list[dict[str, Any]]:
        """One dict per folder: path, state, syncs, last_sync (None before the first), errors and skips
        (newest first, at most ``keep`` each)."""
        with self._lock:
            return [
                {"path": root, "state": self._state, "syncs": self._syncs,
                 "last_sync": None if self._last_sync is None else dict(self._last_sync),
                 "errors": [_notice(n) for n in reversed(self._errors[root])],
                 "skips": [_notice(n) for n in reversed(self._skips[root])]}
                for root in self.roots
            ]  # fmt: skip


def _notice(notice: Notice) -> dict[str, Any]:
    return {"path": notice.path, "reason": notice.reason, "time": notice.time, "retry": notice.retry}


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
        self.status = WatchStatus(self.roots)
        self._retry: dict[str, tuple[int, float]] = {}  # path -> (attempts, when to try next)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, on_ready: Callable[[SyncReport], None] | None = None) -> None:
        """Reconcile, then watch until ``stop()``; ``on_ready`` gets the restart reconcile's report."""
        try:
            import watchfiles
        except ImportError as e:  # a core dependency; a broken install still gets a clear message
            raise DependencyMissingError("folder watching needs watchfiles: pip install watchfiles") from e
        try:
            self._watch(watchfiles.watch, on_ready)
        except Exception as e:
            self.status.error(f"watch stopped: {type(e).__name__}: {e}")
            raise
        self.status.set_state("stopped")

    def _watch(self, watch: Callable[..., Any], on_ready: Callable[[SyncReport], None] | None) -> None:
        report = self._reconcile(None)
        if on_ready is not None:
            on_ready(report)
        started = False
        for changes in watch(
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
        self.status.set_state("syncing")
        try:
            report = self.syncer.reconcile(self.roots, scope)
        except LocalRagError as e:  # a root gone or unreadable: say so and keep watching the others
            log.error("watch: reconcile failed: %s", e)
            self.status.error(f"reconcile failed: {e}")
            return SyncReport()
        self.status.synced(report, full=scope is None)
        self.status.set_state("watching")
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

    @property
    def status(self) -> WatchStatus:
        return self.watcher.status

    def _run(self) -> None:
        try:
            self.watcher.run(on_ready=lambda _: self.ready.set())
        except Exception:  # the server stays up without the watch; the log and the status say why
            log.exception("watch stopped by an error")

    def start(self) -> WatchThread:
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self.watcher.stop()
        self.thread.join(timeout_s)
