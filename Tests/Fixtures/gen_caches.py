"""Cache fixtures (issue 10): per-step compute/skip decisions of diffusers' FirstBlockCache,
MagCache, TaylorSeer, FasterCache and layer-skip hooks, and of an independent TeaCache reference.

    /work/venv-ref/bin/python Tests/Fixtures/gen_caches.py

Blocks are driven the way a host drives diffattn: a recording hook registered first on every block
(inside the cache hooks) replaces the block's forward by `output = input + delta[ctx][step][block]`
(hidden and encoder streams; the deltas are stored here), so the decisions and the outputs depend on
these numbers only. The recorder notes a `C` when it runs; a call it does not see is an `S`.

Writes ``hooks/caches.json``: ``{"format": "diffattn-caches", "format_version": 1, "versions", "cases"}``;
every case has ``name``, ``kind`` (fbc | mag | taylorseer | faster | layer_skip | teacache), ``model``
(model config), ``config`` and what the kind records (see each ``case_*``): ``decisions`` maps a
context (or path) to one letter per step, ``outputs`` holds final hidden/encoder arrays per step.
"""

import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hooks", "caches.json")
N_IMG, N_TXT, DIM = 4, 2, 8


def flux_config(configs, layers=2, single=2):
    return dict(configs["flux"]["config"], num_layers=layers, num_single_layers=single)


def r32(a):
    return np.asarray(a, dtype=np.float32).round(4)


def block_deltas(rng, steps, blocks, head_scales):
    """delta[step][block] = (dh, de): the head's residual follows `head_scales` (decisions), the
    other blocks add fixed random patterns that also drift a little."""
    ph = [r32(rng.standard_normal((1, N_IMG, DIM))) for _ in range(blocks)]
    pe = [r32(rng.standard_normal((1, N_TXT, DIM))) for _ in range(blocks)]
    out = []
    for s in range(steps):
        row = []
        for b in range(blocks):
            k = head_scales[s] if b == 0 else 1 + 0.05 * s
            row.append((r32(ph[b] * k), r32(pe[b] * k)))
        out.append(row)
    return out


def drive_blocks(model, paths, decisions_key, log, inputs, deltas, call):
    """Runs the block stack once; the recorder (installed by the caller) logs computed blocks."""
    import torch
    h, e = (torch.tensor(x) for x in inputs)
    for b, p in enumerate(paths):
        blk = model.get_submodule(p)
        out = blk(hidden_states=h, encoder_hidden_states=e, temb=None)
        e, h = out  # Flux blocks return (encoder, hidden)
    return h.numpy(), e.numpy()


def install_recorders(model, paths, deltas, state, log):
    import torch
    from diffusers.hooks import HookRegistry, ModelHook

    class Recorder(ModelHook):
        def __init__(self, b):
            super().__init__()
            self.b = b

        def new_forward(self, module, *args, **kwargs):
            log.append(self.b)
            dh, de = deltas[state["ctx"]][state["step"]][self.b]
            return (kwargs["encoder_hidden_states"] + torch.tensor(de), kwargs["hidden_states"] + torch.tensor(dh))

    for b, p in enumerate(paths):
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(Recorder(b), "recorder")


def run_block_case(case, configs, apply, contexts, steps, use_context=True, extra=None):
    import torch
    import diffusers
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel.from_config(case["model"])
    paths = [f"transformer_blocks.{i}" for i in range(case["model"]["num_layers"])] + \
            [f"single_transformer_blocks.{i}" for i in range(case["model"]["num_single_layers"])]
    rng = np.random.default_rng(case["seed"])
    deltas = {c: block_deltas(rng, steps, len(paths), case["head_scales"][c]) for c in contexts}
    inputs = {c: (r32(rng.standard_normal((1, N_IMG, DIM))), r32(rng.standard_normal((1, N_TXT, DIM)))) for c in contexts}
    state, log = {}, []
    install_recorders(model, paths, deltas, state, log)
    apply(model)
    decisions = {c: {p: "" for p in paths} for c in contexts}
    outputs = {c: [] for c in contexts}
    for s in range(steps):
        for c in contexts:
            state.update(ctx=c, step=s)
            del log[:]
            if extra:
                extra(model, c, s)
            if use_context:
                with model.cache_context(c):
                    h, e = drive_blocks(model, paths, c, log, inputs[c], deltas, None)
            else:
                h, e = drive_blocks(model, paths, c, log, inputs[c], deltas, None)
            for b, p in enumerate(paths):
                decisions[c][p] += "C" if b in log else "S"
            outputs[c].append({"hidden": h.tolist(), "encoder": e.tolist()})
    return dict(paths=paths, contexts=contexts, steps=steps,
                deltas={c: [[{"hidden": dh.tolist(), "encoder": de.tolist()} for dh, de in row] for row in deltas[c]] for c in contexts},
                inputs={c: {"hidden": inputs[c][0].tolist(), "encoder": inputs[c][1].tolist()} for c in contexts},
                decisions=decisions, outputs=outputs), model


def fbc_cases(configs):
    from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache
    out = []
    for name, thr, scales in [
        ("fbc_two_contexts", 0.12, {"cond": [1.0, 1.05, 1.1, 1.5, 1.55, 1.6, 2.5, 2.52, 2.54, 2.56],
                                    "uncond": [1.0, 1.3, 1.32, 1.0, 1.01, 0.7, 0.71, 0.72, 0.73, 0.2]}),
        ("fbc_threshold_zero", 0.0, {"cond": [1.0, 1.0, 1.2, 1.2, 1.2, 0.5, 0.5, 0.6, 0.6, 0.6]}),
    ]:
        case = dict(name=name, kind="fbc", model=flux_config(configs), config={"threshold": thr}, seed=len(out) + 1,
                    head_scales=scales)
        rec, _ = run_block_case(case, configs, lambda m: apply_first_block_cache(m, FirstBlockCacheConfig(threshold=thr)),
                                list(scales), 10)
        out.append(dict(case, **rec))
    return out


def mag_cases(configs):
    import diffusers.hooks.mag_cache as mc
    from diffusers.hooks import MagCacheConfig, apply_mag_cache
    out = []
    specs = [
        ("mag_conformance", dict(threshold=0.5, max_skip_steps=2, retention_ratio=0.25, num_inference_steps=4,
                                 mag_ratios=[1.0] * 4), 5),
        ("mag_flux_resampled", dict(threshold=0.1, max_skip_steps=3, retention_ratio=0.2, num_inference_steps=12,
                                    mag_ratios=mc.FLUX_MAG_RATIOS.tolist()), 12),
        ("mag_calibrate", dict(num_inference_steps=6, calibrate=True), 6),
    ]
    calib = []
    orig = mc.MagCacheBlockHook._perform_calibration_step

    def spy(self, state, residual):
        orig(self, state, residual)
        calib.append(list(state.calibration_ratios))
    mc.MagCacheBlockHook._perform_calibration_step = spy
    for i, (name, cfg, steps) in enumerate(specs):
        del calib[:]
        scales = {"inference": [1.0 + 0.1 * s for s in range(steps)]}
        case = dict(name=name, kind="mag", model=flux_config(configs), config=cfg, seed=10 + i, head_scales=scales)
        rec, _ = run_block_case(case, configs, lambda m: apply_mag_cache(m, MagCacheConfig(**cfg)), ["inference"], steps,
                                use_context=False)
        out.append(dict(case, **rec, calibration=calib[-1] if calib else None))
    mc.MagCacheBlockHook._perform_calibration_step = orig
    return out


def taylorseer_cases(configs):
    import torch
    from diffusers.hooks import HookRegistry, TaylorSeerCacheConfig, apply_taylorseer_cache
    out = []
    ident = [r"transformer_blocks\.\d+", r"single_transformer_blocks\.\d+"]
    for i, (name, cfg) in enumerate([
        ("taylorseer_blocks_interval2", dict(cache_interval=2, disable_cache_before_step=2, cache_identifiers=ident)),
        ("taylorseer_blocks_order2_after6", dict(cache_interval=3, disable_cache_before_step=1, disable_cache_after_step=7,
                                                 max_order=2, taylor_factors_dtype="float32", cache_identifiers=ident)),
    ]):
        tcfg = dict(cfg)
        tcfg["taylor_factors_dtype"] = getattr(torch, cfg.get("taylor_factors_dtype", "bfloat16"))
        scales = {"cond": [1.0 + 0.1 * s for s in range(9)]}
        case = dict(name=name, kind="taylorseer", model=flux_config(configs), config=cfg, seed=20 + i, head_scales=scales)
        rec, _ = run_block_case(case, configs, lambda m: apply_taylorseer_cache(m, TaylorSeerCacheConfig(**tcfg)), ["cond"], 9)
        out.append(dict(case, **rec))
    for name, cfg in [("taylorseer_default_hooked", {}), ("taylorseer_lite_hooked", {"use_lite_mode": True})]:
        torch.manual_seed(0)
        import diffusers
        model = diffusers.FluxTransformer2DModel.from_config(flux_config(configs))
        apply_taylorseer_cache(model, TaylorSeerCacheConfig(**cfg))
        hooked = [p for p, m in model.named_modules() if p and
                  HookRegistry.check_if_exists_or_initialize(m).get_hook("taylorseer_cache") is not None]
        out.append(dict(name=name, kind="taylorseer_hooked", model=flux_config(configs), config=cfg, hooked=hooked))
    return out


def layer_skip_cases(configs):
    import torch
    import diffusers
    from diffusers.hooks import HookRegistry, LayerSkipConfig, apply_layer_skip
    out = []
    pix = dict(configs["pixart"]["config"], num_layers=3)
    for name, cls, mcfg, cfg in [
        ("layer_skip_pixart_blocks", "PixArtTransformer2DModel", pix, dict(indices=[0, 2])),
        ("layer_skip_pixart_attention", "PixArtTransformer2DModel", pix, dict(indices=[1], skip_ff=False)),
        ("layer_skip_pixart_ff", "PixArtTransformer2DModel", pix, dict(indices=[0, 1], skip_attention=False)),
        ("layer_skip_flux_single", "FluxTransformer2DModel", flux_config(configs), dict(indices=[1], fqn="single_transformer_blocks")),
        ("layer_skip_flux_double_ff", "FluxTransformer2DModel", flux_config(configs),
         dict(indices=[0], fqn="transformer_blocks", skip_attention=False)),
    ]:
        torch.manual_seed(0)
        model = getattr(diffusers, cls).from_config(mcfg)
        apply_layer_skip(model, LayerSkipConfig(**cfg))
        hooked = {}
        for p, m in model.named_modules():
            h = HookRegistry.check_if_exists_or_initialize(m).get_hook("layer_skip_hook") if p else None
            if h is not None:
                hooked[p] = type(h).__name__
        out.append(dict(name=name, kind="layer_skip", model_class=cls, model=mcfg, config=cfg, hooked=hooked))
    return out


FASTER_SPECS = [
    ("faster_cache_cfg", dict(spatial_attention_block_skip_range=2, tensor_format="BCHW")),
    ("faster_cache_skip3_weight", dict(spatial_attention_block_skip_range=3, unconditional_batch_skip_range=3,
                                       spatial_attention_timestep_skip_range=[-1, 850], tensor_format="BCHW",
                                       alpha_low_frequency=1.3, alpha_high_frequency=0.9)),
    ("faster_cache_distilled", dict(spatial_attention_block_skip_range=2, is_guidance_distilled=True, tensor_format="BCHW")),
]


def faster_cases(configs, specs=FASTER_SPECS, seed=30):
    """``specs``: (name, config); a config value ``"const:<x>"`` is a callback returning x (issue 16's
    low/high frequency weight callbacks)."""
    import torch
    import diffusers
    from diffusers.hooks import FasterCacheConfig, HookRegistry, ModelHook, apply_faster_cache
    out = []
    schedule = [999, 900, 800, 700, 660, 600, 500, 400, 300, 200, 100, 50]
    pix = dict(configs["pixart"]["config"], num_layers=2)
    for i, (name, cfg) in enumerate(specs):
        torch.manual_seed(0)
        model = diffusers.PixArtTransformer2DModel.from_config(pix)
        attn = [p for p, m in model.named_modules() if p.endswith(("attn1", "attn2"))]
        rng = np.random.default_rng(seed + i)
        full = [r32(rng.standard_normal((2, 3, 8, 8))) for _ in schedule]
        state, log, batches = {}, {p: "" for p in attn}, []

        class AttnRecorder(ModelHook):
            def __init__(self, p):
                super().__init__()
                self.p = p

            def new_forward(self, module, *args, **kwargs):
                log[self.p] += "C"
                return torch.zeros(args[0].shape[0], N_IMG, 4)

        class Root(ModelHook):
            def new_forward(self, module, *args, **kwargs):
                b = kwargs["hidden_states"].shape[0]
                batches.append(b)
                for p in attn:
                    before = len(log[p])
                    model.get_submodule(p)(torch.zeros(b, N_IMG, 4))
                    if len(log[p]) == before:
                        log[p] += "S"
                o = torch.tensor(full[state["s"]])
                return (o if b == 2 else o[1:],)

        for p in attn:
            HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(AttnRecorder(p), "recorder")
        HookRegistry.check_if_exists_or_initialize(model).register_hook(Root(), "root_recorder")
        c = {k: (tuple(v) if isinstance(v, list) else (lambda _m, x=float(v[6:]): x) if str(v).startswith("const:") else v)
             for k, v in cfg.items()}
        apply_faster_cache(model, FasterCacheConfig(**c, current_timestep_callback=lambda: state["t"]))
        hooked = [p for p in attn if HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).get_hook("faster_cache_block")]
        outputs = []
        for s, t in enumerate(schedule):
            state.update(s=s, t=t)
            res = model(hidden_states=torch.zeros(2, 4, 4, 4), encoder_hidden_states=torch.zeros(2, 3, 4), timestep=torch.tensor([t, t]))
            outputs.append(res[0].numpy().tolist())
        out.append(dict(name=name, kind="faster", model=pix, config=cfg, schedule=schedule, hooked=hooked,
                        decisions={p: log[p] for p in hooked}, batches=batches,
                        denoiser_outputs=[f.tolist() for f in full], outputs=outputs))
    return out


def teacache_reference(mods, steps, thresh, coefficients):
    """TeaCache's rule written from the paper and its TeaCache4FLUX code, independently of the
    library: returns the per-step decisions (True = compute)."""
    poly = np.poly1d(coefficients)
    acc, prev, out = 0.0, None, []
    for cnt in range(steps):
        m = mods[cnt].astype(np.float64)
        if cnt == 0 or cnt == steps - 1:
            calc, acc = True, 0.0
        else:
            acc += poly(np.abs(m - prev).mean() / np.abs(prev).mean())
            calc = not acc < thresh
            if calc:
                acc = 0.0
        prev = m
        out.append(calc)
    return out


def teacache_cases(configs):
    out = []
    coef = [4.98651651e+02, -2.83781631e+02, 5.58554382e+01, -3.82021401e+00, 2.64230861e-01]
    for i, (name, thresh, drift) in enumerate([("teacache_flux_04", 0.4, 0.05), ("teacache_flux_025", 0.25, 0.03),
                                               ("teacache_linear", 0.3, 0.08)]):
        c = coef if name != "teacache_linear" else [1.0, 0.0]
        steps = 12
        rng = np.random.default_rng(40 + i)
        base = r32(rng.standard_normal((1, N_IMG, DIM)))
        mods = [r32(base * (1 + drift * s * (1 + 0.5 * np.sin(s))) + 0.01 * s) for s in range(steps)]
        calc = teacache_reference(mods, steps, thresh, c)
        paths = [f"transformer_blocks.{k}" for k in range(2)] + [f"single_transformer_blocks.{k}" for k in range(2)]
        deltas = block_deltas(rng, steps, len(paths), [1.0 + 0.1 * s for s in range(steps)])
        h0, e0 = r32(rng.standard_normal((1, N_IMG, DIM))), r32(rng.standard_normal((1, N_TXT, DIM)))
        outputs, residual = [], None
        for s in range(steps):  # the whole-stack residual reuse, as TeaCache4FLUX
            if calc[s]:
                h, e = h0.copy(), e0.copy()
                for b in range(len(paths)):
                    h, e = h + deltas[s][b][0], e + deltas[s][b][1]
                residual = h - h0
            else:
                h, e = h0 + residual, e0.copy()
            outputs.append({"hidden": h.tolist(), "encoder": e.tolist()})
        out.append(dict(name=name, kind="teacache", model=flux_config(configs),
                        config=dict(rel_l1_thresh=thresh, coefficients=c, num_inference_steps=steps), paths=paths,
                        modulated=[m.tolist() for m in mods], steps=steps,
                        inputs={"inference": {"hidden": h0.tolist(), "encoder": e0.tolist()}},
                        deltas={"inference": [[{"hidden": dh.tolist(), "encoder": de.tolist()} for dh, de in row] for row in deltas]},
                        decisions={"inference": "".join("C" if x else "S" for x in calc)}, outputs={"inference": outputs}))
    return out


def main():
    import torch
    import diffusers
    with open(os.path.join(HERE, "models", "index.json")) as fh:
        configs = {c["name"]: c for c in json.load(fh)["cases"]}
    cases = fbc_cases(configs) + mag_cases(configs) + taylorseer_cases(configs) + layer_skip_cases(configs) + \
        faster_cases(configs) + teacache_cases(configs)
    out = {"format": "diffattn-caches", "format_version": 1, "generator": "Tests/Fixtures/gen_caches.py",
           "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "python": platform.python_version()},
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(out, fh, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
