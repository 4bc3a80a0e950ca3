"""A DiT block loop whose every attention runs context-parallel, equal to one process.

The host owns the blocks (norms, projections, MLP: per-token work on its own shard of the sequence,
no communication); only attention needs the other ranks' tokens, and
diffattn.parallel.context_parallel_attention supplies them (ring, Ulysses or both). The input is
sharded once at the entry and the output gathered once at the exit, as diffusers' _cp_plan does.

    mpirun -np 4 --oversubscribe python examples/python/context_parallel_dit.py --ring 2 --ulysses 2
    python examples/python/context_parallel_dit.py --ranks 4 --ring 2 --ulysses 2     # threads, no MPI

Rank 0 prints the largest difference to the single-process run and exits non-zero above 1e-4.
"""

import argparse
import sys
import threading

import numpy as np

import diffattn
from diffattn import parallel

parser = argparse.ArgumentParser()
parser.add_argument("--ranks", type=int, default=0, help="in-process ranks (threads) when not under mpirun")
parser.add_argument("--ring", type=int, default=0)
parser.add_argument("--ulysses", type=int, default=0)
parser.add_argument("--blocks", type=int, default=4)
parser.add_argument("--tokens", type=int, default=96)
parser.add_argument("--heads", type=int, default=4)
args = parser.parse_args()

DIM, HEADS, HEAD_DIM = args.heads * 16, args.heads, 16
rng = np.random.default_rng(0)  # every rank draws the same weights and input
blocks = [{name: (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
           for name, shape in (("qkv", (DIM, 3 * DIM)), ("out", (DIM, DIM)), ("up", (DIM, 4 * DIM)),
                               ("down", (4 * DIM, DIM)))} for _ in range(args.blocks)]
hidden_full = rng.standard_normal((1, args.tokens, DIM)).astype(np.float32)
keep_full = rng.random((1, 1, 1, args.tokens)) > 0.1  # a key-padding mask, sharded with the tokens


def layer_norm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)


def heads(x):  # (B, N, H·D) → (B, H, N, D)
    return x.reshape(x.shape[0], x.shape[1], HEADS, HEAD_DIM).transpose(0, 2, 1, 3)


def forward(hidden, keep, attend):
    """The DiT stack on whatever tokens this process holds; `attend(q, k, v, mask)` does attention."""
    for w in blocks:
        q, k, v = np.split(layer_norm(hidden) @ w["qkv"], 3, axis=-1)
        o = attend(heads(q), heads(k), heads(v), keep)
        hidden = hidden + o.transpose(0, 2, 1, 3).reshape(hidden.shape) @ w["out"]
        hidden = hidden + np.maximum(layer_norm(hidden) @ w["up"], 0) @ w["down"]
    return hidden


def rank_main(comm, ring, ulysses):
    local = parallel.shard(hidden_full, comm, 1)       # entry: this rank's chunk of the sequence
    local_keep = parallel.shard(keep_full, comm, 3)
    out = forward(local, local_keep, lambda q, k, v, m: parallel.context_parallel_attention(
        q, k, v, comm, ring_degree=ring, ulysses_degree=ulysses, attn_mask=m))
    return parallel.gather(np.ascontiguousarray(out), comm, 1)   # exit: every rank gets the whole output


def check(full, size, ring, ulysses):
    reference = forward(hidden_full, keep_full,
                        lambda q, k, v, m: diffattn.scaled_dot_product_attention(q, k, v, attn_mask=m))
    diff = float(np.abs(full - reference).max())
    print(f"context-parallel DiT: {args.blocks} blocks, {args.tokens} tokens, {size} ranks (ring {ring} × "
          f"ulysses {ulysses}): max |diff| vs one process {diff:.3g}")
    return diff <= 1e-4


def degrees(size):
    ring = args.ring or (size // args.ulysses if args.ulysses else size)
    return ring, args.ulysses or size // ring


if args.ranks:  # in-process ranks on threads
    comms = parallel.local_communicator(args.ranks)
    ring, ulysses = degrees(args.ranks)
    results = [None] * args.ranks
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, rank_main(comms[i], ring, ulysses)))
               for i in range(args.ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = all(np.array_equal(r, results[0]) for r in results) and check(results[0], args.ranks, ring, ulysses)
    sys.exit(0 if ok else 1)

from mpi4py import MPI  # noqa: E402  (only under mpirun)

world = MPI.COMM_WORLD
ring, ulysses = degrees(world.Get_size())
full = rank_main(world, ring, ulysses)
ok = world.gather(check(full, world.Get_size(), ring, ulysses) if world.Get_rank() == 0 else True, root=0)
sys.exit(0 if world.Get_rank() != 0 or all(ok) else 1)
