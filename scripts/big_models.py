#!/usr/bin/env python3
"""Random-weight GGUFs of real model shapes, for speed measurements where the
weights themselves cannot be downloaded (no hub here).

Each file carries the metadata and tensor names llama.cpp's converter writes
for the family (biases, QK-norms, fused projections, post-norms, rope_freqs as
each has them), F16 weights drawn from N(0, 0.02) (norm gains 1, biases 0),
and a small byte-level BPE vocabulary padded to the model's vocabulary size,
so that normscope and llama.cpp (llama-bench, llama-quantize) both load it.
Quantize it with `normscope quantize` or `llama-quantize` for other types.

    big_models.py --list
    big_models.py llama-3.2-1b --out models/llama-3.2-1b-f16.gguf
    big_models.py qwen2.5-0.5b --as-llama --out q-as-llama.gguf   # the same shapes as a plain llama
    big_models.py phi-3-mini --blocks 8 --out phi3-8.gguf          # the per-block shapes, fewer blocks

`--as-llama` writes the family's dimensions as architecture `llama` without
what sets the family apart (no biases, norms or fusion; half-split q/k order
does not matter for random weights): the baseline for "speed does not depend
on the family" comparisons at equal size. `--blocks N` keeps the per-block
shapes and the vocabulary but only N blocks, for the larger models.

needs: pip install numpy gguf
"""
import argparse
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType

# name: (architecture, hidden, blocks, heads, kv heads, head_dim, ffn, vocab, tied, rope theta)
SHAPES = {
    "llama-3.2-1b": ("llama", 2048, 16, 32, 8, 64, 8192, 128256, True, 500000.0),
    "llama-3.2-3b": ("llama", 3072, 28, 24, 8, 128, 8192, 128256, True, 500000.0),
    "llama-3.1-8b": ("llama", 4096, 32, 32, 8, 128, 14336, 128256, False, 500000.0),
    "qwen2.5-0.5b": ("qwen2", 896, 24, 14, 2, 64, 4864, 151936, True, 1000000.0),
    "qwen2.5-1.5b": ("qwen2", 1536, 28, 12, 2, 128, 8960, 151936, True, 1000000.0),
    "qwen3-0.6b": ("qwen3", 1024, 28, 16, 8, 128, 3072, 151936, True, 1000000.0),
    "qwen3-1.7b": ("qwen3", 2048, 28, 16, 8, 128, 6144, 151936, True, 1000000.0),
    "phi-3-mini": ("phi3", 3072, 32, 32, 32, 96, 8192, 32064, False, 10000.0),
    "olmo-2-1b": ("olmo2", 2048, 16, 16, 16, 128, 8192, 100352, False, 500000.0),
    "smollm3-3b": ("smollm3", 2048, 36, 16, 4, 128, 11008, 128256, True, 5000000.0),
    "mistral-7b": ("llama", 4096, 32, 32, 8, 128, 14336, 32768, False, 1000000.0),
}

# llama3 RoPE scaling of Llama 3.2 (factor 32, low 1, high 4, original 8192).
LLAMA3 = (32.0, 1.0, 4.0, 8192)

PRE = {"llama": "llama-bpe", "qwen2": "qwen2", "qwen3": "qwen2", "phi3": "gpt-2",
       "olmo2": "dbrx", "smollm3": "smaug-bpe"}


def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


# Control tokens llama.cpp's vocabulary loader looks up by name for some
# families (Phi-3's whitespace rule names these four).
SPECIALS = ["<unk>", "<s>", "</s>", "<|endoftext|>"]


def vocabulary(n):
    """256 byte tokens, a few merges, filler tokens, then the control tokens
    (the last one is EOS), n in all."""
    byte = bytes_to_unicode()
    tokens = list(byte)
    merges = []
    for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]:
        merges.append(f"{a} {b}")
        tokens.append(a + b)
    while len(tokens) < n - len(SPECIALS):
        tokens.append(f"<|filler_{len(tokens)}|>")
    tokens += SPECIALS
    types = [1] * (n - len(SPECIALS)) + [3] * len(SPECIALS)
    return tokens, types, merges


def rope_freqs(head_dim, theta):
    factor, low, high, orig = LLAMA3
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / theta ** (i / head_dim)
        wavelen = 2 * np.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            s = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def tensors(arch, hidden, blocks, heads, kv, hd, ffn, vocab, tied, theta):
    """(name, shape as numpy (rows, cols), kind) in llama.cpp's order."""
    q, k = heads * hd, kv * hd
    out = [("token_embd.weight", (vocab, hidden), "w")]
    if arch == "llama":
        out.append(("rope_freqs.weight", (hd // 2,), "rope"))
    for b in range(blocks):
        p = f"blk.{b}."
        if arch != "olmo2":
            out.append((p + "attn_norm.weight", (hidden,), "g"))
        if arch == "phi3":
            out.append((p + "attn_qkv.weight", (q + 2 * k, hidden), "w"))
        else:
            out += [(p + "attn_q.weight", (q, hidden), "w"), (p + "attn_k.weight", (k, hidden), "w"),
                    (p + "attn_v.weight", (k, hidden), "w")]
        if arch == "qwen2":
            out += [(p + "attn_q.bias", (q,), "b"), (p + "attn_k.bias", (k,), "b"), (p + "attn_v.bias", (k,), "b")]
        if arch == "qwen3":
            out += [(p + "attn_q_norm.weight", (hd,), "g"), (p + "attn_k_norm.weight", (hd,), "g")]
        if arch == "olmo2":
            out += [(p + "attn_q_norm.weight", (q,), "g"), (p + "attn_k_norm.weight", (k,), "g")]
        out.append((p + "attn_output.weight", (hidden, q), "w"))
        if arch == "olmo2":
            out.append((p + "post_attention_norm.weight", (hidden,), "g"))
        else:
            out.append((p + "ffn_norm.weight", (hidden,), "g"))
        if arch == "phi3":
            out.append((p + "ffn_up.weight", (2 * ffn, hidden), "w"))
        else:
            out += [(p + "ffn_gate.weight", (ffn, hidden), "w"), (p + "ffn_up.weight", (ffn, hidden), "w")]
        out.append((p + "ffn_down.weight", (hidden, ffn), "w"))
        if arch == "olmo2":
            out.append((p + "post_ffw_norm.weight", (hidden,), "g"))
    out.append(("output_norm.weight", (hidden,), "g"))
    if not tied:
        out.append(("output.weight", (vocab, hidden), "w"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", nargs="?", choices=sorted(SHAPES))
    ap.add_argument("--out")
    ap.add_argument("--blocks", type=int, help="keep only this many blocks")
    ap.add_argument("--as-llama", action="store_true", help="the same shapes as a plain llama model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list or not a.shape:
        for name, s in SHAPES.items():
            print(f"{name:14} {s[0]:8} hidden {s[1]:5} blocks {s[2]:3} heads {s[3]}/{s[4]} head_dim {s[5]} ffn {s[6]} vocab {s[7]}")
        return
    if not a.out:
        sys.exit("--out is required")
    arch, hidden, blocks, heads, kv, hd, ffn, vocab, tied, theta = SHAPES[a.shape]
    if a.blocks:
        blocks = min(blocks, a.blocks)
    if a.as_llama:
        arch = "llama"
    w = GGUFWriter(a.out, arch)
    w.add_name(f"random {a.shape}" + (" (as llama)" if a.as_llama else ""))
    w.add_context_length(8192)
    w.add_embedding_length(hidden)
    w.add_block_count(blocks)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hd)
    if hd * heads != hidden:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_file_type(1)  # mostly F16
    tokens, types, merges = vocabulary(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(PRE.get(arch, "gpt-2"))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab - 1)
    w.add_bos_token_id(vocab - 1)
    w.add_add_bos_token(False)
    specs = tensors(arch, hidden, blocks, heads, kv, hd, ffn, vocab, tied, theta)
    if a.as_llama:
        specs = [s for s in specs if s[2] != "rope"]
    for name, shape, kind in specs:
        dtype = np.float16 if kind == "w" else np.float32
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(a.seed)
    for name, shape, kind in specs:
        if kind == "w":
            t = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
        elif kind == "g":
            t = np.ones(shape, dtype=np.float32)
        elif kind == "b":
            t = np.zeros(shape, dtype=np.float32)
        else:
            t = rope_freqs(hd, theta)
        w.write_tensor_data(t)
    w.close()
    n = sum(int(np.prod(s)) for _, s, k in specs if k == "w")
    print(f"wrote {a.out}: {arch}, {blocks} blocks, {n / 1e9:.2f} B weights in F16", file=sys.stderr)


if __name__ == "__main__":
    main()
