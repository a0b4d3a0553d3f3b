#!/usr/bin/env bash
# Install localrag with its model packages and dev tools into the current Python, offline-ready.
# torch goes first and pinned: an unpinned torch pulls several GB of CUDA packages. torch is only
# needed once, to export the embedding model to ONNX (done here by `localrag models --prepare`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
"$PYTHON" -m pip install --quiet -e ".[torch,dev]"
"$PYTHON" -m localrag.cli models --prepare >/dev/null
echo "localrag is installed; models are ready (localrag models lists them)."
