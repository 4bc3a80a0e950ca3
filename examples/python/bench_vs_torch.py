"""Times libdiffattn against torch in the same process, pair by pair (needs torch + diffusers).

    python examples/python/bench_vs_torch.py [--threads 2] [--repeats 5]

SDPA: diffattn.scaled_dot_product_attention vs torch.nn.functional.scaled_dot_product_attention,
in float32, then bf16 (torch bf16 tensors both sides) and our opt-in int8 (precision="int8").
Attention: a diffusers Attention with AttnProcessor2_0 vs diffattn.Attention with the same weights;
then SD3's JointAttnProcessor2_0 and Flux's FluxAttention (double stream, with rotary tables).
Prints milliseconds (best of N), GFLOP/s and the speed ratio ours/torch.
"""

import argparse
import time

import numpy as np

import diffattn


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    try:
        import torch
        from diffusers.models.attention_processor import Attention, AttnProcessor2_0
    except ImportError as e:
        raise SystemExit(f"needs torch and diffusers: {e}")
    torch.set_num_threads(opts.threads)
    diffattn.set_num_threads(opts.threads)
    rng = np.random.default_rng(0)
    print(f"threads {opts.threads}, best of {opts.repeats}; torch {torch.__version__}, libdiffattn {diffattn.__version__}")
    low = []
    print(f"{'SDPA (B,H,N,D)':<28}{'torch ms':>10}{'ours ms':>10}{'torch GF/s':>12}{'ours GF/s':>11}{'ratio':>8}")
    for b, h, n, d in [(2, 8, 1024, 64), (1, 24, 4096, 128), (2, 10, 4096, 64), (2, 8, 4096, 40), (2, 10, 1024, 80)]:
        q, k, v = (rng.standard_normal((b, h, n, d)).astype(np.float32) for _ in range(3))
        tq, tk, tv = map(torch.from_numpy, (q, k, v))
        flops = 4 * b * h * n * n * d
        t_torch = best(lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), opts.repeats)
        t_ours = best(lambda: diffattn.scaled_dot_product_attention(q, k, v), opts.repeats)
        print(f"{str((b, h, n, d)):<28}{1e3 * t_torch:>10.1f}{1e3 * t_ours:>10.1f}{flops / t_torch / 1e9:>12.1f}"
              f"{flops / t_ours / 1e9:>11.1f}{t_torch / t_ours:>8.2f}")
        low.append(((b, h, n, d), q, k, v, tq, tk, tv, t_ours))
    print(f"\n{'bf16 / int8 (B,H,N,D)':<28}{'torch bf16':>11}{'ours bf16':>10}{'ours int8':>10}"
          f"{'bf16 t/o':>9}{'fp32/bf16':>10}{'fp32/int8':>10}")
    for shape, q, k, v, tq, tk, tv, t_fp32 in low:
        hq, hk, hv = (x.bfloat16() for x in (tq, tk, tv))
        t_torch = best(lambda: torch.nn.functional.scaled_dot_product_attention(hq, hk, hv), opts.repeats)
        t_bf16 = best(lambda: diffattn.scaled_dot_product_attention(hq, hk, hv), opts.repeats)
        t_int8 = best(lambda: diffattn.scaled_dot_product_attention(q, k, v, precision="int8"), opts.repeats)
        print(f"{str(shape):<28}{1e3 * t_torch:>11.1f}{1e3 * t_bf16:>10.1f}{1e3 * t_int8:>10.1f}"
              f"{t_torch / t_bf16:>9.2f}{t_fp32 / t_bf16:>10.2f}{t_fp32 / t_int8:>10.2f}")
    print(f"\n{'Attention forward':<28}{'diffusers':>10}{'ours ms':>10}{'':>23}{'ratio':>8}")
    shapes = [("SD1.5 (2,4096,320) h8", 320, 8, 40, 4096, None), ("SD1.5 cross 77x768", 320, 8, 40, 4096, 768),
              ("SDXL (2,1024,640) h10", 640, 10, 64, 1024, None), ("SDXL (2,4096,1280)/20", 1280, 20, 64, 1024, 2048)]
    for name, c, heads, dh, n, cross in shapes:
        ref = Attention(query_dim=c, heads=heads, dim_head=dh, cross_attention_dim=cross, processor=AttnProcessor2_0()).eval()
        ours = diffattn.Attention(query_dim=c, heads=heads, dim_head=dh, cross_attention_dim=cross)
        ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
        x = rng.standard_normal((2, n, c)).astype(np.float32)
        e = rng.standard_normal((2, 77, cross)).astype(np.float32) if cross else None
        tx, te = torch.from_numpy(x), (torch.from_numpy(e) if cross else None)
        with torch.no_grad():
            t_torch = best(lambda: ref(tx, encoder_hidden_states=te), opts.repeats)
        t_ours = best(lambda: ours(x, encoder_hidden_states=e), opts.repeats)
        print(f"{name:<28}{1e3 * t_torch:>10.1f}{1e3 * t_ours:>10.1f}{'':>23}{t_torch / t_ours:>8.2f}")
    # SD3 joint attention (JointAttnProcessor2_0, RMS qk-norm) and a Flux double-stream block's attention.
    from diffusers.models.attention_processor import JointAttnProcessor2_0
    from diffusers.models.transformers.transformer_flux import FluxAttention, FluxAttnProcessor
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    sd3 = dict(query_dim=1536, heads=24, dim_head=64, added_kv_proj_dim=1536, out_dim=1536, context_pre_only=False,
               bias=True, qk_norm="rms_norm", eps=1e-6)
    flux = dict(query_dim=3072, heads=24, dim_head=128, added_kv_proj_dim=3072, out_dim=3072, context_pre_only=False,
                bias=True, eps=1e-6)
    for name, ref, ours, n, m, c in [
            ("SD3 joint (2,1024+154,1536)", Attention(**sd3, processor=JointAttnProcessor2_0()),
             diffattn.Attention(**sd3, processor=diffattn.JointAttnProcessor2_0()), 1024, 154, 1536),
            ("Flux double (1,1024+512,3072)", FluxAttention(**flux, processor=FluxAttnProcessor()),
             diffattn.FluxAttention(**flux), 1024, 512, 3072)]:
        ref = ref.eval()
        ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
        b = 2 if name.startswith("SD3") else 1
        x = rng.standard_normal((b, n, c)).astype(np.float32)
        e = rng.standard_normal((b, m, c)).astype(np.float32)
        tx, te = torch.from_numpy(x), torch.from_numpy(e)
        kwargs, ours_kwargs = {}, {}
        if name.startswith("Flux"):
            cos, sin = get_1d_rotary_pos_embed(128, np.arange(n + m, dtype=np.float64), use_real=True,
                                               repeat_interleave_real=True, freqs_dtype=torch.float64)
            kwargs = {"image_rotary_emb": (cos.float(), sin.float())}
            ours_kwargs = {"image_rotary_emb": (cos.float().numpy(), sin.float().numpy())}
        with torch.no_grad():
            t_torch = best(lambda: ref(tx, encoder_hidden_states=te, **kwargs), opts.repeats)
        t_ours = best(lambda: ours(x, encoder_hidden_states=e, **ours_kwargs), opts.repeats)
        print(f"{name:<28}{1e3 * t_torch:>10.1f}{1e3 * t_ours:>10.1f}{'':>23}{t_torch / t_ours:>8.2f}")


if __name__ == "__main__":
    main()
