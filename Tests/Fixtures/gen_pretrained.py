"""Model folders as diffusers saves them (issue 18, item 3), for ``from_pretrained`` / ``da_model_load_pretrained``.

Run with the reference venv (also called from ``Tests/Fixtures/generate.py``):

    /work/venv-ref/bin/python Tests/Fixtures/gen_pretrained.py

Writes ``Tests/Fixtures/pretrained/``:

``flux_sharded/``   a tiny FluxTransformer2DModel (two joint blocks, one single block) with random weights,
                    written by ``save_pretrained(max_shard_size="16KB")``: config.json, several
                    ``diffusion_pytorch_model-0000i-of-0000n.safetensors`` and the ``.index.json``;
``unet_bf16/``      a tiny UNet2DConditionModel saved in bfloat16 as one file;
``pretrained.npz``  per folder and attention path: ``<folder>/<path>/hidden_states``,
                    ``<folder>/<path>/encoder_hidden_states`` (when the module takes it), ``<folder>/<path>/output<i>``
                    computed by diffusers' module (float32; the bf16 folder's weights widened);
``index.json``      the folders, their class, shard files, attention paths and versions.
"""

import json
import os
import platform
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "pretrained")

FOLDERS = [
    ("flux_sharded", "FluxTransformer2DModel",
     dict(patch_size=1, in_channels=4, num_layers=2, num_single_layers=1, attention_head_dim=8, num_attention_heads=1,
          joint_attention_dim=4, pooled_projection_dim=4, axes_dims_rope=(2, 2, 4)), "float32", "16KB"),
    ("unet_bf16", "UNet2DConditionModel",
     dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
          norm_num_groups=4, cross_attention_dim=8, attention_head_dim=2,
          down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")),
     "bfloat16", None),
]


def main():
    import diffusers
    import torch
    import logging
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(OUT_DIR)
    rng = np.random.default_rng(1818)
    arrays, folders = {}, []
    for name, cls_name, kwargs, dtype, shard in FOLDERS:
        torch.manual_seed(0)
        model = getattr(diffusers, cls_name)(**kwargs).eval()
        with torch.no_grad():
            for p in model.parameters():
                v = torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.5)
                p.copy_(v.to(getattr(torch, dtype)).float())  # representable in the saved dtype
        directory = os.path.join(OUT_DIR, name)
        save = model.to(getattr(torch, dtype)) if dtype != "float32" else model
        if shard:
            save.save_pretrained(directory, safe_serialization=True, max_shard_size=shard)
        else:
            save.save_pretrained(directory, safe_serialization=True)
        model = model.float()
        paths = []
        for path, m in model.named_modules():
            if not hasattr(m, "processor") or not hasattr(m, "to_q"):
                continue
            q = m.to_q.in_features
            hidden = rng.standard_normal((1, 5, q)).astype(np.float32)
            enc = None
            if getattr(m, "added_kv_proj_dim", None) is not None:
                enc = rng.standard_normal((1, 3, m.add_k_proj.in_features)).astype(np.float32)
            elif getattr(m, "is_cross_attention", False):
                enc = rng.standard_normal((1, 3, m.to_k.in_features)).astype(np.float32)
            with torch.no_grad():
                out = m(torch.from_numpy(hidden), encoder_hidden_states=None if enc is None else torch.from_numpy(enc))
            outs = out if isinstance(out, tuple) else (out,)
            key = f"{name}/{path}"
            arrays[key + "/hidden_states"] = hidden
            if enc is not None:
                arrays[key + "/encoder_hidden_states"] = enc
            for i, o in enumerate(outs):
                arrays[f"{key}/output{i}"] = o.numpy()
            paths.append({"path": path, "outputs": len(outs), "encoder": enc is not None})
        files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
        folders.append({"name": name, "class": cls_name, "dtype": dtype, "files": files, "attention": paths,
                        "sharded": os.path.exists(os.path.join(directory, "diffusion_pytorch_model.safetensors.index.json"))})
    np.savez_compressed(os.path.join(OUT_DIR, "pretrained.npz"), **arrays)
    index = {"format": "diffattn-pretrained", "format_version": 1, "generator": "Tests/Fixtures/gen_pretrained.py",
             "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                          "python": platform.python_version()},
             "tolerance": {"rtol": 2e-4}, "folders": folders}
    with open(os.path.join(OUT_DIR, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT_DIR) for f in fs)
    print(f"pretrained: {len(folders)} folders, {total / 1e3:.1f} kB in {OUT_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
