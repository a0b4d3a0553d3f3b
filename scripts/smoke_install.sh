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
echo "[smoke] the wheel install ingests, searches, reranks and answers offline"
