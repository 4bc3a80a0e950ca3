"""SeaCache fixtures (issue 16): decisions, indicators and outputs of diffusers 0.42.1's generic SeaCache path
(``hooks/sea_cache.py``) on Flux and CogVideoX, and its configuration errors.

    /work/venv-ref/bin/python Tests/Fixtures/gen_sea_cache.py

The denoiser is driven as a host drives diffattn: a recording hook registered first on the root replaces
the model's forward by the block loop, and one registered first on every block replaces the block by
``output = input + delta[ctx][step][block]`` (both streams), so SeaCache's hooks (registered afterwards,
outside) see exactly the calls a host makes. Each step runs under ``cache_context(ctx, step_index=i,
sigma=sigmas[i], num_inference_steps=N)`` with grad disabled; the raw latent of step i is
``(1 - sigma_i) * x0 + sigma_i * eps[ctx]``, handed to SeaCache by ``raw_vision_callback``.

Writes ``hooks/sea_cache.json``: ``{"format": "diffattn-sea-cache", "format_version": 1, "versions", "cases"}``;
a run case has ``name``, ``model`` (class), ``model_config``, ``config`` (SeaCacheConfig fields),
``callback`` (``flux_tokens``: latent (B, H*W, C) -> [(C, 1, H, W)] per batch element;
``cogvideox``: latent (B, F, C, H, W) -> [latent[b].permute(1, 0, 2, 3)]), ``paths`` (block paths),
``output_order`` (stream names in the blocks' return order), ``schedule`` = [[ctx, step], ...] in call
order, ``sigmas``, ``steps`` (N) and ``calls``: one record per schedule entry with ``latent``,
``block_inputs`` {hidden, encoder}, ``deltas`` (per block {hidden, encoder}), ``decisions`` (C/S per block),
``accumulated`` (the context's accumulated distance after the gate, or null when no gate ran),
``indicator`` (the SEA-filtered latents, (T, H, W, C) each), ``outputs`` {hidden, encoder} after the stack.
Error cases: ``kind`` = ``error`` with ``config``/``model`` and ``error`` {type, message}.
"""

import json
import os
import sys

import numpy as np
from fixture_io import write_hook_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hooks", "sea_cache.json")
NPZ_DIR = os.path.join(HERE, "hooks", "sea_cache")


def r32(a):
    return np.asarray(a, dtype=np.float32).round(4)


def err(e):
    return {"type": type(e).__name__, "message": str(e)}


def flux_tokens(module, args, kwargs):
    x = kwargs["hidden_states"]
    b, n, c = x.shape
    s = int(round(n ** 0.5))
    return [x[i].reshape(s, s, c).permute(2, 0, 1).unsqueeze(1) for i in range(b)]


def cogvideox(module, args, kwargs):
    x = kwargs["hidden_states"]
    return [x[i].permute(1, 0, 2, 3) for i in range(x.shape[0])]


RUNS = [
    # name, model case, overrides, SeaCacheConfig kwargs, contexts, steps, schedule kind
    ("sea_flux_default", "flux", dict(num_layers=2, num_single_layers=2), {}, ["cond"], 10, "plain"),
    ("sea_flux_thr1_unlimited", "flux", dict(num_layers=2, num_single_layers=2),
     dict(threshold=1.0, max_consecutive_cached=0), ["cond"], 10, "plain"),
    ("sea_flux_cfg_order0", "flux", dict(num_layers=2, num_single_layers=2),
     dict(threshold=0.5, residual_order=0, retention_steps=2, cache_end_steps=0, power_exp=2.0), ["cond", "uncond"], 10,
     "plain"),
    ("sea_flux_restart", "flux", dict(num_layers=1, num_single_layers=2),
     dict(threshold=1.0, max_consecutive_cached=3), ["cond"], 8, "restart"),
    ("sea_flux_single_block", "flux", dict(num_layers=1, num_single_layers=0),
     dict(threshold=1.0, max_consecutive_cached=0), ["cond"], 8, "plain"),
    ("sea_cogvideox", "cogvideox", dict(num_layers=3, num_attention_heads=1), dict(threshold=0.5), ["cond_uncond"], 10, "plain"),
]


def schedule_for(kind, contexts, steps):
    if kind == "restart":  # steps 0..5, then 0..3 again without a reset (non-adjacent -> trajectory reset)
        return [(c, s) for s in list(range(6)) + list(range(4)) for c in contexts]
    return [(c, s) for s in range(steps) for c in contexts]


def run_case(configs, name, mname, over, cfg, contexts, steps, sched_kind):
    import torch
    import diffusers
    from diffusers import SeaCacheConfig
    from diffusers.hooks import HookRegistry, ModelHook
    from diffusers.hooks import sea_cache as sc

    torch.manual_seed(0)
    mc = dict(configs[mname]["config"], **over)
    model = getattr(diffusers, configs[mname]["class"]).from_config(mc)
    paths = [f"{ln}.{i}" for ln, lst in model.named_children() if ln in ("transformer_blocks", "single_transformer_blocks")
             and isinstance(lst, torch.nn.ModuleList) for i in range(len(lst))]
    rng = np.random.default_rng(len(name) * 7919 + steps)
    flux = mname == "flux"
    if flux:
        batch, lat_shape, n_img, n_txt, dim = 1, (1, 16, 4), 16, 3, mc["num_attention_heads"] * mc["attention_head_dim"]
        order, callback = ["encoder", "hidden"], flux_tokens
    else:
        batch, lat_shape = 2, (2, 2, 4, 4, 4)
        n_img, n_txt, dim = 8, 2, mc["num_attention_heads"] * mc["attention_head_dim"]
        order, callback = ["hidden", "encoder"], cogvideox
    x0 = r32(rng.standard_normal(lat_shape))
    eps = {c: r32(rng.standard_normal(lat_shape)) for c in contexts}
    proj = r32(rng.standard_normal((int(np.prod(lat_shape[1:])) // n_img, dim)) * 0.5)
    text = {c: r32(rng.standard_normal((batch, n_txt, dim))) for c in contexts}
    sigmas = [1.0 - i / steps for i in range(steps)]
    patterns = [(r32(rng.standard_normal((batch, n_img, dim)) * 0.3), r32(rng.standard_normal((batch, n_txt, dim)) * 0.3))
                for _ in paths]

    state, log = {}, []

    class BlockRecorder(ModelHook):
        def __init__(self, b):
            super().__init__()
            self.b = b

        def new_forward(self, module, *args, **kwargs):
            log.append(self.b)
            dh, de = state["deltas"][self.b]
            h = kwargs["hidden_states"] + torch.tensor(dh)
            e = kwargs["encoder_hidden_states"] + torch.tensor(de)
            return (e, h) if flux else (h, e)

    class RootRecorder(ModelHook):
        def new_forward(self, module, *args, **kwargs):
            h, e = torch.tensor(state["h"]), torch.tensor(state["e"])
            for p in paths:
                y = model.get_submodule(p)(hidden_states=h, encoder_hidden_states=e, temb=None)
                e, h = y if flux else (y[1], y[0])
            return h, e

    for b, p in enumerate(paths):
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(BlockRecorder(b), "recorder")
    HookRegistry.check_if_exists_or_initialize(model).register_hook(RootRecorder(), "root_recorder")

    gates, indicators, arrays = [], [], {}
    orig_gate, orig_ind = sc.SeaCacheSharedState.resolve_gate, sc._build_indicator

    def spy_gate(self, st, md, ind, config):
        r = orig_gate(self, st, md, ind, config)
        gates.append(float(st.accumulated_distance))
        return r

    def spy_ind(config, md):
        r = orig_ind(config, md)
        indicators.append(None if r is None else [v.numpy().copy() for v in r])
        return r

    sc.SeaCacheSharedState.resolve_gate, sc._build_indicator = spy_gate, spy_ind
    try:
        model.enable_cache(SeaCacheConfig(**cfg, raw_vision_callback=callback))
        calls = []
        for ctx, s in schedule_for(sched_kind, contexts, steps):
            latent = r32((1 - sigmas[s]) * x0 + sigmas[s] * eps[ctx])
            tokens = latent.reshape(batch, n_img, -1)
            h_in = r32(tokens @ proj)
            k = 1.0 + 0.15 * s + (0.05 if ctx == "uncond" else 0.0)
            deltas = [(r32(ph * k + 0.01 * s), r32(pe * (1 + 0.02 * s))) for ph, pe in patterns]
            state.update(h=h_in, e=text[ctx], deltas=deltas)
            del log[:], gates[:], indicators[:]
            with torch.no_grad(), model.cache_context(ctx, step_index=s, sigma=sigmas[s], num_inference_steps=steps):
                h, e = model(hidden_states=torch.tensor(latent))
            key = f"call{len(calls)}"
            arrays.update({f"{key}/latent": latent, f"{key}/hidden": h_in, f"{key}/encoder": text[ctx],
                           f"{key}/out/hidden": h.numpy(), f"{key}/out/encoder": e.numpy()})
            for b, (dh, de) in enumerate(deltas):
                arrays[f"{key}/delta/{b}/hidden"], arrays[f"{key}/delta/{b}/encoder"] = dh, de
            ind = indicators[-1] if indicators else None
            for i, v in enumerate(ind or []):
                arrays[f"{key}/indicator/{i}"] = v
            calls.append(dict(key=key, context=ctx, step=s, indicators=len(ind or []),
                              decisions="".join("C" if b in log else "S" for b in range(len(paths))),
                              accumulated=gates[-1] if gates else None))
    finally:
        sc.SeaCacheSharedState.resolve_gate, sc._build_indicator = orig_gate, orig_ind
    return dict(name=name, kind="run", model=configs[mname]["class"], model_config=mc, config=cfg,
                callback=callback.__name__, paths=paths, output_order=order,
                schedule=[[c, s] for c, s in schedule_for(sched_kind, contexts, steps)], sigmas=sigmas, steps=steps,
                calls=calls), arrays


ERRORS = [
    ("sea_err_threshold", dict(threshold=-1.0)), ("sea_err_threshold_nan", dict(threshold=float("nan"))),
    ("sea_err_order", dict(residual_order=2)), ("sea_err_retention", dict(retention_steps=-1)),
    ("sea_err_end", dict(cache_end_steps=-2)), ("sea_err_max_bool", dict(max_consecutive_cached=True)),
    ("sea_err_max_neg", dict(max_consecutive_cached=-1)), ("sea_err_power", dict(power_exp=0.0)),
    ("sea_err_callback", dict(raw_vision_callback=3)),
]


def error_cases(configs):
    import torch
    import diffusers
    from diffusers import SeaCacheConfig
    from diffusers.hooks.sea_cache import apply_sea_cache
    out = []
    for name, cfg in ERRORS:
        try:
            SeaCacheConfig(**cfg)
            e = None
        except Exception as exc:  # noqa: BLE001
            e = err(exc)
        shown = {k: (repr(v) if isinstance(v, float) and v != v else v) for k, v in cfg.items()}
        out.append(dict(name=name, kind="error", config=shown, error=e))
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel.from_config(configs["unet2d"]["config"])
    try:
        apply_sea_cache(unet, SeaCacheConfig())
        e = None
    except Exception as exc:  # noqa: BLE001
        e = err(exc)
    out.append(dict(name="sea_err_unet_no_blocks", kind="error", model="unet2d", config={}, error=e))
    return out


def main():
    with open(os.path.join(HERE, "models", "index.json")) as fh:
        configs = {c["name"]: c for c in json.load(fh)["cases"]}
    os.makedirs(NPZ_DIR, exist_ok=True)
    cases = []
    for r in RUNS:
        case, arrays = run_case(configs, *r)
        case["arrays"] = f"sea_cache/{case['name']}.npz"
        np.savez_compressed(os.path.join(NPZ_DIR, case["name"] + ".npz"), **arrays)
        cases.append(case)
    cases += error_cases(configs)
    write_hook_fixture(OUT, "diffattn-sea-cache", "Tests/Fixtures/gen_sea_cache.py", cases, rtol=2e-4)
    print(f"wrote {OUT}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
