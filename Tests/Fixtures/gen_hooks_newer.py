"""Fixtures of diffusers 0.42.1's newer hook behaviour (issue 16): smoothed energy guidance, layer skip's
``skip_attention_scores`` and TaylorSeer's lite mode on a Flux with real channel counts.

    /work/venv-ref/bin/python Tests/Fixtures/gen_hooks_newer.py

Writes ``hooks/newer.json`` (``{"format": "diffattn-hooks-newer", "format_version": 1, "versions", "cases"}``)
and one ``hooks/newer/<case>.npz`` per case holding its arrays. Kinds:

``seg_blur``      diffusers' ``_gaussian_blur_2d`` on a query ``q`` for each ``sigmas`` entry: ``out/<i>``, and the
                  corrected mapping (finite sigma -> Gaussian, infinite -> mean) as ``fixed/<i>``, made with the
                  same diffusers function by forcing its branch (threshold -inf / +inf).
``seg_model``     ``_apply_smoothed_energy_guidance_hook(model, SmoothedEnergyGuidanceConfig(indices=[0], fqn), sigma)``
                  then one call of the attention module ``path`` of block 0: ``weights/<key>`` (the module's
                  state dict, model keys), ``hidden``, ``encoder``, ``plain/<j>`` (unhooked output streams) and
                  ``out/<i>/<j>`` per sigma; ``hooked`` = query projections diffusers hooked; or ``error``.
``layer_skip_scores`` ``apply_layer_skip(model, LayerSkipConfig(...skip_attention_scores=True...))``: ``hooked``
                  (path -> hook class) and per attention path in ``calls``: ``<path>/hidden``, ``<path>/encoder``,
                  ``<path>/mask`` (optional), ``<path>/out/<j>``, ``<path>/plain/<j>``; or ``error``.
``sana_no_kernels`` ``SanaMultiscaleLinearAttention(**init)`` with ``kernel_sizes=()`` (no multi-scale branch):
                  ``weights/<key>`` (its state dict), ``x`` and ``out`` for a linear-branch and a quadratic-branch
                  input (``x/<i>``, ``out/<i>``).
``faster`` gen_caches.py's FasterCache case format (Tests/python/test_caches.py), with custom
                  low/high frequency weight callbacks (``"const:<x>"``: a callback returning x).
``taylorseer_lite`` Flux with 24 x 128 channels (proj_out 3072 -> 64), built on the meta device (the recorders
                  replace every forward, so no weights exist): every block and ``proj_out`` is driven by a
                  recorder returning fixture arrays (``proj_out/<step>`` when it runs); ``decisions`` (path ->
                  C/S per step), ``shapes`` (block output shapes), ``out/<step>`` what ``proj_out`` returned.
"""

import json
import math
import os
import sys

import numpy as np
from fixture_io import write_hook_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hooks", "newer.json")
NPZ_DIR = os.path.join(HERE, "hooks", "newer")
SIGMAS = [9999999.0, 2.0, 0.5]


def err(e):
    return {"type": type(e).__name__, "message": str(e)}


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def seg_blur_cases():
    import torch
    from diffusers.hooks.smoothed_energy_guidance_utils import _gaussian_blur_2d
    out = []
    for name, shape, sigmas in [("seg_blur_16", (1, 16, 3), SIGMAS + [1.0]), ("seg_blur_20", (2, 20, 2), SIGMAS),
                                ("seg_blur_25_odd", (1, 25, 2), SIGMAS + [0.3]), ("seg_blur_64", (1, 64, 2), SIGMAS + [1.5])]:
        q = torch.randn(*shape, generator=torch.manual_seed(len(out) + 1))
        arrays = {"q": f32(q)}
        for i, s in enumerate(sigmas):
            k = math.ceil(6 * s) + 1 - math.ceil(6 * s) % 2
            arrays[f"out/{i}"] = f32(_gaussian_blur_2d(q.clone(), k, s, 9999.9))
            # corrected mapping: finite sigma takes diffusers' Gaussian branch, infinite sigma its mean branch
            fixed = _gaussian_blur_2d(q.clone(), k, s, -math.inf) if s <= 9999.9 else _gaussian_blur_2d(q.clone(), k, s, math.inf)
            arrays[f"fixed/{i}"] = f32(fixed)
        out.append((dict(name=name, kind="seg_blur", shape=list(shape), sigmas=sigmas, threshold_inf=9999.9), arrays))
    return out


def build(configs, model_name, **over):
    import torch
    import diffusers
    torch.manual_seed(0)
    mc = dict(configs[model_name]["config"], **over)
    return getattr(diffusers, configs[model_name]["class"]).from_config(mc), mc


def module_weights(model, path):
    return {f"weights/{path}.{k}": f32(v) for k, v in model.get_submodule(path).state_dict().items()}


def call_streams(attn, hidden, encoder, mask=None):
    import torch
    kw = {} if encoder is None else {"encoder_hidden_states": encoder}
    if mask is not None:
        kw["attention_mask"] = mask
    with torch.no_grad():
        y = attn(hidden, **kw)
    return [f32(v) for v in (y if isinstance(y, tuple) else (y,)) if v is not None]


SEG_MODELS = [
    # name, model case, overrides, fqn, attention path, hidden shape, encoder shape
    ("seg_pixart", "pixart", {}, "auto", "transformer_blocks.0.attn1", (1, 16, None), None),
    ("seg_sd3", "sd3", {}, "auto", "transformer_blocks.0.attn", (1, 16, None), (1, 3, None)),
    ("seg_cogvideox", "cogvideox", {}, "auto", "transformer_blocks.0.attn1", (1, 16, None), (1, 2, None)),
    ("seg_unet2d", "unet2d", {}, "down_blocks.0.attentions.0.transformer_blocks",
     "down_blocks.0.attentions.0.transformer_blocks.0.attn1", (1, 16, None), None),
    ("seg_flux", "flux", {}, "auto", "transformer_blocks.0.attn", (1, 16, None), (1, 3, None)),
]


def seg_model_cases(configs):
    import torch
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.smoothed_energy_guidance_utils import (SmoothedEnergyGuidanceConfig,
                                                                 _apply_smoothed_energy_guidance_hook)
    out = []
    for i, (name, mname, over, fqn, path, hshape, eshape) in enumerate(SEG_MODELS):
        model, mc = build(configs, mname, **over)
        attn = model.get_submodule(path)
        g = torch.manual_seed(100 + i)
        hidden = torch.randn(hshape[0], hshape[1], attn.to_q.in_features, generator=g)
        enc_dim = getattr(attn, "add_k_proj", None).in_features if getattr(attn, "add_k_proj", None) is not None \
            else (attn.to_k.in_features if eshape else None)
        encoder = torch.randn(eshape[0], eshape[1], enc_dim, generator=g) if eshape else None
        arrays = dict(module_weights(model, path), hidden=f32(hidden))
        if encoder is not None:
            arrays["encoder"] = f32(encoder)
        for j, v in enumerate(call_streams(attn, hidden, encoder)):
            arrays[f"plain/{j}"] = v
        case = dict(name=name, kind="seg_model", model=mname, model_config=mc, fqn=fqn, path=path, sigmas=SIGMAS)
        for k, s in enumerate(SIGMAS):
            for p, m in model.named_modules():
                HookRegistry.check_if_exists_or_initialize(m).remove_hook("smoothed_energy_guidance_hook", recurse=False)
            try:
                _apply_smoothed_energy_guidance_hook(model, SmoothedEnergyGuidanceConfig(indices=[0], fqn=fqn), s)
            except Exception as e:  # noqa: BLE001 -- recorded (Flux: no is_cross_attention)
                case["error"] = err(e)
                break
            case["hooked"] = [p for p, m in model.named_modules() if p and getattr(m, "_diffusers_hook", None)
                              and m._diffusers_hook.get_hook("smoothed_energy_guidance_hook") is not None]
            for j, v in enumerate(call_streams(attn, hidden, encoder)):
                arrays[f"out/{k}/{j}"] = v
        out.append((case, arrays))
    return out


SCORE_CASES = [
    # name, model, overrides, LayerSkipConfig kwargs, [(path, tokens, encoder tokens or None, masked)]
    ("skip_scores_pixart", "pixart", dict(num_layers=2),
     dict(indices=[0], skip_attention=False, skip_attention_scores=True, skip_ff=False),
     [("transformer_blocks.0.attn1", 16, None, False), ("transformer_blocks.0.attn1", 16, None, True),
      ("transformer_blocks.0.attn2", 16, 3, False), ("transformer_blocks.1.attn1", 16, None, False)]),
    ("skip_scores_pixart_ff_default", "pixart", dict(num_layers=2),
     dict(indices=[1], skip_attention=False, skip_attention_scores=True), [("transformer_blocks.1.attn1", 9, None, False)]),
    ("skip_scores_unet2d", "unet2d", {},
     dict(indices=[0], fqn="down_blocks.0.attentions.0.transformer_blocks", skip_attention=False,
          skip_attention_scores=True, skip_ff=False),
     [("down_blocks.0.attentions.0.transformer_blocks.0.attn1", 16, None, False)]),
    ("skip_scores_flux", "flux", {}, dict(indices=[0], skip_attention=False, skip_attention_scores=True, skip_ff=False), []),
    ("skip_scores_sd3", "sd3", {}, dict(indices=[0], skip_attention=False, skip_attention_scores=True, skip_ff=False), []),
    ("skip_scores_both", "pixart", {}, dict(indices=[0], skip_attention=True, skip_attention_scores=True), []),
    ("skip_scores_dropout", "pixart", {}, dict(indices=[0], skip_attention=False, skip_attention_scores=True, dropout=0.5), []),
]


def layer_skip_score_cases(configs):
    import torch
    from diffusers.hooks import LayerSkipConfig, apply_layer_skip
    out = []
    for i, (name, mname, over, cfg, calls) in enumerate(SCORE_CASES):
        model, mc = build(configs, mname, **over)
        case = dict(name=name, kind="layer_skip_scores", model=mname, model_config=mc, config=cfg, calls=[])
        arrays = {}
        g = torch.manual_seed(200 + i)
        inputs = []
        for path, n, m, masked in calls:
            attn = model.get_submodule(path)
            h = torch.randn(1, n, attn.to_q.in_features, generator=g)
            e = torch.randn(1, m, attn.to_k.in_features, generator=g) if m else None
            mask = torch.zeros(1, 1, n, dtype=torch.bool) if masked else None  # all-false: diffusers still gives V
            inputs.append((path, h, e, mask))
            for p in module_weights(model, path).items():
                arrays[p[0]] = p[1]
        # unhooked outputs (a masked call has none: an all-false mask makes plain attention NaN)
        plain = [call_streams(model.get_submodule(p), h, e) if mask is None else [] for p, h, e, mask in inputs]
        try:
            apply_layer_skip(model, LayerSkipConfig(**cfg))
        except Exception as e:  # noqa: BLE001
            case["error"] = err(e)
            out.append((case, arrays))
            continue
        case["hooked"] = {p: type(m._diffusers_hook.get_hook("layer_skip_hook")).__name__
                          for p, m in model.named_modules() if p and getattr(m, "_diffusers_hook", None)
                          and m._diffusers_hook.get_hook("layer_skip_hook") is not None}
        for k, (p, h, e, mask) in enumerate(inputs):
            key = f"call{k}"
            case["calls"].append(dict(key=key, path=p, masked=mask is not None))
            arrays[f"{key}/hidden"] = f32(h)
            if e is not None:
                arrays[f"{key}/encoder"] = f32(e)
            if mask is not None:
                arrays[f"{key}/mask"] = f32(mask)  # boolean mask as 0/1 (all false)
            for j, v in enumerate(call_streams(model.get_submodule(p), h, e, mask)):
                arrays[f"{key}/out/{j}"] = v
            for j, v in enumerate(plain[k]):
                arrays[f"{key}/plain/{j}"] = v
        out.append((case, arrays))
    return out


def taylorseer_lite_cases():
    import torch
    import diffusers
    from diffusers.hooks import HookRegistry, ModelHook, TaylorSeerCacheConfig, apply_taylorseer_cache
    out = []
    flux_cfg = dict(num_layers=1, num_single_layers=1)  # defaults otherwise: 24 heads x 128, in_channels 64
    for i, (name, cfg, steps) in enumerate([
        ("taylorseer_lite_flux_real_o1", dict(use_lite_mode=True, cache_interval=2, disable_cache_before_step=2,
                                              max_order=1, taylor_factors_dtype="float32"), 7),
        ("taylorseer_lite_flux_real_o2_bf16", dict(use_lite_mode=True, cache_interval=3, disable_cache_before_step=1,
                                                   disable_cache_after_step=8, max_order=2), 10),
    ]):
        with torch.device("meta"):
            model = diffusers.FluxTransformer2DModel.from_config(flux_cfg)
        inner, n_img, n_txt = 3072, 4, 3
        rng = np.random.default_rng(300 + i)
        table = [f32(rng.standard_normal((1, n_img, 64)) * (1 + 0.1 * s) + 0.05 * s) for s in range(steps)]
        log, state = [], {}
        shapes = {"transformer_blocks.0": [[1, n_txt, inner], [1, n_img, inner]],
                  "single_transformer_blocks.0": [[1, n_txt, inner], [1, n_img, inner]], "proj_out": [[1, n_img, 64]]}

        class Recorder(ModelHook):
            def __init__(self, p):
                super().__init__()
                self.p = p

            def new_forward(self, module, *args, **kwargs):
                log.append(self.p)
                if self.p == "proj_out":
                    return torch.tensor(table[state["s"]])
                return tuple(torch.zeros(*s) for s in shapes[self.p])

        for p in shapes:
            HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(Recorder(p), "recorder")
        tcfg = dict(cfg)
        tcfg["taylor_factors_dtype"] = getattr(torch, cfg.get("taylor_factors_dtype", "bfloat16"))
        apply_taylorseer_cache(model, TaylorSeerCacheConfig(**tcfg))
        hooked = [p for p, m in model.named_modules() if p and getattr(m, "_diffusers_hook", None)
                  and m._diffusers_hook.get_hook("taylorseer_cache") is not None]
        decisions = {p: "" for p in shapes}
        arrays = {f"proj_out/{s}": t for s, t in enumerate(table)}
        block_out = {}
        for s in range(steps):
            state["s"] = s
            del log[:]
            with model.cache_context("cond"):
                for p in ("transformer_blocks.0", "single_transformer_blocks.0"):
                    y = model.get_submodule(p)(hidden_states=torch.zeros(1, n_img, inner),
                                               encoder_hidden_states=torch.zeros(1, n_txt, inner), temb=None)
                    block_out[p] = [list(v.shape) for v in y]
                y = model.get_submodule("proj_out")(torch.zeros(1, n_img, inner))
            arrays[f"out/{s}"] = f32(y)
            for p in shapes:
                decisions[p] += "C" if p in log else "S"
        out.append((dict(name=name, kind="taylorseer_lite", model_config=flux_cfg, config=cfg, steps=steps,
                         hooked=hooked, decisions=decisions, shapes=shapes, skipped_shapes=block_out,
                         proj_out=[inner, 64], tokens=[n_img, n_txt]), arrays))
    return out


def sana_cases():
    import torch
    from diffusers.models.attention_processor import SanaMultiscaleLinearAttention
    out = []
    for name, init in [("sana_no_kernels", dict(in_channels=8, out_channels=8, attention_head_dim=4, kernel_sizes=(),
                                                 norm_type="batch_norm", residual_connection=True)),
                       ("sana_no_kernels_rms", dict(in_channels=8, out_channels=4, attention_head_dim=4, kernel_sizes=(),
                                                    norm_type="rms_norm", mult=0.5))]:
        torch.manual_seed(len(out) + 400)
        m = SanaMultiscaleLinearAttention(**init).eval()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        arrays = {f"weights/{k}": f32(v) for k, v in m.state_dict().items()}
        g = torch.manual_seed(500 + len(out))
        for i, shape in enumerate([(2, 8, 3, 5), (1, 8, 1, 2)]):  # N = 15 > D (linear), N = 2 <= D (quadratic)
            x = torch.randn(*shape, generator=g)
            with torch.no_grad():
                arrays[f"x/{i}"], arrays[f"out/{i}"] = f32(x), f32(m(x))
        out.append((dict(name=name, kind="sana_no_kernels", init=dict(init, kernel_sizes=[]), inputs=2), arrays))
    return out


def faster_callback_cases(configs):
    import gen_caches
    spec = ("faster_cache_weight_callbacks", dict(spatial_attention_block_skip_range=2, unconditional_batch_skip_range=2,
                                                  tensor_format="BCHW", low_frequency_weight_callback="const:1.5",
                                                  high_frequency_weight_callback="const:0.7"))
    return [(c, {}) for c in gen_caches.faster_cases(configs, [spec], seed=60)]


def main():
    with open(os.path.join(HERE, "models", "index.json")) as fh:
        configs = {c["name"]: c for c in json.load(fh)["cases"]}
    pairs = seg_blur_cases() + seg_model_cases(configs) + layer_skip_score_cases(configs) + taylorseer_lite_cases() + sana_cases() \
        + faster_callback_cases(configs)
    os.makedirs(NPZ_DIR, exist_ok=True)
    for case, arrays in pairs:
        case["arrays"] = f"newer/{case['name']}.npz"
        np.savez_compressed(os.path.join(NPZ_DIR, case["name"] + ".npz"), **arrays)
    write_hook_fixture(OUT, "diffattn-hooks-newer", "Tests/Fixtures/gen_hooks_newer.py", [c for c, _ in pairs], rtol=2e-4)
    print(f"wrote {OUT}: {len(pairs)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
