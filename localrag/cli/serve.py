"""``localrag serve``, which says where it listens, when it is ready, and when it has stopped."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from localrag.errors import DependencyMissingError, NotFoundError


def add_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the RAG API, OpenAI-compatible chat and Pinecone's REST API")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory (overrides the global --data)")
    p.add_argument("--host", default="127.0.0.1", help="bind address; non-loopback needs an API key")
    p.add_argument("--port", type=int, default=5080, help="TCP port (default 5080; 0: any free port, printed)")
    p.add_argument("--api-key", action="append", default=[], dest="api_keys",
                   help="an accepted Api-Key (repeatable; also $LOCALRAG_API_KEYS, comma-separated)")
    p.add_argument("--watch", action="append", default=[], metavar="DIR",
                   help="keep this folder in sync while serving, as `localrag watch` does (repeatable)")
    p.set_defaults(handler=cmd_serve)


class _Stopped(BaseException):
    """Raised by the CLI's signal handler: outside uvicorn's own handling (while the engine opens, or
    when uvicorn re-raises the signal after its graceful shutdown) a signal ends ``serve`` here."""

    def __init__(self, sig: int) -> None:
        super().__init__(sig)
        self.sig = sig


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from localrag.server import serve
    except ImportError as e:
        raise DependencyMissingError("localrag serve needs the server extra: pip install 'localrag[server]'") from e
    from localrag.config import load_settings
    from localrag.server.security import split_keys

    env_keys = [k.strip() for k in os.environ.get("LOCALRAG_API_KEYS", "").split(",") if k.strip()]
    keys = list(args.api_keys) + env_keys
    missing = [d for d in args.watch if not Path(d).is_dir()]
    if missing:
        raise NotFoundError(f"--watch: not a folder: {', '.join(missing)}")
    shown = split_keys(load_settings(Path(args.data)).server.api_keys, keys)
    auth = f"API keys on ({len(shown)})" if shown else "API keys off (only loopback clients can reach it)"

    def on_signal(sig: int, frame: FrameType | None) -> None:
        raise _Stopped(sig)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    stopped_by = "shut down"
    try:
        watching = f"; watching {', '.join(args.watch)}" if args.watch else ""
        print(f"localrag serve: data directory {args.data}; {auth}{watching}", flush=True)
        with _announce_when_listening(uvicorn, _print_ready):
            serve(args.data, args.host, args.port, keys, watch=args.watch)
    except _Stopped as stop:
        stopped_by = signal.Signals(stop.sig).name
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"localrag serve stopped ({stopped_by})", flush=True)
    return 0


def _print_ready(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(f"ready: accepting connections on http://{shown}:{port}", flush=True)


@contextmanager
def _announce_when_listening(uvicorn: Any, on_ready: Callable[[str, int], None]) -> Iterator[None]:
    """While active, a uvicorn server in this process calls ``on_ready(host, port)`` once its sockets
    listen (the real port when 0 was asked for).

    ``localrag.server.serve`` owns the uvicorn server and runs it to the end; the one moment the CLI
    needs from it is the end of ``uvicorn.Server.startup``, so that method is wrapped for the
    duration (this process is the CLI's own) and put back after.
    """
    original = uvicorn.Server.startup

    async def startup(server: Any, sockets: Any = None) -> None:
        await original(server, sockets=sockets)
        if not server.started:  # startup failed; uvicorn has said why
            return
        for listening in server.servers:
            for sock in listening.sockets:
                host, port = sock.getsockname()[:2]
                on_ready(str(host), int(port))
                return

    uvicorn.Server.startup = startup
    try:
        yield
    finally:
        uvicorn.Server.startup = original
