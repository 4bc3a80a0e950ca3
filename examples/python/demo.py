"""A diffusers-style attention layer from Python, without torch.

Builds the self-attention of a Stable Diffusion 1.5 transformer block, loads weights by
diffusers' state-dict names, runs both classic processors on the same input, and calls the
standalone SDPA kernel. Run with `make demo`.
"""

import time

import numpy as np

import diffattn

rng = np.random.default_rng(0)

# SD 1.5, first down block: 320 channels, 8 heads of 40.
attn = diffattn.Attention(query_dim=320, heads=8, dim_head=40, out_bias=True)
weights = {name: (rng.standard_normal(w.shape) * 0.05).astype(np.float32) for name, w in attn.state_dict().items()}
attn.load_state_dict(weights)
print(f"libdiffattn {diffattn.__version__} from {diffattn.library_path}")
print(f"Attention(query_dim=320, heads=8, dim_head=40): processor {type(attn.processor).__name__}, "
      f"{len(weights)} weights: {', '.join(weights)}")

hidden = rng.standard_normal((2, 1024, 320)).astype(np.float32)  # (batch, 32×32 latent tokens, channels)
results = {}
for processor in (diffattn.AttnProcessor2_0(), diffattn.AttnProcessor()):
    attn.set_processor(processor)
    start = time.perf_counter()
    results[type(processor).__name__] = out = attn(hidden)
    print(f"{type(processor).__name__:>18}: output {out.shape}, {1e3 * (time.perf_counter() - start):7.1f} ms, "
          f"out[0, 0, :4] = {np.array2string(out[0, 0, :4], precision=5)}")
diff = np.abs(results["AttnProcessor"] - results["AttnProcessor2_0"]).max()
print(f"max |AttnProcessor - AttnProcessor2_0| = {diff:.2e}")

# The kernel alone, as torch.nn.functional.scaled_dot_product_attention, on a strided view.
q, k, v = (rng.standard_normal((1, 1024, 8, 64)).astype(np.float32).transpose(0, 2, 1, 3) for _ in range(3))
start = time.perf_counter()
o = diffattn.scaled_dot_product_attention(q, k, v, is_causal=True)
elapsed = time.perf_counter() - start
print(f"scaled_dot_product_attention (1, 8, 1024, 64), causal, strided inputs: {o.shape}, "
      f"{1e3 * elapsed:.1f} ms")

try:
    diffattn.Attention(query_dim=320, qk_norm="rms")
except ValueError as e:
    print(f"errors read as diffusers' do: ValueError: {e}")
