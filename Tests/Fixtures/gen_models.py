"""Model-level fixtures (issue 5): diffusers' 11 model classes, tiny configs.

Called from ``Tests/Fixtures/generate.py`` (or run alone with the reference venv):

    /work/venv-ref/bin/python Tests/Fixtures/gen_models.py

Writes ``Tests/Fixtures/models/``:

``index.json``  ``{"format": "diffattn-models", "format_version": 1, "versions": {...}, "cases": [...]}``;
                a case is one tiny model configuration:

  ``name``, ``class``      the case id and diffusers' class name;
  ``config``               the config dict exactly as ``save_pretrained`` writes it (config.json);
  ``processors``           ``[[key, processor class], ...]`` = ``model.attn_processors`` in order;
  ``modules``              per attention module in the same order: ``path``, ``module_class``, ``heads``,
                           ``inner_dim``, ``is_cross_attention``, ``sliceable_head_dim`` (or null),
                           ``added_kv_proj_dim`` and ``state_dict`` ``[[key, shape], ...]``;
  ``switches``             ``{switch: {"processors": [class, ...]} | {"error": {"type", "message"}}}``, each
                           switch applied to a freshly built model (``fuse_unfuse`` = fuse then unfuse);
  ``checkpoint``           (parity cases) the directory written by ``save_pretrained`` and its dtype;
  ``parity``               (parity cases) per attention path: inputs/outputs in ``<name>.npz`` under
                           ``<path>/hidden_states``, ``<path>/encoder_hidden_states``, ``<path>/output`` (or an
                           ``error`` record when diffusers' module cannot run with plain inputs).

``config_errors``        ``[{"class", "config", "error"}]`` -- bad configs and what diffusers raises.
"""

import json
import os
import platform
import shutil
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "models")

UNET_TINY = dict(sample_size=4, in_channels=4, out_channels=4, block_out_channels=(2,), layers_per_block=1,
                 norm_num_groups=1, cross_attention_dim=2, attention_head_dim=1,
                 down_block_types=("CrossAttnDownBlock2D",), up_block_types=("CrossAttnUpBlock2D",))

# (case name, class, kwargs, parity checkpoint dtype or None)
CASES = [
    ("unet2d", "UNet2DConditionModel", UNET_TINY, "float32"),
    ("unet2d_two_heads", "UNet2DConditionModel",
     dict(block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=4, cross_attention_dim=8, attention_head_dim=2,
          down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
          sample_size=4), None),
    ("unet2d_attn_blocks", "UNet2DConditionModel",
     dict(UNET_TINY, block_out_channels=(4,), norm_num_groups=2, attention_head_dim=2,
          down_block_types=("AttnDownBlock2D",), up_block_types=("AttnUpBlock2D",), mid_block_type=None), None),
    ("unet2d_simple_cross", "UNet2DConditionModel",
     dict(UNET_TINY, block_out_channels=(4,), norm_num_groups=2, attention_head_dim=2, cross_attention_dim=4,
          down_block_types=("SimpleCrossAttnDownBlock2D",), up_block_types=("SimpleCrossAttnUpBlock2D",),
          mid_block_type="UNetMidBlock2DSimpleCrossAttn"), None),
    ("unet2d_variants", "UNet2DConditionModel",
     dict(UNET_TINY, block_out_channels=(2, 2), transformer_layers_per_block=2, only_cross_attention=True,
          down_block_types=("CrossAttnDownBlock2D",) * 2, up_block_types=("CrossAttnUpBlock2D",) * 2), None),
    ("unet2d_dual_cross", "UNet2DConditionModel", dict(UNET_TINY, dual_cross_attention=True), None),
    ("unet2d_gated", "UNet2DConditionModel", dict(UNET_TINY, attention_type="gated"), None),
    ("unet3d", "UNet3DConditionModel",
     dict(UNET_TINY, down_block_types=("CrossAttnDownBlock3D",), up_block_types=("CrossAttnUpBlock3D",)), "float32"),
    ("unet_motion", "UNetMotionModel",
     dict(sample_size=4, in_channels=4, out_channels=4, block_out_channels=(2,), layers_per_block=1,
          norm_num_groups=1, cross_attention_dim=2, num_attention_heads=1, motion_num_attention_heads=1,
          down_block_types=("CrossAttnDownBlockMotion",), up_block_types=("CrossAttnUpBlockMotion",)), "float32"),
    ("i2vgen_xl", "I2VGenXLUNet",
     dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(2,), layers_per_block=1,
          norm_num_groups=1, cross_attention_dim=4, attention_head_dim=1,
          down_block_types=("CrossAttnDownBlock3D",), up_block_types=("CrossAttnUpBlock3D",)), "float32"),
    ("hunyuan_dit", "HunyuanDiT2DModel",
     dict(sample_size=4, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=1, in_channels=4,
          hidden_size=8, cross_attention_dim=8, cross_attention_dim_t5=8, pooled_projection_dim=8, text_len=2,
          text_len_t5=2), "float32"),
    ("sd3", "SD3Transformer2DModel",
     dict(sample_size=2, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=4, num_attention_heads=1,
          caption_projection_dim=4, joint_attention_dim=4, pooled_projection_dim=4, out_channels=4,
          pos_embed_max_size=2), "float32"),
    ("sd3_dual", "SD3Transformer2DModel",
     dict(sample_size=2, patch_size=1, in_channels=4, num_layers=3, attention_head_dim=4, num_attention_heads=1,
          caption_projection_dim=4, joint_attention_dim=4, pooled_projection_dim=4, out_channels=4,
          pos_embed_max_size=2, dual_attention_layers=(0, 2), qk_norm="rms_norm"), None),
    ("flux", "FluxTransformer2DModel",
     dict(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=1,
          joint_attention_dim=4, pooled_projection_dim=4, axes_dims_rope=(2, 2, 4)), "float32"),
    ("cogvideox", "CogVideoXTransformer3DModel",
     dict(num_attention_heads=1, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=2,
          text_embed_dim=4, num_layers=1, sample_width=4, sample_height=4, sample_frames=1, patch_size=2,
          temporal_compression_ratio=4, max_text_seq_length=2), "float32"),
    ("auraflow", "AuraFlowTransformer2DModel",
     dict(sample_size=4, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=1,
          attention_head_dim=8, num_attention_heads=1, caption_projection_dim=8, joint_attention_dim=4,
          out_channels=4, pos_embed_max_size=4), "float32"),
    ("pixart", "PixArtTransformer2DModel",
     dict(sample_size=4, num_layers=1, patch_size=2, attention_head_dim=4, num_attention_heads=1, in_channels=4,
          out_channels=8, cross_attention_dim=4, attention_bias=True, activation_fn="gelu-approximate",
          num_embeds_ada_norm=8, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
          use_additional_conditions=False, caption_channels=None), "bfloat16"),
    ("autoencoder_kl", "AutoencoderKL",
     dict(in_channels=3, out_channels=3, block_out_channels=(2,), down_block_types=("DownEncoderBlock2D",),
          up_block_types=("UpDecoderBlock2D",), latent_channels=1, norm_num_groups=1, layers_per_block=1), "float16"),
    ("autoencoder_kl_attn_blocks", "AutoencoderKL",
     dict(in_channels=3, out_channels=3, block_out_channels=(2, 2), latent_channels=1, norm_num_groups=1,
          layers_per_block=1, down_block_types=("AttnDownEncoderBlock2D", "DownEncoderBlock2D"),
          up_block_types=("UpDecoderBlock2D", "AttnUpDecoderBlock2D")), None),
]

BAD_CONFIGS = [
    ("UNet2DConditionModel", dict(UNET_TINY, num_attention_heads=2)),
    ("UNet2DConditionModel", dict(UNET_TINY, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"))),
    ("UNet2DConditionModel", dict(UNET_TINY, block_out_channels=(2, 4))),
    ("UNet3DConditionModel", dict(UNET_TINY, num_attention_heads=2,
                                  down_block_types=("CrossAttnDownBlock3D",), up_block_types=("CrossAttnUpBlock3D",))),
    ("PixArtTransformer2DModel", dict(num_layers=1, attention_head_dim=4, num_attention_heads=1, norm_type="layer_norm",
                                      num_embeds_ada_norm=8)),
]


def err_record(e):
    return {"type": type(e).__name__, "message": str(e)}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def proc_names(model):
    return [type(p).__name__ for p in model.attn_processors.values()]


def apply_switch(model, switch):
    if switch == "set_default":
        model.set_default_attn_processor()
    elif switch == "fuse":
        model.fuse_qkv_projections()
    elif switch == "fuse_unfuse":
        model.fuse_qkv_projections()
        model.unfuse_qkv_projections()
    elif switch == "unfuse_before_fuse":
        model.unfuse_qkv_projections()
    elif switch == "fuse_then_set_default":
        model.fuse_qkv_projections()
        model.set_default_attn_processor()
    elif switch == "xformers_enable":
        model.enable_xformers_memory_efficient_attention()
    elif switch == "xformers_disable":
        model.disable_xformers_memory_efficient_attention()
    elif switch.startswith("slice_"):
        arg = switch[len("slice_"):]
        if arg in ("auto", "max"):
            model.set_attention_slice(arg)
        elif arg == "none":
            model.set_attention_slice(None)
        elif arg == "list_short":
            model.set_attention_slice([1])
        elif arg == "too_big":
            model.set_attention_slice(1000)
        else:
            model.set_attention_slice(int(arg))
    elif switch == "set_all_attn":
        from diffusers.models.attention_processor import AttnProcessor
        model.set_attn_processor(AttnProcessor())
    elif switch == "set_dict_short":
        from diffusers.models.attention_processor import AttnProcessor
        model.set_attn_processor({})
    else:
        raise AssertionError(switch)


SWITCHES = ["set_default", "fuse", "fuse_unfuse", "fuse_then_set_default", "xformers_enable", "xformers_disable",
            "slice_auto", "slice_max", "slice_1", "slice_none", "slice_list_short", "slice_too_big",
            "set_all_attn", "set_dict_short"]


def attention_modules(model):
    out = []
    for key in model.attn_processors:
        path = key[: -len(".processor")]
        out.append((path, model.get_submodule(path)))
    return out


def module_record(path, m):
    return {
        "path": path,
        "module_class": type(m).__name__,
        "heads": int(m.heads),
        "inner_dim": int(m.inner_dim),
        "is_cross_attention": bool(getattr(m, "is_cross_attention", False)),
        "sliceable_head_dim": getattr(m, "sliceable_head_dim", None),
        "added_kv_proj_dim": getattr(m, "added_kv_proj_dim", None),
        "state_dict": [[k, list(v.shape)] for k, v in m.state_dict().items()],
    }


def randomize(model, rng, dtype):
    import torch
    with torch.no_grad():
        for p in model.parameters():
            v = torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.5)
            p.copy_(v.to(getattr(torch, dtype)).float())


def module_inputs(path, m, rng):
    import torch
    q = m.to_q.in_features
    hidden = rng.standard_normal((1, 5, q)).astype(np.float32)
    if type(m).__name__ == "Attention" and getattr(m, "group_norm", None) is not None:
        hidden = rng.standard_normal((1, q, 2, 3)).astype(np.float32)  # VAE-style 4-D input
    enc = None
    proc = type(m.processor).__name__
    if getattr(m, "added_kv_proj_dim", None) is not None:
        enc = rng.standard_normal((1, 3, m.add_k_proj.in_features)).astype(np.float32)
    elif getattr(m, "is_cross_attention", False) or proc.startswith("CogVideoX"):
        width = m.to_k.in_features if proc.startswith("Attn") or proc.startswith("Hunyuan") else q
        enc = rng.standard_normal((1, 3, width)).astype(np.float32)
    return hidden, enc


def parity(model, name, rng, arrays):
    import torch
    records = {}
    for path, m in attention_modules(model):
        hidden, enc = module_inputs(path, m, rng)
        key = path
        try:
            with torch.no_grad():
                out = m(torch.from_numpy(hidden), encoder_hidden_states=None if enc is None else torch.from_numpy(enc))
        except Exception as e:  # noqa: BLE001 -- recorded, the test skips
            records[path] = {"error": err_record(e)}
            continue
        outs = out if isinstance(out, tuple) else (out,)
        arrays[f"{key}/hidden_states"] = hidden
        if enc is not None:
            arrays[f"{key}/encoder_hidden_states"] = enc
        for i, o in enumerate(outs):
            arrays[f"{key}/output{i}"] = o.numpy()
        records[path] = {"outputs": len(outs), "encoder": enc is not None}
    return records


def build(cls_name, kwargs):
    import diffusers
    return getattr(diffusers, cls_name)(**kwargs)


def make_case(name, cls_name, kwargs, dtype):
    import torch
    torch.manual_seed(0)
    model = build(cls_name, kwargs).eval()
    case = {"name": name, "class": cls_name, "config": None,
            "processors": [[k, type(p).__name__] for k, p in model.attn_processors.items()],
            "modules": [module_record(p, m) for p, m in attention_modules(model)],
            "switches": {}}
    tmp = os.path.join(OUT_DIR, "_tmp_" + name)
    model.save_pretrained(tmp, safe_serialization=True)
    with open(os.path.join(tmp, "config.json")) as fh:
        case["config"] = json.load(fh)
    shutil.rmtree(tmp)
    for sw in SWITCHES:
        torch.manual_seed(0)
        m = build(cls_name, kwargs)
        try:
            apply_switch(m, sw)
            case["switches"][sw] = {"processors": proc_names(m)}
        except Exception as e:  # noqa: BLE001 -- the error is the fixture
            case["switches"][sw] = {"error": err_record(e)}
    arrays = {}
    if dtype is not None:
        rng = rng_for(name)
        randomize(model, rng, dtype)
        directory = os.path.join(OUT_DIR, name)
        save = model.to(getattr(torch, dtype)) if dtype != "float32" else model
        save.save_pretrained(directory, safe_serialization=True)
        model = model.float()
        case["checkpoint"] = {"directory": name, "dtype": dtype}
        case["parity"] = parity(model, name, rng, arrays)
    return case, arrays


def main(check=False):
    import diffusers
    import torch
    import logging
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        p = os.path.join(OUT_DIR, f)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    cases = []
    for name, cls_name, kwargs, dtype in CASES:
        case, arrays = make_case(name, cls_name, kwargs, dtype)
        if arrays:
            np.savez_compressed(os.path.join(OUT_DIR, name + ".npz"), **arrays)
        cases.append(case)
    errors = []
    for cls_name, kwargs in BAD_CONFIGS:
        try:
            build(cls_name, kwargs)
            errors.append({"class": cls_name, "config": jsonable(kwargs), "error": None})
        except Exception as e:  # noqa: BLE001
            errors.append({"class": cls_name, "config": jsonable(kwargs), "error": err_record(e)})
    index = {"format": "diffattn-models", "format_version": 1, "generator": "Tests/Fixtures/gen_models.py",
             "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                          "python": platform.python_version()},
             "tolerance": {"rtol": 2e-4}, "cases": cases, "config_errors": errors}
    with open(os.path.join(OUT_DIR, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1, sort_keys=False)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT_DIR) for f in fs)
    print(f"models: {len(cases)} cases, {len(errors)} config errors, {total / 1e6:.2f} MB in {OUT_DIR}")
    return 0


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


if __name__ == "__main__":
    sys.exit(main())
