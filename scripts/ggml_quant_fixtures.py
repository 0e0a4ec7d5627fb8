#!/usr/bin/env python3
"""Writes tests/fixtures/ggml_ref/: rows of f32 values with the edge cases a
quantizer gets wrong, and the blocks ggml's own reference quantizers make of
them (ggml_quantize_chunk without an importance matrix, i.e. the
quantize_row_*_ref functions llama-quantize calls).

The tests compare `normscope quantize`'s blocks with these bytes, so CI checks
bit-exactness without a llama.cpp build. Regenerate with a built libggml-base:

    python3 scripts/ggml_quant_fixtures.py /path/to/libggml-base.so tests/fixtures/ggml_ref
"""
import ctypes
import os
import sys

import numpy as np

ROW = 256
# ggml type ids and names (ggml.h)
TYPES = {2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0",
         12: "q4_K", 13: "q5_K", 14: "q6_K", 1: "f16", 30: "bf16"}


def rows():
    rng = np.random.default_rng(20261011)
    out = []
    out.append(np.zeros(ROW))                                   # all zero
    out.append(rng.standard_normal(ROW))                        # N(0, 1)
    out.append(rng.standard_normal(ROW) * 0.02)                 # typical weight scale
    out.append(-np.abs(rng.standard_normal(ROW)))               # negative only
    out.append(np.abs(rng.standard_normal(ROW)) + 0.1)          # positive only, min > 0
    r = rng.standard_normal(ROW) * 0.02
    r[7] = 1e4                                                  # one huge value
    r[200] = -3e3
    out.append(r)
    r = np.tile(np.array([127.0, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 3.5]), ROW // 8)
    out.append(r)                                               # ties at .5 (Q8_0 d = 1)
    r = np.tile(np.array([-8.0, 0.5, 1.5, -0.5, 2.5, 4.5, -3.5, 7.0]), ROW // 8)
    out.append(r)                                               # ties for the 4-bit types
    out.append(np.full(ROW, 0.3))                               # constant
    r = rng.standard_normal(ROW)
    r[:32] = rng.uniform(-1e-4, 1e-4, 32)                       # a sub-block whose scale rounds to 0
    r[64:80] = 0.0                                              # a zero 16-group (Q6_K)
    out.append(r)
    out.append(rng.standard_normal(ROW) * 1e-8)                 # f16-subnormal scales
    out.append(rng.standard_normal(ROW) * 6e3)                  # large but finite in f16
    r = rng.standard_normal(ROW)
    r[::2] = 0.0                                                # half zeros
    out.append(r)
    out.append(np.where(np.arange(ROW) % 2 == 0, 3.0, -3.0))   # alternating exact values
    out.append(rng.laplace(0, 0.05, ROW))                       # heavy tails
    out.append(rng.uniform(-1, 1, ROW) * np.linspace(0, 1, ROW))
    for i in range(48):                                         # random rows, scales 1e-4 .. 1e2
        r = rng.standard_normal(ROW) * 10.0 ** rng.uniform(-4, 2)
        if i % 3 == 0:
            r[rng.integers(0, ROW, 3)] *= 50.0                  # a few outliers
        if i % 4 == 1:
            r += rng.uniform(-2, 2) * np.abs(r).mean()          # an offset (min/max asymmetry)
        out.append(r)
    return np.stack(out).astype(np.float32)


def main():
    lib = ctypes.CDLL(sys.argv[1])
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_void_p]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    x = np.ascontiguousarray(rows())
    x.tofile(os.path.join(out_dir, "input.f32"))
    for tid, name in TYPES.items():
        lib.ggml_quantize_init(tid)
        dst = np.zeros(x.size * 4, dtype=np.uint8)
        n = lib.ggml_quantize_chunk(tid, x.ctypes.data, dst.ctypes.data, 0, x.shape[0], ROW, None)
        dst[:n].tofile(os.path.join(out_dir, f"{name}.bin"))
        print(f"{name}: {x.shape[0]} rows -> {n} bytes")


if __name__ == "__main__":
    main()
