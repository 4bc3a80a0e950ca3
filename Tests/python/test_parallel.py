"""diffattn.parallel through in-process communicators (one thread per rank) against a numpy float64
reference of attention over the whole sequence."""

import threading

import numpy as np
import pytest

import diffattn
from diffattn import parallel


def reference(q, k, v, keep, scale):
    s = np.einsum("bhnd,bhmd->bhnm", q.astype(np.float64), k.astype(np.float64)) * scale
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.where(np.isfinite(m), np.exp(s - np.where(np.isfinite(m), m, 0)), 0)
    z = e.sum(-1, keepdims=True)
    return np.where(z > 0, e @ v.astype(np.float64) / np.where(z > 0, z, 1), 0)


def run_ranks(n, body):
    comms = parallel.local_communicator(n)
    results, errors = [None] * n, [None] * n

    def work(i):
        try:
            results[i] = body(comms[i])
        except Exception as e:  # noqa: BLE001 - collected and compared below
            errors[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors, comms


@pytest.mark.parametrize("ring,ulysses", [(2, 1), (1, 2), (4, 1), (1, 4), (2, 2)])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
@pytest.mark.parametrize("batch", [1, 2])
def test_every_rank_equals_whole_sequence(ring, ulysses, mask_kind, batch):
    p, heads, n, d = ring * ulysses, 4, 9, 16
    rng = np.random.default_rng(ring * 10 + ulysses + batch)
    q = rng.standard_normal((batch, heads, n * p, d), dtype=np.float32)
    k = rng.standard_normal((batch, heads, n * p, d), dtype=np.float32)
    v = rng.standard_normal((batch, heads, n * p, d), dtype=np.float32)
    keep = rng.random((batch, 1, 1, n * p)) > 0.25
    keep[0, ..., :n] = False  # rank 0's keys all dropped in batch 0: only right if masks travel with keys
    mask = {"none": None, "bool": keep, "additive": np.where(keep, 0.0, -np.inf).astype(np.float32)}[mask_kind]
    expected = reference(q, k, v, None if mask is None else keep, 0.3)

    def body(comm):
        sl = slice(comm.rank * n, (comm.rank + 1) * n)
        local_mask = None if mask is None else mask[..., sl]
        # non-contiguous views: the shards are read in place through their strides
        return parallel.context_parallel_attention(q[:, :, sl], k[:, :, sl], v[:, :, sl], comm, ring_degree=ring,
                                                   ulysses_degree=ulysses, attn_mask=local_mask, scale=0.3)

    results, errors, _ = run_ranks(p, body)
    assert errors == [None] * p
    for g, out in enumerate(results):
        assert np.abs(out - expected[:, :, g * n:(g + 1) * n]).max() <= 1e-5


def test_gqa_under_ulysses_and_ring_and_shard_gather():
    p, n = 2, 8
    rng = np.random.default_rng(3)
    q = rng.standard_normal((1, 8, n * p, 8), dtype=np.float32)
    k = rng.standard_normal((1, 2, n * p, 8), dtype=np.float32)
    v = rng.standard_normal((1, 2, n * p, 8), dtype=np.float32)
    full = diffattn.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    for ring, ulysses in ((2, 1), (1, 2)):
        def body(comm):
            out = parallel.context_parallel_attention(parallel.shard(q, comm, 2), parallel.shard(k, comm, 2),
                                                      parallel.shard(v, comm, 2), comm, ring, ulysses)
            return parallel.gather(out, comm, 2)
        results, errors, _ = run_ranks(p, body)
        assert errors == [None] * p
        for out in results:
            assert np.abs(out - full).max() <= 1e-5


def test_bad_input_raises_on_every_rank():
    q = np.zeros((1, 3, 4, 8), np.float32)

    def heads_not_divisible(comm):
        return parallel.context_parallel_attention(q, q, q, comm, ulysses_degree=2)

    results, errors, _ = run_ranks(2, heads_not_divisible)
    assert all(isinstance(e, ValueError) and "divisible by ulysses_degree" in str(e) for e in errors)

    def one_rank_float64(comm):
        x = q.astype(np.float64) if comm.rank == 1 else q
        return parallel.context_parallel_attention(x, q, q, comm, ring_degree=2)

    results, errors, _ = run_ranks(2, one_rank_float64)
    assert isinstance(errors[1], TypeError)
    assert isinstance(errors[0], ValueError) and "rank 1" in str(errors[0])

    def wrong_product(comm):
        return parallel.context_parallel_attention(q, q, q, comm, ring_degree=2, ulysses_degree=2)

    results, errors, _ = run_ranks(2, wrong_product)
    assert all(isinstance(e, ValueError) and "must equal the communicator's size 2" in str(e) for e in errors)


def test_config_mirrors_diffusers_checks_and_counters():
    with pytest.raises(ValueError, match="Either ring_degree or ulysses_degree"):
        parallel.ContextParallelConfig()
    assert parallel.ContextParallelConfig(ulysses_degree=2).ring_degree == 1
    x = np.ones((1, 2, 4, 8), np.float32)
    results, errors, comms = run_ranks(2, lambda c: parallel.context_parallel_attention(x, x, x, c, ring_degree=2))
    sent, received, waiting = comms[0].counters()
    assert errors == [None, None] and sent == received == 2 * 4 * 16 * 4 + 384 and waiting >= 0
