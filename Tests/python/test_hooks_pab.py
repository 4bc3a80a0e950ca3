"""Pyramid attention broadcast against diffusers' hooks (fixture: Tests/Fixtures/hooks/pab.json,
made by gen_hooks.py): which modules are hooked and, per call, whether the output is computed or
reused. A recording hook registered before PAB sits inside it, so it sees exactly the computed calls."""

import json
import os

import numpy as np
import pytest

import diffattn
from diffattn import models
from diffattn.hooks import HookRegistry, ModelHook, PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "Fixtures")
with open(os.path.join(FIX, "hooks", "pab.json")) as fh:
    CASES = json.load(fh)["cases"]
with open(os.path.join(FIX, "models", "index.json")) as fh:
    MODELS = {c["name"]: c for c in json.load(fh)["cases"]}


class Recorder(ModelHook):
    def __init__(self, log, path):
        self.log, self.path = log, path

    def pre_forward(self, module, *args, **kwargs):
        self.log[self.path] += "C"
        return args, kwargs


def inputs_for(attn, rng):
    hs = rng.standard_normal((1, 2, attn.query_dim)).astype(np.float32)
    enc = None
    if attn.is_cross_attention or attn.added_kv_proj_dim:
        dim = attn.added_kv_proj_dim or attn.cross_attention_dim
        enc = rng.standard_normal((1, 3, dim)).astype(np.float32)
    return hs, enc


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_pab_decisions_match_diffusers(case):
    spec = MODELS[case["model"]]
    model = getattr(models, spec["class"]).from_config(spec["config"])
    paths = model.module_paths("attention")
    rng = np.random.default_rng(0)
    feeds = {p: inputs_for(model.get_submodule(p), rng) for p in paths}
    for p in paths:  # decisions do not depend on the processor: use one this build computes
        try:
            model.get_submodule(p)(*feeds[p])
        except NotImplementedError as e:
            model.get_submodule(p).set_processor(diffattn.AttnProcessor2_0())
            try:
                model.get_submodule(p)(*feeds[p])
            except ValueError:
                pytest.skip(f"{p}: its processor arrives with the DiT processors ({e})")
    log = {p: "" for p in paths}
    for p in paths:
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(Recorder(log, p), "recorder")
    state = {"t": None}
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in case["config"].items()}
    config = PyramidAttentionBroadcastConfig(**cfg, current_timestep_callback=lambda: state["t"])
    apply_pyramid_attention_broadcast(model, config)
    hooked = [p for p in paths
              if HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).get_hook("pyramid_attention_broadcast")]
    assert sorted(hooked) == sorted(case["hooked"])
    for run in range(2 if case["repeat_after_reset"] else 1):
        if run:
            model.reset_stateful_hooks()
        for t in case["schedule"]:
            state["t"] = t
            for _ in range(case["calls_per_step"]):
                for p in paths:
                    before = len(log[p])
                    hs, enc = feeds[p]
                    out = model.get_submodule(p)(hs, enc)
                    assert out is not None
                    if len(log[p]) == before:
                        log[p] += "R"
    assert {p: log[p] for p in hooked} == case["decisions"]


def test_pab_requires_callback_and_reuses_output():
    spec = MODELS["pixart"]
    model = models.PixArtTransformer2DModel.from_config(spec["config"])
    with pytest.raises(ValueError, match="current_timestep_callback"):
        apply_pyramid_attention_broadcast(model, PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2))
    cfg = PyramidAttentionBroadcastConfig(current_timestep_callback=lambda: 500)
    apply_pyramid_attention_broadcast(model, cfg)
    assert cfg.spatial_attention_block_skip_range == 2  # diffusers' default written back
    path = model.module_paths("attention")[0]
    a = model.get_submodule(path)
    x = np.ones((1, 2, a.query_dim), np.float32)
    first = a(x)
    second = a(x * 2)  # reused: the cached output, not a new computation
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="already exists"):
        apply_pyramid_attention_broadcast(model, cfg)
