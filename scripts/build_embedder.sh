#!/usr/bin/env bash
# Build the SciFact-adapted embedder behind the README's best SciFact figure (fixed seeds, 2 torch
# threads): all-MiniLM-L6-v2 fine-tuned on SciFact train qrels minus 100 held-out queries (kept to
# choose the reranker's k1/blend on) plus 2,500 corpus titles as unlabelled queries for their own
# abstracts, one hard negative each from the top 30 of the engine's hybrid search, in-batch negatives,
# 160 passage tokens, one epoch, int8 ONNX. Not shipped: it is adapted to one corpus.
# Needs torch (localrag[torch]) and ../shared/data/scifact; about 12-15 minutes on 2 cores.
# DATA: a data directory holding (or to receive) the SciFact corpus in namespace eval:scifact, with the
# default settings (negatives are mined with its search). Then re-embed it:
#   localrag --data "$DATA" reembed NEW_DIR --model "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SCIFACT="${SCIFACT:-../shared/data/scifact}"
DATA="${DATA:-${TMPDIR:-/tmp}/localrag-embedder-build}"
OUT="${OUT:-${TMPDIR:-/tmp}/localrag-embedder-scifact}"
"$PYTHON" -m localrag.cli --data "$DATA" train-embedder --dataset "$SCIFACT" --split train \
  --holdout 100 --titles 2500 --negatives 1 --max-tokens 160 --epochs 1 --learning-rate 3e-5 \
  --threads 2 --seed 13 --no-feedback --out "$OUT"
echo "built $OUT; re-embed with: python -m localrag.cli --data $DATA reembed NEW_DIR --model $OUT"
