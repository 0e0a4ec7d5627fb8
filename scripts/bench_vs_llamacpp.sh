#!/usr/bin/env bash
# normscope bench beside llama.cpp's llama-bench on every GGUF format of the
# default model (and Gemma 3 270M Q4_K_M when present), interleaved per file:
# llama-bench, normscope bench, llama-bench again, so that both tools see the
# same machine state. Run on a quiet machine.
#
# Usage:  LLAMA_BENCH=/path/to/llama-bench scripts/bench_vs_llamacpp.sh [OUT_DIR]
#   THREADS (2), P (512), N (128), R (5).
#   LONG=1: the long-context curve instead, -p 512,2048,8192 -n 0 (R 2).
#   FORMATS: the file types (default f32 f16 q8_0 q4_0 q4_1 q5_0 q5_1
#     q4_k_m q5_k_m q6_k).
#   FORMATS_DIR (models/formats): where smollm2-<type>.gguf files are kept;
#     missing ones are made from the default Q4_1 GGUF with
#     `normscope quantize --type T` (byte-identical to llama-quantize), or with
#     `$LLAMA_QUANTIZE --allow-requantize` when LLAMA_QUANTIZE is set.
#   FETCH_GEMMA=1 fetches Gemma 3 270M Q4_K_M when models/ lacks it.
#   Without LLAMA_BENCH only normscope runs. llama-bench: build llama.cpp from
#   source, e.g. the copy vendored in the llama-cpp-python sdist on PyPI:
#     cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
#     cmake --build build --target llama-bench llama-quantize -j
#   On CPUs whose AMX llama.cpp uses but the VM does not allow (SIGILL in
#   tinygemm_kernel_amx), add -DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8
#   -mno-amx-bf16" and the same CMAKE_CXX_FLAGS.
# Writes OUT_DIR (default bench-<UTC time>)/{llama-before,normscope,llama-after,
# rss}-<file>.json, mem-bw.txt and summary.md (speed: file, test, llama.cpp t/s
# as the mean of its runs before and after, normscope t/s, ratio; memory: peak
# RSS of a tg-only and of a pp-only run against file size + KV cache bytes).

set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench-$(date -u +%Y%m%dT%H%M%SZ)}"
THREADS="${THREADS:-2}"
if [ -n "${LONG:-}" ]; then
    P="${P:-512,2048,8192}" N=0 R="${R:-2}"
else
    P="${P:-512}" N="${N:-128}" R="${R:-5}"
fi
FORMATS="${FORMATS:-f32 f16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k}"
FORMATS_DIR="${FORMATS_DIR:-models/formats}"
mkdir -p "$OUT" "$FORMATS_DIR"
cargo build --release --quiet || exit 1
BIN=target/release/normscope
GGUF=models/SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA=models/gemma-3-270m-q4_k_m.gguf
"$BIN" fetch >/dev/null || exit 1
if [ -n "${FETCH_GEMMA:-}" ] && [ ! -f "$GEMMA" ]; then
    "$BIN" fetch gemma3-270m >/dev/null || exit 1
fi

files=()
for t in $FORMATS; do
    f="$FORMATS_DIR/smollm2-$t.gguf"
    if [ ! -f "$f" ]; then
        echo "==> making $f"
        if [ -n "${LLAMA_QUANTIZE:-}" ]; then
            "$LLAMA_QUANTIZE" --allow-requantize "$GGUF" "$f" "${t^^}" "$THREADS" >/dev/null || exit 1
        else
            "$BIN" quantize "$GGUF" --type "$t" --out "$f" || exit 1
        fi
    fi
    files+=("$f")
done
[ -f "$GEMMA" ] && files+=("$GEMMA")

llama() { # file, output json
    [ -n "${LLAMA_BENCH:-}" ] || return 0
    "$LLAMA_BENCH" -m "$1" -p "$P" -n "$N" -r "$R" -t "$THREADS" -o json > "$2" 2>/dev/null ||
        echo "llama-bench failed on $1" >&2
}
rss_tests=()
for p in ${P//,/ }; do [ "$p" -gt 0 ] && rss_tests+=("-p $p -n 0"); done
[ "$N" -gt 0 ] && rss_tests+=("-p 0 -n $N")
for f in "${files[@]}"; do
    name="$(basename "$f" .gguf)"
    echo "==> $name: llama-bench, normscope bench, llama-bench (-p $P -n $N -r $R, $THREADS threads)"
    llama "$f" "$OUT/llama-before-$name.json"
    "$BIN" bench --model "$f" -p "$P" -n "$N" -r "$R" --threads "$THREADS" --json \
        > "$OUT/normscope-$name.json" || echo "normscope bench failed on $f" >&2
    llama "$f" "$OUT/llama-after-$name.json"
    # Peak resident memory of each test alone (a record's peak covers the
    # tests before it in the same process).
    for t in "${rss_tests[@]}"; do
        # shellcheck disable=SC2086
        "$BIN" bench --model "$f" $t -r 1 --threads "$THREADS" --json
    done > "$OUT/rss-$name.json"
done
"$BIN" bench --model "$GGUF" -p 0 -n 1 -r 1 --threads "$THREADS" --mem-bw --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"][0]["mem_read_gb_per_s"])' \
    > "$OUT/mem-bw.txt"

python3 - "$OUT" "${files[@]}" > "$OUT/summary.md" <<'PY'
import json, os, sys

out, files = sys.argv[1], sys.argv[2:]

def load(path):
    try:
        text = open(path).read()
    except OSError:
        return []
    # llama-bench writes a list; normscope one object per run ({"records": [...]}).
    dec, recs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        v, i = dec.raw_decode(text, i)
        recs += v if isinstance(v, list) else v["records"]
    return recs

def test(r):
    return f'pp{r["n_prompt"]}' if r["n_prompt"] else f'tg{r["n_gen"]}'

mib = lambda b: f"{b / 2**20:.1f} MiB"
speed, memory, curve = [], [], []
for f in files:
    name = os.path.basename(f)[:-5]
    ours = {test(r): r for r in load(f"{out}/normscope-{name}.json")}
    theirs = {}
    for side in ("before", "after"):
        for r in load(f"{out}/llama-{side}-{name}.json"):
            theirs.setdefault(test(r), []).append(r["avg_ts"])
    for t, r in ours.items():
        l = theirs.get(t)
        lt = sum(l) / len(l) if l else None
        cells = [name, t, f"{lt:.2f}" if lt else "-", f'{r["avg_ts"]:.2f}',
                 f'{r["avg_ts"] / lt:.2f}x' if lt else "-"]
        long_mode = sum(k.startswith("pp") for k in ours) > 1
        if long_mode and "pp512" in ours and t.startswith("pp"):
            base = theirs.get("pp512")
            ours_rel = r["avg_ts"] / ours["pp512"]["avg_ts"]
            theirs_rel = lt / (sum(base) / len(base)) if lt and base else None
            curve.append([name, t, f"{ours_rel:.2f}", f"{theirs_rel:.2f}" if theirs_rel else "-"])
        speed.append(cells)
    size = os.path.getsize(f)
    for r in load(f"{out}/rss-{name}.json"):
        peak, kv = r.get("peak_rss_bytes"), r["kv_cache_bytes"]
        if peak:
            memory.append([name, test(r), mib(size), mib(kv), mib(peak),
                           f"{peak / (size + kv):.2f}x"])

def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()

table(["file", "test", "llama.cpp t/s", "normscope t/s", "ratio"], speed)
if curve:
    print("Long context, each tool relative to its own pp512:\n")
    table(["file", "test", "normscope", "llama.cpp"], curve)
print("Peak resident memory of one test per process (target <= 1.3x file + KV cache):\n")
table(["file", "test", "file size", "KV cache", "peak RSS", "RSS / (file + KV)"], memory)
print(f'memory-read bandwidth: {open(f"{out}/mem-bw.txt").read().strip()} GB/s')
PY
cat "$OUT/summary.md"
