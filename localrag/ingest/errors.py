"""Errors of the loaders, kept apart so that the limit checks, the parser worker and the loaders share them."""

from __future__ import annotations

from pathlib import Path

from localrag.errors import InvalidInputError, LocalRagError, RequestTooLargeError


class LoaderError(InvalidInputError):
    """A file could not be loaded; ``path`` and ``reason`` are kept apart for reports."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path).as_posix()
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FileTooLargeError(LoaderError, RequestTooLargeError):
    """A file is over the configured size limit (HTTP 413)."""


class ParseLimitError(LoaderError, RequestTooLargeError):
    """A file would cost more than the parse limits allow: a zip bomb, too many pages, too much time or memory."""


class WorkerError(LocalRagError):
    """What a loader raised inside the parser worker (type and message, as text); chained under ``LoaderError``."""
