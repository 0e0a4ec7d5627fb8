#!/usr/bin/env bash
# The README's variant comparison: fine-tune the default model as pre, deepnorm,
# post and lnscale on the same data, seed, steps and schedule, then compare.
#
# Usage:  scripts/compare_variants.sh [RUNS_DIR]     (default: runs)
# Environment: STEPS (30), NORMSCOPE (path of the binary; default: build and
#   use target/release/normscope). Existing run folders are replaced.
# Writes RUNS_DIR/<variant>/ (run.json, metrics.jsonl, checkpoint/),
# RUNS_DIR/compare.html and RUNS_DIR/compare.json.

set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs}"
STEPS="${STEPS:-30}"
if [ -z "${NORMSCOPE:-}" ]; then
    cargo build --release --quiet
    NORMSCOPE=target/release/normscope
fi
mkdir -p "$RUNS"
for v in pre deepnorm post lnscale; do
    echo "==> $v"
    "$NORMSCOPE" finetune --variant "$v" --out "$RUNS/$v" --steps "$STEPS" --seq-len 64 --batch 4 \
        --lr 1e-4 --warmup 5 --eval-every 10 --eval-tokens 512 --freeze-embeddings \
        --save-every "$STEPS" --force
done
"$NORMSCOPE" compare "$RUNS/pre" "$RUNS/deepnorm" "$RUNS/post" "$RUNS/lnscale" \
    --report "$RUNS/compare.html" --force --json > "$RUNS/compare.json"
echo "report: $RUNS/compare.html"
