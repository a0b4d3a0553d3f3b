#!/usr/bin/env bash
# Rebuild the shipped reranker localrag/rerank/shipped/reranker-minilm-scifact exactly (fixed seeds, 2 torch threads):
# SciFact train qrels minus 100 held-out queries (kept to choose k1/blend), 3 hard negatives per
# relevant passage drawn from the top 30 of the engine's hybrid search, 128 tokens, two epochs, int8 ONNX.
# Needs torch (localrag[torch]) and ../shared/data/scifact; about 30 minutes on 2 busy cores (32 min measured).
# DATA: a data directory holding (or to receive) the SciFact corpus in namespace eval:scifact; negatives
# are mined with its search settings, which must be the defaults (hybrid, weighted fusion, alpha 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SCIFACT="${SCIFACT:-../shared/data/scifact}"
DATA="${DATA:-${TMPDIR:-/tmp}/localrag-reranker-build}"
OUT="${OUT:-localrag/rerank/shipped/reranker-minilm-scifact}"
"$PYTHON" -m localrag.cli --data "$DATA" train-reranker --dataset "$SCIFACT" --split train \
  --holdout 100 --negatives 3 --mine-negatives 7 --max-tokens 128 --epochs 2 --learning-rate 8e-5 \
  --threads 2 --seed 13 \
  --no-feedback --out "$OUT"
echo "rebuilt $OUT; measure it with: python benchmarks/bench_reranker.py --data $DATA --model $OUT"
