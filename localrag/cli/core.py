"""Commands on documents and indexes: ingest, search, stats, delete, reindex, models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from localrag.cli.common import json_arg, open_rag, search_options
from localrag.cli.progress import event_progress
from localrag.errors import InvalidInputError, NotFoundError
from localrag.types import SearchRequest


def add_commands(sub: Any) -> None:
    p = sub.add_parser("ingest", help="add files or directories (created if --data does not exist yet)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (searched recursively)")
    p.add_argument("--namespace", default="", help="the namespace to add them to (default: the default one, '')")
    p.add_argument("--include", action="append", default=[], help="glob to include (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="glob to exclude (repeatable)")
    p.add_argument("--metadata", type=json_arg, help="JSON object merged into every document's metadata")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query", help="what to search for, in words")
    search_options(p)
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None,
                   help="rerank the first-stage candidates (default: rerank.enabled)")
    p.add_argument("--candidates", type=int, help="first-stage depth; with --rerank, how many are reranked (k1)")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("stats", help="store and index figures, and the server's metrics")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--prometheus", action="store_true", help="the server's last metrics, as GET /metrics shows them")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("delete", help="delete documents by id or filter")
    p.add_argument("--doc-id", action="append", dest="doc_ids", help="a document id to delete (repeatable)")
    p.add_argument("--filter", type=json_arg, help="delete every document whose metadata matches this JSON filter")
    p.add_argument("--namespace", default="", help="the namespace to delete from (default: '')")
    p.set_defaults(handler=cmd_delete)

    p = sub.add_parser("reindex", help="rebuild the indexes from the store")
    p.add_argument("--namespace", help="rebuild only this namespace (default: all)")
    p.set_defaults(handler=cmd_reindex)

    p = sub.add_parser("models", help="list known models; --prepare exports the ONNX embedders")
    p.add_argument("--prepare", action="store_true",
                   help="export and quantize the installed embedders to ONNX (once, offline; needs torch)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_models)


class _SkipLogFilter(logging.Filter):
    """The ingest report lists every skipped file with its reason; the ingest package also logs
    each one as a warning, which would show every skipped file twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("localrag.ingest") and record.getMessage().startswith("skipped "))


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.metadata is not None and not isinstance(args.metadata, dict):
        raise InvalidInputError("--metadata must be a JSON object")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:  # checked before the data directory is opened, so a typo writes nothing
        raise NotFoundError(f"no such file or directory: {', '.join(missing)}")
    quiet = _SkipLogFilter()
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        with open_rag(args) as rag, event_progress(rag, "ingest"):
            report = rag.add(args.paths, namespace=args.namespace, metadata=args.metadata,
                             include=args.include, exclude=args.exclude)
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
    summary = {
        "added": len(report.added), "updated": len(report.updated), "unchanged": len(report.unchanged),
        "chunks": report.chunks_added, "seconds": round(report.seconds, 2),
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        rate = report.chunks_added / report.seconds if report.seconds > 0 else 0.0
        print(f"added {summary['added']}, updated {summary['updated']}, unchanged {summary['unchanged']} "
              f"documents; {report.chunks_added} chunks in {report.seconds:.1f}s ({rate:.0f} chunks/s)")
        for s in report.skipped:
            print(f"skipped {s.path}: {s.reason}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with open_rag(args, read_only=True) as rag:
        request = SearchRequest(args.query, args.k, args.mode or rag.settings.search.mode, args.namespace, args.filter,
                                args.fusion, args.alpha, candidates=args.candidates, rerank=args.rerank,
                                strategy=args.strategy, self_query=args.self_query)
        result = rag.retrieve([request])[0]
    hits = result.hits
    if result.strategy != "none" or args.strategy:  # stderr: the JSON on stdout stays a list of hits
        print(f"strategy: {result.strategy}", file=sys.stderr)
    if result.route:
        print(f"route: {result.route}", file=sys.stderr)
    if result.self_query is not None:
        print("self-query: " + json.dumps(result.self_query, ensure_ascii=False), file=sys.stderr)
    if args.json:
        print(json.dumps([hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.source or hit.doc_id}" + (f" p.{hit.page}" if hit.page else "")
        print(f"[{rank}] {hit.score:.4f}  {hit.title or hit.doc_id}  ({where} chars {hit.char_start}-{hit.char_end};"
              f" chunk {hit.chunk_id})")
        print("    " + " ".join(hit.text.split())[:300])
    return 0


def hit_json(hit: Any) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": hit.score, "scores": dict(hit.scores),
            "title": hit.title, "source": hit.source, "page": hit.page, "char_start": hit.char_start,
            "char_end": hit.char_end, "namespace": hit.namespace, "metadata": dict(hit.metadata), "text": hit.text}


def cmd_stats(args: argparse.Namespace) -> int:
    from localrag.metrics import load_snapshot, summary

    with open_rag(args, read_only=True) as rag:
        stats = rag.stats()
        metrics = load_snapshot(rag.path)  # written by `localrag serve` every few seconds and at exit
    if args.prometheus:
        print(metrics.render() if metrics else "# no server metrics: `localrag serve` has not run on this data")
        return 0
    if metrics is not None:
        stats["server"] = summary(metrics)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"data: {stats['path']}  (store {stats['store_bytes'] / 1e6:.1f} MB, generation {stats['generation']})")
    print(f"embedder: {stats['embedder']}  documents: {stats['documents']}  chunks: {stats['chunks']}")
    for name, ns in stats["namespaces"].items():
        print(f"  namespace {name!r}: {ns['documents']} documents, {ns['chunks']} chunks, "
              f"vector index {ns.get('vector_index', '-')}")
    if "server" in stats:
        srv = stats["server"]
        caches = ", ".join(f"{n} {c['hit_rate']:.0%} of {c['hits'] + c['misses']}" for n, c in srv["caches"].items())
        print(f"server: {srv['requests']} requests, {srv['errors']} errors, tokens {srv['tokens_in']} in / "
              f"{srv['tokens_out']} out; cache hit rates: {caches}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if bool(args.doc_ids) == (args.filter is not None):
        raise InvalidInputError("give --doc-id (repeatable) or --filter, not both")
    with open_rag(args, existing=True) as rag:
        count = rag.delete(doc_ids=args.doc_ids, filter=args.filter, namespace=args.namespace)
    print(f"deleted {count} documents")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    with open_rag(args, existing=True) as rag:
        rag.reindex(args.namespace)
        stats = rag.stats()
    print(f"rebuilt indexes: {stats['chunks']} chunks in {len(stats['namespaces'])} namespaces")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from localrag.models import list_models

    if args.prepare:
        from localrag.embed.factory import prepare_models

        for item in prepare_models():
            where = item.path if item.path is not None else item.note
            print(f"{item.name}: {item.note if item.installed else 'not installed'} ({where})", file=sys.stderr)
    rows = [{"name": spec.name, "kind": spec.kind, "installed": installed, "dim": spec.dim,
             "package": spec.package, "license": spec.license} for spec, installed in list_models()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<24} {'kind':<10} {'installed':<9} {'dim':>5}  package")
    for r in rows:
        print(f"{r['name']:<24} {r['kind']:<10} {'yes' if r['installed'] else 'no':<9} "
              f"{r['dim'] or '-':>5}  {r['package']}")
    return 0
