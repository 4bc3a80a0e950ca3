"""torch tensors in and out of the binding without copies (docs/diffusers.md "Tensors").

Expectations come from torch itself (F.scaled_dot_product_attention) or from the numpy path of the
same entry point; skipped when torch is not installed."""

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import diffattn  # noqa: E402

BINDING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bindings",
                       "python")


def _qkv(b=2, h=3, n=17, s=11, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    # (B, S, H, D) projections viewed as (B, H, S, D): strided, as a processor hands them over
    q = torch.randn(b, n, h, d, generator=g).transpose(1, 2)
    k = torch.randn(b, s, h, d, generator=g).transpose(1, 2)
    v = torch.randn(b, s, h, d, generator=g).transpose(1, 2)
    return q, k, v


def test_sdpa_takes_strided_torch_and_returns_torch():
    q, k, v = _qkv()
    assert not q.is_contiguous()
    out = diffattn.scaled_dot_product_attention(q, k, v)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (2, 3, 17, 8)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert (out - ref).abs().max().item() < 1e-5


def test_sdpa_masks_as_diffusers_builds_them():
    q, k, v = _qkv(b=2, s=11)
    additive = torch.zeros(2, 3, 1, 11)
    additive[0, :, :, 7:] = -10000.0          # the UNet's padded text, (B, H, 1, S)
    keep = torch.ones(2, 1, 1, 11, dtype=torch.bool)
    keep[1, ..., 5:] = False                   # QwenImage's (B, 1, 1, S) keep-mask
    for mask in (additive, keep):
        out = diffattn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert (out - ref).abs().max().item() < 1e-5


def test_sdpa_reads_inputs_in_place_and_writes_a_torch_allocation():
    q, k, v = _qkv()
    before = [t.clone() for t in (q, k, v)]
    out = diffattn.scaled_dot_product_attention(q, k, v)
    assert all(torch.equal(a, b) for a, b in zip(before, (q, k, v)))
    out.add_(1)                                # owned by torch: writable, freed by torch
    assert out.untyped_storage().data_ptr() == out.data_ptr()


def test_sdpa_offset_views_read_from_their_offset():
    q, k, v = _qkv(b=3)
    out = diffattn.scaled_dot_product_attention(q[1:], k[1:], v[1:])
    ref = torch.nn.functional.scaled_dot_product_attention(q[1:], k[1:], v[1:])
    assert (out - ref).abs().max().item() < 1e-5


def test_sdpa_bfloat16_in_bfloat16_out():
    q, k, v = (t.to(torch.bfloat16) for t in _qkv())
    out = diffattn.scaled_dot_product_attention(q, k, v)
    assert out.dtype == torch.bfloat16
    ref = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
    assert (out.float() - ref).abs().max().item() < 2e-2


def test_numpy_stays_numpy():
    q, k, v = (t.contiguous().numpy() for t in _qkv())
    out = diffattn.scaled_dot_product_attention(q, k, v)
    assert isinstance(out, np.ndarray)


def test_attention_module_torch_in_torch_out_matches_numpy():
    attn = diffattn.Attention(query_dim=24, heads=3, dim_head=8, cross_attention_dim=16)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 10, 24, generator=g)
    e = torch.randn(2, 5, 16, generator=g)
    out = attn(x, encoder_hidden_states=e)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10, 24)
    ref = attn(x.numpy(), encoder_hidden_states=e.numpy())
    assert np.array_equal(out.numpy(), ref)
    state = {k: torch.from_numpy(v) for k, v in attn.state_dict().items()}
    attn.load_state_dict(state)                # torch weights load too
    assert torch.equal(attn(x, encoder_hidden_states=e), out)
    scores = attn.get_attention_scores(torch.randn(6, 10, 8), torch.randn(6, 5, 8))
    assert isinstance(scores, torch.Tensor) and scores.shape == (6, 10, 5)


@pytest.mark.parametrize("device", ["meta"])
def test_non_cpu_tensor_is_a_type_error_naming_the_fix(device):
    q = torch.empty(1, 1, 4, 8, device=device)
    with pytest.raises(TypeError, match=r"query is a meta tensor.*\.cpu\(\)"):
        diffattn.scaled_dot_product_attention(q, q, q)


def test_requires_grad_under_grad_mode_is_a_value_error():
    q, k, v = _qkv()
    q.requires_grad_(True)
    with pytest.raises(ValueError, match=r"query requires grad.*torch.no_grad\(\)"):
        diffattn.scaled_dot_product_attention(q, k, v)
    with torch.no_grad():
        diffattn.scaled_dot_product_attention(q, k, v)
    with torch.inference_mode():
        diffattn.scaled_dot_product_attention(q.detach(), k, v)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int32, torch.float16])
def test_unsupported_dtype_is_a_type_error(dtype):
    q = torch.zeros(1, 1, 4, 8, dtype=dtype)
    with pytest.raises(TypeError, match=r"query must be a CPU tensor of dtype float32 or bfloat16"):
        diffattn.scaled_dot_product_attention(q, q, q)


def test_mixing_torch_and_numpy_is_a_type_error():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="all be torch tensors or all numpy"):
        diffattn.scaled_dot_product_attention(q, k.numpy(), v)


def test_import_without_torch():
    """`import diffattn` (and diffattn.diffusers) must work where torch cannot be imported."""
    code = ("import sys; sys.modules['torch'] = None; import diffattn, diffattn.diffusers; "
            "print(diffattn.scaled_dot_product_attention.__name__); assert 'torch' not in [m for m in sys.modules "
            "if sys.modules[m] is not None]")
    env = dict(os.environ, PYTHONPATH=BINDING)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_borrowed_torch_weight_is_read_in_place():
    attn = diffattn.Attention(query_dim=16, heads=2, dim_head=8)
    x = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(2))
    w = torch.from_numpy(attn.state_dict()["to_q.weight"].copy())
    before = attn(x)
    attn.borrow_weight("to_q.weight", w)
    assert torch.equal(attn(x), before)
    w.mul_(0.5)                                # the library reads the same memory
    borrowed = attn(x)
    attn.load_state_dict({"to_q.weight": w.clone()}, strict=False)
    assert torch.equal(attn(x), borrowed) and not torch.equal(borrowed, before)
    attn.borrow_weight("to_q.weight", w.to(torch.bfloat16))   # bf16 read by the GEMM itself
    ref = attn.state_dict()["to_q.weight"]
    assert np.array_equal(ref, w.to(torch.bfloat16).float().numpy())
    with pytest.raises(ValueError, match="contiguous"):
        attn.borrow_weight("to_q.weight", w.t())
