"""``localrag serve``, which says where it listens, when it is ready, and when it has stopped."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from localrag.errors import ConfigError, DependencyMissingError

GRACEFUL_SHUTDOWN_S = 5  # open streams (SSE answers) are cut after this, so SIGTERM ends the process promptly


def add_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the RAG API, OpenAI-compatible chat and Pinecone's REST API")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory (overrides the global --data)")
    p.add_argument("--host", default="127.0.0.1", help="bind address; non-loopback needs an API key")
    p.add_argument("--port", type=int, default=5080, help="TCP port (default 5080; 0: any free port, printed)")
    p.add_argument("--api-key", action="append", default=[], dest="api_keys",
                   help="an accepted Api-Key (repeatable; also $LOCALRAG_API_KEYS, comma-separated)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from localrag.server.app import create_app
    except ImportError as e:
        raise DependencyMissingError("localrag serve needs the server extra: pip install 'localrag[server]'") from e
    from localrag.config import load_settings
    from localrag.pinecone.server import is_loopback
    from localrag.server.security import split_keys

    settings = load_settings(Path(args.data))
    keys = split_keys(settings.server.api_keys, args.api_keys, os.environ.get("LOCALRAG_API_KEYS", ""))
    if not keys and not is_loopback(args.host):
        raise ConfigError(f"refusing to serve on {args.host} without an API key: pass --api-key (or set "
                          "LOCALRAG_API_KEYS or server.api_keys), or bind 127.0.0.1")
    received: list[int] = []
    server: Any = None

    def on_signal(sig: int, frame: FrameType | None) -> None:
        # Before uvicorn takes over the signals (while the engine opens) and after it gives them
        # back (it re-raises what it caught): record the signal and stop instead of dying mid-way.
        received.append(sig)
        if server is not None:
            server.should_exit = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        auth = f"API keys on ({len(keys)})" if keys else "API keys off (only loopback clients can reach it)"
        print(f"localrag serve: data directory {args.data}; {auth}", flush=True)
        app = create_app(args.data, keys, settings=settings)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
        server = _announcing_server(uvicorn, config, _print_ready)
        if not received:
            server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    why = signal.Signals(received[0]).name if received else "shut down"
    print(f"localrag serve stopped ({why})", flush=True)
    return 0


def _print_ready(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(f"ready: accepting connections on http://{shown}:{port}", flush=True)


def _announcing_server(uvicorn: Any, config: Any, on_ready: Callable[[str, int], None]) -> Any:
    """A uvicorn Server that calls ``on_ready(host, port)`` once its sockets listen (the real port
    when 0 was asked for)."""

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit:  # startup failed (uvicorn has said why)
                return
            for listening in self.servers:
                for sock in listening.sockets:
                    host, port = sock.getsockname()[:2]
                    on_ready(str(host), int(port))
                    return

    return AnnouncingServer(config)
