#!/usr/bin/env bash
# Speed does not depend on the family: for each LLaMA-style family, a
# random-weight GGUF of one of its real shapes (scripts/big_models.py) beside
# the same shapes written as a plain llama (--as-llama), both quantized by
# normscope to the same type, benchmarked interleaved with `normscope bench`.
# Prints pp/tg tokens/sec of each and the ratio of tokens/sec x weight bytes
# (family / llama), which is 1 when the family's extra work (biases,
# QK-norms, split fused tensors, NoPE blocks, post-norms) costs nothing.
#
# usage: scripts/family_bench.sh [DIR]   (DIR holds the GGUFs; default target/family-bench)
# env:   PYTHON (with numpy + gguf), TYPE (q4_k_m), THREADS (2), REPS (3),
#        P (512), N (128), BLOCKS (8: blocks kept of the larger shapes)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/family-bench}
PYTHON=${PYTHON:-python3}
TYPE=${TYPE:-q4_k_m}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
P=${P:-512}
N=${N:-128}
BLOCKS=${BLOCKS:-8}
NS=target/release/normscope
mkdir -p "$DIR"
cargo build --release --quiet

# shape, blocks kept (0: all)
SHAPES="qwen2.5-0.5b:0 qwen3-0.6b:0 llama-3.2-1b:$BLOCKS phi-3-mini:$BLOCKS olmo-2-1b:$BLOCKS smollm3-3b:$BLOCKS"

make() { # shape blocks as_llama -> path of the quantized file
    local shape=$1 blocks=$2 flag=$3 name
    name="$shape${flag:+-as-llama}"
    if [ ! -f "$DIR/$name-$TYPE.gguf" ]; then
        local args=("$shape" --out "$DIR/$name-f16.gguf")
        [ "$blocks" != 0 ] && args+=(--blocks "$blocks")
        [ -n "$flag" ] && args+=(--as-llama)
        "$PYTHON" scripts/big_models.py "${args[@]}" >&2
        "$NS" quantize "$DIR/$name-f16.gguf" --type "$TYPE" --out "$DIR/$name-$TYPE.gguf" >&2
        rm -f "$DIR/$name-f16.gguf"
    fi
    echo "$DIR/$name-$TYPE.gguf"
}

bench() { # file -> JSON records
    "$NS" bench --model "$1" -p "$P" -n "$N" -r "$REPS" --threads "$THREADS" --json
}

printf '| family shape | file | pp%s family / llama t/s | tg%s family / llama t/s | pp ratio per byte | tg ratio per byte |\n|---|---|---:|---:|---:|---:|\n' "$P" "$N"
for entry in $SHAPES; do
    shape=${entry%%:*}
    blocks=${entry##*:}
    family=$(make "$shape" "$blocks" "")
    llama=$(make "$shape" "$blocks" yes)
    # Interleaved: family, llama, family, llama.
    f1=$(bench "$family"); l1=$(bench "$llama"); f2=$(bench "$family"); l2=$(bench "$llama")
    "$PYTHON" - "$shape" "$family" "$f1" "$f2" "$l1" "$l2" <<'EOF'
import json, os, sys
shape, path, *runs = sys.argv[1:]
f = [json.loads(r)["records"] for r in runs[:2]]
l = [json.loads(r)["records"] for r in runs[2:]]
def mean(recs, test):
    vals = [r["avg_ts"] for rs in recs for r in rs if r["test"] == test]
    return sum(vals) / len(vals)
def weight_bytes(recs):
    return recs[0][0]["model_size"]
cells = []
ratios = []
for test in sorted({r["test"] for r in f[0]}, key=lambda t: (t[:2] != "pp", t)):
    ft, lt = mean(f, test), mean(l, test)
    cells.append(f"{ft:.1f} / {lt:.1f}")
    ratios.append(f"{ft * weight_bytes(f) / (lt * weight_bytes(l)):.3f}")
print(f"| {shape} | {os.path.basename(path)} | {' | '.join(cells)} | {' | '.join(ratios)} |")
EOF
done
