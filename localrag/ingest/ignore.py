"""Which files of a synced folder are not worth indexing: generated, minified, vendored, VCS.

Real folders carry build output next to the writing (issue 19: one minified ``searchindex.js`` gave
19% of a docs folder's chunks). Three layers decide, the later ones winning:

1. ``DEFAULT_EXCLUDES`` (VCS and build folders, dependency trees, lock files, minified assets,
   source maps), dropped altogether with ``use_defaults=False``;
2. the root's ``.localragignore``, gitignore-style: one pattern a line, ``#`` comments, a trailing
   ``/`` for folders only, ``!pattern`` to take back an earlier exclusion (``!dist/`` indexes ``dist``);
3. the caller's ``include``/``exclude`` globs (``--include``/``--exclude``): an include pattern also
   takes a file back from the defaults, so ``--include '*.min.js'`` indexes minified files.

Patterns use ``discover.matches`` (relative path or bare name; ``**`` spans folders). A file that
passes is still refused by ``looks_minified`` when its first bytes hold a line too long to be prose.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localrag.ingest.discover import _compile, matches

IGNORE_FILE = ".localragignore"

DEFAULT_EXCLUDES: tuple[str, ...] = (
    # version control and tool caches
    ".git/", ".hg/", ".svn/", "__pycache__/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".tox/",
    ".venv/", "venv/", ".idea/", ".vscode/",
    # dependency trees and build output
    "node_modules/", "bower_components/", "dist/", "build/", "_build/", "target/", "site-packages/",
    # generated or minified assets, source maps, lock files
    "*.min.js", "*.min.css", "*.map", "*.bundle.js", "*.chunk.js", "searchindex.js",
    "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Cargo.lock", "Pipfile.lock",
    "composer.lock", "Gemfile.lock", "uv.lock",
    # compiled and editor droppings
    "*.pyc", "*.pyo", "*.o", "*.so", "*.class", "*~", "*.swp", ".DS_Store",
)  # fmt: skip

_SNIFF = 64 * 1024
# HTML and XML are left out: generated pages put whole paragraphs on one line, and are prose
_MINIFIED_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".css", ".json", ".svg"})
MAX_LINE = 2000  # a prose paragraph rarely tops ~1500 characters; minified code runs to megabytes


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    negate: bool
    folder_only: bool


def parse_rules(lines: Sequence[str]) -> list[Rule]:
    rules = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        folder_only = line.endswith("/")
        line = line.rstrip("/")
        if line:
            rules.append(Rule(line, negate, folder_only))
    return rules


def _groups(rules: list[Rule]) -> list[tuple[re.Pattern[str], bool]]:
    """Consecutive rules with the same sign, joined into one anchored alternation each."""
    groups: list[tuple[list[str], bool]] = []
    for rule in rules:
        pattern = _compile(rule.pattern.strip().lstrip("/")).pattern
        if groups and groups[-1][1] == rule.negate:
            groups[-1][0].append(pattern)
        else:
            groups.append(([pattern], rule.negate))
    return [(re.compile("|".join(f"(?:{p})" for p in patterns)), negate) for patterns, negate in groups]


class IgnoreRules:
    """Decides, for paths relative to one root, what sync walks into and what it indexes."""

    def __init__(
        self,
        root: Path,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        use_defaults: bool = True,
    ) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        rules = parse_rules(DEFAULT_EXCLUDES) if use_defaults else []
        ignore_file = root / IGNORE_FILE
        with contextlib.suppress(OSError):  # no ignore file (the usual case) or an unreadable one
            rules += parse_rules(ignore_file.read_text(encoding="utf-8", errors="replace").splitlines())
        self.rules = rules
        self._dir_groups = _groups(rules)
        self._file_groups = _groups([r for r in rules if not r.folder_only])

    def _ruled_out(self, rel: str, groups: list[tuple[re.Pattern[str], bool]]) -> bool:
        """The last matching rule wins, as in gitignore (runs of rules alike are one regex: a walk asks
        this once per file, so 40-odd patterns one by one would dominate a 10,000-file reconcile)."""
        name = rel.rsplit("/", 1)[-1]
        for rx, negate in reversed(groups):
            if rx.match(rel) or rx.match(name):
                return not negate
        return False

    def enter(self, rel_dir: str) -> bool:
        """Whether to walk into a folder (``rel_dir`` relative to the root, no trailing slash). The walk
        asks only about folders whose parents it entered, so ancestors need no second look."""
        if self.exclude and matches(rel_dir, self.exclude):
            return False
        # an include pattern naming something below this folder must still be reachable
        return not (self._ruled_out(rel_dir, self._dir_groups)
                    and not any(p.startswith(rel_dir + "/") for p in self.include))

    def keep(self, rel: str) -> bool:
        """Whether to index a file the walk reached (its folders already entered)."""
        if self.exclude and matches(rel, self.exclude):
            return False
        if self.include:
            return matches(rel, self.include)
        return not self._ruled_out(rel, self._file_groups)

    def folder_reachable(self, rel_dir: str) -> bool:
        """``enter`` for a folder named directly: it and every folder above it."""
        parts = rel_dir.split("/")
        return all(self.enter("/".join(parts[: i + 1])) for i in range(len(parts)))

    def reachable(self, rel: str) -> bool:
        """``keep`` for a path named directly (the watcher's changed paths): every folder above it too."""
        parts = rel.split("/")
        return all(self.enter("/".join(parts[: i + 1])) for i in range(len(parts) - 1)) and self.keep(rel)

    def explicitly_included(self, rel: str) -> bool:
        return bool(self.include) and matches(rel, self.include)


def looks_minified(path: Path, head: bytes | None = None) -> bool:
    """A text asset whose first 64 KB holds a line longer than ``MAX_LINE``: minified or generated."""
    if path.suffix.lower() not in _MINIFIED_SUFFIXES:
        return False
    if head is None:
        try:
            with path.open("rb") as f:
                head = f.read(_SNIFF)
        except OSError:
            return False
    return any(len(line) > MAX_LINE for line in head[:_SNIFF].split(b"\n"))
