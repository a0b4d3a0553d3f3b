"""Child for the crash loop: ``localrag serve``'s app (the RAG API and the Pinecone API) in its own process.

``crash_server_child.py DATA``. It binds a free loopback port itself, listens, prints ``PORT <n>``
and then serves, so the parent connects without polling and without a port race. The engine uses
the fake embedder and the extractive provider: what is tested is the write path. A failpoint armed
in ``LOCALRAG_FAILPOINTS`` SIGKILLs it mid-request.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import netguard

netguard.install()

import uvicorn  # noqa: E402
from fakes import HashingEmbedder  # noqa: E402

from localrag.config import load_settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.server import create_app  # noqa: E402


def main() -> None:
    data = Path(sys.argv[1])
    # No periodic metrics file: the child should do nothing the parent did not ask for.
    settings = load_settings(data).with_overrides(
        {"generate": {"providers": "extractive"}, "server": {"metrics_flush_s": 0}}
    )
    rag = LocalRAG(data, settings=settings, embedder=HashingEmbedder())
    app = create_app(data, rag=rag)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from here on, before uvicorn starts accepting them
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
