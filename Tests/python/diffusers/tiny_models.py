"""Tiny random-weight diffusers models and their inputs (no downloads), one entry per family of
the coverage table in docs/diffusers.md. Each builder returns (model, inputs) where `inputs` is a
function of dtype giving the forward's keyword arguments; the output compared is the model's first
output tensor."""

import torch

B = 2   # batch: CFG's (uncond, cond) pair


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=_g(seed))


def _padded_mask(batch, tokens, keep):
    """(B, tokens) keep-mask: the first sample's prompt is `keep` tokens long, the rest padding."""
    m = torch.ones(batch, tokens, dtype=torch.long)
    m[0, keep:] = 0
    return m


def _randomized(model, seed=5, std=0.3):
    """Every non-norm parameter redrawn: with its default initialisation the tiny AuraFlow's output
    hardly depends on attention (zeroing every attention output moves it by 4e-4 of its max), which
    would make the comparison prove nothing."""
    g = _g(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" not in n:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def sd_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    m = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                             out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                             attention_head_dim=8, norm_num_groups=32)

    def inputs(dtype):
        # the UNet turns a (B, S) keep-mask into an additive bias broadcast over heads and queries
        return dict(sample=_randn(B, 4, 8, 8, seed=1).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_hidden_states=_randn(B, 7, 32, seed=2).to(dtype),
                    encoder_attention_mask=_padded_mask(B, 7, 4).to(dtype))
    return m, inputs


def sdxl_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    m = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                             out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                             up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                             attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2), norm_num_groups=32,
                             use_linear_projection=True, addition_embed_type="text_time",
                             addition_time_embed_dim=8, projection_class_embeddings_input_dim=80)

    def inputs(dtype):
        return dict(sample=_randn(B, 4, 8, 8, seed=1).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_hidden_states=_randn(B, 7, 32, seed=2).to(dtype),
                    added_cond_kwargs={"text_embeds": _randn(B, 32, seed=3).to(dtype),
                                       "time_ids": _randn(B, 6, seed=4).to(dtype)})
    return m, inputs


def dit():
    from diffusers import DiTTransformer2DModel
    torch.manual_seed(0)
    m = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                              num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=1000)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype), timestep=torch.tensor([10, 10]),
                    class_labels=torch.tensor([1, 7]))
    return m, inputs


def pixart_sigma():
    from diffusers import PixArtTransformer2DModel
    torch.manual_seed(0)
    m = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8,
                                 num_attention_heads=3, caption_channels=32, in_channels=4, cross_attention_dim=24,
                                 out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
                                 num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False,
                                 norm_eps=1e-6, use_additional_conditions=False)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_hidden_states=_randn(B, 9, 32, seed=2).to(dtype),
                    encoder_attention_mask=_padded_mask(B, 9, 5),
                    added_cond_kwargs={"resolution": None, "aspect_ratio": None})
    return m, inputs


def sd3():
    from diffusers import SD3Transformer2DModel
    torch.manual_seed(0)
    m = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                              num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
                              pooled_projection_dim=16, out_channels=4, pos_embed_max_size=16)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 7, 32, seed=2).to(dtype),
                    pooled_projections=_randn(B, 16, seed=3).to(dtype), timestep=torch.tensor([10, 10]))
    return m, inputs


def flux():
    from diffusers import FluxTransformer2DModel
    torch.manual_seed(0)
    m = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
                               num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                               axes_dims_rope=[4, 4, 8])

    def inputs(dtype):
        img_ids = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(4.0), torch.arange(4.0), indexing="ij"),
                              -1).reshape(-1, 3)
        return dict(hidden_states=_randn(1, 16, 4, seed=1).to(dtype),
                    encoder_hidden_states=_randn(1, 8, 32, seed=2).to(dtype),
                    pooled_projections=_randn(1, 32, seed=3).to(dtype), timestep=torch.tensor([0.5]),
                    img_ids=img_ids, txt_ids=torch.zeros(8, 3))
    return m, inputs


def sana():
    from diffusers import SanaTransformer2DModel
    torch.manual_seed(0)
    m = SanaTransformer2DModel(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8,
                               num_layers=1, num_cross_attention_heads=2, cross_attention_head_dim=8,
                               cross_attention_dim=16, caption_channels=8, sample_size=8, patch_size=1,
                               norm_elementwise_affine=False, norm_eps=1e-6)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 6, 8, seed=2).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_attention_mask=_padded_mask(B, 6, 3))
    return m, inputs


def cogvideox():
    from diffusers import CogVideoXTransformer3DModel
    torch.manual_seed(0)
    m = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                    time_embed_dim=4, text_embed_dim=16, num_layers=1, sample_width=8,
                                    sample_height=8, sample_frames=9, patch_size=2, temporal_compression_ratio=4,
                                    max_text_seq_length=8)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 3, 4, 8, 8, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 8, 16, seed=2).to(dtype), timestep=torch.tensor([10, 10]))
    return m, inputs


def hunyuan_video():
    from diffusers import HunyuanVideoTransformer3DModel
    torch.manual_seed(0)
    m = HunyuanVideoTransformer3DModel(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10,
                                       num_layers=1, num_single_layers=1, num_refiner_layers=1, patch_size=1,
                                       patch_size_t=1, guidance_embeds=True, text_embed_dim=16,
                                       pooled_projection_dim=8, rope_axes_dim=(2, 4, 4))

    def inputs(dtype):
        return dict(hidden_states=_randn(1, 4, 1, 4, 4, seed=1).to(dtype), timestep=torch.tensor([10]),
                    encoder_hidden_states=_randn(1, 6, 16, seed=2).to(dtype),
                    encoder_attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]]),
                    pooled_projections=_randn(1, 8, seed=3).to(dtype), guidance=torch.tensor([3500.0]))
    return m, inputs


def wan():
    from diffusers import WanTransformer3DModel
    torch.manual_seed(0)
    m = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                              out_channels=4, text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2,
                              cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 2, 8, 8, seed=1).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_hidden_states=_randn(B, 9, 16, seed=2).to(dtype))
    return m, inputs


def qwenimage():
    from diffusers import QwenImageTransformer2DModel
    torch.manual_seed(0)
    m = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                                    num_attention_heads=3, joint_attention_dim=16, guidance_embeds=False,
                                    axes_dims_rope=(8, 4, 4))

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 16, 16, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 7, 16, seed=2).to(dtype),
                    encoder_hidden_states_mask=_padded_mask(B, 7, 4), timestep=torch.tensor([0.5, 0.5]),
                    img_shapes=[[(1, 4, 4)]] * B)
    return m, inputs


def ltx_video():
    from diffusers import LTXVideoTransformer3DModel
    torch.manual_seed(0)
    m = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                   num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
                                   num_layers=1, caption_channels=16, qk_norm="rms_norm_across_heads")

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 2 * 4 * 4, 8, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 6, 16, seed=2).to(dtype), timestep=torch.tensor([10, 10]),
                    encoder_attention_mask=_padded_mask(B, 6, 3), num_frames=2, height=4, width=4)
    return m, inputs


def auraflow():
    from diffusers import AuraFlowTransformer2DModel
    torch.manual_seed(0)
    m = AuraFlowTransformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1,
                                   num_single_dit_layers=1, attention_head_dim=8, num_attention_heads=2,
                                   caption_projection_dim=16, joint_attention_dim=32, out_channels=4,
                                   pos_embed_max_size=64)
    _randomized(m)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype),
                    encoder_hidden_states=_randn(B, 7, 32, seed=2).to(dtype), timestep=torch.tensor([10, 10]))
    return m, inputs


def lumina2():
    from diffusers import Lumina2Transformer2DModel
    torch.manual_seed(0)
    m = Lumina2Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2,
                                  num_refiner_layers=1, num_attention_heads=3, num_kv_heads=1, multiple_of=2,
                                  ffn_dim_multiplier=None, norm_eps=1e-5, scaling_factor=1.0, axes_dim_rope=(4, 2, 2),
                                  axes_lens=(32, 32, 32), cap_feat_dim=8)

    def inputs(dtype):
        return dict(hidden_states=_randn(B, 4, 8, 8, seed=1).to(dtype), timestep=torch.tensor([0.5, 0.5]),
                    encoder_hidden_states=_randn(B, 6, 8, seed=2).to(dtype),
                    encoder_attention_mask=_padded_mask(B, 6, 3).bool())
    return m, inputs


MODELS = {"StableDiffusion UNet": sd_unet, "SDXL-style UNet": sdxl_unet, "DiT": dit, "PixArt-Σ": pixart_sigma,
          "SD3": sd3, "Flux": flux, "Sana": sana, "CogVideoX": cogvideox, "HunyuanVideo": hunyuan_video,
          "Wan": wan, "QwenImage": qwenimage, "LTX-Video": ltx_video, "AuraFlow": auraflow, "Lumina2": lumina2}
