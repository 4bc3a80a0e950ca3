"""diffattn.diffusers' contract beyond parity: pipelines, restore, nothing process-wide, the backend
name, fallbacks, and diffusers' own hooks on top (docs/diffusers.md)."""

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import diffattn.diffusers as dd  # noqa: E402
from tiny_models import dit, flux, sd_unet  # noqa: E402


def _out(model, args):
    with torch.no_grad():
        out = model(**args, return_dict=False)[0]
    return out


def _dit_pipeline():
    from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline
    transformer, _ = dit()
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(32,), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
                        norm_num_groups=32, sample_size=16)
    # eval(): a model in training mode drops class labels at random (LabelEmbedding)
    return DiTPipeline(transformer=transformer.eval(), vae=vae.eval(), scheduler=DDIMScheduler())


def _run_pipeline(pipe):
    return pipe(class_labels=[1, 7], num_inference_steps=2, guidance_scale=4.0,
                generator=torch.Generator().manual_seed(0), output_type="np").images


@pytest.mark.parametrize("mode", ["kernel", "module"])
def test_pipeline_one_call_and_restore(mode):
    pipe = _dit_pipeline()
    stock = _run_pipeline(pipe)
    assert dd.use_diffattn(pipe, mode=mode) is pipe
    out = _run_pipeline(pipe)
    s = dd.stats(pipe)
    assert s["calls"] > 0 and s["fallbacks"] == 0, s
    assert abs(out - stock).max() <= 1e-4 * abs(stock).max()
    dd.restore(pipe)
    assert (_run_pipeline(pipe) == stock).all()
    assert dd.stats(pipe)["calls"] == 0


def test_unknown_mode_is_a_value_error():
    m, _ = dit()
    with pytest.raises(ValueError, match="mode must be one of"):
        dd.use_diffattn(m, mode="fast")
    with pytest.raises(TypeError, match="pipeline or a torch.nn.Module"):
        dd.use_diffattn(object())


def test_nothing_process_wide_changes():
    from diffusers.models import attention_processor as ap
    sdpa = torch.nn.functional.scaled_dot_product_attention
    m, args = dit()
    processors = {n: (type(p), p) for n, p in m.attn_processors.items()} if hasattr(m, "attn_processors") else None
    dd.use_diffattn(m)
    _out(m, args(torch.float32))
    assert ap.F is torch.nn.functional and torch.nn.functional.scaled_dot_product_attention is sdpa
    other, other_args = dit()               # an unconverted model in the same process is diffusers' own
    before = dd.stats(m)["calls"]
    _out(other, other_args(torch.float32))
    assert dd.stats(m)["calls"] == before
    dd.restore(m)
    attn = [mod for _, mod in m.named_modules() if hasattr(mod, "set_processor")]
    assert all(type(a.processor).__name__ == "AttnProcessor2_0" for a in attn)
    assert all(not a._forward_hooks and not a._forward_pre_hooks for a in attn)
    del processors


def test_use_is_idempotent_and_switches_modes():
    m, args = dit()
    dd.use_diffattn(m)
    dd.use_diffattn(m)
    attn = next(mod for _, mod in m.named_modules() if hasattr(mod, "set_processor"))
    assert len(attn._forward_pre_hooks) == 1
    dd.use_diffattn(m, mode="module")
    assert type(attn.processor).__name__ == "DiffattnAttnProcessor2_0Module"
    dd.restore(m)
    assert type(attn.processor).__name__ == "AttnProcessor2_0"


def test_backend_name_through_diffusers_own_switch():
    from diffusers.models.attention_dispatch import AttentionBackendName, attention_backend
    member = dd.register_backend()
    assert AttentionBackendName("diffattn") is member and member in list(AttentionBackendName)
    m, args = flux()
    stock = _out(m, args(torch.float32))
    dd.use_diffattn(m)
    ours = _out(m, args(torch.float32))
    assert (ours - stock).abs().max() <= 1e-4 * stock.abs().max()
    dd.restore(m)
    assert all(p._attention_backend is None for p in m.attn_processors.values())
    with attention_backend("diffattn"):      # diffusers' own context manager reaches the backend
        via_ctx = _out(m, args(torch.float32))
    assert (via_ctx - stock).abs().max() <= 1e-4 * stock.abs().max()
    assert torch.equal(_out(m, args(torch.float32)), stock)


def test_grad_falls_back_to_diffusers_and_says_why():
    m, args = dit()
    dd.use_diffattn(m)
    out = m(**args(torch.float32), return_dict=False)[0]   # grad mode on, parameters require grad
    out.sum().backward()                                      # diffusers' computation: backward works
    s = dd.stats(m)
    assert s["calls"] == 0 and s["fallbacks"] > 0 and "grad required" in s["fallback_reasons"], s
    dd.restore(m)


def test_module_mode_borrows_and_follows_parameter_writes():
    m, args = sd_unet()
    dd.use_diffattn(m, mode="module")
    a = _out(m, args(torch.float32))
    attn = m.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    with torch.no_grad():
        attn.to_q.weight.mul_(0.5)           # in place: the library reads the same memory
        attn.to_k.weight.data = attn.to_k.weight.data * 0.5   # replaced: re-borrowed on next call
    b = _out(m, args(torch.float32))
    dd.restore(m)
    c = _out(m, args(torch.float32))
    assert not torch.equal(a, b)
    assert (b - c).abs().max() <= 1e-4 * c.abs().max()


@pytest.mark.parametrize("order", ["hook_first", "diffattn_first"])
def test_group_offloading_before_or_after(order):
    pytest.importorskip("accelerate")   # diffusers 0.42.1's group offloading calls accelerate's send_to_device
    m, args = sd_unet()
    stock = _out(m, args(torch.float32))
    cpu = torch.device("cpu")

    def offload():
        m.enable_group_offload(onload_device=cpu, offload_device=cpu, offload_type="block_level", num_blocks_per_group=1)
    if order == "hook_first":
        offload()
        dd.use_diffattn(m, mode="module")
    else:
        dd.use_diffattn(m, mode="module")
        offload()
    out = _out(m, args(torch.float32))
    assert dd.stats(m)["calls"] > 0
    assert (out - stock).abs().max() <= 1e-4 * stock.abs().max()
    dd.restore(m)


def _apply_cache(m, kind):
    from diffusers import (FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig,
                           TaylorSeerCacheConfig)
    from diffusers.hooks import LayerSkipConfig, apply_layer_skip
    if kind == "pab":
        m.enable_cache(PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2,
                                                       current_timestep_callback=lambda: 500))
    elif kind == "fbc":
        m.enable_cache(FirstBlockCacheConfig(threshold=0.2))
    elif kind == "faster":
        m.enable_cache(FasterCacheConfig(spatial_attention_block_skip_range=2, current_timestep_callback=lambda: 500,
                                         is_guidance_distilled=True))
    elif kind == "taylorseer":
        m.enable_cache(TaylorSeerCacheConfig(cache_interval=2, disable_cache_before_step=1))
    elif kind == "layer_skip":
        apply_layer_skip(m, LayerSkipConfig(indices=[0], fqn="transformer_blocks", skip_attention=True))


@pytest.mark.parametrize("kind", ["pab", "fbc", "faster", "taylorseer", "layer_skip"])
@pytest.mark.parametrize("order", ["hook_first", "diffattn_first"])
def test_diffusers_caches_keep_working(kind, order):
    """The same hooked model, stock vs diffattn: equal step by step (the hooks decide identically)."""
    def steps(use):
        m, args = flux()
        if order == "hook_first":
            _apply_cache(m, kind)
        if use:
            dd.use_diffattn(m)
        if order == "diffattn_first":
            _apply_cache(m, kind)
        outs = []
        for _ in range(3):
            if kind in ("fbc", "taylorseer", "faster", "pab"):
                with m.cache_context("cond"):
                    outs.append(_out(m, args(torch.float32)))
            else:
                outs.append(_out(m, args(torch.float32)))
        return outs, (dd.stats(m) if use else None)
    try:
        stock, _ = steps(False)
    except (ValueError, TypeError, AttributeError, NotImplementedError) as e:
        pytest.skip(f"{kind} does not apply to this tiny Flux: {e}")
    ours, s = steps(True)
    assert s["calls"] > 0, s
    for a, b in zip(stock, ours):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max()


def test_backend_contract_with_masks_and_lse():
    """The registered backend on (B, S, H, D) tensors: a (B, S_kv) keep-mask takes the native rule,
    and return_lse gives torch's log-sum-exp (B, S, H)."""
    from diffattn import _diffusers_kernel as k
    g = torch.Generator().manual_seed(3)
    q, kk, v = (torch.randn(2, 9, 3, 8, generator=g) for _ in range(3))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 5:] = False
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), kk.transpose(1, 2), v.transpose(1, 2), attn_mask=mask[:, None, None, :]).transpose(1, 2)
    out = k.backend(q, kk, v, attn_mask=mask)
    assert out.shape == (2, 9, 3, 8) and (out - ref).abs().max() < 1e-5
    out, lse = k.backend(q, kk, v, attn_mask=mask, return_lse=True)
    scores = q.transpose(1, 2) @ kk.transpose(1, 2).transpose(-1, -2) / 8 ** 0.5
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    assert lse.shape == (2, 9, 3) and (lse - torch.logsumexp(scores, -1).transpose(1, 2)).abs().max() < 1e-5
    assert (out - ref).abs().max() < 1e-5
