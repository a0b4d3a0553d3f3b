"""Find the files to ingest: explicit files, directories walked recursively, glob filters.

Pattern semantics (gitignore-like, case-sensitive, always with ``/`` separators):

- a pattern is matched against the file's path relative to the directory it was found under
  (``docs/api/index.md``) and, separately, against the bare file name (``index.md``); either
  match counts, so ``*.md`` matches Markdown files at any depth;
- ``*`` and ``?`` never cross a ``/``; ``[abc]`` is a character class;
- ``**`` spans any number of path segments: ``docs/**/*.md`` matches ``docs/a.md`` and
  ``docs/x/y/a.md``, and ``build/**`` matches everything under ``build/``.

A file is kept when it matches at least one ``include`` pattern (or none are given) and no
``exclude`` pattern. Directories matching an ``exclude`` pattern are not entered at all.
Files named explicitly are always taken: naming a file is a stronger statement than a pattern.
Hidden entries (name starting with ``.``) below a given directory are skipped, and symlinked
directories are not followed (no cycles); symlinked files are taken.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from localrag.types import SkippedFile

log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """Translate one glob pattern (semantics in the module docstring) to an anchored regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")  # "**/" also matches zero directories
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            close = pattern.find("]", i + 2 if pattern.startswith("[!", i) else i + 1)
            if close == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : close]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def matches(rel_path: str, patterns: Iterable[str]) -> bool:
    """True if any pattern matches ``rel_path`` (POSIX, relative) or its last segment."""
    name = rel_path.rsplit("/", 1)[-1]
    for pattern in patterns:
        rx = _compile(pattern.strip().lstrip("/"))
        if rx.match(rel_path) or rx.match(name):
            return True
    return False


def _keep(rel_path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not matches(rel_path, include):
        return False
    return not (exclude and matches(rel_path, exclude))


def _walk(root: Path, include: Sequence[str], exclude: Sequence[str]) -> Iterable[tuple[Path, str]]:
    """Yield (path, rel_posix_path) under ``root`` in sorted, deterministic order."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # Prune in place so os.walk neither enters hidden nor excluded directories.
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (exclude and matches(prefix + d, exclude))
        )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            rel = prefix + name
            if _keep(rel, include, exclude):
                yield Path(dirpath) / name, rel


def discover(
    paths: Sequence[str | Path] | str | Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and directories into a deduplicated list of absolute file paths.

    Returns ``(files, skipped)``; ``skipped`` names missing paths and entries that are not
    regular files (broken links, sockets), each with a reason. Order: the order of ``paths``,
    and within a directory sorted by relative path, so repeated runs ingest identically.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()

    def take(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            files.append(resolved)

    for raw in paths:
        path = Path(raw).expanduser()
        shown = path.absolute().as_posix()
        if path.is_dir():
            for found, _rel in _walk(path, include, exclude):
                if found.is_file():
                    take(found)
                else:
                    skipped.append(SkippedFile(found.absolute().as_posix(), "not a regular file"))
        elif path.is_file():
            take(path)
        elif path.exists() or path.is_symlink():
            skipped.append(SkippedFile(shown, "not a regular file"))
        else:
            skipped.append(SkippedFile(shown, "no such file or directory"))
    log.debug("discovered %d files, skipped %d", len(files), len(skipped))
    return files, skipped
