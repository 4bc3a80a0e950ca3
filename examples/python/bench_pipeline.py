#!/usr/bin/env python3
"""Stock diffusers vs diffattn.diffusers.use_diffattn on full-size denoisers with random weights.

For each model, dtype and mode (stock, kernel, module) it runs a few denoiser forwards at batch 2
(one classifier-free-guidance step each), interleaved stock → kernel → module within one process so
that machine noise hits all three alike, and prints seconds per step (median), the share of the step
spent inside attention modules (timed by forward hooks around every attention module), and the
speed-up over stock. `--block` times the SD1.5 attention block (Transformer2DModel: 320 channels,
8 heads × 40, 4096 tokens, 77 text tokens, batch 2) the same way.

    python examples/python/bench_pipeline.py                     # the full table (needs ~20 GB)
    python examples/python/bench_pipeline.py --reduced --steps 1 # a small smoke run of the same code

Models: SD1.5 UNet at 512² (64² latents), SDXL UNet at 1024² (128² latents), and a Flux-dev-sized
transformer (24 heads × 128, 3072 wide, 4096 image + 512 text tokens for 1024²) with only
--flux-double of its 19 double-stream and --flux-single of its 38 single-stream blocks, because all
57 in float32 need ~48 GB; per-block cost is what the table compares.
Needs torch and diffusers (e.g. `make venv-torch`, then .build/venv-torch/bin/python).
"""

import argparse
import statistics
import time

import torch

import diffattn
import diffattn.diffusers as dd


def sd15_unet(reduced):
    from diffusers import UNet2DConditionModel
    m = UNet2DConditionModel(
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
        attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    side = 16 if reduced else 64
    return m, lambda dt: dict(sample=torch.randn(2, 4, side, side, dtype=dt), timestep=torch.tensor([500, 500]),
                              encoder_hidden_states=torch.randn(2, 77, 768, dtype=dt))


def sdxl_unet(reduced):
    from diffusers import UNet2DConditionModel
    m = UNet2DConditionModel(
        sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
    side = 16 if reduced else 128
    return m, lambda dt: dict(sample=torch.randn(2, 4, side, side, dtype=dt), timestep=torch.tensor([500, 500]),
                              encoder_hidden_states=torch.randn(2, 77, 2048, dtype=dt),
                              added_cond_kwargs={"text_embeds": torch.randn(2, 1280, dtype=dt),
                                                 "time_ids": torch.randn(2, 6, dtype=dt)})


def flux_dev(reduced, double=2, single=4):
    from diffusers import FluxTransformer2DModel
    m = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=double, num_single_layers=single,
                               attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                               pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=(16, 56, 56))
    side, text = (8, 32) if reduced else (64, 512)   # 1024² image → 128² latents → 64² patches
    ids = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(side * 1.0), torch.arange(side * 1.0),
                                     indexing="ij"), -1).reshape(-1, 3)
    return m, lambda dt: dict(hidden_states=torch.randn(1, side * side, 64, dtype=dt),
                              encoder_hidden_states=torch.randn(1, text, 4096, dtype=dt),
                              pooled_projections=torch.randn(1, 768, dtype=dt), timestep=torch.tensor([0.5]),
                              guidance=torch.tensor([3.5]), img_ids=ids, txt_ids=torch.zeros(text, 3))


def sd15_block(reduced):
    from diffusers.models import Transformer2DModel
    m = Transformer2DModel(num_attention_heads=8, attention_head_dim=40, in_channels=320, cross_attention_dim=768,
                           norm_num_groups=32)
    side = 16 if reduced else 64
    return m, lambda dt: dict(hidden_states=torch.randn(2, 320, side, side, dtype=dt),
                              encoder_hidden_states=torch.randn(2, 77, 768, dtype=dt))


class AttentionTimer:
    """Wall time inside attention modules (forward hooks; the hooks themselves cost microseconds)."""

    def __init__(self, model):
        self.total, self.handles, starts = 0.0, [], []
        for _, m in model.named_modules():
            if hasattr(m, "set_processor") and hasattr(m, "processor"):
                self.handles.append(m.register_forward_pre_hook(lambda *a: starts.append(time.perf_counter())))
                self.handles.append(m.register_forward_hook(lambda *a: self._stop(starts)))

    def _stop(self, starts):
        self.total += time.perf_counter() - starts.pop()

    def remove(self):
        for h in self.handles:
            h.remove()


def bench(name, build, dtypes, steps, modes, reduced):
    torch.manual_seed(0)
    model, inputs = build(reduced)
    model.eval()
    rows = []
    for dtype in dtypes:
        model.to(dtype)
        args = inputs(dtype)
        times = {m: [] for m in modes}
        shares = {m: [] for m in modes}
        with torch.inference_mode():
            for mode in modes:       # warm-up, and the first run of each mode's set-up
                _step(model, args, mode)
            for _ in range(steps):
                for mode in modes:
                    t, a = _step(model, args, mode)
                    times[mode].append(t)
                    shares[mode].append(a / t)
        base = statistics.median(times["stock"]) if "stock" in times else None
        for mode in modes:
            t = statistics.median(times[mode])
            rows.append((name, str(dtype).replace("torch.", ""), mode, t, statistics.median(shares[mode]),
                         base / t if base else float("nan")))
            print(f"| {rows[-1][0]} | {rows[-1][1]} | {mode} | {t:.3f} | {rows[-1][4]:.0%} | {rows[-1][5]:.2f}× |",
                  flush=True)
    del model
    return rows


def _step(model, args, mode):
    if mode != "stock":
        dd.use_diffattn(model, mode=mode)
    timer = AttentionTimer(model)
    t0 = time.perf_counter()
    model(**args, return_dict=False)
    t = time.perf_counter() - t0
    timer.remove()
    if mode != "stock":
        s = dd.stats(model)
        assert s["calls"] > 0, s
        dd.restore(model)
    return t, timer.total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="sd15,sdxl,flux", help="comma list of sd15, sdxl, flux (default all)")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--modes", default="stock,kernel,module")
    ap.add_argument("--steps", type=int, default=3, help="timed denoiser forwards per model, dtype and mode")
    ap.add_argument("--block", action="store_true", help="only the SD1.5 attention block")
    ap.add_argument("--flux-double", type=int, default=2)
    ap.add_argument("--flux-single", type=int, default=4)
    ap.add_argument("--reduced", action="store_true", help="small latents/tokens: proves the script runs")
    ap.add_argument("--threads", type=int, default=None, help="torch and diffattn threads (default: all cores)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
        diffattn.set_num_threads(a.threads)
    dtypes = [getattr(torch, d) for d in a.dtypes.split(",")]
    modes = a.modes.split(",")
    print(f"torch {torch.__version__}, diffattn {diffattn.__version__}, torch threads {torch.get_num_threads()}, "
          f"diffattn threads {diffattn.get_num_threads()}{', REDUCED sizes' if a.reduced else ''}")
    print("| model | dtype | mode | s/step | attention share | speed-up |\n|---|---|---|---|---|---|")
    models = {"sd15": ("SD1.5 UNet 512²", sd15_unet), "sdxl": ("SDXL UNet 1024²", sdxl_unet),
              "flux": (f"Flux-dev-sized, {a.flux_double}/19 double + {a.flux_single}/38 single blocks, 1024²",
                       lambda r: flux_dev(r, a.flux_double, a.flux_single))}
    if a.block:
        bench("SD1.5 attention block (320 ch, 8×40, 4096 tok, batch 2)", sd15_block, dtypes, a.steps, modes,
              a.reduced)
        return
    for key in a.models.split(","):
        name, build = models[key]
        bench(name, build, dtypes, a.steps, modes, a.reduced)


if __name__ == "__main__":
    main()
