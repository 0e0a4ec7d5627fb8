#!/usr/bin/env bash
# The README's Performance tables: `normscope bench` on the default model in
# each format, the machine's memory-read bandwidth, and llama.cpp's
# llama-bench on the same GGUF in the same session. Run on a quiet machine.
#
# Usage:  LLAMA_BENCH=/path/to/llama-bench scripts/bench_vs_llamacpp.sh [OUT_DIR]
#   THREADS (2), P (128,512), N (128), R (5). Without LLAMA_BENCH the
#   llama.cpp step is skipped. llama-bench: build llama.cpp from source, e.g.
#   the copy vendored in the llama-cpp-python sdist on PyPI:
#     cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
#     cmake --build build --target llama-bench -j
# Writes OUT_DIR (default bench-<UTC time>)/normscope-<format>.{md,json},
# llama-bench.{md,json} and summary.md.

set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench-$(date -u +%Y%m%dT%H%M%SZ)}"
THREADS="${THREADS:-2}" P="${P:-128,512}" N="${N:-128}" R="${R:-5}"
mkdir -p "$OUT"
cargo build --release --quiet || exit 1
BIN=target/release/normscope
GGUF=models/SmolLM2-135M-Instruct.Q4_1.gguf
FOLDER=models/SmolLM2-135M-Instruct
"$BIN" fetch >/dev/null || exit 1

run() { # name, bench flags...
    local name="$1"; shift
    echo "==> normscope bench $* -p $P -n $N -r $R --threads $THREADS"
    "$BIN" bench "$@" -p "$P" -n "$N" -r "$R" --threads "$THREADS" --json > "$OUT/normscope-$name.json" &&
        python3 - "$OUT/normscope-$name.json" "$name" > "$OUT/normscope-$name.md" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
for r in recs:
    gb = f'{r["gb_per_s"]:.2f}' if r.get("gb_per_s") else ""
    print(f'| {sys.argv[2]} | {r["format"]} | {r["model_size"]/2**20:.1f} MiB | {r["test"]} | {r["avg_ts"]:.2f} ± {r["stddev_ts"]:.2f} | {gb} | {r["peak_rss_bytes"]/2**20:.0f} MiB |')
PY
    cat "$OUT/normscope-$name.md"
}
run gguf-q4_1 --model "$GGUF"
run f32 --model "$FOLDER" --dtype f32
run f16 --model "$FOLDER" --dtype f16
run bf16 --model "$FOLDER" --dtype bf16
run q8_0 --model "$FOLDER" --quantize q8_0
run q4_1 --model "$FOLDER" --quantize q4_1
run q4k --model "$FOLDER" --quantize q4k
echo "==> memory-read bandwidth"
"$BIN" bench --model "$GGUF" -p 0 -n 1 -r 1 --threads "$THREADS" --mem-bw --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"][0]["mem_read_gb_per_s"])' \
    | tee "$OUT/mem-bw.txt"
if [ -n "${LLAMA_BENCH:-}" ]; then
    echo "==> llama-bench -m $GGUF -p $P -n $N -r $R -t $THREADS"
    "$LLAMA_BENCH" -m "$GGUF" -p "$P" -n "$N" -r "$R" -t "$THREADS" -o md | tee "$OUT/llama-bench.md"
    "$LLAMA_BENCH" -m "$GGUF" -p "$P" -n "$N" -r "$R" -t "$THREADS" -o json > "$OUT/llama-bench.json"
fi
{
    echo "| run | format | size | test | t/s | GB/s | peak RSS |"
    echo "|---|---|---|---|---|---|---|"
    cat "$OUT"/normscope-*.md
    echo
    echo "memory-read bandwidth: $(cat "$OUT/mem-bw.txt") GB/s"
    [ -s "$OUT/llama-bench.md" ] && { echo; cat "$OUT/llama-bench.md"; }
} > "$OUT/summary.md"
cat "$OUT/summary.md"
