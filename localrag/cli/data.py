"""Commands on whole data directories: backup, restore, export, import, recover, doctor."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from localrag.cli.common import counter


def add_commands(sub: Any) -> None:
    p = sub.add_parser("backup", help="copy the data directory into a new one (safe while `serve` runs)")
    p.add_argument("dest", type=Path, metavar="DEST", help="the new directory to write (must not exist or be empty)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_backup)

    p = sub.add_parser("restore", help="make --data a copy of a backup (refused while a writer uses it)")
    p.add_argument("source", type=Path, metavar="SRC", help="a directory written by `localrag backup`")
    p.add_argument("--force", action="store_true", help="replace --data even if it already holds a data directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_restore)

    p = sub.add_parser("export", help="write every document, its chunks and vectors as JSON lines")
    p.add_argument("file", type=Path, metavar="FILE", help="the .jsonl file to write (replaced if it exists)")
    p.add_argument("--namespace", help="export only this namespace (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("import", help="add the documents of an export (vectors kept when the models match)")
    p.add_argument("file", type=Path, metavar="FILE", help="a .jsonl file written by `localrag export`")
    p.add_argument("--reembed", action="store_true",
                   help="embed documents from another embedding model again with this directory's model "
                        "(without it they are refused)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("recover", help="salvage a damaged store into a new one and rebuild the indexes")
    p.add_argument("--out", type=Path,
                   help="write the recovered data directory here (default: in place, keeping the damaged file)")
    p.add_argument("--no-sqlite3", dest="use_cli", action="store_false",
                   help="do not use the sqlite3 program's .recover; copy readable rows in Python only")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_recover)

    p = sub.add_parser("doctor", help="check models, settings and the data directory; non-zero exit if broken")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_doctor)


def _print_json(report: Any) -> None:
    is_record = dataclasses.is_dataclass(report) and not isinstance(report, type)
    print(json.dumps(dataclasses.asdict(report) if is_record else report, indent=2))


def cmd_backup(args: argparse.Namespace) -> int:
    from localrag.store.backup import backup

    report = backup(args.data, args.dest)
    if args.json:
        _print_json(report)
    else:
        extra = f"; also {', '.join(report.parts)}" if report.parts else ""
        print(f"backed up {report.source} to {report.target}: {report.documents} documents, {report.chunks} chunks "
              f"(store {report.store_bytes / 1e6:.1f} MB, generation {report.generation}{extra})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from localrag.store.backup import restore

    report = restore(args.source, args.data, force=args.force)
    if args.json:
        _print_json(report)
    else:
        verb = "replaced" if report.replaced else "restored"
        print(f"{verb} {report.target} from {report.source}: {report.documents} documents, {report.chunks} chunks")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from localrag.store.transfer import export_jsonl

    update, close = counter("export")
    try:
        report = export_jsonl(args.data, args.file, namespace=args.namespace, progress=update)
    finally:
        close()
    if args.json:
        _print_json(report)
    else:
        print(f"exported {report.documents} documents ({report.chunks} chunks) to {report.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from localrag.store.transfer import import_jsonl

    update, close = counter("import")
    try:
        report = import_jsonl(args.file, args.data, reembed=args.reembed, progress=update)
    finally:
        close()
    if args.json:
        _print_json(report)
    else:
        print(f"imported {args.file}: added {report.added}, updated {report.updated}, unchanged {report.unchanged} "
              f"documents ({report.reembedded} embedded again); {report.chunks} chunks")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from localrag.store.recover import recover

    report = recover(args.data, args.out, use_cli=args.use_cli)
    if args.json:
        _print_json(report)
        return 0
    print(f"recovered {report.documents} documents, {report.chunks} chunks into {report.target} ({report.method}); "
          "indexes rebuilt")
    if report.damaged_file:
        print(f"the damaged store is kept as {report.damaged_file}")
    for table, count in report.unreadable.items():
        print(f"  {table}: {count} damaged stretch(es) skipped")
    for reason, count in report.dropped.items():
        print(f"  dropped {count} {reason}")
    if report.incomplete:
        shown = ", ".join(report.incomplete[:10]) + (" ..." if len(report.incomplete) > 10 else "")
        print(f"  {len(report.incomplete)} documents lost chunks; ingest their sources again: {shown}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from localrag.doctor import diagnose

    report = diagnose(Path(args.data))
    if args.json:
        _print_json(report)
    else:
        _print_doctor(report)
    return 0 if report["ok"] else 1


def _print_doctor(report: dict[str, Any]) -> None:
    versions = report["versions"]
    print("versions: " + ", ".join(f"{name} {version or '-'}" for name, version in versions.items()))
    print("models (* = configured):")
    for m in report["models"]:
        state = "installed" if m["installed"] else f"missing: {m['install']}"
        if m.get("prepared") is False:
            state += " (ONNX export not made: localrag models --prepare)"
        print(f"  {'*' if m['configured'] else ' '} {m['name']:<22} {m['kind']:<10} {state}")
    print("threads: " + ", ".join(f"{k} {v}" for k, v in report["threads"].items()))
    data = report["data"]
    print(f"data: {data['path']}")
    if data.get("exists"):
        print(f"  schema {data.get('schema_version')}, integrity {data.get('integrity')}, "
              f"generation {data.get('generation', '-')}, embedder {data.get('vector_space') or '-'}")
        for name, ns in data.get("namespaces", {}).items():
            print(f"  namespace {name!r}: {ns['documents']} documents, {ns['chunks']} chunks, "
                  f"index caches {data.get('indexes', {}).get(name, '-')}")
        if data.get("writer_pid"):
            print(f"  a writer is running: pid {data['writer_pid']}")
    for problem in report["problems"]:
        print(f"problem: {problem}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print("ok" if report["ok"] else f"{len(report['problems'])} problem(s) found")
