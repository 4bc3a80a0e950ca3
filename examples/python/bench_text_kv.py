#!/usr/bin/env python3
"""Text K/V cache benchmark (issue 16): the per-step saving on a PixArt-Σ-sized model.

    python3 examples/python/bench_text_kv.py [--blocks 2 --tokens 4096 --text 300 --steps 6]

PixArt-Σ widths (16 heads × 72 = 1152 channels, cross-attention over 300 caption tokens already
projected to 1152, 1024² images = 4096 latent tokens); only `--blocks` blocks are built (each block's
cross-attention is the same work) and the per-step figures are scaled to PixArt-Σ's 28 blocks and
the two CFG passes. Per step, the host calls every block's `attn2(h, text)` under the cond and uncond
cache contexts; cached and uncached steps alternate (A B A B …) so that load drift on a shared
machine hits both alike, and the medians are printed. The outputs of both runs are compared
bitwise.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))

import numpy as np  # noqa: E402

from diffattn import models  # noqa: E402
from diffattn.hooks import TextKVCacheConfig, text_kv_cache_counts  # noqa: E402


def build(args):
    m = models.PixArtTransformer2DModel.from_config(dict(
        num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=args.blocks,
        cross_attention_dim=1152, sample_size=128, caption_channels=4096))
    rng = np.random.default_rng(0)
    for p in m.module_paths("attention"):
        if p.endswith("attn2"):
            a = m.get_submodule(p)
            a.load_state_dict({k: (rng.standard_normal(v.shape) / math.sqrt(v.shape[-1])).astype(np.float32)
                               for k, v in a.state_dict().items()})
    return m


def step(m, paths, h, texts):
    outs = []
    for ctx, text in texts.items():
        with m.cache_context(ctx):
            for p in paths:
                outs.append(m.get_submodule(p)(h, text))
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--text", type=int, default=300)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    plain, cached = build(args), build(args)
    cached.load_state_dict(plain.state_dict())
    cached.enable_cache(TextKVCacheConfig())
    paths = [p for p in plain.module_paths("attention") if p.endswith("attn2")]
    rng = np.random.default_rng(1)
    texts = {c: rng.standard_normal((1, args.text, 1152)).astype(np.float32) for c in ("cond", "uncond")}
    t_plain, t_cached, same = [], [], True
    for s in range(args.steps):
        h = rng.standard_normal((1, args.tokens, 1152)).astype(np.float32)
        t0 = time.perf_counter()
        a = step(plain, paths, h, texts)
        t1 = time.perf_counter()
        b = step(cached, paths, h, texts)
        t2 = time.perf_counter()
        same &= all(np.array_equal(x.view(np.uint32), y.view(np.uint32)) for x, y in zip(a, b))
        if s > 0:  # step 0 fills the cache
            t_plain.append(t1 - t0)
            t_cached.append(t2 - t1)
    per_block_plain = statistics.median(t_plain) / (2 * len(paths))
    per_block_cached = statistics.median(t_cached) / (2 * len(paths))
    saved = (per_block_plain - per_block_cached) * 28 * 2
    print(f"cross-attention per block and pass: {per_block_plain * 1e3:.1f} ms uncached, {per_block_cached * 1e3:.1f} ms cached "
          f"(medians of {len(t_plain)} steps; hits/misses {text_kv_cache_counts(cached)})")
    print(f"PixArt-Σ (28 blocks, CFG): {saved * 1e3:.0f} ms saved per step "
          f"({(1 - per_block_cached / per_block_plain) * 100:.1f}% of its cross-attention time); outputs bitwise equal: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
