"""Reconcile the store with folders: ``localrag sync`` and the watcher's every batch.

One reconcile, per root:

1. walk the folder (``ignore.IgnoreRules``: default excludes, ``.localragignore``, include/exclude);
2. a file whose size and mtime equal its recorded state is unchanged, judged without reading it
   (10,000 unchanged files: one stat each plus one indexed query);
3. any other file is read and hashed; the same hash as its state only refreshes the state, the same
   hash as a file that vanished in this reconcile is a rename (the document keeps its id and moves);
4. new and changed files are parsed (in the parse worker), checked against indexed documents for
   near-duplicates (``dedup``), and ingested in batches; a batch's file states are written after its
   documents commit, so a crash between the two is repaired by the next reconcile;
5. documents of vanished files are deleted, and duplicates that pointed at them are taken up again.

Files that cannot be judged now (unreadable, still being written) are skipped with the reason and
listed in ``SyncReport.retry``; no state is written for them, so the next reconcile tries again.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from localrag import failpoints
from localrag.errors import InvalidInputError
from localrag.events import ProgressTracker
from localrag.ingest import dedup
from localrag.ingest.errors import LoaderError
from localrag.ingest.ignore import IgnoreRules, looks_minified
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import load_file
from localrag.store.files import FileState, FileStates
from localrag.types import Document, SkippedFile

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    namespace: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    default_excludes: bool = True
    dedup: bool = True
    batch_files: int = 32
    settle_s: float = 0.0  # watch: a file modified this recently may still be being written


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: int = 0
    deleted: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (old path, new path)
    duplicates: tuple[tuple[str, str], ...] = ()  # (path, doc id it duplicates)
    skipped: tuple[SkippedFile, ...] = ()
    retry: tuple[str, ...] = ()  # skipped for now (unreadable, still being written): tried again later
    seconds: float = 0.0


@dataclass(slots=True)
class _Seen:
    path: str
    root: str
    size: int
    mtime_ns: int
    sha256: str = ""


@dataclass(slots=True)
class _Run:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    unchanged: int = 0


def _root(path: str | Path) -> Path:
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise InvalidInputError(f"not a folder: {root}")
    return Path(os.path.realpath(root))


def _visible(rel: Path) -> bool:
    """Hidden entries (a name starting with '.') are never synced, at any depth."""
    return not any(part.startswith(".") for part in rel.parts)


class Syncer:
    def __init__(self, rag: LocalRAG, options: SyncOptions) -> None:
        self.rag = rag
        self.options = options
        self.states = FileStates(rag.store)
        self.max_bytes = int(rag.settings.ingest.max_file_mb * 1024 * 1024)
        self.limits = ParseLimits.from_settings(rag.settings.ingest)
        self.data_dir = os.path.realpath(rag.path)  # a data directory inside a synced folder is not content

    # -- the walk -------------------------------------------------------------------------
    def _walk(self, root: Path, start: Path, rules: IgnoreRules, run: _Run) -> Iterator[_Seen]:
        """Kept files under ``start`` (inside ``root``), depth first in sorted order; symlinked folders
        are not followed (no loops), a symlinked file is taken when its target is a readable file."""
        stack = [start]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as e:
                self._skip(run, folder.as_posix(), f"cannot list folder: {e.strerror or e}", retry=True)
                continue
            below: list[Path] = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = Path(entry.path).relative_to(root).as_posix()
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if rules.enter(rel) and entry.path != self.data_dir:
                            below.append(Path(entry.path))
                        continue
                    if not rules.keep(rel):
                        continue
                    st = os.stat(entry.path)  # follows a symlinked file to its target
                except OSError as e:
                    reason = "symlink loop" if e.errno == errno.ELOOP else f"cannot stat: {e.strerror or e}"
                    if e.errno == errno.ENOENT and entry.is_symlink():
                        reason = "broken symlink"
                    self._skip(run, entry.path, reason, retry=e.errno not in (errno.ELOOP, errno.ENOENT))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    self._skip(run, entry.path, "symlinked folder not followed", retry=False)
                elif stat.S_ISREG(st.st_mode):
                    yield _Seen(entry.path, root.as_posix(), st.st_size, st.st_mtime_ns)
                else:
                    self._skip(run, entry.path, "not a regular file", retry=False)
            stack.extend(reversed(below))  # popped in name order: the walk order is the sorted path order

    def _skip(self, run: _Run, path: str, reason: str, *, retry: bool) -> None:
        log.info("sync skipped %s: %s", path, reason)
        run.skipped.append(SkippedFile(path, reason))
        if retry:
            run.retry.append(path)
        self.rag.events.publish("skip", path=path, namespace=self.options.namespace, reason=reason,
                                data={"retry": retry})

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self, roots: Sequence[str | Path], scope: Iterable[str | Path] | None = None) -> SyncReport:
        """Reconcile ``roots``; with ``scope`` (the watcher's changed paths), only those paths
        (a folder in scope: everything under it)."""
        started = time.perf_counter()
        run = _Run()
        ns = self.options.namespace
        seen: dict[str, _Seen] = {}
        known: dict[str, FileState] = {}
        scoped = None if scope is None else [
            Path(os.path.abspath(p)) for p in scope
            if not os.path.abspath(p).startswith(self.data_dir + os.sep) and os.path.abspath(p) != self.data_dir
        ]  # fmt: skip
        for raw in roots:
            root = _root(raw)
            rules = IgnoreRules(root, self.options.include, self.options.exclude,
                                use_defaults=self.options.default_excludes)
            recorded = self.states.under(ns, root.as_posix())
            starts = [root] if scoped is None else [p for p in scoped if p == root or root in p.parents]
            for start in starts:
                prefix = start.as_posix()
                if start.is_dir() and not start.is_symlink():
                    rel = start.relative_to(root)
                    if start != root and not (_visible(rel) and rules.folder_reachable(rel.as_posix())):
                        found: Iterable[_Seen] = ()
                    else:
                        found = self._walk(root, start, rules, run)
                elif start != root and _visible(start.relative_to(root)) and rules.reachable(
                    start.relative_to(root).as_posix()
                ):
                    found = list(self._walk_one(root, start, run))
                else:
                    found = ()
                for item in found:
                    seen[item.path] = item
                known.update({p: s for p, s in recorded.items() if p == prefix or p.startswith(prefix + "/")})
        self._apply(seen, known, run)
        if scoped is None:
            self._sweep([_root(r).as_posix() for r in roots], run)
        report = SyncReport(
            tuple(run.added), tuple(run.updated), run.unchanged, tuple(run.deleted), tuple(run.renamed),
            tuple(run.duplicates), tuple(run.skipped), tuple(dict.fromkeys(run.retry)),
            time.perf_counter() - started,
        )  # fmt: skip
        self.rag.events.publish("sync", namespace=ns, data={
            "added": len(report.added), "updated": len(report.updated), "unchanged": report.unchanged,
            "deleted": len(report.deleted), "renamed": len(report.renamed), "duplicates": len(report.duplicates),
            "skipped": len(report.skipped), "retry": len(report.retry), "seconds": report.seconds,
        })  # fmt: skip
        return report

    def _sweep(self, roots: list[str], run: _Run) -> None:
        """Delete documents that name a synced root but no file state: a sync killed after a batch
        committed but before its states were written, whose files then vanished, leaves such orphans."""
        ns = self.options.namespace
        ns_id = self.rag.store.namespace_id(ns)
        if ns_id is None:
            return
        self.rag._sync()  # the filter table must reflect the store before it is asked
        orphans: set[str] = set()
        for root in roots:
            held = {d for state in self.states.under(ns, root).values() for d in state.doc_ids}
            orphans.update(d for d in self.rag.retriever.matching_doc_ids(ns_id, {"root": root}) if d not in held)
        if orphans:
            log.info("sync: removing %d documents whose files vanished without a recorded state", len(orphans))
            self.rag.delete(doc_ids=sorted(orphans), namespace=ns)
            run.deleted.extend(sorted(orphans))

    def _walk_one(self, root: Path, path: Path, run: _Run) -> Iterator[_Seen]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return  # gone: the caller finds its state unmatched
        except OSError as e:
            reason = "symlink loop" if e.errno == errno.ELOOP else f"cannot stat: {e.strerror or e}"
            self._skip(run, path.as_posix(), reason, retry=e.errno != errno.ELOOP)
            return
        if stat.S_ISREG(st.st_mode):
            yield _Seen(path.as_posix(), root.as_posix(), st.st_size, st.st_mtime_ns)

    def _apply(self, seen: dict[str, _Seen], known: dict[str, FileState], run: _Run) -> None:
        ns = self.options.namespace
        touched: list[FileState] = []
        candidates: list[_Seen] = []
        for path, item in seen.items():
            state = known.get(path)
            if state is not None and state.size == item.size and state.mtime_ns == item.mtime_ns:
                run.unchanged += 1
                continue
            if not self._hash(item, run):
                continue
            if state is not None and state.sha256 == item.sha256:
                touched.append(replace(state, size=item.size, mtime_ns=item.mtime_ns))
                run.unchanged += 1
            else:
                candidates.append(item)
        self.states.put(ns, touched)
        gone = {p: s for p, s in known.items() if p not in seen and p not in run.retry}
        by_sha = {s.sha256: s for s in gone.values() if s.status == "indexed"}
        renames: dict[str, FileState] = {}
        for item in candidates:
            old = by_sha.pop(item.sha256, None) if item.path not in known else None
            if old is not None:
                renames[item.path] = old
                del gone[old.path]
        deleted_ids = self._delete(gone, run)
        for dup in self.states.duplicates_of(ns, deleted_ids):  # their original is gone: index them now
            self.states.remove(ns, [dup.path])
            again = seen.get(dup.path) or next(self._walk_one(Path(dup.root), Path(dup.path), run), None)
            if again is not None and again not in candidates and self._hash(again, run):
                candidates.append(again)
        self._ingest(candidates, known, renames, run)

    def _hash(self, item: _Seen, run: _Run) -> bool:
        """Read and hash ``item``; False (skipped, retried later) when it cannot be read or is changing."""
        if item.size > self.max_bytes:
            item.sha256 = f"size:{item.size}:{item.mtime_ns}"  # never read: the loader refuses it by size
            return True
        age = time.time() - item.mtime_ns / 1e9
        if self.options.settle_s and 0 <= age < self.options.settle_s:  # (a future mtime is clock skew, not a write)
            self._skip(run, item.path, "still being written (modified moments ago)", retry=True)
            return False
        digest = hashlib.sha256()
        try:
            with open(item.path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            after = os.stat(item.path)
        except OSError as e:
            self._skip(run, item.path, f"cannot read: {e.strerror or e}", retry=True)
            return False
        if (after.st_size, after.st_mtime_ns) != (item.size, item.mtime_ns):
            self._skip(run, item.path, "still being written (size or mtime changed while reading)", retry=True)
            return False
        item.sha256 = digest.hexdigest()
        return True

    def _delete(self, gone: dict[str, FileState], run: _Run) -> list[str]:
        ns = self.options.namespace
        ids = {d for s in gone.values() if s.status == "indexed" for d in s.doc_ids}
        ids -= self.states.doc_ids_in_use(ns, ids, excluding=gone)
        if ids:
            self.rag.delete(doc_ids=sorted(ids), namespace=ns)
        self.states.remove(ns, gone)
        run.deleted.extend(sorted(ids))
        return sorted(ids)

    # -- ingest ---------------------------------------------------------------------------
    def _ingest(self, items: list[_Seen], known: dict[str, FileState], renames: dict[str, FileState],
                run: _Run) -> None:
        ns = self.options.namespace
        tracker = ProgressTracker(self.rag.events, ns, len(items))
        index = dedup.SignatureIndex(*self.states.signatures(ns)) if self.options.dedup else None
        step = max(1, self.options.batch_files)
        for start in range(0, len(items), step):
            documents: list[Document] = []
            states: list[FileState] = []
            stale: set[str] = set()
            for item in items[start : start + step]:
                old = renames.get(item.path) or known.get(item.path)
                docs, state = self._load(item, old, run)
                signature = state.signature
                if state.status == "indexed" and index is not None and signature is not None:
                    match = index.best_match(signature, set(old.doc_ids) if old else set())
                    if match is not None:
                        state = replace(state, status="duplicate", doc_ids=(), duplicate_of=match[0])
                        run.duplicates.append((item.path, match[0]))
                        self.rag.events.publish("duplicate", doc_id=match[0], path=item.path, namespace=ns,
                                                reason=f"near-duplicate of {match[0]} (similarity {match[1]:.2f})")
                        docs = []
                    else:
                        index.add(docs[0].doc_id, signature)
                if old is not None:
                    stale.update(set(old.doc_ids) - set(state.doc_ids))
                if item.path in renames:
                    run.renamed.append((renames[item.path].path, item.path))
                    self.rag.events.publish("rename", doc_id=",".join(state.doc_ids), path=item.path,
                                            namespace=ns, data={"from": renames[item.path].path})
                documents.extend(docs)
                states.append(state)
            if documents:
                report = self.rag._ingest(documents, ns, tracker=tracker)
                run.added.extend(report.added)
                run.updated.extend(report.updated)
            if stale:
                self.rag.delete(doc_ids=sorted(stale), namespace=ns)
                run.deleted.extend(sorted(stale))
            failpoints.hit("sync.mid_batch")  # documents committed, their file states not yet recorded
            self.states.put(ns, states, remove=[renames[s.path].path for s in states if s.path in renames])

    def _load(self, item: _Seen, old: FileState | None, run: _Run) -> tuple[list[Document], FileState]:
        base = FileState(item.path, item.root, item.size, item.mtime_ns, item.sha256, "skipped")
        path = Path(item.path)
        if looks_minified(path) and not IgnoreRules(Path(item.root), self.options.include).explicitly_included(
            path.relative_to(item.root).as_posix()
        ):
            reason = "minified or generated (a line over 2000 characters); --include it to index it anyway"
            self._skip(run, item.path, reason, retry=False)
            return [], replace(base, reason=reason)
        try:
            loaded = load_file(path, max_bytes=self.max_bytes, limits=self.limits)
        except LoaderError as e:
            self._skip(run, item.path, e.reason, retry=False)
            return [], replace(base, reason=e.reason)
        docs = []
        for doc in loaded:
            doc_id = old.doc_ids[0] if old is not None and len(loaded) == 1 and len(old.doc_ids) == 1 else doc.doc_id
            docs.append(replace(doc, doc_id=doc_id, metadata={**doc.metadata, "root": item.root}))
        signature = dedup.signature(docs[0].text) if len(docs) == 1 else None
        return docs, replace(base, status="indexed", doc_ids=tuple(d.doc_id for d in docs), signature=signature)
