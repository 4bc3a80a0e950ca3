"""SeaCache against diffusers 0.42.1's generic path (fixture: Tests/Fixtures/hooks/sea_cache.json and
sea_cache/*.npz, made by gen_sea_cache.py): per call, which blocks run, the SEA indicators, and the
stack's outputs the host ends up with; and diffusers' configuration errors."""

import json
import math
import os

import numpy as np
import pytest

from diffattn import models
from diffattn.hooks import SeaCacheConfig, apply_sea_cache, sea_filter

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "Fixtures", "hooks")
with open(os.path.join(FIX, "sea_cache.json")) as fh:
    SEA = json.load(fh)
RTOL = SEA["rtol"]
RUNS = [c for c in SEA["cases"] if c["kind"] == "run"]
ERRORS = [c for c in SEA["cases"] if c["kind"] == "error"]


def raw_vision(callback, latent):
    """What the fixture's raw_vision_callback returned for this latent (written here in numpy)."""
    if callback == "flux_tokens":
        b, n, c = latent.shape
        s = int(round(math.sqrt(n)))
        return [latent[i].reshape(s, s, c).transpose(2, 0, 1)[:, None] for i in range(b)]
    return [latent[i].transpose(1, 0, 2, 3) for i in range(latent.shape[0])]


@pytest.mark.parametrize("case", RUNS, ids=[c["name"] for c in RUNS])
def test_sea_cache_matches_diffusers(case):
    with np.load(os.path.join(FIX, case["arrays"])) as z:
        a = {k: z[k] for k in z.files}
    model = getattr(models, case["model"]).from_config(case["model_config"])
    cfg = SeaCacheConfig(**case["config"])
    model.enable_cache(cfg)
    paths = case["paths"]
    assert model.transformer_block_paths() == paths
    for call in case["calls"]:
        key, ctx, step = call["key"], call["context"], call["step"]
        sigma = case["sigmas"][step]
        raw = raw_vision(case["callback"], a[f"{key}/latent"])
        for i in range(call["indicators"]):
            np.testing.assert_allclose(sea_filter(raw[i], sigma, cfg.power_exp), a[f"{key}/indicator/{i}"],
                                       rtol=RTOL, atol=1e-4 * float(np.abs(a[f"{key}/indicator/{i}"]).max()))
        h, e = a[f"{key}/hidden"], a[f"{key}/encoder"]
        letters = ""
        with model.cache_context(ctx, step_index=step, sigma=sigma, num_inference_steps=case["steps"]):
            model.set_raw_vision(raw)
            for b, p in enumerate(paths):
                run, h, e = model.module_begin(p, h, e)
                letters += "C" if run else "S"
                if run:
                    h, e = model.module_end(p, h + a[f"{key}/delta/{b}/hidden"], e + a[f"{key}/delta/{b}/encoder"])
        assert letters == call["decisions"], f"{key} ({ctx}, step {step})"
        np.testing.assert_allclose(h, a[f"{key}/out/hidden"], rtol=RTOL, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(e, a[f"{key}/out/encoder"], rtol=RTOL, atol=1e-5, err_msg=key)
    model.disable_cache()
    assert not model.is_cache_enabled


@pytest.mark.parametrize("case", ERRORS, ids=[c["name"] for c in ERRORS])
def test_sea_cache_errors_match_diffusers(case):
    err = case["error"]
    exc = {"ValueError": ValueError, "TypeError": TypeError}[err["type"]]
    if case.get("model"):
        model = models.UNet2DConditionModel.from_config(
            next(c for c in json.load(open(os.path.join(FIX, "..", "models", "index.json")))["cases"]
                 if c["name"] == case["model"])["config"])
        with pytest.raises(exc) as info:
            apply_sea_cache(model, SeaCacheConfig())
    else:
        cfg = {k: (float("nan") if v == "nan" else v) for k, v in case["config"].items()}
        with pytest.raises(exc) as info:
            SeaCacheConfig(**cfg)
    assert str(info.value) == err["message"]


def test_sea_cache_fails_open_without_fields_or_latents():
    """No step/sigma fields, or no latents: every block runs (diffusers' fail-open)."""
    case = RUNS[0]
    model = getattr(models, case["model"]).from_config(case["model_config"])
    model.enable_cache(SeaCacheConfig(threshold=100.0, retention_steps=0, cache_end_steps=0, max_consecutive_cached=0))
    h, e = np.ones((1, 16, 8), np.float32), np.ones((1, 3, 8), np.float32)
    for step in range(4):
        with model.cache_context("cond"):  # no fields
            model.set_raw_vision([np.ones((4, 1, 4, 4), np.float32) * step])
            assert all(model.module_begin(p, h, e)[0] for p in model.transformer_block_paths())
        with model.cache_context("cond", step_index=step, sigma=0.5, num_inference_steps=4):  # no latents
            run, _, _ = model.module_begin(model.transformer_block_paths()[0], h, e)
            assert run
