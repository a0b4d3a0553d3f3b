"""The web app's weight and time to interactive, in Debian's chromium against ``localrag serve``.

    python benchmarks/bench_webapp.py [--runs 10] [--out benchmarks/results/webapp.json]

A ``localrag serve`` process (127.0.0.1, a free port, an empty data directory of its own) serves the
app. Each run opens ``/`` in a new browser context, so the HTTP cache is cold every time, and waits
for the app's ready marker (``window.localragReady``: ``performance.now()`` when the first page has
mounted, i.e. milliseconds since navigation start). Figures:

- **bytes of the first load**: the uncompressed bodies of every response the first run received
  (the server does not compress), by file; target < 300 KB;
- **time to interactive**: navigation start to the ready marker, median and max over the runs;
  target < 1 s;
- the same per page (``/#/library``, ...) for the record. A page's live stream (``GET /v1/events``)
  never ends, so it counts as a request but not in the bytes.

Chromium is ``/usr/bin/chromium`` (Debian's package) driven by Playwright; nothing is downloaded.
Wall-clock figures on a shared machine: the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LOCALRAG_CHROMIUM", "/usr/bin/chromium")
PAGES = ["chat", "library", "search", "dashboard", "settings"]
TARGET_BYTES = 300_000
TARGET_TTI_MS = 1000.0
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LOCALRAG_GENERATE__PROVIDERS": "extractive"}  # no model is needed to load pages
    proc = subprocess.Popen([sys.executable, "-m", "localrag.cli", "--data", str(data), "serve", "--port", str(port)],
                            cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"localrag serve exited with {proc.returncode}") from None
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("localrag serve did not start within 180 s")


def load(browser: Any, url: str) -> dict[str, Any]:
    """One cold load of ``url``: every response's size and the ready marker."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r))
    page.goto(url)
    page.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)
    tti = float(page.evaluate("window.localragReady"))
    nav = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; })()")
    files = []
    for r in responses:
        streaming = "text/event-stream" in (r.headers.get("content-type") or "")
        size = 0 if streaming else len(r.body())
        files.append({"path": urlsplit(r.url).path, "status": r.status, "bytes": size,
                      "type": (r.headers.get("content-type") or "").split(";")[0], "stream": streaming})
    hosts = {urlsplit(r.url).netloc for r in responses}
    context.close()
    return {"tti_ms": round(tti, 1), "dom_content_loaded_ms": round(nav["dcl"], 1), "files": files,
            "bytes": sum(f["bytes"] for f in files), "requests": len(files), "hosts": sorted(hosts)}


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 1), "max": round(max(samples), 1),
            "min": round(min(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--page-runs", type=int, default=3, help="cold loads of each page for the per-page figures")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "webapp.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                load(browser, url + "/")  # a first load warms the server's file cache, not the browser's
                runs = [load(browser, url + "/") for _ in range(args.runs)]
                pages = {}
                for name in PAGES:
                    loads = [load(browser, f"{url}/#/{name}") for _ in range(args.page_runs)]
                    pages[name] = {"bytes": loads[0]["bytes"], "requests": loads[0]["requests"],
                                   "tti_ms": summary([r["tti_ms"] for r in loads])}
                version = browser.version
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    first = runs[0]
    by_type: dict[str, int] = {}
    for f in first["files"]:
        by_type[f["type"]] = by_type.get(f["type"], 0) + f["bytes"]
    tti = summary([r["tti_ms"] for r in runs])
    result = {
        "benchmark": "webapp",
        "what": "cold loads of / in Debian's chromium (new context each run) against localrag serve on 127.0.0.1",
        "first_load": {"bytes": first["bytes"], "requests": first["requests"], "bytes_by_type": by_type,
                       "files": [{k: f[k] for k in ("path", "status", "bytes", "type")} for f in first["files"]],
                       "hosts": first["hosts"]},
        "tti_ms": {**tti, "samples": [r["tti_ms"] for r in runs]},
        "dom_content_loaded_ms": summary([r["dom_content_loaded_ms"] for r in runs]),
        "pages": pages,
        "targets": {"first_load_bytes": TARGET_BYTES, "tti_ms": TARGET_TTI_MS},
        "met": {"first_load_bytes": first["bytes"] < TARGET_BYTES, "tti_median": tti["median"] < TARGET_TTI_MS,
                "tti_max": tti["max"] < TARGET_TTI_MS},
        "runs": args.runs,
        "chromium": version,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"first load {first['bytes'] / 1000:.1f} KB in {first['requests']} requests; time to interactive "
          f"median {tti['median']:.0f} ms, max {tti['max']:.0f} ms over {args.runs} cold loads -> {args.out}")


if __name__ == "__main__":
    main()
