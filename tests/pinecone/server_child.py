"""Child for the SIGKILL test: ``localrag serve`` in its own process, under the network guard."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import netguard

netguard.install()

from localrag.pinecone.server import serve  # noqa: E402

if __name__ == "__main__":
    serve(sys.argv[1], "127.0.0.1", int(sys.argv[2]))
