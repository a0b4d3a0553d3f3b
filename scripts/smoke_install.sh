#!/usr/bin/env bash
# CI's check of the shippable package and of the Docker image's install step: scripts/install.sh puts
# a freshly built wheel into a new virtualenv, then, from a folder with no source checkout in sight,
# that install ingests, searches, reranks and answers with the shipped models, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export LOCALRAG_CACHE_DIR="$WORK/cache"  # a cache of its own: the export really runs in this install
bash scripts/install.sh "$WORK/venv"
BIN="$WORK/venv/bin"
cd "$WORK"  # no checkout beside it: everything must come from the installed wheel
"$BIN/python" - <<'PY'
import localrag, pathlib, sys
where = pathlib.Path(localrag.__file__).resolve()
assert "site-packages" in where.parts, f"localrag imported from {where}, not from the installed wheel"
print(f"[smoke] localrag {localrag.__version__ if hasattr(localrag, '__version__') else ''} from {where.parent}")
PY
mkdir docs && printf 'Glaciers form where snow accumulates faster than it melts.\nOver years the snow is compressed into dense glacial ice.\n' > docs/glaciers.txt
printf 'Honeybees share the direction of flowers with a waggle dance.\n' > docs/bees.txt
"$BIN/localrag" --data data ingest docs
"$BIN/localrag" --data data search "how does snow become ice" --k 1 | tee search.txt
grep -q glaciers search.txt
"$BIN/localrag" --data data search "how does snow become ice" --k 1 --rerank --json > rerank.json
"$BIN/python" - <<'PY'
import json
hits = json.load(open("rerank.json"))
hits = hits["hits"] if isinstance(hits, dict) else hits
assert hits[0]["source"].endswith("glaciers.txt") and "rerank" in hits[0]["scores"], hits
print("[smoke] reranked:", hits[0]["source"], hits[0]["scores"])
PY
"$BIN/localrag" --data data ask "How do honeybees share where flowers are?" --json > answer.json
"$BIN/python" - <<'PY'
import json
answer = json.load(open("answer.json"))
assert answer["citations"], answer
assert any("bees" in c["source"] for c in answer["citations"]), answer["citations"]
print("[smoke] cited answer:", answer["answer"][:120])
PY
"$BIN/python" - "$BIN/localrag" <<'PY'
# the web app's files ship in the wheel: `localrag serve` answers / and /app/* from the installed package
import pathlib, socket, subprocess, sys, time, urllib.request
import localrag.web.routes as web
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([sys.argv[1], "--data", "data", "serve", "--port", str(port)])
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2); break
        except OSError:
            time.sleep(0.1)
    for path, file in [("/", "index.html"), ("/app/js/app.js", "js/app.js"), ("/app/app.css", "app.css")]:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            assert r.status == 200 and r.read() == (web.STATIC / file).read_bytes(), path
    assert "site-packages" in pathlib.Path(web.STATIC).resolve().parts, web.STATIC
    print("[smoke] GET / serves the web app from", web.STATIC)
finally:
    server.terminate(); server.wait(timeout=30)
PY
echo "[smoke] the wheel install ingests, searches, reranks, answers and serves the web app offline"
