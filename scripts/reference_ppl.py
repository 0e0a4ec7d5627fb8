#!/usr/bin/env python3
"""Independent perplexity reference: a plain numpy LLaMA forward pass (float32,
half-split RoPE, GQA, SwiGLU, RMSNorm) over a Hugging Face folder, with
tokenization by the `tokenizers` Python package. It shares no code with
normscope. It first checks itself against ../shared/refs/hf/p1 (transformers'
logits), then prints the perplexity of a text over non-overlapping windows.

usage: python3 scripts/reference_ppl.py MODEL_DIR TEXT_FILE CTX LIMIT
needs: pip install numpy tokenizers
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def load_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=np.float32).reshape(info["shape"])
    return out


def rms_norm(x, g, eps):
    return g * (x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + eps)).astype(np.float32)


def forward(w, cfg, ids):
    h, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    t = len(ids)
    x = w["model.embed_tokens.weight"][ids]
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float32) / hd)
    ang = np.arange(t, dtype=np.float32)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):  # (heads, t, hd), half-split
        a, b = v[..., : hd // 2], v[..., hd // 2 :]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    mask = np.triu(np.full((t, t), -np.inf, dtype=np.float32), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        y = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (y @ w[p + "self_attn.q_proj.weight"].T).reshape(t, nh, hd).transpose(1, 0, 2)
        k = (y @ w[p + "self_attn.k_proj.weight"].T).reshape(t, nkv, hd).transpose(1, 0, 2)
        v = (y @ w[p + "self_attn.v_proj.weight"].T).reshape(t, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(t, nh * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        y = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = y @ w[p + "mlp.gate_proj.weight"].T
        u = y @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def log_softmax(z):
    z = z.astype(np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def main():
    model_dir, text_file, ctx, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    w = load_safetensors(Path(model_dir) / "model.safetensors")
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))

    refs = Path(__file__).resolve().parents[2] / "shared" / "refs" / "hf"
    if refs.exists():
        p1 = json.loads((refs / "p1.json").read_text())
        logits = forward(w, cfg, p1["token_ids"])[-1]
        want = np.load(refs / "p1.logits.npy")
        print(f"self-check vs transformers p1 logits: max |diff| = {np.abs(logits - want).max():.2e}", file=sys.stderr)

    ids = tok.encode(Path(text_file).read_text(encoding="utf-8"), add_special_tokens=False).ids[:limit]
    nll, count = 0.0, 0
    for start in range(0, len(ids), ctx):
        win = ids[start : start + ctx]
        if len(win) < 2:
            continue
        lp = log_softmax(forward(w, cfg, win))
        nll -= sum(lp[j, win[j + 1]] for j in range(len(win) - 1))
        count += len(win) - 1
    print(json.dumps({"tokens": len(ids), "predicted_tokens": count, "mean_nll": nll / count, "perplexity": math.exp(nll / count)}))


if __name__ == "__main__":
    main()
