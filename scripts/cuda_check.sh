#!/usr/bin/env bash
# CUDA check for normscope, in three steps:
#   1. build with `--features cuda`;
#   2. CPU against CUDA on synthetic checkpoints (tests/it/devices.rs): logits
#      of a forward pass (f32 and f16 safetensors folders, a Q8_0 GGUF),
#      greedy ids of `generate --json --temperature 0`, every figure of
#      `analyze --json`;
#   3. `normscope bench --device cuda --random-init` at SmolLM2-135M's shapes
#      (random weights: no checkpoint and no network needed) in f32, f16, bf16
#      and quantized in situ to q8_0, q4_1 and q4k.
#
# Usage:  scripts/cuda_check.sh [OUT_DIR]
#   OUT_DIR defaults to $OUT when set, else cuda-check-<UTC time>. It receives
#   log.txt (everything), gpu.txt, parity.txt, bench-<variant>.json (one
#   `bench --json` object each) and summary.md (GPU, parity lines, tables).
#
# Needs: an NVIDIA GPU and driver (nvidia-smi), the CUDA toolkit (nvcc), Rust
#   1.89 or newer, and the crates: on a machine without network run
#   `cargo fetch` beforehand where there is one (or vendor them).
# Environment:
#   CUDA_COMPUTE_CAP  e.g. 90 for H100/H200 (default: read from nvidia-smi)
#   BENCH_P (128,512)  BENCH_N (128)  BENCH_R (5)   bench's -p, -n, -r
#   BENCH_VARIANTS ("f32 f16 bf16 q8_0 q4_1 q4k")
#   SKIP_PARITY=1 / SKIP_BENCH=1 to leave a step out.
# Exit status: 0 when every step passed, 1 when any failed (the others still run).

set -uo pipefail

cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-cuda-check-$(date -u +%Y%m%dT%H%M%SZ)}}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
exec > >(tee -a "$OUT_DIR/log.txt") 2>&1

failed=0
step() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAILED: $*"; failed=1; }

step "environment"
for tool in nvidia-smi nvcc cargo; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: \`$tool\` is not on PATH; this script needs an NVIDIA GPU with its driver, the CUDA toolkit and Rust"
        exit 1
    fi
done
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$OUT_DIR/gpu.txt"
nvcc --version | tail -n 2 | tee -a "$OUT_DIR/gpu.txt"
rustc --version | tee -a "$OUT_DIR/gpu.txt"
if [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
    cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')"
    export CUDA_COMPUTE_CAP="$cap"
fi
echo "CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"

step "build (--features cuda; the CUDA kernels take several minutes the first time)"
if ! cargo build --release --features cuda; then
    echo "error: the CUDA build failed (see above); nothing else can run"
    exit 1
fi
BIN="${CARGO_TARGET_DIR:-target}/release/normscope"

if [ "${SKIP_PARITY:-0}" != 1 ]; then
    step "parity: CPU against CUDA on synthetic checkpoints"
    # Only the CUDA test; a filter that matched nothing would also "pass", so
    # the test's closing line is required too.
    if cargo test --release --features cuda --test it devices::cuda_matches_cpu -- --nocapture \
        2>&1 | tee "$OUT_DIR/parity-test.txt" && grep -q ': parity OK' "$OUT_DIR/parity-test.txt"; then
        grep -E 'max \|logit diff\||parity OK' "$OUT_DIR/parity-test.txt" \
            | sed 's/^test .* \.\.\. //' > "$OUT_DIR/parity.txt"
    else
        fail "CPU/CUDA parity (tests/it/devices.rs); see parity-test.txt"
    fi
fi

if [ "${SKIP_BENCH:-0}" != 1 ]; then
    step "bench on CUDA with random weights at SmolLM2-135M's shapes"
    CONFIG="$OUT_DIR/smollm2-135m-config.json"
    cat > "$CONFIG" <<'EOF'
{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
  "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
  "vocab_size": 49152, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
  "max_position_embeddings": 8192, "tie_word_embeddings": true,
  "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2
}
EOF
    P="${BENCH_P:-128,512}" N="${BENCH_N:-128}" R="${BENCH_R:-5}"
    for v in ${BENCH_VARIANTS:-f32 f16 bf16 q8_0 q4_1 q4k}; do
        case "$v" in
            f32|f16|bf16) flags=(--dtype "$v") ;;
            *) flags=(--quantize "$v") ;;
        esac
        echo "--- $v: bench --device cuda --random-init ${flags[*]} -p $P -n $N -r $R"
        if timeout 600 "$BIN" bench --device cuda --random-init "$CONFIG" "${flags[@]}" \
            -p "$P" -n "$N" -r "$R" --json > "$OUT_DIR/bench-$v.json"; then
            # The table, from a second short run (a CUDA run is quick).
            timeout 600 "$BIN" bench --device cuda --random-init "$CONFIG" "${flags[@]}" \
                -p "$P" -n "$N" -r "$R" > "$OUT_DIR/bench-$v.md" 2>/dev/null || true
            cat "$OUT_DIR/bench-$v.md"
        else
            fail "bench $v (exit status $?)"
            rm -f "$OUT_DIR/bench-$v.json"
        fi
    done
fi

step "summary"
{
    echo "# normscope CUDA check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo '```'
    cat "$OUT_DIR/gpu.txt"
    echo '```'
    if [ -s "$OUT_DIR/parity.txt" ]; then
        echo
        echo "## CPU against CUDA"
        echo
        echo '```'
        cat "$OUT_DIR/parity.txt"
        echo '```'
    fi
    for md in "$OUT_DIR"/bench-*.md; do
        [ -e "$md" ] || continue
        echo
        echo "## $(basename "$md" .md)"
        echo
        cat "$md"
    done
    echo
    if [ "$failed" = 0 ]; then echo "All steps passed."; else echo "Some steps FAILED: see log.txt."; fi
} > "$OUT_DIR/summary.md"
cat "$OUT_DIR/summary.md"
echo "results in $OUT_DIR"
exit "$failed"
