"""Caches and layer skip against diffusers' hooks (fixture: Tests/Fixtures/hooks/caches.json, made by
gen_caches.py) and against the independent TeaCache reference written there: per step, which blocks
(or attention modules) compute, and the outputs the host ends up with."""

import ctypes
import json
import os

import numpy as np
import pytest

from diffattn import models
from diffattn._core import check
from diffattn._lib import lib
from diffattn.hooks import (FasterCacheConfig, FirstBlockCacheConfig, HookRegistry, LayerSkipConfig, MagCacheConfig,
                            ModelHook, TaylorSeerCacheConfig, TeaCacheConfig, apply_faster_cache, apply_first_block_cache,
                            apply_layer_skip, apply_mag_cache, apply_taylorseer_cache, apply_teacache)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "Fixtures", "hooks", "caches.json")) as fh:
    CASES = json.load(fh)["cases"]


def by_kind(*kinds):
    cases = [c for c in CASES if c["kind"] in kinds]
    return pytest.mark.parametrize("case", cases, ids=[c["name"] for c in cases])


def arr(x):
    return np.asarray(x, dtype=np.float32)


def has_hook(model, path, name):
    r, present = ctypes.c_void_p(), ctypes.c_int32()
    check(lib.da_model_hook_registry(model._handle, path.encode(), ctypes.byref(r)))
    check(lib.da_hook_registry_has_hook(r, name.encode(), ctypes.byref(present)))
    return bool(present.value)


def drive(model, case, ctx, step, modulated=None):
    """The host's block loop: output = input + the fixture's delta; returns decisions and outputs."""
    h, e = arr(case["inputs"][ctx]["hidden"]), arr(case["inputs"][ctx]["encoder"])
    letters = ""
    for b, p in enumerate(case["paths"]):
        run, h, e = model.module_begin(p, h, e, modulated_input=modulated if b == 0 else None)
        letters += "C" if run else "S"
        if run:
            d = case["deltas"][ctx][step][b]
            h, e = model.module_end(p, h + arr(d["hidden"]), e + arr(d["encoder"]))
    return letters, h, e


def run_blocks(case, model, use_context=True, modulated=None):
    contexts = list(case["decisions"])
    got = {c: {p: "" for p in case["paths"]} for c in contexts}
    for s in range(case["steps"]):
        for c in contexts:
            with model.step(999 - s):
                if use_context:
                    with model.cache_context(c):
                        letters, h, e = drive(model, case, c, s, modulated and arr(modulated[s]))
                else:
                    letters, h, e = drive(model, case, c, s, modulated and arr(modulated[s]))
            for p, x in zip(case["paths"], letters):
                got[c][p] += x
            want = case["outputs"][c][s]
            np.testing.assert_allclose(h, arr(want["hidden"]), rtol=1e-5, atol=1e-5, err_msg=f"{c} step {s} hidden")
            np.testing.assert_allclose(e, arr(want["encoder"]), rtol=1e-5, atol=1e-5, err_msg=f"{c} step {s} encoder")
    return got


def flux(case):
    return models.FluxTransformer2DModel.from_config(case["model"])


@by_kind("fbc")
def test_first_block_cache_matches_diffusers(case):
    model = flux(case)
    apply_first_block_cache(model, FirstBlockCacheConfig(**case["config"]))
    assert run_blocks(case, model) == case["decisions"]


@by_kind("mag")
def test_mag_cache_matches_diffusers(case):
    model = flux(case)
    apply_mag_cache(model, MagCacheConfig(**case["config"]))
    assert run_blocks(case, model, use_context=False) == case["decisions"]
    if case["calibration"] is not None:
        np.testing.assert_allclose(model.mag_cache_calibration(), case["calibration"], rtol=1e-5)


@by_kind("taylorseer")
def test_taylorseer_matches_diffusers(case):
    model = flux(case)
    apply_taylorseer_cache(model, TaylorSeerCacheConfig(**case["config"]))
    assert run_blocks(case, model) == case["decisions"]


@by_kind("taylorseer_hooked")
def test_taylorseer_selects_diffusers_modules(case):
    model = flux(case)
    apply_taylorseer_cache(model, TaylorSeerCacheConfig(**case["config"]))
    paths = model.module_paths("attention") + model.module_paths("container")
    assert sorted(p for p in paths if has_hook(model, p, "taylorseer_cache")) == sorted(case["hooked"])


@by_kind("teacache")
def test_teacache_matches_reference(case):
    model = flux(case)
    apply_teacache(model, TeaCacheConfig(**case["config"]))
    got = run_blocks(case, model, use_context=False, modulated=case["modulated"])
    assert got["inference"][case["paths"][0]] == case["decisions"]["inference"]
    assert all(v == case["decisions"]["inference"] for v in got["inference"].values())


@by_kind("layer_skip")
def test_layer_skip_hooks_diffusers_modules(case):
    model = getattr(models, case["model_class"]).from_config(case["model"])
    config = LayerSkipConfig(**case["config"])
    apply_layer_skip(model, config)
    paths = model.module_paths("attention") + model.module_paths("container")
    assert sorted(p for p in paths if has_hook(model, p, "layer_skip_hook")) == sorted(case["hooked"])
    for p, kind in case["hooked"].items():
        if kind != "AttentionProcessorSkipHook":  # host-run: skipped through the block protocol, output = input
            x = np.arange(8, dtype=np.float32).reshape(1, 2, 4)
            run, h, _ = model.module_begin(p, x)
            assert not run and np.array_equal(h, x)


class Recorder(ModelHook):
    def __init__(self, log, path):
        self.log, self.path = log, path

    def pre_forward(self, module, *args, **kwargs):
        self.log[self.path] += "C"
        return args, kwargs


@by_kind("faster")
def test_faster_cache_matches_diffusers(case):
    model = models.PixArtTransformer2DModel.from_config(case["model"])
    paths = model.module_paths("attention")
    log = {p: "" for p in paths}
    for p in paths:
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(Recorder(log, p), "recorder")
    state = {}
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in case["config"].items()}
    apply_faster_cache(model, FasterCacheConfig(**cfg, current_timestep_callback=lambda: state["t"]))
    assert sorted(p for p in paths if has_hook(model, p, "faster_cache_block")) == sorted(case["hooked"])
    for s, t in enumerate(case["schedule"]):
        state["t"] = t
        with model.step(t):
            b = 1 if model.faster_cache_skips_unconditional() else 2
            assert b == case["batches"][s], f"step {s}"
            for p in paths:
                before = len(log[p])
                a = model.get_submodule(p)
                enc = np.ones((b, 3, a.cross_attention_dim), np.float32) if a.is_cross_attention else None
                a(np.ones((b, 4, a.query_dim), np.float32), enc)
                if len(log[p]) == before:
                    log[p] += "S"
            full = arr(case["denoiser_outputs"][s])
            out = model.faster_cache_denoiser_output(full if b == 2 else full[1:])
            np.testing.assert_allclose(out, arr(case["outputs"][s]), rtol=1e-4, atol=1e-4, err_msg=f"step {s}")
    assert {p: log[p] for p in case["hooked"]} == case["decisions"]


def test_enable_cache_is_exclusive_and_disable_removes_every_hook():
    case = next(c for c in CASES if c["kind"] == "fbc")
    model = flux(case)
    assert not model.is_cache_enabled
    model.enable_cache(FirstBlockCacheConfig(threshold=0.1))
    with pytest.raises(ValueError, match="already been enabled with FirstBlockCacheConfig"):
        model.enable_cache(TeaCacheConfig())
    model.disable_cache()
    assert not model.is_cache_enabled
    paths = model.module_paths("container") + model.module_paths("attention")
    assert not any(has_hook(model, p, n) for p in paths for n in ("fbc_leader_block_hook", "fbc_block_hook"))
    model.enable_cache(MagCacheConfig(mag_ratios=[1.0] * 4, num_inference_steps=4))
    model.disable_cache()
    with pytest.raises(ValueError, match="not supported"):
        model.enable_cache(object())


def test_protocol_errors_are_exceptions_not_crashes():
    case = next(c for c in CASES if c["kind"] == "fbc")
    model = flux(case)
    apply_first_block_cache(model, FirstBlockCacheConfig())
    h = np.zeros((1, 4, 8), np.float32)
    with pytest.raises(ValueError, match="No cache context"):
        model.module_begin("transformer_blocks.0", h)
    with pytest.raises(KeyError):
        model.module_begin("no_such_block", h)
    model2 = flux(case)
    apply_teacache(model2, TeaCacheConfig())
    with pytest.raises(ValueError, match="modulated input"):
        model2.module_begin("transformer_blocks.0", h)
    with pytest.raises(ValueError, match="mag_ratios"):
        MagCacheConfig()
    with pytest.raises(ValueError, match="dropout"):
        LayerSkipConfig(indices=[0], dropout=2.0)
    with pytest.raises(ValueError, match="Layer index list is empty"):
        apply_layer_skip(model2, LayerSkipConfig(indices=[]))
