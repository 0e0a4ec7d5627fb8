#!/usr/bin/env python3
"""Writes small valid seed inputs into corpus/<target>/ (corpus/ is not committed)."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


# bytes per block and values per block of each ggml type id
BLOCKS = {0: (4, 1), 1: (2, 1), 30: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32),
          8: (34, 32), 12: (144, 256), 13: (176, 256), 14: (210, 256)}


# Per architecture: extra metadata and the block-0 tensors (beyond token_embd
# and attn_norm) that set it apart, as llama.cpp's converter writes them.
FAMILY = {
    "llama": ([], []),
    "qwen2": ([("pre", 8, gstr("qwen2"))], [("blk.0.attn_q.bias", [32])]),
    "qwen3": ([("attention.key_length", 4, struct.pack("<I", 16))], [("blk.0.attn_q_norm.weight", [16])]),
    "phi3": ([("attention.sliding_window", 4, struct.pack("<I", 2047))], [("blk.0.attn_qkv.weight", [32, 64])]),
    "olmo2": ([], [("blk.0.post_attention_norm.weight", [32]), ("blk.0.attn_k_norm.weight", [32])]),
    "smollm3": ([("rope.dimension_count", 4, struct.pack("<I", 8))], []),
    "gemma3": ([("attention.key_length", 4, struct.pack("<I", 8)),
                ("attention.sliding_window", 4, struct.pack("<I", 512))], [("blk.0.post_ffw_norm.weight", [32])]),
}


def gguf(alignment=None, qtype=0, width=32, arch="llama", rope_freqs=False):
    extra_kv, extra_tensors = FAMILY[arch]
    kv = [
        ("general.architecture", 8, gstr(arch)),
        (f"{arch}.embedding_length", 4, struct.pack("<I", 32)),
        (f"{arch}.feed_forward_length", 4, struct.pack("<I", 64)),
        (f"{arch}.block_count", 4, struct.pack("<I", 1)),
        (f"{arch}.attention.head_count", 4, struct.pack("<I", 4)),
        (f"{arch}.context_length", 4, struct.pack("<I", 128)),
        (f"{arch}.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gstr("a") + gstr("b")),
        ("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, 2) + struct.pack("<ii", 1, 1)),
        ("flag", 7, b"\x01"),
    ]
    for k, t, p in extra_kv:
        kv.append(("tokenizer.ggml.pre" if k == "pre" else f"{arch}.{k}", t, p))
    if alignment:
        kv.append(("general.alignment", 4, struct.pack("<I", alignment)))
    align = alignment or 32
    tensors = [("token_embd.weight", [width, 4]), ("blk.0.attn_norm.weight", [width])] + extra_tensors
    if rope_freqs:
        tensors.append(("rope_freqs.weight", [4]))
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, t, p in kv:
        out += gstr(k) + struct.pack("<I", t) + p
    off = 0
    datas = []
    for name, ne in tensors:
        n = 1
        for x in ne:
            n *= x
        ty = qtype if len(ne) == 2 else 0
        nbytes, per = BLOCKS[ty]
        size = n // per * nbytes
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        out += struct.pack("<IQ", ty, off)
        # small nonzero data (0x2c00 is 0.0625 as an f16 scale or value)
        datas.append((b"\x00\x2c" * (size // 2 + 1))[:size])
        off += -(-size // align) * align
    out += bytes(-len(out) % align)
    for d in datas:
        out += d + bytes(-len(d) % align)
    return out


def safetensors(extra_meta=True):
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}
    if extra_meta:
        header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(22)


put("gguf_header", "f32", gguf())
put("gguf_header", "q8_0_align64", gguf(alignment=64, qtype=8))
# one seed per other tensor type quantize writes (k-quants need rows of 256)
for ty, name in [(1, "f16"), (30, "bf16"), (2, "q4_0"), (3, "q4_1"), (6, "q5_0"), (7, "q5_1")]:
    put("gguf_header", name, gguf(qtype=ty))
for ty, name in [(12, "q4_k"), (13, "q5_k"), (14, "q6_k")]:
    put("gguf_header", name, gguf(qtype=ty, width=256))
for arch in FAMILY:
    if arch != "llama":
        put("gguf_header", arch, gguf(arch=arch))
put("gguf_header", "llama3_rope_freqs", gguf(rope_freqs=True))
put("safetensors_header", "two", safetensors())
put("safetensors_header", "plain", safetensors(False))
base = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100}
put("config", "base", json.dumps(base).encode())
put("config", "llama3", json.dumps(dict(base, rope_scaling={"rope_type": "llama3", "factor": 8.0},
                                        eos_token_id=[1, 2], head_dim=16)).encode())
put("config", "tf5", json.dumps(dict(base, rope_parameters={"rope_type": "default", "rope_theta": 1e5})).encode())
# Every family's config.json as transformers 5.24 wrote it for the test fixtures.
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "family")
for arch in sorted(os.listdir(FIXTURES)):
    path = os.path.join(FIXTURES, arch, "hf", "config.json")
    if os.path.exists(path):
        with open(path, "rb") as f:
            put("config", arch, f.read())
