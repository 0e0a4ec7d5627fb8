#!/usr/bin/env python3
"""Independent Gemma 3 reference: a plain numpy forward pass of Gemma 3 (text)
on a GGUF's weights, each dequantized to float32 with `gguf.quants.dequantize`.
It shares no code with normscope. Order of operations follows Hugging Face's
Gemma3TextModel:

    x = embed[ids] * float32(sqrt(hidden))
    per block l:
        y = input_norm(x)                      # GGUF attn_norm (gains hold 1 + w)
        q, k, v = y Wq^T, y Wk^T, y Wv^T       # q: n_head x 256, k/v: n_kv x 256
        q, k = q_norm(q), k_norm(k)            # per-head RMSNorm over head_dim
        q, k = rope_neox(q), rope_neox(k)      # half-split; base 10k local, 1M global
        a = softmax(q k^T / sqrt(256) + mask) v, then Wo    # GQA: 4 q heads per kv head
        x = x + post_attention_norm(a)
        m = down(gelu_tanh(gate(y2)) * up(y2)), y2 = pre_ffw_norm(x)   # GGUF ffn_norm
        x = x + post_ffw_norm(m)
    logits = final_norm(x) embed^T             # tied head

Sliding blocks: key j is visible from query i iff j <= i and i - j < window
(llama.cpp's is_masked_swa masks p1 - p0 >= n_swa; transformers'
sliding_window_overlay keeps kv_idx > q_idx - sliding_window: the same rule).
Block l is global iff l % pattern == pattern - 1 (pattern 6: blocks 5, 11, 17),
as llama.cpp's set_swa_pattern does when the GGUF has no pattern key.

Precision: weights and matmuls in float32; RMSNorm (statistic and gain) in
float64, cast to float32; RoPE angles in float64 (cos/sin cast to float32);
softmax in float64; GELU in float64.

usage:
  reference_gemma.py --gguf G --check                      # vs ../shared/refs/gemma/p1.json
  reference_gemma.py --gguf G --ids 2,818,5279 --out P     # P.json, P.logits.npy, P.hidden_last.npy
        [--prompt-ids-file F] [--greedy N] [--all-positions] [--positions 511,512]
  reference_gemma.py --gguf G --ppl --prompt-ids-file F --ctx 512 [--chunks N] [--llama-ppl | --window-bos]
needs: pip install numpy gguf
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize


# ---------------------------------------------------------------- loading

def scalar(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    if f.types and f.types[0] == GGUFValueType.ARRAY:
        return f.contents()
    return f.contents()


def load(path):
    r = GGUFReader(path)
    arch = scalar(r, "general.architecture")
    if arch != "gemma3":
        sys.exit(f"error: {path}: general.architecture is {arch!r}, want 'gemma3'")
    p = arch + "."
    n_layer = int(scalar(r, p + "block_count"))
    pattern = scalar(r, p + "attention.sliding_window_pattern", 6)
    if isinstance(pattern, list):  # per-layer bools: true = sliding
        is_swa = [bool(v) for v in pattern]
    else:
        pattern = int(pattern)
        is_swa = [pattern == 0 or (l % pattern) < pattern - 1 for l in range(n_layer)]
    cfg = {
        "n_layer": n_layer,
        "hidden": int(scalar(r, p + "embedding_length")),
        "ffn": int(scalar(r, p + "feed_forward_length")),
        "n_head": int(scalar(r, p + "attention.head_count")),
        "n_kv": int(scalar(r, p + "attention.head_count_kv")),
        "head_dim": int(scalar(r, p + "attention.key_length")),
        "eps": float(scalar(r, p + "attention.layer_norm_rms_epsilon")),
        "rope_global": float(scalar(r, p + "rope.freq_base", 1_000_000.0)),
        "rope_local": float(scalar(r, p + "rope.freq_base_swa", 10_000.0)),
        "window": int(scalar(r, p + "attention.sliding_window", 0)),
        "is_swa": is_swa,
        "softcap": scalar(r, p + "final_logit_softcapping"),
        "bos": int(scalar(r, "tokenizer.ggml.bos_token_id", 2)),
        "add_bos": bool(scalar(r, "tokenizer.ggml.add_bos_token", True)),
    }
    if cfg["window"] <= 0:
        cfg["is_swa"] = [False] * n_layer
    w = {}
    for t in r.tensors:
        if t.name == "token_embd.weight":  # 262144 x 640: dequantize in slices (peak memory)
            rows = t.data.shape[0]
            out = np.empty((rows, cfg["hidden"]), dtype=np.float32)
            for s in range(0, rows, 16384):
                out[s : s + 16384] = dequantize(t.data[s : s + 16384], t.tensor_type)
            w[t.name] = out
        else:
            w[t.name] = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
    return cfg, w


# ---------------------------------------------------------------- model

def rms_norm(x, g, eps):
    x64 = x.astype(np.float64)
    y = x64 / np.sqrt((x64 * x64).mean(-1, keepdims=True) + eps)
    return (y * g.astype(np.float64)).astype(np.float32)


def gelu_tanh(x):
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)))).astype(np.float32)


def rope_tables(positions, hd, base):
    inv = 1.0 / base ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def rope(v, cos, sin):  # v: (heads, t, hd), NEOX half-split
    h = v.shape[-1] // 2
    a, b = v[..., :h], v[..., h:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)


def softmax64(s):
    s = s.astype(np.float64)
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)).astype(np.float32)


def forward(cfg, w, ids, record=False):
    """Returns the final-normed hidden states (t, hidden) and, if record, a dict
    of per-block arrays (all positions)."""
    t = len(ids)
    H, nh, nkv, hd, eps = cfg["hidden"], cfg["n_head"], cfg["n_kv"], cfg["head_dim"], cfg["eps"]
    x = w["token_embd.weight"][np.asarray(ids)] * np.float32(math.sqrt(H))
    pos = np.arange(t)
    tables = {base: rope_tables(pos, hd, base) for base in {cfg["rope_local"], cfg["rope_global"]}}
    causal = pos[None, :] <= pos[:, None]  # [i, j]: j <= i
    windowed = causal & ((pos[:, None] - pos[None, :]) < cfg["window"]) if cfg["window"] > 0 else causal
    neg = np.float32(-np.inf)
    scale = np.float32(1.0 / math.sqrt(hd))  # query_pre_attn_scalar = head_dim
    rec = {"h": [x], "h_mid": [], "attn_raw": [], "attn": [], "mlp_raw": [], "mlp": []}
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        swa = cfg["is_swa"][l]
        cos, sin = tables[cfg["rope_local"] if swa else cfg["rope_global"]]
        mask = np.where(windowed if swa else causal, np.float32(0), neg)

        y = rms_norm(x, w[p + "attn_norm.weight"], eps)
        q = (y @ w[p + "attn_q.weight"].T).reshape(t, nh, hd).transpose(1, 0, 2)
        k = (y @ w[p + "attn_k.weight"].T).reshape(t, nkv, hd).transpose(1, 0, 2)
        v = (y @ w[p + "attn_v.weight"].T).reshape(t, nkv, hd).transpose(1, 0, 2)
        q = rms_norm(q, w[p + "attn_q_norm.weight"], eps)
        k = rms_norm(k, w[p + "attn_k_norm.weight"], eps)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        g = nh // nkv
        k, v = np.repeat(k, g, 0), np.repeat(v, g, 0)
        s = (q @ k.transpose(0, 2, 1)) * scale + mask
        o = (softmax64(s) @ v).transpose(1, 0, 2).reshape(t, nh * hd)
        a_raw = o @ w[p + "attn_output.weight"].T
        a = rms_norm(a_raw, w[p + "post_attention_norm.weight"], eps)
        x_mid = x + a

        y2 = rms_norm(x_mid, w[p + "ffn_norm.weight"], eps)
        gate = y2 @ w[p + "ffn_gate.weight"].T
        up = y2 @ w[p + "ffn_up.weight"].T
        m_raw = (gelu_tanh(gate) * up) @ w[p + "ffn_down.weight"].T
        m = rms_norm(m_raw, w[p + "post_ffw_norm.weight"], eps)
        x = x_mid + m
        if record:
            rec["h_mid"].append(x_mid)
            rec["attn_raw"].append(a_raw)
            rec["attn"].append(a)
            rec["mlp_raw"].append(m_raw)
            rec["mlp"].append(m)
            rec["h"].append(x)
    xf = rms_norm(x, w["output_norm.weight"], eps)
    return xf, (rec if record else None)


def head(cfg, w, xf):
    z = xf @ w["token_embd.weight"].T
    if cfg["softcap"]:
        c = np.float32(cfg["softcap"])
        z = np.tanh(z / c) * c
    return z


def logsumexp(z):
    z = z.astype(np.float64)
    m = z.max(-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[..., 0]


# ---------------------------------------------------------------- figures

def norms(v):
    return np.linalg.norm(v.astype(np.float64), axis=-1)


def cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def block_figures(rec):
    out = []
    for l in range(len(rec["attn"])):
        h_in, h_mid, h_out = rec["h"][l], rec["h_mid"][l], rec["h"][l + 1]
        per = {
            "norm_h_in": norms(h_in),
            "norm_h_mid": norms(h_mid),
            "norm_h_out": norms(h_out),
            "norm_attn": norms(rec["attn"][l]),
            "norm_attn_raw": norms(rec["attn_raw"][l]),
            "norm_mlp": norms(rec["mlp"][l]),
            "norm_mlp_raw": norms(rec["mlp_raw"][l]),
            "norm_delta": norms(h_out - h_in),
            "rel_contrib": norms(h_out - h_in) / norms(h_in),
            "attn_ratio": norms(rec["attn"][l]) / norms(h_in),
            "mlp_ratio": norms(rec["mlp"][l]) / norms(h_mid),
            "cos": cosines(h_in, h_out),
            "attn_cos": cosines(h_in, h_mid),
            "mlp_cos": cosines(h_mid, h_out),
        }
        d = {"layer": l}
        for k, v in per.items():  # main figures leave position 0 (BOS) out, *_all keep it
            d[k] = float(v[1:].mean()) if len(v) > 1 else float(v.mean())
        for k, v in per.items():
            d[k + "_all"] = float(v.mean())
        d["bi"] = 1.0 - d["cos"]
        d["angular"] = float((np.arccos(np.clip(per["cos"][1:] if len(per["cos"]) > 1 else per["cos"], -1, 1)) / np.pi).mean())
        out.append(d)
    return out


def greedy(cfg, w, ids, n):
    """n argmax steps, each recomputing the whole sequence (no cache)."""
    seq, new, margins = list(ids), [], []
    for _ in range(n):
        xf, _ = forward(cfg, w, seq)
        z = head(cfg, w, xf[-1:])[0]
        top2 = np.argsort(-z, kind="stable")[:2]
        new.append(int(top2[0]))
        margins.append(float(z[top2[0]] - z[top2[1]]))
        seq.append(int(top2[0]))
    return new, margins


def run_prompt(cfg, w, ids, n_greedy, topk=20, positions=()):
    xf, rec = forward(cfg, w, ids, record=True)
    z = head(cfg, w, xf[-1:])[0]
    order = np.argsort(-z, kind="stable")[:topk]
    res = {
        "prompt_ids": [int(i) for i in ids],
        "n_tokens": len(ids),
        "top20": [int(i) for i in order],
        "top20_logits": [float(z[i]) for i in order],
        "top5": [int(i) for i in order[:5]],
        "top5_logits": [float(z[i]) for i in order[:5]],
        "logsumexp": float(logsumexp(z[None])[0]),
        "layers": block_figures(rec),
    }
    pos_logits = None
    if positions:
        pos_logits = head(cfg, w, xf[list(positions)])
        res["positions"] = list(positions)
        res["positions_top5"] = [[int(i) for i in np.argsort(-r, kind="stable")[:5]] for r in pos_logits]
        res["positions_logsumexp"] = [float(v) for v in logsumexp(pos_logits)]
    if n_greedy:
        res["greedy"], res["margins"] = greedy(cfg, w, ids, n_greedy)
    hidden = np.stack(rec["h"])  # [n_layer + 1, t, hidden]: row 0 embedding, row l+1 block l output
    return res, z.astype(np.float32), hidden, pos_logits


# ---------------------------------------------------------------- perplexity

def log_softmax_rows(z):
    return z.astype(np.float64) - logsumexp(z)[:, None]


def perplexity(cfg, w, ids, ctx, chunks, llama_mode, window_bos=False):
    """Default: non-overlapping windows from position 0 (ids used as given),
    every position but the last of a window scored. window_bos: every window is
    BOS + the next ctx-1 ids of the stream (a leading BOS in the stream is dropped).
    llama_mode: llama-perplexity's rule: n_chunk = len // ctx, the first token of
    every chunk replaced by BOS (when the vocabulary adds BOS), positions
    ctx/2 .. ctx-2 score the next token."""
    nll, count, per_tok, n_stream = 0.0, 0, [], len(ids)
    if window_bos and not llama_mode:
        body = list(ids[1:] if ids and ids[0] == cfg["bos"] else ids)
        step = ctx - 1
        wins = [[cfg["bos"]] + body[s : s + step] for s in range(0, len(body), step)]
        ids = [t for win in wins for t in win]  # windows laid end to end, each ctx long
    if llama_mode:
        n_chunk = len(ids) // ctx
        if chunks:
            n_chunk = min(n_chunk, chunks)
        starts = [i * ctx for i in range(n_chunk)]
    else:
        starts = list(range(0, len(ids), ctx))
        if chunks:
            starts = starts[:chunks]
    for c, s in enumerate(starts):
        win = list(ids[s : s + ctx])
        if len(win) < 2:
            continue
        if llama_mode and cfg["add_bos"]:
            win[0] = cfg["bos"]
        first = ctx // 2 if llama_mode else 0
        xf, _ = forward(cfg, w, win)
        for r0 in range(first, len(win) - 1, 64):
            r1 = min(r0 + 64, len(win) - 1)
            lp = log_softmax_rows(head(cfg, w, xf[r0:r1]))
            tgt = np.asarray(win[r0 + 1 : r1 + 1])
            v = -lp[np.arange(r1 - r0), tgt]
            per_tok.extend(v.tolist())
            nll += float(v.sum())
            count += r1 - r0
        print(f"[{c + 1}]{math.exp(nll / count):.4f}", end=" ", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    mode = ("llama-perplexity (second half of each chunk, BOS-replaced first token)" if llama_mode
            else "non-overlapping windows, each BOS + ctx-1 ids, all positions scored" if window_bos
            else "non-overlapping windows from position 0, all positions scored")
    return {"mode": mode,
            "ctx": ctx, "tokens": n_stream, "windows": len(starts), "predicted_tokens": count,
            "mean_nll": nll / count, "perplexity": math.exp(nll / count)}, np.asarray(per_tok, dtype=np.float32)


# ---------------------------------------------------------------- main

def read_ids(args):
    if args.ids:
        return [int(v) for v in args.ids.replace(",", " ").split()]
    txt = Path(args.prompt_ids_file).read_text().strip()
    if txt.startswith("["):
        return [int(v) for v in json.loads(txt)]
    return [int(v) for v in txt.replace(",", " ").split()]


def check(cfg, w, ref_path):
    ref = json.loads(Path(ref_path).read_text())
    t0 = time.time()
    res, _, _, _ = run_prompt(cfg, w, ref["prompt_ids"], len(ref["greedy"]))
    report = {"ref": str(ref_path), "seconds": round(time.time() - t0, 2)}
    report["top5_equal"] = res["top5"] == ref["top5"]
    d = np.abs(np.array(res["top5_logits"]) - np.array(ref["top5_logits"]))
    report["top5_logits_max_abs"] = float(d.max())
    report["top5_logits_max_rel"] = float((d / np.abs(ref["top5_logits"])).max())
    report["greedy_equal"] = res["greedy"] == ref["greedy"]
    d = np.abs(np.array(res["margins"]) - np.array(ref["margins"]))
    report["margins_max_abs"] = float(d.max())
    fields = {}
    for k in ref["layers"][0]:
        if k == "layer":
            continue
        a = np.array([L[k] for L in res["layers"]])
        b = np.array([L[k] for L in ref["layers"]])
        fields[k] = {"max_abs": float(np.abs(a - b).max()), "max_rel": float((np.abs(a - b) / np.abs(b)).max())}
    report["layers"] = fields
    print(json.dumps(report, indent=1))
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--ids", help="comma/space separated token ids (BOS included if wanted)")
    ap.add_argument("--prompt-ids-file", help="file with ids: JSON list or whitespace/comma separated")
    ap.add_argument("--out", help="output prefix: PREFIX.json, PREFIX.logits.npy, PREFIX.hidden_last.npy, ...")
    ap.add_argument("--greedy", type=int, default=8, help="greedy steps without cache (default 8)")
    ap.add_argument("--all-positions", action="store_true", help="also write PREFIX.hidden_all.npy [n_layer+1, t, hidden]")
    ap.add_argument("--positions", default="", help="also write the full logits at these positions (PREFIX.logits_positions.npy)")
    ap.add_argument("--check", action="store_true", help="compare with ../shared/refs/gemma/p1.json and exit")
    ap.add_argument("--ref", default=str(Path(__file__).resolve().parents[2] / "shared" / "refs" / "gemma" / "p1.json"))
    ap.add_argument("--ppl", action="store_true")
    ap.add_argument("--llama-ppl", action="store_true", help="with --ppl: score as llama-perplexity does")
    ap.add_argument("--window-bos", action="store_true", help="with --ppl: every window starts with BOS (BOS + ctx-1 ids)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    cfg, w = load(args.gguf)
    print(f"loaded {args.gguf} in {time.time() - t0:.1f}s: {json.dumps({k: v for k, v in cfg.items()})}", file=sys.stderr)

    if args.check:
        check(cfg, w, args.ref)
        return
    ids = read_ids(args)
    t1 = time.time()
    if args.ppl:
        res, per_tok = perplexity(cfg, w, ids, args.ctx, args.chunks, args.llama_ppl, args.window_bos)
        res["seconds"] = round(time.time() - t1, 1)
        print(json.dumps(res))
        if args.out:
            Path(args.out + ".json").write_text(json.dumps(res, indent=1))
            np.save(args.out + ".nll.npy", per_tok)
        return
    positions = [int(v) for v in args.positions.replace(",", " ").split()]
    res, logits, hidden, pos_logits = run_prompt(cfg, w, ids, args.greedy, positions=positions)
    res["seconds"] = round(time.time() - t1, 1)
    res["note"] = ("numpy forward on dequantized GGUF weights (f32), scripts/reference_gemma.py; layers: means over "
                   "positions 1.. (position 0 = BOS excluded), *_all over every position; *_raw = sublayer output "
                   "before its post-norm; hidden_last row 0 = scaled embedding, row l+1 = output of block l")
    out = json.dumps(res, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(out)
        np.save(args.out + ".logits.npy", logits)
        np.save(args.out + ".hidden_last.npy", hidden[:, -1, :].astype(np.float32))
        if args.all_positions:
            np.save(args.out + ".hidden_all.npy", hidden.astype(np.float32))
        if pos_logits is not None:
            np.save(args.out + ".logits_positions.npy", pos_logits.astype(np.float32))
        print(f"wrote {args.out}.json ({res['seconds']}s)", file=sys.stderr)
    else:
        print(out)


if __name__ == "__main__":
    main()
