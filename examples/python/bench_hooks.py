#!/usr/bin/env python3
"""Hooks benchmark (issue 6): peak RSS with block-level disk offloading, the prefetch overhead on a
compute-bound loop, and the PAB speedup on an attention-bound loop.

    python3 examples/python/bench_hooks.py [--blocks 12 --dim 768 --tokens 1024 --steps 4]

Each mode runs in a fresh process (RSS is per process). glibc's mmap threshold is pinned to 128 KiB
so that freed weights go back to the OS (M_MMAP_THRESHOLD; its default grows with large frees).
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))


def rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1])


def child(args):
    ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    import numpy as np
    from diffattn import models
    from diffattn.hooks import PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast, group_offload_stats
    cfg = dict(num_attention_heads=args.dim // 64, attention_head_dim=64, in_channels=4, out_channels=8,
               num_layers=args.blocks, cross_attention_dim=args.dim, sample_size=8, caption_channels=32)
    m = models.PixArtTransformer2DModel.from_config(cfg)
    paths = [p for p in m.module_paths("attention") if p.endswith("attn1")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, args.tokens, args.dim)).astype(np.float32)
    if args.mode == "disk":
        m.enable_group_offload(offload_type="block_level", num_blocks_per_group=1, use_stream=args.prefetch,
                               offload_to_disk_path=args.dir)
    if args.mode == "pab":
        state = {"t": 0}
        apply_pyramid_attention_broadcast(m, PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 1001),
            current_timestep_callback=lambda: state["t"]))
    base = rss_kb()
    peak = base
    times = []
    for step in range(args.steps):
        t = 999 - step * (999 // max(args.steps, 1))
        if args.mode == "pab":
            state["t"] = t
        start = time.perf_counter()
        with m.step(t):
            for p in paths:
                x = m.get_submodule(p)(x) * np.float32(0.5)
                peak = max(peak, rss_kb())
        times.append(time.perf_counter() - start)
    out = dict(mode=args.mode, prefetch=args.prefetch, rss_after_setup_mb=base / 1024, peak_rss_mb=peak / 1024,
               step_s=times, steady_step_s=min(times[1:]) if len(times) > 1 else times[0])
    if args.mode == "disk":
        s = group_offload_stats(m)
        out.update(model_weights_mb=s["total_bytes"] / 2**20, peak_weights_mb=s["peak_resident_bytes"] / 2**20,
                   group_mb=s["total_bytes"] / s["groups"] / 2**20, prefetched=s["prefetched"])
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--mode", default=None)
    ap.add_argument("--prefetch", action="store_true")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if args.mode:
        return child(args)
    common = ["--blocks", str(args.blocks), "--dim", str(args.dim), "--tokens", str(args.tokens), "--steps", str(args.steps)]
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for name, extra in [("resident", ["--mode", "resident"]), ("disk", ["--mode", "disk", "--dir", d + "/a"]),
                            ("disk+prefetch", ["--mode", "disk", "--prefetch", "--dir", d + "/b"]), ("pab", ["--mode", "pab"])]:
            out = subprocess.run([sys.executable, __file__, *common, *extra], capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(name, out.stdout.strip().splitlines()[-1], flush=True)
    r = results
    print(f"peak RSS: resident {r['resident']['peak_rss_mb']:.0f} MB, disk offload {r['disk']['peak_rss_mb']:.0f} MB "
          f"(model weights {r['disk']['model_weights_mb']:.0f} MB, one group {r['disk']['group_mb']:.1f} MB, "
          f"peak resident weights {r['disk']['peak_weights_mb']:.1f} MB)")
    for k in ("disk", "disk+prefetch", "pab"):
        print(f"steady step {k}: {r[k]['steady_step_s']:.3f} s vs resident {r['resident']['steady_step_s']:.3f} s "
              f"({r[k]['steady_step_s'] / r['resident']['steady_step_s'] - 1:+.1%})")


if __name__ == "__main__":
    main()
