"""Parse untrusted files in a worker process that can be killed: a hostile file costs time, never the caller.

One worker (``worker.py``) is kept and reused, so a batch of small files pays for one process start, not
one each. It runs under an address-space limit (``ingest.parse_memory_mb``); this side waits for its
reply at most ``ingest.parse_timeout_s`` and kills it past that. A killed or dead worker is replaced on
the next file. Files are parsed one at a time; callers on other threads wait their turn.

``interrupt_parsing()`` (called when a server is told to stop) kills the worker at once, so a parse in
flight cannot hold a shutdown for the length of its timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from localrag.ingest.errors import FileTooLargeError, LoaderError, ParseLimitError, WorkerError
from localrag.ingest.limits import MEDIA_SUFFIXES, OCR_SUFFIXES, ParseLimits
from localrag.ingest.worker import HEADER, document_from_json
from localrag.types import Document

log = logging.getLogger(__name__)

__all__ = ["ParserPool", "interrupt_parsing", "parse_in_worker", "shared_pool"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The worker imports only the loaders: ``import localrag`` would pull in the engine (numpy, FAISS, their
# thread pools), which costs start-up time and address space under the memory limit. A bare package
# object pointing at the same directory lets ``localrag.ingest.worker`` import without it. The empty
# entry ``-c`` puts first on sys.path (the current directory) is dropped, so a file in the folder being
# ingested cannot shadow a module.
_BOOTSTRAP = (
    "import sys, types\n"
    "sys.path[:] = [p for p in sys.path if p]\n"
    "package = types.ModuleType('localrag')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['localrag'] = package\n"
    "from localrag.ingest.worker import main\n"
    "main(sys.argv[2:])\n"
)
_CHUNK = 1 << 20


class _TimedOut(Exception):
    pass


class _WorkerGone(Exception):
    pass


class ParserPool:
    """A pool of one parser worker, started on first use and replaced after a kill."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._memory_mb = -1
        self._interrupted = False
        self._doomed: subprocess.Popen[bytes] | None = None
        self._closed = False

    def parse(self, path: Path, max_bytes: int, limits: ParseLimits) -> list[Document]:
        with self._lock:
            if self._closed:
                raise LoaderError(path, "not parsed: the parser pool is closed")
            self._interrupted = False
            limits = limits.for_file(path)  # OCR and speech get their own time and memory
            proc = self._worker(limits.memory_mb)
            request = json.dumps({"path": str(path), "max_bytes": max_bytes, "limits": asdict(limits)}).encode()
            deadline = time.monotonic() + limits.timeout_s if limits.timeout_s > 0 else None
            try:
                _send(proc, request)
                reply = json.loads(_receive(proc, deadline))
                if reply.get("exiting"):  # reaped now, so the next file cannot reach a worker on its way out
                    self._kill()
            except _TimedOut:
                self._kill()
                took = f"parsing took longer than {limits.timeout_s:g} s ({_timeout_setting(path)})"
                raise ParseLimitError(path, f"{took}; the parser was stopped") from None
            except (_WorkerGone, OSError, ValueError):
                code = self._kill()
                if self._interrupted:
                    raise LoaderError(path, "parsing was interrupted: localrag is stopping") from None
                raise LoaderError(path, _death_reason(code, limits)) from None
            except BaseException:  # KeyboardInterrupt mid-reply: the worker's next reply would be this one's
                self._kill()
                raise
        return _documents(reply, path)

    @property
    def pid(self) -> int | None:
        """The worker's process id while one runs (diagnostics and tests)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def interrupt(self) -> None:
        """Kill the worker now: a parse in flight fails, the next file gets a new worker.

        Safe from a signal handler or another thread: it takes no lock."""
        self._interrupted = True
        proc = self._proc
        self._doomed = proc  # dies asynchronously: the next file must not be sent to it
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(OSError):  # it exited meanwhile
                proc.kill()

    def close(self) -> None:
        """Kill the worker and refuse further files (at exit)."""
        self._closed = True
        self.interrupt()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("parser worker %d did not exit", proc.pid)

    def _worker(self, memory_mb: int) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is not None and (proc is self._doomed or proc.poll() is not None or self._memory_mb != memory_mb):
            self._kill()
            proc = None
        if proc is None:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(_PACKAGE_DIR), str(memory_mb)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                env=_worker_env(),
                start_new_session=True,  # a terminal's Ctrl-C goes to the parent, which then stops the worker
            )
            log.debug("started parser worker %d (memory limit %d MB)", proc.pid, memory_mb)
            self._proc, self._memory_mb = proc, memory_mb
        return proc

    def _kill(self) -> int | None:
        """Kill and reap the worker; its exit status (negative: the signal), or None if none ran."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(OSError):
                proc.kill()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        return proc.wait()


def _timeout_setting(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        return "ingest.media_timeout_s"
    return "ingest.ocr_timeout_s" if suffix in OCR_SUFFIXES or suffix == ".pdf" else "ingest.parse_timeout_s"


def _worker_env() -> dict[str, str]:
    """The parent's environment less anything that looks like a credential: a parser subverted by a crafted
    file should not find API keys lying about. Few malloc arenas, so the address space goes to the parse."""
    secret = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
    env = {name: value for name, value in os.environ.items() if not any(s in name.upper() for s in secret)}
    return {**env, "MALLOC_ARENA_MAX": "2"}


def _send(proc: subprocess.Popen[bytes], request: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(HEADER.pack(len(request)) + request)


def _receive(proc: subprocess.Popen[bytes], deadline: float | None) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    data = bytearray()
    while len(data) < n:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            raise _TimedOut
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            raise _TimedOut
        piece = os.read(fd, min(n - len(data), _CHUNK))
        if not piece:
            raise _WorkerGone
        data += piece
    return bytes(data)


def _death_reason(code: int | None, limits: ParseLimits) -> str:
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit status {code}"
    return (
        f"the parser process died ({how}); the file may need more than {limits.memory_mb} MB of memory "
        "(ingest.parse_memory_mb) or be crafted to crash the parser"
    )


def _documents(reply: dict[str, Any], path: Path) -> list[Document]:
    error = reply.get("error")
    if error is None:
        return [document_from_json(d) for d in reply["documents"]]
    kind, where, reason, cause = error["kind"], error["path"], error["reason"], error["cause"]
    cls = {"limit": ParseLimitError, "too_large": FileTooLargeError}.get(kind, LoaderError)
    if kind == "unexpected":
        log.warning("parser worker failed on %s:\n%s", path, cause)
    raise cls(where, reason) from (WorkerError(cause) if cause else None)


_POOL = ParserPool()
atexit.register(_POOL.close)


def parse_in_worker(path: Path, max_bytes: int, limits: ParseLimits) -> list[Document]:
    """Parse ``path`` (already checked to exist and fit ``max_bytes``) in the shared worker."""
    return _POOL.parse(path, max_bytes, limits)


def shared_pool() -> ParserPool:
    """The pool ``load_file`` uses."""
    return _POOL


def interrupt_parsing() -> None:
    """Kill the shared worker, failing the parse in flight (a server shutting down)."""
    _POOL.interrupt()
