#!/usr/bin/env bash
# The load-independent twin of scripts/family_bench.sh: instructions executed
# inside Model::forward_last (valgrind's callgrind, one thread) for each
# family's file and its plain-llama twin, and the ratio of (weight bytes /
# instructions), family over llama, for a prefill of P tokens and N decode
# steps. 1.000 means the family's extra work costs nothing per weight byte.
# Run scripts/family_bench.sh first (it writes the files); each run takes
# minutes under valgrind.
#
# usage: scripts/family_callgrind.sh [DIR]   (default target/family-bench)
# env:   TYPE (q4_k_m), P (64), N (8)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/family-bench}
TYPE=${TYPE:-q4_k_m}
P=${P:-64}
N=${N:-8}
NS=target/release/normscope
cargo build --release --quiet
count() { # file, bench args -> instructions inside forward_last
    local log
    log=$(mktemp)
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*forward_last*' \
        --callgrind-out-file=/dev/null "$NS" bench --model "$1" "${@:2}" -r 1 --threads 1 >"$log" 2>&1
    grep -o 'Collected : [0-9]*' "$log" | grep -o '[0-9]*$'
    rm -f "$log"
}
printf '| shape | pp%s instructions family / llama (G) | tg%s family / llama (G) | weight bytes family / llama (MB) | pp ratio per byte | tg ratio per byte |\n|---|---:|---:|---:|---:|---:|\n' "$P" "$N"
for family in "$DIR"/*-"$TYPE".gguf; do
    case $family in *-as-llama-*) continue ;; esac
    llama=${family%-"$TYPE".gguf}-as-llama-$TYPE.gguf
    [ -f "$llama" ] || continue
    pf=$(count "$family" -p "$P" -n 0); pl=$(count "$llama" -p "$P" -n 0)
    tf=$(count "$family" -p 0 -n "$N"); tl=$(count "$llama" -p 0 -n "$N")
    bf=$(stat -c %s "$family"); bl=$(stat -c %s "$llama")
    awk -v s="$(basename "${family%-"$TYPE".gguf}")" -v pf="$pf" -v pl="$pl" -v tf="$tf" -v tl="$tl" -v bf="$bf" -v bl="$bl" 'BEGIN {
        printf "| %s | %.2f / %.2f | %.3f / %.3f | %.0f / %.0f | %.3f | %.3f |\n",
            s, pf/1e9, pl/1e9, tf/1e9, tl/1e9, bf/1e6, bl/1e6, pl/pf*bf/bl, tl/tf*bf/bl }'
done
