#!/usr/bin/env python3
"""Runs `normscope quantize` output for every family fixture in llama.cpp.

llama.cpp runs with its default CPU settings (f16 KV cache, flash attention
as it chooses), the numerics normscope follows on ggml-quantized weights:
the helper program of scripts/reference_family.py, built a second time
without its F32-cache settings.

For each architecture under tests/fixtures/family/, quantizes the F32 GGUF
(and the Hugging Face folder) with
`normscope quantize` to each type, then greedy-decodes the fixture's prompt
ids with llama.cpp (libllama through the `normscope-ref-logits` helper that
scripts/reference_family.py builds) and with `normscope generate`, and prints
whether the first tokens agree. llama.cpp is built outside the repository.

usage: family_vs_llamacpp.py --llama-cpp /path/to/llama.cpp [--types q8_0,q4_k_m] [--steps 16]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "family"


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr}")
    return out.stdout


def default_settings_helper(llama_cpp):
    """Builds (once) the logits helper of reference_family.py with llama.cpp's
    default context settings; returns its path."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from reference_family import LOGITS_CPP
    src = LOGITS_CPP.replace(
        "cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;", "").replace(
        "cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;", "")
    build = Path(llama_cpp) / "build"
    exe = build / "bin" / "normscope-default-logits"
    cpp = build / "normscope-default-logits.cpp"
    if not exe.exists() or not cpp.exists() or cpp.read_text() != src:
        cpp.write_text(src)
        run(["g++", "-O2", "-std=c++17", str(cpp), "-I", str(Path(llama_cpp) / "include"),
             "-I", str(Path(llama_cpp) / "ggml" / "include"), "-L", str(build / "bin"), "-lllama",
             "-lggml", "-lggml-base", f"-Wl,-rpath,{build / 'bin'}", "-o", str(exe)])
    return exe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--types", default="q8_0,q4_k_m")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--normscope", default=str(ROOT / "target" / "release" / "normscope"))
    a = ap.parse_args()
    ref_logits = default_settings_helper(a.llama_cpp)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch_dir in sorted(p for p in FIX.iterdir() if p.is_dir()):
            ref = json.loads((arch_dir / "ref.json").read_text())
            ids = ref["prompt_ids"]
            inputs = [("F32 GGUF", arch_dir / "model-f32.gguf"), ("folder", arch_dir / "hf")]
            for label, src in inputs:
                for ty in a.types.split(","):
                    out = Path(tmp) / f"{arch_dir.name}-{label.replace(' ', '_')}-{ty}.gguf"
                    run([a.normscope, "quantize", str(src), "--type", ty, "--out", str(out)])
                    theirs = json.loads(run([str(ref_logits), str(out), str(a.steps),
                                             ",".join(map(str, ids))]))["greedy"]
                    gen = json.loads(run([a.normscope, "generate", "--model", str(out), ref["prompt"],
                                          "--max-tokens", str(a.steps), "--temperature", "0",
                                          "--json"]))
                    ours = gen["generated_ids"]
                    same = 0
                    while same < min(len(ours), len(theirs)) and ours[same] == theirs[same]:
                        same += 1
                    note = ""
                    gap = None
                    if same < min(len(ours), len(theirs)):
                        # How close llama.cpp itself was between the two picks there.
                        prefix = ids + theirs[:same]
                        logits = json.loads(run([str(ref_logits), str(out), "0",
                                                 ",".join(map(str, prefix))]))["last_logits"]
                        gap = logits[theirs[same]] - logits[ours[same]]
                        note = f"; at step {same} llama.cpp's logit gap between the two picks is {gap:.4f}"
                    rows.append((arch_dir.name, label, ty, same, len(theirs), gap))
                    print(f"{arch_dir.name:8} {label:9} {ty:7} first {same:2} of {len(theirs)} greedy ids equal"
                          f"{note}", flush=True)
    # A divergence is a disagreement only where llama.cpp's own choice was clear.
    bad = [r for r in rows if r[5] is not None and r[5] > 0.01]
    print(f"{len(rows) - len(bad)} of {len(rows)} files agree up to a near-tie (logit gap <= 0.01)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
