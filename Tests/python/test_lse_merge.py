"""scaled_dot_product_attention(return_lse=True) and merge_attention_partials against numpy float64."""

import numpy as np
import pytest

import diffattn


def reference(q, k, v, keep):
    s = np.einsum("bhnd,bhmd->bhnm", q.astype(np.float64), k.astype(np.float64)) / np.sqrt(q.shape[-1])
    s = np.where(keep, s, -np.inf)
    m = s.max(-1, keepdims=True)
    finite = np.isfinite(m)
    e = np.where(finite, np.exp(s - np.where(finite, m, 0)), 0)
    z = e.sum(-1, keepdims=True)
    out = np.where(z > 0, e @ v.astype(np.float64) / np.where(z > 0, z, 1), 0)
    lse = np.where(z[..., 0] > 0, np.log(np.where(z > 0, z, 1))[..., 0] + np.where(finite, m, 0)[..., 0], -np.inf)
    return out, lse


@pytest.mark.parametrize("additive", [False, True])
def test_lse_and_merge_equal_full_attention(additive):
    rng = np.random.default_rng(7)
    q = rng.standard_normal((2, 3, 37, 16), dtype=np.float32)
    k = rng.standard_normal((2, 3, 90, 16), dtype=np.float32)
    v = rng.standard_normal((2, 3, 90, 16), dtype=np.float32)
    keep = rng.random((2, 1, 1, 90)) > 0.3
    keep[1, ..., :40] = False  # batch 1: the first block below is fully masked
    mask = np.where(keep, 0.0, -np.inf).astype(np.float32) if additive else keep
    ref_out, ref_lse = reference(q, k, v, keep)
    out, lse = diffattn.scaled_dot_product_attention(q, k, v, attn_mask=mask, return_lse=True)
    assert lse.shape == (2, 3, 37) and lse.dtype == np.float32
    assert np.abs(out - ref_out).max() < 1e-5
    assert np.abs(lse - ref_lse).max() < 1e-5
    o1, l1 = diffattn.scaled_dot_product_attention(q, k[:, :, :40], v[:, :, :40], attn_mask=mask[..., :40],
                                                   return_lse=True)
    assert np.all(np.isneginf(l1[1])) and np.all(o1[1] == 0)
    o2, l2 = diffattn.scaled_dot_product_attention(q, k[:, :, 40:], v[:, :, 40:], attn_mask=mask[..., 40:],
                                                   return_lse=True)
    diffattn.merge_attention_partials(o1, l1, o2, l2)
    assert np.abs(o1 - ref_out).max() < 1e-5
    assert np.abs(l1 - ref_lse).max() < 1e-5


def test_merge_rejects_read_only_and_bad_shapes():
    out, lse = np.zeros((1, 1, 4, 8), np.float32), np.full((1, 1, 4), -np.inf, np.float32)
    with pytest.raises(ValueError, match="partial_out"):
        diffattn.merge_attention_partials(out, lse, np.zeros((1, 1, 5, 8), np.float32), lse.copy())
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="out"):
        diffattn.merge_attention_partials(ro, lse, out, lse.copy())
