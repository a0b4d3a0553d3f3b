"""What every command group shares: argument types, option sets, opening a data directory, progress."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_BAD_INPUT = 2


def json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def require_data(args: argparse.Namespace) -> None:
    """Refuse a --data that is not a data directory, so a mistyped path never creates an empty store."""
    from localrag.store.datadir import require_store

    require_store(args.data)


def open_rag(args: argparse.Namespace, read_only: bool = False, *, existing: bool = False) -> Any:
    """The LocalRAG of --data; ``existing``: the directory must already be one (read commands)."""
    from localrag.engine import LocalRAG

    if existing or read_only:
        require_data(args)
    return LocalRAG(args.data, read_only=read_only)


def progress_bar(desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """(update(docs, chunks), close) for a bar on stderr, drawn only when stderr is a terminal."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="doc", file=sys.stderr, disable=not sys.stderr.isatty())

    def update(docs: int, chunks: int) -> None:
        bar.n = docs
        bar.set_postfix(chunks=chunks, refresh=False)
        bar.refresh()

    return update, bar.close


def counter(desc: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(update(documents), close): a running count on stderr, drawn only when it is a terminal."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="doc", file=sys.stderr, disable=not sys.stderr.isatty())

    def update(done: int) -> None:
        bar.n = done
        bar.refresh()

    return update, bar.close


def search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=5, help="how many results (default: 5)")
    p.add_argument("--mode", choices=["dense", "keyword", "hybrid"],
                   help="dense (vectors), keyword (BM25) or hybrid (both, fused); default: search.mode")
    p.add_argument("--filter", type=json_arg,
                   help='metadata filter in Pinecone\'s language, as JSON, e.g. \'{"year": {"$gte": 2020}}\'')
    p.add_argument("--namespace", default="", help="the namespace to search (default: the default one, '')")
    p.add_argument("--fusion", choices=["rrf", "weighted"],
                   help="how hybrid search merges dense and keyword results (default: search.fusion)")
    p.add_argument("--alpha", type=float, help="weighted fusion: the dense share, 0 to 1 (default: search.alpha)")
    p.add_argument("--strategy", choices=["none", "multi_query", "hyde", "decompose", "auto"],
                   help="query strategy: expand the query with the LLM before searching (default: learn.strategy)")
    p.add_argument("--self-query", dest="self_query", choices=["off", "boost", "filter"],
                   help="read a metadata filter from the query and boost or filter by it (default: learn.self_query)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="LLM: a registry name (localrag models) or a path to a .gguf file")
    p.add_argument("--provider", help="generator chain, e.g. llamacpp,extractive or openai or extractive")
    p.add_argument("--base-url", help="OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: generate.threads)")
    p.add_argument("--max-tokens", type=int, help="longest answer, in tokens (default: generate.max_tokens)")
    p.add_argument("--no-stream", action="store_true", help="print the answer only when it is complete")
