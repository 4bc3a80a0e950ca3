#!/usr/bin/env python3
"""Caches benchmark (issue 10): per cache, the speedup and the output deviation from the uncached run
over a 30-step classifier-free-guidance loop on an attention-bound model.

    python3 examples/python/bench_caches.py [--blocks 8 --heads 4 --head-dim 64 --side 24 --steps 30]

The model is a PixArt transformer whose blocks the host runs as `h = h + 0.3 attn1(rms_norm(h))` (random weights,
so the work is the library's attention); the denoiser output is the RMS-normalised last hidden state, guided with
scale 2, and the latent follows an Euler-like update. Every cache drives the same loop through the
block protocol (`module_begin` / `module_end`); FasterCache also drops the unconditional half when it
may (`faster_cache_skips_unconditional`) and rebuilds it with `faster_cache_denoiser_output`.
Deviation = ‖x_cached − x_uncached‖ / ‖x_uncached‖ of the final latent.
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))

import numpy as np  # noqa: E402

from diffattn import models  # noqa: E402
from diffattn.hooks import (FasterCacheConfig, FirstBlockCacheConfig, LayerSkipConfig, MagCacheConfig,  # noqa: E402
                            TaylorSeerCacheConfig, TeaCacheConfig, apply_layer_skip)


def build(args):
    dim = args.heads * args.head_dim
    m = models.PixArtTransformer2DModel.from_config(dict(
        num_attention_heads=args.heads, attention_head_dim=args.head_dim, in_channels=4, out_channels=8,
        num_layers=args.blocks, cross_attention_dim=dim, sample_size=8, caption_channels=32))
    rng = np.random.default_rng(0)
    for p in m.module_paths("attention"):
        a = m.get_submodule(p)
        a.load_state_dict({k: (rng.standard_normal(v.shape) / math.sqrt(v.shape[-1])).astype(np.float32)
                           for k, v in a.state_dict().items()})
    return m, dim


def rms_norm(h):
    return (h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + 1e-6)).astype(np.float32)


def run(m, dim, args, mode=None, modulated_probe=False):
    rng = np.random.default_rng(1)
    tokens = args.side * args.side
    x = rng.standard_normal((1, tokens, dim)).astype(np.float32)
    cond = (0.3 * rng.standard_normal((1, tokens, dim))).astype(np.float32)
    blocks = m.transformer_block_paths()
    faster = mode == "faster"
    start = time.perf_counter()
    computed = 0
    for s in range(args.steps):
        t = 1000.0 * (1 - s / args.steps)
        with m.step(t), m.cache_context("cond"):
            skip_uncond = faster and m.faster_cache_skips_unconditional()
            batch = x + cond if skip_uncond else np.concatenate([x, x + cond])
            h = batch * np.float32(1 + 0.2 * math.sin(t / 300))
            mod = h * np.float32(0.5 + t / 2000)  # the "modulated input" TeaCache watches
            for i, p in enumerate(blocks):
                run_it, h, _ = m.module_begin(p, h, modulated_input=mod if i == 0 else None)
                if run_it:
                    computed += 1
                    h = h + m.get_submodule(p + ".attn1")(rms_norm(h)) * np.float32(0.3)
                    h, _ = m.module_end(p, h)
            if faster:
                side = args.side
                img = h.transpose(0, 2, 1).reshape(h.shape[0], dim, side, side)  # BCHW for the frequency split
                h = m.faster_cache_denoiser_output(img).reshape(2, dim, tokens).transpose(0, 2, 1)
        h = rms_norm(h)
        v_u, v_c = h[0:1] - x, h[1:2] - x
        v = v_u + 2.0 * (v_c - v_u)
        x = x + v * np.float32(1.0 / (args.steps - s + 1))
    return x, time.perf_counter() - start, computed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--side", type=int, default=24)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    m, dim = build(args)
    ref, t_ref, n_ref = run(m, dim, args)
    m.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=args.steps))
    run(m, dim, args)
    ratios = m.mag_cache_calibration()
    m.disable_cache()
    modes = [
        ("FirstBlockCache(threshold=0.1)", FirstBlockCacheConfig(threshold=0.1), None),
        ("FasterCache(defaults, BCHW)", FasterCacheConfig(tensor_format="BCHW", spatial_attention_timestep_skip_range=(-1, 681)), "faster"),
        ("TaylorSeer(interval=3, before=3, order=1)", TaylorSeerCacheConfig(cache_interval=3, disable_cache_before_step=3,
                                                                           cache_identifiers=[r"transformer_blocks\.\d+"]), None),
        ("MagCache(threshold=0.06, calibrated)", MagCacheConfig(threshold=0.06, num_inference_steps=args.steps, mag_ratios=ratios), None),
        ("TeaCache(rel_l1_thresh=0.4, FLUX fit)", TeaCacheConfig(rel_l1_thresh=0.4, num_inference_steps=args.steps), None),
        ("LayerSkip(blocks 3, 5)", LayerSkipConfig(indices=[3, 5], skip_attention=True, skip_ff=True), None),
    ]
    print(f"model: {args.blocks} blocks, dim {dim} ({args.heads}x{args.head_dim}), {args.side * args.side} tokens, "
          f"CFG batch 2, {args.steps} steps")
    print(f"{'cache':44s} {'time s':>8s} {'speedup':>8s} {'blocks run':>11s} {'deviation':>10s}")
    print(f"{'none':44s} {t_ref:8.2f} {1.0:8.2f} {n_ref:11d} {0.0:10.2e}")
    for name, cfg, mode in modes:
        if isinstance(cfg, LayerSkipConfig):
            apply_layer_skip(m, cfg)
        else:
            m.enable_cache(cfg)
        x, t, n = run(m, dim, args, mode)
        dev = float(np.linalg.norm(x - ref) / np.linalg.norm(ref))
        print(f"{name:44s} {t:8.2f} {t_ref / t:8.2f} {n:11d} {dev:10.2e}", flush=True)
        if isinstance(cfg, LayerSkipConfig):
            from diffattn.hooks import HookRegistry
            HookRegistry.check_if_exists_or_initialize(m).remove_hook("layer_skip_hook", recurse=True)
        else:
            m.reset_stateful_hooks()
            m.disable_cache()
    print(f"MagCache calibration ratios (first 8): {[round(r, 4) for r in ratios[:8]]}")


if __name__ == "__main__":
    main()
