"""The text K/V cache: bitwise equal to the uncached run over two generations with alternating
prompts and two cache contexts (cond / uncond), on UNet and PixArt; refused on Flux and SD3."""

import json
import os

import numpy as np
import pytest

from diffattn import models
from diffattn.hooks import TextKVCacheConfig, apply_text_kv_cache, text_kv_cache_counts

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "Fixtures", "models", "index.json")) as fh:
    CONFIGS = {c["name"]: c for c in json.load(fh)["cases"]}


def build(name):
    c = CONFIGS[name]
    return getattr(models, c["class"]).from_config(c["config"])


@pytest.mark.parametrize("name", ["unet2d", "unet2d_two_heads", "pixart"])
def test_text_kv_cache_is_bitwise_lossless(name):
    plain, cached = build(name), build(name)
    cached.load_state_dict(plain.state_dict())
    cached.enable_cache(TextKVCacheConfig())
    rng = np.random.default_rng(11)
    paths = plain.module_paths("attention")
    width = {p: (plain.get_submodule(p).query_dim, plain.get_submodule(p).cross_attention_dim) for p in paths}
    prompts = {w: {k: rng.standard_normal((1, 5, w)).astype(np.float32) for k in ("A+", "A-", "B+", "B-")}
               for w in {c for _, c in width.values()}}
    for gen, prompt in enumerate("ABA"):
        if gen == 2:
            before_reset = text_kv_cache_counts(cached)
            cached.reset_stateful_hooks()  # what a pipeline does between generations
        for step in range(3):
            for ctx, sign in (("cond", "+"), ("uncond", "-")):
                with cached.cache_context(ctx):
                    for p in paths:
                        q, c = width[p]
                        a_plain, a_cached = plain.get_submodule(p), cached.get_submodule(p)
                        x = rng.standard_normal((1, 16, q)).astype(np.float32)
                        enc = prompts[c][prompt + sign] if a_plain.is_cross_attention else None
                        want, got = a_plain(x, enc), a_cached(x, enc)
                        assert np.array_equal(want.view(np.uint32), got.view(np.uint32)), f"{p}, generation {gen}, step {step}"
    cross = sum(1 for p in paths if plain.get_submodule(p).is_cross_attention)
    # per cross-attention layer (to_k, to_v) and context: one computation per prompt, reuse after
    per_generation = 2 * cross * 2
    assert before_reset == (per_generation * 2 * 2, per_generation * 2)  # (hits, misses): A then B
    assert text_kv_cache_counts(cached) == (per_generation * 2, per_generation)  # since the reset


@pytest.mark.parametrize("name", ["flux", "sd3"])
def test_text_kv_cache_refuses_per_step_text_streams(name):
    with pytest.raises(ValueError, match="modulated by the timestep"):
        apply_text_kv_cache(build(name), TextKVCacheConfig())


def test_a_prompt_changed_in_place_is_a_miss():
    # The memo keeps the text states it saw; the module reads the caller's array in place, so what
    # it keeps must be a copy taken before the call returns (DLTensorBridge.swift: Loans.end), or an
    # array rewritten in place would still look like the prompt it held.
    plain, cached = build("unet2d"), build("unet2d")
    cached.load_state_dict(plain.state_dict())
    cached.enable_cache(TextKVCacheConfig())
    path = next(p for p in plain.module_paths("attention") if plain.get_submodule(p).is_cross_attention)
    a_plain, a_cached = plain.get_submodule(path), cached.get_submodule(path)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, a_plain.query_dim)).astype(np.float32)
    prompt = rng.standard_normal((1, 5, a_plain.cross_attention_dim)).astype(np.float32)
    with cached.cache_context("cond"):
        a_cached(x, prompt)
        prompt[...] = rng.standard_normal(prompt.shape).astype(np.float32)  # a new prompt, same buffer
        want, got = a_plain(x, prompt), a_cached(x, prompt)
    assert np.array_equal(want.view(np.uint32), got.view(np.uint32))
    assert text_kv_cache_counts(cached) == (0, 4)  # to_k and to_v, both calls: misses
