"""bf16 and int8 scaled_dot_product_attention from Python against a float64 numpy reference.

Tolerances come from the formats: bf16 inputs widen exactly, so against a reference on the same
rounded inputs the float32 tolerance holds; a bf16 output adds one rounding of at most 2**-8 of
the element (8 significant bits: unit roundoff 2**-8). int8: see Tests/DiffAttnTests/KernelPrecisionTests.swift for
the worst-case bound; here the paper's metrics (cosine similarity, relative L1) on the outputs."""

import numpy as np
import pytest

import diffattn
from diffattn import BFloat16Array


def reference(q, k, v, mask=None, causal=False):
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(-1, keepdims=True)) @ v


def data(shape_q, shape_kv, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape_q).astype(np.float32), rng.standard_normal(shape_kv).astype(np.float32),
            rng.standard_normal(shape_kv).astype(np.float32))


def rel_max(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize("algorithm", ["math", "flash"])
def test_bf16_in_bf16_out(algorithm):
    q, k, v = data((2, 3, 130, 64), (2, 3, 77, 64))
    bq, bk, bv = (BFloat16Array.from_float32(x) for x in (q, k, v))
    out = diffattn.scaled_dot_product_attention(bq, bk, bv, algorithm=algorithm)
    assert isinstance(out, BFloat16Array) and out.shape == (2, 3, 130, 64)
    want = reference(bq.to_float32(), bk.to_float32(), bv.to_float32())
    assert rel_max(out.to_float32(), want) <= 2e-4 + 2 ** -8


def test_bf16_in_float32_out_with_mask_and_strides():
    q, k, v = data((2, 40, 4, 32), (2, 50, 4, 32), seed=1)   # (B, N, H, D) viewed as (B, H, N, D)
    bq, bk, bv = (BFloat16Array(BFloat16Array.from_float32(x).bits.transpose(0, 2, 1, 3)) for x in (q, k, v))
    mask = np.random.default_rng(2).standard_normal((2, 1, 40, 50)).astype(np.float32)
    out = diffattn.scaled_dot_product_attention(bq, bk, bv, attn_mask=mask, out_dtype="float32")
    assert out.dtype == np.float32
    want = reference(bq.to_float32(), bk.to_float32(), bv.to_float32(), mask)
    assert rel_max(out, want) <= 2e-4


def test_mixed_dtypes_are_refused():
    q, k, v = data((1, 1, 8, 8), (1, 1, 8, 8))
    with pytest.raises(TypeError, match="share one dtype"):
        diffattn.scaled_dot_product_attention(BFloat16Array.from_float32(q), k, v)
    with pytest.raises(ValueError, match="out_dtype"):
        diffattn.scaled_dot_product_attention(q, k, v, out_dtype="float16")
    with pytest.raises(ValueError, match="precision"):
        diffattn.scaled_dot_product_attention(q, k, v, precision="int4")


def int8_metrics(got, want):
    g, w = got.ravel().astype(np.float64), want.ravel()
    cosine = g @ w / np.sqrt((g @ g) * (w @ w))
    return cosine, np.abs(g - w).sum() / np.abs(w).sum()


@pytest.mark.parametrize("causal", [False, True])
def test_int8_accuracy(causal):
    # K with a large per-channel offset shared by all tokens: what the smoothing step is for.
    q, k, v = data((2, 4, 256, 64), (2, 4, 256, 64), seed=3)
    k = k + 4 * np.random.default_rng(4).standard_normal((1, 4, 1, 64)).astype(np.float32)
    out = diffattn.scaled_dot_product_attention(q, k, v, precision="int8", is_causal=causal)
    cosine, l1 = int8_metrics(out, reference(q, k, v, causal=causal))
    # SageAttention (Table: int8 QK, smoothed K) reports cosine ≥ 0.999 and relative L1 ≈ 1e-2 or lower.
    assert cosine >= 0.999 and l1 <= 0.03, (cosine, l1)


def test_int8_bf16_inputs():
    q, k, v = data((1, 2, 100, 40), (1, 2, 77, 40), seed=5)
    bq, bk, bv = (BFloat16Array.from_float32(x) for x in (q, k, v))
    out = diffattn.scaled_dot_product_attention(bq, bk, bv, precision="int8")
    cosine, l1 = int8_metrics(out.to_float32(), reference(bq.to_float32(), bk.to_float32(), bv.to_float32()))
    assert cosine >= 0.999 and l1 <= 0.03, (cosine, l1)


def test_ml_dtypes_bfloat16_if_available():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, k, v = data((1, 2, 20, 16), (1, 2, 30, 16), seed=6)
    mq, mk, mv = (x.astype(ml_dtypes.bfloat16) for x in (q, k, v))
    out = diffattn.scaled_dot_product_attention(mq, mk, mv)
    assert out.dtype == mq.dtype
    want = reference(mq.astype(np.float32), mk.astype(np.float32), mv.astype(np.float32))
    assert rel_max(out.astype(np.float32), want) <= 2e-4 + 2 ** -8


def test_torch_bfloat16_if_available():
    torch = pytest.importorskip("torch")
    q, k, v = data((1, 2, 20, 16), (1, 2, 30, 16), seed=7)
    tq, tk, tv = (torch.from_numpy(x).to(torch.bfloat16) for x in (q, k, v))
    out = diffattn.scaled_dot_product_attention(tq, tk, tv)
    assert out.dtype == torch.bfloat16
    want = reference(*(t.float().numpy() for t in (tq, tk, tv)))
    assert rel_max(out.float().numpy(), want) <= 2e-4 + 2 ** -8


def test_attn_processor_int8_on_a_module():
    """AttnProcessorInt8 is AttnProcessor2_0 with int8 SDPA: same output up to the int8 error."""
    rng = np.random.default_rng(8)
    attn = diffattn.Attention(query_dim=64, heads=2, dim_head=32, cross_attention_dim=48)
    attn.load_state_dict({k: 0.2 * rng.standard_normal(v.shape).astype(np.float32)
                          for k, v in attn.state_dict().items()})
    x = rng.standard_normal((2, 130, 64)).astype(np.float32)
    e = rng.standard_normal((2, 77, 48)).astype(np.float32)
    want = attn(x, encoder_hidden_states=e)
    attn.set_processor(diffattn.AttnProcessorInt8())
    got = attn(x, encoder_hidden_states=e)
    cosine, l1 = int8_metrics(got, want.astype(np.float64))
    assert cosine >= 0.999 and l1 <= 0.03, (cosine, l1)
    assert not np.array_equal(got, want)  # the int8 path really ran
