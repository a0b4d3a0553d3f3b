"""The ``localrag`` command line. Bad input exits non-zero with a one-line reason."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localrag.errors import InvalidInputError, LocalRagError

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localrag", description="Offline-first RAG engine.")
    parser.add_argument("--data", default=os.environ.get("LOCALRAG_DATA", "./localrag-data"),
                        help="data directory (default: $LOCALRAG_DATA or ./localrag-data)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add files or directories")
    p.add_argument("paths", nargs="+")
    p.add_argument("--namespace", default="")
    p.add_argument("--include", action="append", default=[], help="glob to include (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="glob to exclude (repeatable)")
    p.add_argument("--metadata", type=_json_arg, help="JSON object merged into every document's metadata")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query")
    _search_options(p)

    p = sub.add_parser("stats", help="store and index figures")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("delete", help="delete documents by id or filter")
    p.add_argument("--doc-id", action="append", dest="doc_ids")
    p.add_argument("--filter", type=_json_arg)
    p.add_argument("--namespace", default="")

    p = sub.add_parser("reindex", help="rebuild the indexes from the store")
    p.add_argument("--namespace")

    p = sub.add_parser("models", help="list known models; --prepare exports the ONNX embedders")
    p.add_argument("--prepare", action="store_true")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("eval", help="evaluate retrieval on a BEIR-format dataset")
    p.add_argument("--dataset", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--mode", action="append", choices=["keyword", "dense", "hybrid"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="also write the JSON results here")

    p = sub.add_parser("demo", help="ingest the bundled sample corpus and run a sample search")
    p.add_argument("--question", default=None)
    return parser


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--mode", choices=["dense", "keyword", "hybrid"])
    p.add_argument("--filter", type=_json_arg)
    p.add_argument("--namespace", default="")
    p.add_argument("--fusion", choices=["rrf", "weighted"])
    p.add_argument("--alpha", type=float)
    p.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Callable[[argparse.Namespace], int] = globals()[f"cmd_{args.command}"]
    try:
        return handler(args)
    except LocalRagError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _open(args: argparse.Namespace, read_only: bool = False) -> Any:
    from localrag.engine import LocalRAG

    return LocalRAG(args.data, read_only=read_only)


def _progress_bar(desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="doc", file=sys.stderr, disable=not sys.stderr.isatty())

    def update(docs: int, chunks: int) -> None:
        bar.n = docs
        bar.set_postfix(chunks=chunks, refresh=False)
        bar.refresh()

    return update, bar.close


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.metadata is not None and not isinstance(args.metadata, dict):
        raise InvalidInputError("--metadata must be a JSON object")
    update, close = _progress_bar("ingest")
    with _open(args) as rag:
        try:
            report = rag.add(args.paths, namespace=args.namespace, metadata=args.metadata,
                             include=args.include, exclude=args.exclude, progress=update)
        finally:
            close()
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
    with _open(args, read_only=True) as rag:
        hits = rag.search(args.query, k=args.k, mode=args.mode, filter=args.filter, namespace=args.namespace,
                          fusion=args.fusion, alpha=args.alpha)
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.source or hit.doc_id}" + (f" p.{hit.page}" if hit.page else "")
        print(f"[{rank}] {hit.score:.4f}  {hit.title or hit.doc_id}  ({where} chars {hit.char_start}-{hit.char_end})")
        print("    " + " ".join(hit.text.split())[:300])
    return 0


def _hit_json(hit: Any) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": hit.score, "scores": dict(hit.scores),
            "title": hit.title, "source": hit.source, "page": hit.page, "char_start": hit.char_start,
            "char_end": hit.char_end, "namespace": hit.namespace, "metadata": dict(hit.metadata), "text": hit.text}


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as rag:
        stats = rag.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"data: {stats['path']}  (store {stats['store_bytes'] / 1e6:.1f} MB, generation {stats['generation']})")
    print(f"embedder: {stats['embedder']}  documents: {stats['documents']}  chunks: {stats['chunks']}")
    for name, ns in stats["namespaces"].items():
        print(f"  namespace {name!r}: {ns['documents']} documents, {ns['chunks']} chunks, "
              f"vector index {ns.get('vector_index', '-')}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if bool(args.doc_ids) == (args.filter is not None):
        raise InvalidInputError("give --doc-id (repeatable) or --filter, not both")
    with _open(args) as rag:
        count = rag.delete(doc_ids=args.doc_ids, filter=args.filter, namespace=args.namespace)
    print(f"deleted {count} documents")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    with _open(args) as rag:
        rag.reindex(args.namespace)
        stats = rag.stats()
    print(f"rebuilt indexes: {stats['chunks']} chunks in {len(stats['namespaces'])} namespaces")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from localrag.models import list_models

    if args.prepare:
        from localrag.embed.factory import prepare_models

        prepare_models()
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


def cmd_eval(args: argparse.Namespace) -> int:
    from localrag.eval.runner import evaluate, format_table

    update, close = _progress_bar("ingest corpus")
    with _open(args) as rag:
        try:
            results = evaluate(rag, args.dataset, split=args.split,
                               modes=args.mode or ["keyword", "dense", "hybrid"], progress=update)
        finally:
            close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from localrag.samples import SAMPLE_DIR, SAMPLE_QUESTION

    question = args.question or SAMPLE_QUESTION
    with _open(args) as rag:
        report = rag.add(SAMPLE_DIR, namespace="demo", exclude=["LICENSE.txt"])
        print(f"ingested the bundled sample corpus ({SAMPLE_DIR}): {len(report.added)} added, "
              f"{len(report.unchanged)} unchanged, {report.chunks_added} chunks")
        print(f"question: {question}")
        hits = rag.search(question, k=3, namespace="demo")
    for rank, hit in enumerate(hits, start=1):
        print(f"[{rank}] {hit.title or Path(hit.source).name} ({Path(hit.source).name}, "
              f"chars {hit.char_start}-{hit.char_end}, score {hit.score:.4f})")
        print("    " + " ".join(hit.text.split())[:400])
    return 0 if hits else 1


if __name__ == "__main__":
    sys.exit(main())
