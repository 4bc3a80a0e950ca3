"""diffusers 0.42.1's newer hook behaviour from Python (fixtures: Tests/Fixtures/hooks/newer.json and
newer/*.npz, made by gen_hooks_newer.py): TaylorSeer lite mode on a Flux with real channel counts
through the block protocol's output buffers."""

import json
import os

import numpy as np
import pytest

from diffattn import models
from diffattn.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "Fixtures", "hooks")
with open(os.path.join(FIX, "newer.json")) as fh:
    NEWER = json.load(fh)
RTOL = NEWER["rtol"]


def cases(kind):
    found = [c for c in NEWER["cases"] if c["kind"] == kind]
    return pytest.mark.parametrize("case", found, ids=[c["name"] for c in found])


def arrays(case):
    with np.load(os.path.join(FIX, case["arrays"])) as z:
        return {k: z[k] for k in z.files}


@cases("taylorseer_lite")
def test_taylorseer_lite_real_flux_proj_out(case):
    """Blocks predicted as zeros of their recorded shapes, proj_out (3072 -> 64) as diffusers'
    Taylor prediction of its outputs; the inputs never have the outputs' shape."""
    a = arrays(case)
    model = models.FluxTransformer2DModel(**case["model_config"])
    hooked = apply_taylorseer_cache(model, TaylorSeerCacheConfig(**case["config"]))
    assert hooked == len(case["hooked"])
    inner, out_ch = case["proj_out"]
    n_img, n_txt = case["tokens"]
    hidden, encoder = np.zeros((1, n_img, inner), np.float32), np.zeros((1, n_txt, inner), np.float32)
    decisions = {p: "" for p in case["decisions"]}
    for s in range(case["steps"]):
        with model.cache_context("cond"):
            for p in ("transformer_blocks.0", "single_transformer_blocks.0"):
                bufs = [np.full(hidden.shape, 7, np.float32), np.full(encoder.shape, 7, np.float32)]
                run, outs = model.module_begin(p, hidden, encoder, outputs=bufs)
                decisions[p] += "C" if run else "S"
                if run:
                    model.module_end(p, hidden, encoder, outputs=[hidden, encoder])
                else:
                    assert all(not o.any() for o in outs)  # diffusers: zeros of the recorded shapes
            run, (y,) = model.module_begin("proj_out", hidden, outputs=[np.zeros((1, n_img, out_ch), np.float32)])
            decisions["proj_out"] += "C" if run else "S"
            if run:
                (y,) = model.module_end("proj_out", hidden, outputs=[a[f"proj_out/{s}"]])
        np.testing.assert_allclose(y, a[f"out/{s}"], rtol=RTOL, atol=1e-5, err_msg=f"step {s}")
    assert decisions == case["decisions"]


def test_taylorseer_lite_in_place_form_explains_shape_mismatch():
    """The old in-place form cannot hold a 64-channel prediction in a 3072-channel input: a clear
    error naming the output-buffer form, not a crash."""
    case = next(c for c in NEWER["cases"] if c["kind"] == "taylorseer_lite")
    model = models.FluxTransformer2DModel(**case["model_config"])
    apply_taylorseer_cache(model, TaylorSeerCacheConfig(use_lite_mode=True, cache_interval=2, disable_cache_before_step=1))
    x = np.zeros((1, 2, 3072), np.float32)
    with model.cache_context("cond"):
        run, _, _ = model.module_begin("proj_out", x)
        assert run
        model.module_end("proj_out", np.ones((1, 2, 64), np.float32))  # the old form: outputs in place
    with model.cache_context("cond"):
        with pytest.raises(ValueError, match="output buffers"):
            model.module_begin("proj_out", x)


# --- smoothed energy guidance ---------------------------------------------------------------------
from diffattn.hooks import (LayerSkipConfig, SmoothedEnergyGuidanceConfig, apply_layer_skip,  # noqa: E402
                            apply_smoothed_energy_guidance, remove_smoothed_energy_guidance, seg_blur_query)


@cases("seg_blur")
def test_seg_blur_matches_diffusers(case):
    """diffusers 0.42.1's `_gaussian_blur_2d` (its inverted mapping) by default; the corrected
    mapping equals diffusers' own branches chosen the SEG way."""
    a = arrays(case)
    for i, sigma in enumerate(case["sigmas"]):
        np.testing.assert_allclose(seg_blur_query(a["q"], sigma), a[f"out/{i}"], rtol=RTOL, atol=1e-6, err_msg=f"sigma {sigma}")
        np.testing.assert_allclose(seg_blur_query(a["q"], sigma, corrected=True), a[f"fixed/{i}"], rtol=RTOL, atol=1e-6,
                                   err_msg=f"corrected, sigma {sigma}")


def load_module(case, a):
    model = getattr(models, models_class(case["model"])).from_config(case["model_config"])
    weights = {k[len("weights/"):]: v for k, v in a.items() if k.startswith("weights/")}
    model.load_state_dict(weights, strict=False)
    return model


def models_class(name):
    with open(os.path.join(FIX, "..", "models", "index.json")) as fh:
        return next(c["class"] for c in json.load(fh)["cases"] if c["name"] == name)


def call(attn, a, prefix="", mask=None):
    enc = a.get(prefix + "encoder")
    kw = {} if mask is None else {"attention_mask": mask}
    y = attn(a[prefix + "hidden"], enc, **kw) if enc is not None else attn(a[prefix + "hidden"], **kw)
    return list(y) if isinstance(y, tuple) else [y]


@cases("seg_model")
def test_seg_on_models_matches_diffusers(case):
    a = arrays(case)
    model = load_module(case, a)
    attn = model.get_submodule(case["path"])
    plain = call(attn, a)
    for j, y in enumerate(plain):
        np.testing.assert_allclose(y, a[f"plain/{j}"], rtol=RTOL, atol=1e-5)
    for k, sigma in enumerate(case["sigmas"]):
        remove_smoothed_energy_guidance(model)
        hooked = apply_smoothed_energy_guidance(model, SmoothedEnergyGuidanceConfig(indices=[0], fqn=case["fqn"]), sigma)
        out = call(attn, a)
        if "error" in case:  # diffusers fails (Flux: no is_cross_attention); ours blurs the query
            assert case["error"]["type"] == "AttributeError" and hooked >= 1
            assert all(np.isfinite(y).all() for y in out) and not np.allclose(out[0], plain[0])
            continue
        assert hooked == len(case["hooked"])
        for j, y in enumerate(out):
            np.testing.assert_allclose(y, a[f"out/{k}/{j}"], rtol=RTOL, atol=1e-5, err_msg=f"sigma {sigma}, output {j}")
    remove_smoothed_energy_guidance(model)
    for j, y in enumerate(call(attn, a)):
        np.testing.assert_allclose(y, a[f"plain/{j}"], rtol=RTOL, atol=1e-5)


# --- layer skip: skip_attention_scores -------------------------------------------------------------
@cases("layer_skip_scores")
def test_skip_attention_scores_matches_diffusers(case):
    a = arrays(case)
    model = load_module(case, a)
    config = LayerSkipConfig(**case["config"]) if "dropout" not in case["config"] else None
    if "error" in case and case["error"]["type"] == "ValueError" and config is None:
        with pytest.raises(ValueError, match="dropout"):
            LayerSkipConfig(**case["config"])
        return
    if "error" in case:
        if "Cannot set both" in case["error"]["message"]:
            with pytest.raises(ValueError, match="Cannot set both"):
                apply_layer_skip(model, config)
        else:  # Flux (AttributeError) / SD3 (processor not registered): ours runs (docs/deviations.md)
            assert apply_layer_skip(model, config) >= 1
        return
    apply_layer_skip(model, config)
    for call_case in case["calls"]:
        key = call_case["key"]
        mask = None
        if call_case["masked"]:
            mask = a[f"{key}/mask"].astype(bool)
        out = call(model.get_submodule(call_case["path"]), a, prefix=key + "/", mask=mask)
        for j, y in enumerate(out):
            np.testing.assert_allclose(y, a[f"{key}/out/{j}"], rtol=RTOL, atol=1e-5, err_msg=f"{call_case['path']}")


# --- the whole ModelHook on attention modules -------------------------------------------------------
from diffattn.hooks import HookRegistry, ModelHook  # noqa: E402


def test_attention_hooks_see_and_replace_every_stream():
    """pre_forward sees hidden_states positionally and encoder_hidden_states by keyword and may
    replace them; new_forward may skip or call the original; post_forward may replace the output."""
    with open(os.path.join(FIX, "..", "models", "index.json")) as fh:
        cfg = next(c for c in json.load(fh)["cases"] if c["name"] == "pixart")["config"]
    model = models.PixArtTransformer2DModel.from_config(cfg)
    attn = model.get_submodule("transformer_blocks.0.attn2")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 4)).astype(np.float32)
    enc = rng.standard_normal((1, 3, 4)).astype(np.float32)
    plain, doubled = attn(x, enc), attn(x, enc * 2)
    seen = {}

    class Scale(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            seen.update(args=len(args), keywords=sorted(kwargs), hidden=args[0].shape)
            kwargs["encoder_hidden_states"] = kwargs["encoder_hidden_states"] * 2
            return args, kwargs

    class Wrap(ModelHook):
        def new_forward(self, module, *args, **kwargs):
            return self.fn_ref.original_forward(*args, **kwargs) * 3

    class Skip(ModelHook):
        def new_forward(self, module, *args, **kwargs):
            return args[0]

    registry = HookRegistry.check_if_exists_or_initialize(attn)
    registry.register_hook(Scale(), "scale")
    np.testing.assert_allclose(attn(x, enc), doubled, rtol=1e-6)
    assert seen == {"args": 1, "keywords": ["encoder_hidden_states"], "hidden": (1, 16, 4)}
    registry.register_hook(Wrap(), "wrap")
    np.testing.assert_allclose(attn(x, enc), doubled * 3, rtol=1e-6)
    registry.register_hook(Skip(), "skip")
    np.testing.assert_array_equal(attn(x, enc), x)
    for name in ("skip", "wrap", "scale"):
        registry.remove_hook(name)
    np.testing.assert_allclose(attn(x, enc), plain, rtol=1e-6)


# --- Sana multiscale without kernel sizes -------------------------------------------------------------
@cases("sana_no_kernels")
def test_sana_multiscale_without_kernel_sizes_runs_as_diffusers(case):
    import diffattn
    a = arrays(case)
    m = diffattn.SanaMultiscaleLinearAttention(**case["init"])
    m.load_state_dict({k[len("weights/"):]: v for k, v in a.items() if k.startswith("weights/")})
    for i in range(case["inputs"]):
        np.testing.assert_allclose(m(a[f"x/{i}"]), a[f"out/{i}"], rtol=RTOL, atol=1e-5, err_msg=f"input {i}")


# --- FasterCache: custom low/high frequency weight callbacks -----------------------------------------
@cases("faster")
def test_faster_cache_frequency_weight_callbacks_match_diffusers(case):
    """diffusers calls `low/high_frequency_weight_callback(module)` on every step that skips the
    unconditional half; the fixture's callbacks return constants ("const:<x>")."""
    import test_caches
    calls = []

    def const(text):
        def callback(module):
            calls.append(module)
            return float(text[len("const:"):])
        return callback

    cfg = {k: (const(v) if str(v).startswith("const:") else v) for k, v in case["config"].items()}
    test_caches.test_faster_cache_matches_diffusers(dict(case, config=cfg))
    assert calls and all(isinstance(m, models.PixArtTransformer2DModel) for m in calls)
