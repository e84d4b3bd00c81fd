#!/usr/bin/env bash
# Train every ablation preset (train/configs/ablations/) one after another (one run at a time: the
# cores are few), then evaluate each model's own greedy output on the valid split.
# Usage: bash train/ablations.sh [DATA]
set -euo pipefail
DATA=${1:-../shared/data/english_python_data.txt}
RUNS=(ablate_full ablate_no_copy ablate_no_retrieval)
for name in "${RUNS[@]}"; do
  python -m train --data "$DATA" --config "ablations/$name" --out "runs/$name/artifact" --no-eval --quiet --fresh
done
for name in "${RUNS[@]}"; do
  python -m e2p evaluate --data "$DATA" --split valid --artifacts "runs/$name/artifact" \
    --beam 1 --rerank score --pool 0 --no-fallback --no-ranker-row --json "runs/$name/valid.json"
done
