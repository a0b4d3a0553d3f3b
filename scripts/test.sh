#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest -p no:cacheprovider "$@"
