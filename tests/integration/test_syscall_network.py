"""Offline at the system-call level: ``localrag demo``, ``ingest``, ``ask`` and a ``serve`` that answers a
search run under strace, and every connect/sendto/sendmsg of every process they start must stay on this
machine and look no name up. The socket guard in netguard.py sees only Python; onnxruntime 1.32's
telemetry uploader, for one, resolved mobile.events.data.microsoft.com from native code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hostile import children
from netguard import syscall_violations
from threaded_server import free_port

REPO = Path(__file__).resolve().parents[2]
# execve too: every run makes one, which proves strace traced it (a container may forbid ptrace).
STRACE = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,execve", "-e", "signal=none", "-s", "64"]
# The uploader's first lookup came 5 to 10 s into a process: the server lives longer than that.
TELEMETRY_DELAY_S = 15


def test_the_parser_flags_lookups_and_remote_addresses() -> None:
    trace = "\n".join([
        '21348 connect(17, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file)',
        '21349 connect(17, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
        '21349 sendto(17, "\\16\\362\\1\\0", 50, MSG_NOSIGNAL, NULL, 0) = 50',
        '7 connect(9, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16 <unfinished ...>',
        '8 sendto(3, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = 1',
        '9 connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '9 connect(6, {sa_family=AF_INET6, sin6_port=htons(5080), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '9 connect(7, {sa_family=AF_UNIX, sun_path="/tmp/some.sock"}, 16) = 0',
        '9 connect(8, {sa_family=AF_UNSPEC, sa_data="\\0\\0"}, 16) = 0',
        '9 sendto(4, {{nlmsg_len=20, nlmsg_type=RTM_GETADDR}}, 20, 0, {sa_family=AF_NETLINK, nl_pid=0}, 12) = 20',
    ])
    found = syscall_violations(trace)
    assert [v.split(":")[0] for v in found] == [
        "name-service lookup via /var/run/nscd/socket",
        "DNS query (connect to 10.255.255.53 port 53)",
        "DNS query (connect to 127.0.0.53 port 53)",
        "non-loopback sendto to 2001",
    ]


@pytest.mark.model
@pytest.mark.slow
def test_cli_commands_make_no_network_calls_at_the_syscall_level(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed; scripts/setup.sh installs it (apt-get install -y strace)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOCALRAG_EMBED__THREADS": "1", "LOCALRAG_GENERATE__THREADS": "1"}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # localrag must switch the telemetry off itself
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.txt").write_text("Tides rise and fall twice a day because the moon pulls on the oceans.\n")
    (docs / "bees.html").write_text("<html><body><p>Honeybees dance to show where flowers are.</p></body></html>")
    cli = [sys.executable, "-m", "localrag.cli", "--data", str(data)]
    runs = {
        "demo": [*cli[:3], "--data", str(tmp_path / "demo"), "demo", "--max-tokens", "16"],
        "ingest": [*cli, "ingest", str(docs)],
        "ask": [*cli, "ask", "Why do tides rise and fall?", "--provider", "extractive"],
    }
    found: dict[str, list[str]] = {}
    for name, command in runs.items():
        log = tmp_path / f"{name}.strace"
        done = subprocess.run([*STRACE, "-o", str(log), *command], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        _check_traced(log)
        found[name] = syscall_violations(log.read_text(errors="replace"))
    found["serve"] = _serve_one_search(tmp_path, cli, env)
    assert found == {name: [] for name in found}, found
    assert not list(tmp_path.glob("*.ses")), "onnxruntime left a telemetry session file in the working directory"


@pytest.mark.model
def test_ocr_and_transcription_make_no_network_calls_at_the_syscall_level(tmp_path: Path) -> None:
    """``localrag ingest`` of an image, an image-only PDF and a WAV: Tesseract, faster-whisper (whose library
    can fetch models from the Hugging Face hub) and PyAV all run in the parser worker, traced with it."""
    from media_fixtures import PAGE_ONE, PAGE_TWO, require, write_image_pdf, write_png, write_speech

    if shutil.which("strace") is None:
        pytest.fail("strace is not installed; scripts/setup.sh installs it (apt-get install -y strace)")
    require("tesseract", "apt-get install -y tesseract-ocr tesseract-ocr-eng")
    docs = tmp_path / "docs"
    docs.mkdir()
    write_png(docs / "memo.png", PAGE_ONE)
    write_image_pdf(docs / "scan.pdf", [PAGE_ONE, PAGE_TWO])
    write_speech(docs / "talk.wav")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOCALRAG_EMBED__THREADS": "1", "LOCALRAG_INGEST__MEDIA_THREADS": "1"}
    for name in ("ORT_DISABLE_TELEMETRY", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(name, None)  # localrag must set them itself
    log = tmp_path / "ingest.strace"
    command = [sys.executable, "-m", "localrag.cli", "--data", str(tmp_path / "data"), "ingest", str(docs)]
    done = subprocess.run([*STRACE, "-o", str(log), *command], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"ingest failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "added 3," in done.stdout, done.stdout + done.stderr  # nothing skipped
    traced = log.read_text(errors="replace")
    _check_traced(log)
    assert "tesseract" in traced, "the OCR program did not run under the trace"
    assert syscall_violations(traced) == []


def _serve_one_search(tmp_path: Path, cli: list[str], env: dict[str, str]) -> list[str]:
    log = tmp_path / "serve.strace"
    port = free_port()
    tracer = subprocess.Popen([*STRACE, "-o", str(log), *cli, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert tracer.poll() is None, tracer.stderr.read().decode() if tracer.stderr else "serve exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the traced server did not start"
            time.sleep(0.2)
        started = time.monotonic()
        hits = httpx.post(f"{url}/v1/search", json={"query": "moon and oceans", "k": 1}, timeout=300).json()["hits"]
        assert hits and hits[0]["doc_id"].endswith("tides.txt"), hits
        time.sleep(max(0.0, TELEMETRY_DELAY_S - (time.monotonic() - started)))
        server = children(tracer.pid)
        assert server, "strace's child, the server, is gone"
        for pid in server:
            os.kill(pid, signal.SIGTERM)
        tracer.wait(timeout=60)
    finally:
        if tracer.poll() is None:
            for pid in children(tracer.pid):
                os.kill(pid, signal.SIGKILL)
            tracer.kill()
            tracer.wait(timeout=30)
    _check_traced(log)
    return syscall_violations(log.read_text(errors="replace"))


def _check_traced(log: Path) -> None:
    """strace itself worked: it saw the command start (where ptrace is forbidden it sees nothing)."""
    assert "execve(" in log.read_text(errors="replace"), f"strace recorded nothing in {log}"
