"""diffusers' own context parallelism on the CPU with libdiffattn's log-sum-exp SDPA (docs/parallel.md).

A tiny random-weight FluxTransformer2DModel runs once in one process with diffusers' native backend, then
in P spawned processes under torch.distributed with Gloo, `enable_parallelism(ContextParallelConfig(...))`
and an attention backend whose forward op is diffattn.scaled_dot_product_attention(..., return_lse=True)
— what ring attention needs and diffusers' CPU backends cannot give. Rank 0 prints the difference.

    python examples/python/diffusers_context_parallel.py --ring 2          # needs torch + diffusers
    python examples/python/diffusers_context_parallel.py --ring 2 --ulysses 2

Two CPU workarounds, both outside the backend: the process group is "cpu:gloo", and
torch.accelerator.device_count is made non-zero before enable_parallelism (diffusers computes
rank % device_count() in ModelMixin._resolve_parallel_config).
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

parser = argparse.ArgumentParser()
parser.add_argument("--ring", type=int, default=1)
parser.add_argument("--ulysses", type=int, default=1)
args = parser.parse_args()
WORLD = args.ring * args.ulysses


def tiny_flux():
    from diffusers import FluxTransformer2DModel
    torch.manual_seed(0)
    model = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
                                   num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                                   axes_dims_rope=[4, 4, 8]).eval()
    g = torch.Generator().manual_seed(1)
    inputs = dict(hidden_states=torch.randn(1, 16, 4, generator=g), encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
                  pooled_projections=torch.randn(1, 32, generator=g), timestep=torch.tensor([0.5]),
                  img_ids=torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(4.), torch.arange(4.), indexing="ij"),
                                      -1).reshape(16, 3),
                  txt_ids=torch.zeros(8, 3), return_dict=False)
    return model, inputs


def diffattn_backend():
    """Re-registers diffusers' `native` name with context-parallel support and an LSE-returning op."""
    import diffattn
    from diffusers.models import attention_dispatch as ad

    def forward_op(ctx, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                   enable_gqa=False, return_lse=False, _save_ctx=True, _parallel_config=None):
        q, k, v = (x.detach().permute(0, 2, 1, 3).float().numpy() for x in (query, key, value))
        m = None if attn_mask is None else attn_mask.detach().numpy()
        if m is not None and m.ndim == 2:
            m = m[:, None, None, :]
        out, lse = diffattn.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale, return_lse=True)
        out = torch.from_numpy(out).permute(0, 2, 1, 3).to(query.dtype)
        return (out, torch.from_numpy(lse).permute(0, 2, 1)) if return_lse else out

    def backend(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
                return_lse=False, _parallel_config=None):
        if _parallel_config is None:
            return forward_op(None, query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, return_lse)
        return ad._templated_context_parallel_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                                                        enable_gqa, return_lse, forward_op=forward_op,
                                                        backward_op=None, _parallel_config=_parallel_config)

    ad._AttentionBackendRegistry.register(ad.AttentionBackendName.NATIVE, supports_context_parallel=True)(backend)


def worker(rank, reference_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
    torch.set_num_threads(1)
    dist.init_process_group("cpu:gloo", rank=rank, world_size=WORLD)
    torch.accelerator.device_count = lambda: 1  # diffusers' CPU defect (see the docstring)
    from diffusers import ContextParallelConfig
    diffattn_backend()
    model, inputs = tiny_flux()
    model.enable_parallelism(config=ContextParallelConfig(ring_degree=args.ring if args.ring > 1 else None,
                                                          ulysses_degree=args.ulysses if args.ulysses > 1 else None))
    with torch.no_grad():
        out = model(**inputs)[0]
    if rank == 0:
        diff = float((out - torch.load(reference_path)).abs().max())
        print(f"diffusers enable_parallelism (ring {args.ring} × ulysses {args.ulysses}, gloo, {WORLD} processes) "
              f"with diffattn's LSE SDPA: max |diff| vs one process {diff:.3g}", flush=True)
        if not diff <= 1e-4:
            sys.exit(1)
    dist.destroy_process_group()


if __name__ == "__main__":
    import tempfile
    model, inputs = tiny_flux()
    with torch.no_grad():
        reference = model(**inputs)[0]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "reference.pt")
        torch.save(reference, path)
        mp.spawn(worker, args=(path,), nprocs=WORLD, join=True)
