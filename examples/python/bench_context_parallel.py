"""Scale figures for context parallelism on one machine (docs/parallel.md): bytes per rank per call
(counted by the communicator), the share of the ring's communication hidden behind compute with an
injected link delay, the per-rank attention rate, and the spec's cost model for 2-64 ranks with it.

    python examples/python/bench_context_parallel.py [--tokens 4096 --heads 8 --dim 64]

In-process ranks (threads) stand in for processes; the machine may be shared, so the rates are
what this run saw, not a peak.
"""

import argparse
import threading
import time

import numpy as np

import diffattn
from diffattn import parallel

p = argparse.ArgumentParser()
p.add_argument("--tokens", type=int, default=4096)
p.add_argument("--heads", type=int, default=8)
p.add_argument("--dim", type=int, default=64)
args = p.parse_args()
N, H, D = args.tokens, args.heads, args.dim
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((1, H, N, D), dtype=np.float32) for _ in range(3))


def on_ranks(comms, body):
    out = [None] * len(comms)
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, body(comms[i]))) for i in range(len(comms))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return out


def call(comm, ring, ulysses):
    n = N // comm.size
    sl = slice(comm.rank * n, (comm.rank + 1) * n)
    return parallel.context_parallel_attention(q[:, :, sl], k[:, :, sl], v[:, :, sl], comm, ring, ulysses)


# 1. bytes per rank per call, counted
print(f"## bytes per rank per call (B=1, N={N}, H={H}, D={D}, fp32; E = {N * H * D * 4 / 1e6:.2f} MB per tensor)")
print("| P | R × U | sent per rank | received per rank | model (payload) |")
print("|---|---|---|---|---|")
E = N * H * D * 4
for P in (2, 4):
    for R, U in ((P, 1), (1, P), (2, P // 2)) if P == 4 else ((P, 1), (1, P)):
        comms = parallel.local_communicator(P)
        on_ranks(comms, lambda c: call(c, R, U))
        sent, received, _ = comms[0].counters()
        model = 4 * (E / P) * (U - 1) / U + 2 * E * (R - 1) / P
        print(f"| {P} | {R} × {U} | {sent / 1e6:.3f} MB | {received / 1e6:.3f} MB | {model / 1e6:.3f} MB |")

# 2. per-rank attention rate: one rank's share of the work on one thread
diffattn.set_num_threads(1)
for P in (2, 4):
    n = N // P
    flops = 4 * H * n * N * D
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        diffattn.scaled_dot_product_attention(q[:, :, :n], k, v)
        best = min(best, time.perf_counter() - t)
    print(f"per-rank attention rate, 1 thread, {n}×{N} tokens: {flops / best / 1e9:.1f} GFLOP/s ({best * 1e3:.1f} ms)")
rate = flops / best

# 3. ring overlap with an injected link: the K/V block's transfer takes `factor` × one step's compute.
# Bandwidth-only delay, so the 384-byte validation descriptors cost nothing; the run without delay
# gives the waiting that load imbalance alone causes, subtracted from the delayed runs.
print("\n## ring with an injected link delay (P = 2, 1 thread per rank)")
print("| block transfer | compute per step | waited per rank | of which the link | hidden |")
print("|---|---|---|---|---|")
P = 2
n = N // P
block = 2 * H * n * D * 4


def waited(bandwidth):
    comms = parallel.local_communicator(P, bandwidth=bandwidth)
    on_ranks(comms, lambda c: call(c, P, 1))  # warm-up
    best = None
    for _ in range(2):
        for c in comms:
            c.reset_counters()
        t = time.perf_counter()
        on_ranks(comms, lambda c: call(c, P, 1))
        wall = time.perf_counter() - t
        w = max(c.counters()[2] for c in comms)
        best = (w, wall) if best is None or w < best[0] else best
    return best


base_wait, base_wall = waited(0)
step_compute = base_wall / P  # two steps, no delay: the wall time is compute (+ small packing)
for factor in (0.5, 1.0, 2.0):
    transfer = factor * step_compute
    w, wall = waited(block / transfer)
    link = max(w - base_wait, 0)
    print(f"| {transfer * 1e3:.0f} ms | {step_compute * 1e3:.0f} ms | {w * 1e3:.0f} ms | {link * 1e3:.0f} ms "
          f"| {(1 - link / transfer) * 100:.0f} % |")

# 4. the cost model for Flux at 1024² (N = 4608, H = 24, D = 128, fp32) with the measured rate
print(f"\n## cost model: Flux 1024², F_r = {rate / 1e9:.1f} GFLOP/s measured, β = 10 GB/s, 5 µs per message")
print("| P | layout | compute | sent per rank | ring K/V memory (all-gather / p2p) | time, all-gather ring "
      "| time, p2p ring | speed-up (p2p) |")
print("|---|---|---|---|---|---|---|---|")
Nf, Hf, Df, beta, alpha = 4608, 24, 128, 10e9, 5e-6
Ef = Nf * Hf * Df * 4
F1 = 4 * Hf * Nf * Nf * Df
single = F1 / rate
layouts = [(P, max(u for u in (1, 2, 4, 8) if u <= P and Hf % u == 0 and P % u == 0)) for P in (2, 4, 8, 16, 32, 64)]
layouts += [(P, 1) for P in (8, 64)]
for P, U in layouts:
    R = P // U
    compute = F1 / P / rate
    a2a = 4 * (Ef / P) * (U - 1) / U
    ring_bytes = 2 * Ef * (R - 1) / P
    a2a_time = (a2a / beta + 4 * (U - 1) * alpha) if U > 1 else 0
    ag_time = compute + a2a_time + ring_bytes / beta + (R - 1) * alpha
    step_c, step_t = compute / R, (2 * Ef / P) / beta + alpha
    p2p_time = a2a_time + (step_c + (R - 1) * max(step_c, step_t) if R > 1 else compute)
    kv_ag = 2 * Ef / U / 1e6 if R > 1 else 0
    kv_p2p = 2 * 2 * Ef / P / 1e6 if R > 1 else 0
    print(f"| {P} | R={R} × U={U} | {compute * 1e3:.0f} ms | {(a2a + ring_bytes) / 1e6:.1f} MB | {kv_ag:.0f} / {kv_p2p:.0f} MB "
          f"| {ag_time * 1e3:.0f} ms | {p2p_time * 1e3:.0f} ms | {single / p2p_time:.1f} |")
