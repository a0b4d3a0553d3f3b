"""An exclusive, non-blocking writer lock on a data directory (one writer process at a time)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from localrag.errors import StoreLockedError

LOCK_FILE = "writer.lock"


class WriterLock:
    """flock-based, so the OS frees it when the holder dies (even by SIGKILL)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"another process (pid {holder}) is writing to {self.path.parent}; "
                "wait for it to finish or open this data directory read-only"
            ) from e
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
