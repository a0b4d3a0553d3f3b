"""``localrag serve`` as a newcomer runs it: a real process on 127.0.0.1 that says where it listens,
says when it is ready (and is: the first request right after that line succeeds), and says that it
stopped when sent SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.server
GUARD_S = 180  # a hung server fails the test instead of hanging it; nothing waits on the clock otherwise


def _lines(stream: object) -> queue.Queue[str]:
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            found.put(line.rstrip("\n"))
        found.put("<eof>")

    threading.Thread(target=pump, daemon=True).start()
    return found


@pytest.mark.parametrize("keys", [(), ("a-cli-key-of-32-characters-long!",)])
def test_serve_announces_ready_and_stops_on_sigterm(tmp_path: Path, keys: tuple[str, ...]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOCALRAG_SERVER__METRICS_FLUSH_S": "0"}
    env.pop("LOCALRAG_API_KEYS", None)
    args = [a for key in keys for a in ("--api-key", key)]
    child = subprocess.Popen([sys.executable, "-m", "localrag.cli", "--data", str(tmp_path / "data"), "serve",
                              "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env, cwd=tmp_path)
    try:
        out = _lines(child.stdout)
        seen = []
        while not seen or not seen[-1].startswith("ready:"):
            line = out.get(timeout=GUARD_S)
            assert line != "<eof>", f"serve exited before it was ready: {seen}"
            seen.append(line)
        assert ("API keys on (1)" if keys else "API keys off") in seen[0] and str(tmp_path / "data") in seen[0]
        match = re.fullmatch(r"ready: accepting connections on http://127\.0\.0\.1:(\d+)", seen[-1])
        assert match, seen
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/healthz", timeout=30) as response:
            assert response.status == 200  # ready means ready: no retry
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=GUARD_S) == 0
        rest = []
        while (line := out.get(timeout=GUARD_S)) != "<eof>":
            rest.append(line)
        assert "localrag serve stopped (SIGTERM)" in rest, rest
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
