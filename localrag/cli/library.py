"""Commands that keep folders in sync with a data directory: ``sync`` and ``watch``."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from localrag.cli.common import open_rag
from localrag.cli.progress import event_progress
from localrag.errors import NotFoundError
from localrag.events import Event


def add_commands(sub: Any) -> None:
    p = sub.add_parser("sync", help="make the data directory match folders: add new and changed files, "
                                    "remove deleted ones (created if --data does not exist yet)")
    folder_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_sync)

    p = sub.add_parser("watch", help="sync folders, then keep them in sync as files change (Ctrl-C stops)")
    folder_options(p)
    p.add_argument("--json", action="store_true", help="print each event as a JSON line instead of text")
    p.set_defaults(handler=cmd_watch)


def folder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders to keep in sync (searched recursively)")
    p.add_argument("--namespace", default="", help="the namespace their documents live in (default: '')")
    p.add_argument("--include", action="append", default=[],
                   help="glob of files to index (repeatable); also takes files back from the default excludes")
    p.add_argument("--exclude", action="append", default=[], help="glob of files or folders to leave out (repeatable)")
    p.add_argument("--no-default-excludes", dest="default_excludes", action="store_false",
                   help="index build output, VCS folders, minified files and lock files too")
    p.add_argument("--no-dedup", dest="dedup", action="store_false",
                   help="index near-duplicate documents instead of linking them to the first copy")


def _check_dirs(dirs: list[str]) -> None:
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:  # before the data directory is opened, so a typo writes nothing
        raise NotFoundError(f"not a folder: {', '.join(missing)}")


def _options(args: argparse.Namespace) -> Any:
    from localrag.ingest.sync import SyncOptions

    return SyncOptions(args.namespace, tuple(args.include), tuple(args.exclude), args.default_excludes, args.dedup)


def report_dict(report: Any) -> dict[str, Any]:
    return {
        "added": len(report.added), "updated": len(report.updated), "unchanged": report.unchanged,
        "deleted": len(report.deleted), "renamed": [list(r) for r in report.renamed],
        "duplicates": [{"path": p, "duplicate_of": d} for p, d in report.duplicates],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "retry": list(report.retry), "seconds": round(report.seconds, 3),
    }  # fmt: skip


def _summary(report: Any) -> str:
    return (f"added {len(report.added)}, updated {len(report.updated)}, unchanged {report.unchanged}, "
            f"deleted {len(report.deleted)}, renamed {len(report.renamed)}, duplicates {len(report.duplicates)}, "
            f"skipped {len(report.skipped)} in {report.seconds:.1f}s")


def cmd_sync(args: argparse.Namespace) -> int:
    from localrag.ingest.sync import Syncer

    _check_dirs(args.dirs)
    with open_rag(args) as rag, event_progress(rag, "sync"):
        report = Syncer(rag, _options(args)).reconcile(args.dirs)
    if args.json:
        print(json.dumps(report_dict(report), indent=2))
        return 0
    print(_summary(report))
    for s in report.skipped:
        print(f"skipped {s.path}: {s.reason}")
    for path, original in report.duplicates:
        print(f"duplicate {path}: of {original}")
    return 0


def _line(event: Event) -> str:
    what = event.path or event.doc_id
    if event.kind == "rename":
        return f"renamed {event.data.get('from', '?')} -> {event.path}"
    return f"{event.kind} {what}" + (f": {event.reason}" if event.reason else "")


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[list[str]]:
    """SIGTERM and SIGINT stop the watch cleanly (the index caches are saved on the way out)."""
    seen: list[str] = []

    def handler(sig: int, frame: FrameType | None) -> None:
        seen.append(signal.Signals(sig).name)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield seen
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_watch(args: argparse.Namespace) -> int:
    from localrag.ingest.watch import Watcher

    _check_dirs(args.dirs)
    with open_rag(args) as rag:
        watcher = Watcher(rag, args.dirs, _options(args))

        def show(event: Event) -> None:
            print(json.dumps(event.to_json()) if args.json else _line(event), flush=True)

        def ready(report: Any) -> None:
            shown = json.dumps({"kind": "ready", "report": report_dict(report)}) if args.json else \
                f"{_summary(report)}\nwatching {', '.join(args.dirs)} (Ctrl-C stops)"
            print(shown, flush=True)
            rag.events.subscribe(show, kinds={"ingest", "update", "delete", "rename", "duplicate", "skip"})

        with _stop_on_signals(watcher.stop) as signals, event_progress(rag, "sync"):
            watcher.run(on_ready=ready)
    print(f"localrag watch stopped ({signals[0] if signals else 'shut down'})", flush=True)
    return 0
