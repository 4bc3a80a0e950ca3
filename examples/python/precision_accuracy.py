"""Accuracy of bf16 and int8 attention on real attention inputs: q/k/v captured from a diffusers
UNet2DConditionModel forward (SD 1.5's attention shapes: 320/640 channels, head dim 40 and 80,
self-attention over the latent tokens and cross-attention over 77 text tokens), each SDPA call
compared against a float64 reference. Needs torch and diffusers.

    python examples/python/precision_accuracy.py [--latent 32] [--seed 0]

The model is built from its config with torch's default initialisation (no weights can be
downloaded here), so the inputs are real in shape and pipeline — GroupNorm, projections, head
split — but not in the statistics a trained model's weights give them.
Prints per call: relative L1, max error / max |ref| and cosine similarity (SageAttention's metrics)
for torch bf16 SDPA, ours in bf16 (bf16 out), ours int8 (float32 out).
"""

import argparse

import numpy as np

import diffattn


def capture_sdpa_inputs(latent=32, seed=0):
    """Every (q, k, v) a UNet2DConditionModel forward hands to scaled_dot_product_attention."""
    import torch
    import torch.nn.functional as F
    from diffusers import UNet2DConditionModel
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=latent, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(320, 640), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=768, attention_head_dim=8,
        norm_num_groups=32).eval()
    captured, original = [], F.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        captured.append(tuple(x.detach().float().numpy().copy() for x in (q, k, v)))
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = recording
    try:
        with torch.no_grad():
            unet(torch.randn(1, 4, latent, latent), torch.tensor([500]), encoder_hidden_states=torch.randn(1, 77, 768))
    finally:
        F.scaled_dot_product_attention = original
    return captured


def reference(q, k, v):
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def metrics(got, want):
    g, w = np.asarray(got, dtype=np.float64).ravel(), want.ravel()
    return (np.abs(g - w).sum() / np.abs(w).sum(), np.abs(g - w).max() / np.abs(w).max(),
            g @ w / np.sqrt((g @ g) * (w @ w)))


def compare(q, k, v):
    """{name: (relative L1, max error / max |ref|, cosine)} for each path on one call."""
    import torch
    want = reference(q, k, v)
    tq, tk, tv = (torch.from_numpy(x).bfloat16() for x in (q, k, v))
    torch_bf16 = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).float().numpy()
    ours_bf16 = diffattn.scaled_dot_product_attention(tq, tk, tv).float().numpy()
    ours_int8 = diffattn.scaled_dot_product_attention(q, k, v, precision="int8")
    ours_fp32 = diffattn.scaled_dot_product_attention(q, k, v)
    return {"torch bf16": metrics(torch_bf16, want), "ours bf16": metrics(ours_bf16, want),
            "ours int8": metrics(ours_int8, want), "ours fp32": metrics(ours_fp32, want)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    calls = capture_sdpa_inputs(opts.latent, opts.seed)
    print(f"{len(calls)} SDPA calls from a UNet2DConditionModel forward (latent {opts.latent}², seed {opts.seed})")
    print(f"{'call (B,H,Nq,D)×Nk':<26}{'path':<12}{'rel L1':>10}{'max err':>10}{'cosine':>12}")
    for q, k, v in calls:
        label = f"{q.shape}×{k.shape[2]}"
        for name, (l1, mx, cos) in compare(q, k, v).items():
            print(f"{label:<26}{name:<12}{l1:>10.2e}{mx:>10.2e}{cos:>12.7f}")
            label = ""


if __name__ == "__main__":
    main()
