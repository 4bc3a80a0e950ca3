#!/usr/bin/env python3
"""The Python binding's cost on one forward: `diffattn.Attention(...)(x)` against the same forward
through the C API (`da_attention_forward` into a preallocated output, what the tool and a C host
do), alternating call by call in one process so that machine noise hits both alike.

    python examples/python/bench_call_overhead.py [--tokens 1024] [--repeats 30]

Default: an SD1.5 self-attention forward, (2, 1024, 320), 8 heads × 40. Prints best and median of
each and the Python overhead in percent.
"""

import argparse
import ctypes
import time

import numpy as np

import diffattn
from diffattn._core import TensorArg, check
from diffattn._lib import ForwardArgs, lib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=30)
    opts = ap.parse_args()
    attn = diffattn.Attention(query_dim=320, heads=8, dim_head=40)
    x = np.random.default_rng(0).standard_normal((2, opts.tokens, 320)).astype(np.float32)
    out = np.empty_like(x)
    xa, oa = TensorArg(x, "x"), TensorArg(out, "out")
    args = ForwardArgs()
    check(lib.da_forward_args_init(ctypes.byref(args), ctypes.sizeof(args)))
    args.hidden_states = ctypes.pointer(xa.tensor)

    def c_call():
        check(lib.da_attention_forward(attn._handle, ctypes.byref(args), ctypes.byref(oa.tensor), 1))

    def py_call():
        attn(x)

    c_call(), py_call()
    if not np.array_equal(out, attn(x)):
        raise SystemExit("the two calls disagree")
    tc, tp = [], []
    for _ in range(opts.repeats):
        s = time.perf_counter()
        c_call()
        tc.append(time.perf_counter() - s)
        s = time.perf_counter()
        py_call()
        tp.append(time.perf_counter() - s)
    best_c, best_p = min(tc), min(tp)
    med_c, med_p = sorted(tc)[len(tc) // 2], sorted(tp)[len(tp) // 2]
    print(f"(2, {opts.tokens}, 320) forward: C API best {best_c * 1e3:.2f} ms, median {med_c * 1e3:.2f} ms; "
          f"Python best {best_p * 1e3:.2f} ms, median {med_p * 1e3:.2f} ms")
    print(f"Python overhead: {100 * (best_p / best_c - 1):+.1f}% (best), {100 * (med_p / med_c - 1):+.1f}% (median)")


if __name__ == "__main__":
    main()
