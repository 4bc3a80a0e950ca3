"""Layerwise casting (diffusers' enable_layerwise_casting) from Python: bf16/fp16 weight storage
stays close to float32, arguments are checked, and the capability query answers."""

import numpy as np
import pytest

import diffattn


def _module_and_inputs():
    rng = np.random.default_rng(0)
    attn = diffattn.Attention(query_dim=64, heads=4, dim_head=16, cross_attention_dim=32, bias=True)
    x = rng.standard_normal((2, 40, 64)).astype(np.float32)
    e = rng.standard_normal((2, 9, 32)).astype(np.float32)
    return attn, x, e


def test_capability_query_is_a_bool():
    assert isinstance(diffattn.has_bf16_instructions(), bool)
    assert "norm" in diffattn.DEFAULT_SKIP_MODULES_PATTERN


@pytest.mark.parametrize("dtype,tolerance", [("bfloat16", 2e-2), ("float16", 3e-3)])
def test_cast_storage_stays_close_to_float32(dtype, tolerance):
    attn, x, e = _module_and_inputs()
    full = attn(x, encoder_hidden_states=e)
    attn.enable_layerwise_casting(storage_dtype=dtype, compute_dtype="float32")
    cast = attn(x, encoder_hidden_states=e)
    err = np.abs(cast - full).max() / np.abs(full).max()
    assert 0 < err < tolerance
    attn.enable_layerwise_casting(storage_dtype="float32")
    np.testing.assert_allclose(attn(x, encoder_hidden_states=e), full, rtol=0, atol=np.abs(full).max() * tolerance)


def test_skip_patterns_and_bad_arguments():
    attn, x, e = _module_and_inputs()
    full = attn(x, encoder_hidden_states=e)
    attn.enable_layerwise_casting(storage_dtype="bfloat16", skip_modules_pattern=["to_"])   # skips every layer
    np.testing.assert_array_equal(attn(x, encoder_hidden_states=e), full)
    with pytest.raises(ValueError):
        attn.enable_layerwise_casting(storage_dtype="int8")
    with pytest.raises(ValueError):
        attn.enable_layerwise_casting(storage_dtype="bfloat16", compute_dtype="bfloat16")
    with pytest.raises(Exception, match="regular expression"):
        attn.enable_layerwise_casting(storage_dtype="bfloat16", skip_modules_pattern=["("])
