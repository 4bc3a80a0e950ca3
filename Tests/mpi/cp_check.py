"""diffattn.parallel under mpirun with an mpi4py communicator: the calls go through libdiffattn's
MPI plugin (mpi4py only initialises MPI and supplies comm.py2f()). Rank 0 prints
"mpi-python np=P: N passed, N failed"; exits non-zero on any failure."""

import sys

import numpy as np
from mpi4py import MPI

from diffattn import parallel, scaled_dot_product_attention

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
passed = failed = 0


def case(ring, ulysses, batch, heads, kv_heads, mask_kind, n=6, d=16):
    global passed, failed
    rng = np.random.default_rng(100 * ring + 10 * ulysses + batch + heads + kv_heads)  # same on every rank
    q = rng.standard_normal((batch, heads, n * size, d), dtype=np.float32)
    k = rng.standard_normal((batch, kv_heads, n * size, d), dtype=np.float32)
    v = rng.standard_normal((batch, kv_heads, n * size, d), dtype=np.float32)
    keep = rng.random((batch, 1, 1, n * size)) > 0.3
    keep[0, ..., :n] = False
    mask = {"none": None, "bool": keep, "additive": np.where(keep, 0.0, -np.inf).astype(np.float32)}[mask_kind]
    full = scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=kv_heads != heads)
    sl = slice(rank * n, (rank + 1) * n)
    out = parallel.context_parallel_attention(q[:, :, sl], k[:, :, sl], v[:, :, sl], comm, ring_degree=ring,
                                              ulysses_degree=ulysses, attn_mask=None if mask is None else mask[..., sl])
    diff = float(np.abs(out - full[:, :, sl]).max())
    if diff <= 1e-5:
        passed += 1
    else:
        failed += 1
        print(f"rank {rank} FAIL R={ring} U={ulysses} B={batch} H={heads}/{kv_heads} mask={mask_kind}: {diff}", flush=True)


for ulysses in [u for u in range(1, size + 1) if size % u == 0]:
    for mask_kind in ("none", "bool", "additive"):
        for batch in (1, 2):
            case(size // ulysses, ulysses, batch, 4, 4, mask_kind)
    case(size // ulysses, ulysses, 1, 8, 4, "bool")    # GQA
    case(size // ulysses, ulysses, 2, 12, 12, "none")

# a bad input on one rank: the same error everywhere, no hang
try:
    x = np.zeros((1, 4, 4, 8), np.float32 if rank else np.float64)
    parallel.context_parallel_attention(x, x, x, comm, ring_degree=size)
    failed += 1
except (TypeError, ValueError) as e:
    ok = isinstance(e, TypeError) if rank == 0 else "rank 0" in str(e)
    passed, failed = passed + ok, failed + (not ok)

totals = comm.reduce((passed, failed), op=lambda a, b: (a[0] + b[0], a[1] + b[1]))
if rank == 0:
    print(f"mpi-python np={size}: {totals[0]} passed, {totals[1]} failed", flush=True)
sys.exit(1 if failed else 0)
