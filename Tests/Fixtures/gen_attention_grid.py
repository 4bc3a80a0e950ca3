"""The grid of attention-module cases (Tests/Fixtures/attention/): constructions, forwards,
helpers and SDPA calls, recorded through `gen_attention.Gen`."""

import numpy as np

from fixture_io import additive, f16r, keep_mask, randn, rng_for
from gen_attention import PROCS

B, C, L, S, CE = 2, 32, 16, 12, 24


def build_grid(g):
    base = dict(query_dim=C, heads=4, dim_head=8)
    cross = dict(base, cross_attention_dim=CE)
    x3 = randn(B, L, C)
    e3 = randn(B, S, CE)
    x4 = randn(B, C, 4, 4)

    # ---------------- forward: basic layouts ----------------
    g.forward("self_3d", base, {"hidden_states": x3}, "basic")
    g.forward("cross_3d", cross, {"hidden_states": x3, "encoder_hidden_states": e3}, "basic")
    g.forward("self_4d", base, {"hidden_states": x4}, "basic")
    g.forward("cross_4d", cross, {"hidden_states": x4, "encoder_hidden_states": e3}, "basic")
    g.forward("self_heads2_dim16", dict(query_dim=C, heads=2, dim_head=16), {"hidden_states": x3}, "basic")
    g.forward("self_l64_c64", dict(query_dim=64, heads=2, dim_head=32), {"hidden_states": randn(1, 64, 64)}, "basic")
    g.forward("self_b1", base, {"hidden_states": randn(1, L, C)}, "basic")
    g.forward("default_processor_cross", cross, {"hidden_states": x3, "encoder_hidden_states": e3},
              "default_processor", processors=(None,))
    g.forward("default_processor_scale_qk_false", dict(base, scale_qk=False), {"hidden_states": x3},
              "default_processor", processors=(None,))

    # ---------------- forward: masks ----------------
    ce = {"hidden_states": x3, "encoder_hidden_states": e3}
    g.forward("mask_add_b1s", cross, dict(ce, attention_mask=lambda r: additive(r, (B, 1, S))), "mask")
    g.forward("mask_add_bls", cross, dict(ce, attention_mask=lambda r: additive(r, (B, L, S))), "mask")
    g.forward("mask_add_self_b1l", base, {"hidden_states": x3, "attention_mask": lambda r: additive(r, (B, 1, L))}, "mask")
    g.forward("mask_add_soft", cross, dict(ce, attention_mask=randn(B, 1, S, s=2.0)), "mask")

    def neginf_row(r):
        m = additive(r, (B, L, S), fill=-np.inf)
        m[1, 3, :] = -np.inf  # one fully masked query row
        m[0, 0, :] = -np.inf
        return m
    g.forward("mask_neginf_full_row", cross, dict(ce, attention_mask=neginf_row), "mask")

    def neginf_b1s(r):
        m = additive(r, (B, 1, S), fill=-np.inf)
        m[1] = -np.inf  # every query of batch 1 fully masked
        return m
    g.forward("mask_neginf_full_batch", cross, dict(ce, attention_mask=neginf_b1s), "mask")
    g.forward("mask_bool_b1s", cross, dict(ce, attention_mask=lambda r: keep_mask(r, (B, 1, S))), "mask")
    g.forward("mask_bool_bls", cross, dict(ce, attention_mask=lambda r: keep_mask(r, (B, L, S))), "mask")

    def bool_full_row(r):
        m = keep_mask(r, (B, L, S))
        m[0, 5, :] = False
        return m
    g.forward("mask_bool_full_row", cross, dict(ce, attention_mask=bool_full_row), "mask")
    g.forward("mask_bool_2d_bs", cross, dict(ce, attention_mask=lambda r: keep_mask(r, (B, S))), "mask")
    g.forward("mask_add_2d_bs", cross, dict(ce, attention_mask=lambda r: additive(r, (B, S))), "mask")
    g.forward("mask_add_bh1s", cross, dict(ce, attention_mask=lambda r: additive(r, (B * 4, 1, S))), "mask")
    g.forward("mask_add_4d_input", cross, {"hidden_states": x4, "encoder_hidden_states": e3,
                                           "attention_mask": lambda r: additive(r, (B, 1, S))}, "mask")
    g.forward("mask_err_11s_batch2", cross, dict(ce, attention_mask=lambda r: additive(r, (1, 1, S))), "mask_error")
    g.forward("mask_err_wrong_length", cross, dict(ce, attention_mask=lambda r: additive(r, (B, 1, S - 3))), "mask_error")
    g.forward("mask_11s_batch1", cross, {"hidden_states": randn(1, L, C), "encoder_hidden_states": randn(1, S, CE),
                                         "attention_mask": lambda r: additive(r, (1, 1, S))}, "mask")

    # ---------------- forward: norms ----------------
    g.forward("group_norm_3d", dict(base, norm_num_groups=4), {"hidden_states": x3}, "group_norm")
    g.forward("group_norm_4d", dict(base, norm_num_groups=8), {"hidden_states": x4}, "group_norm")
    g.forward("group_norm_cross", dict(cross, norm_num_groups=4, eps=1e-3), ce, "group_norm")
    g.forward("spatial_norm", dict(base, spatial_norm_dim=16),
              {"hidden_states": randn(B, C, 5, 7), "temb": randn(B, 16, 2, 3)}, "spatial_norm")
    g.forward("spatial_norm_same_size", dict(base, spatial_norm_dim=8),
              {"hidden_states": randn(B, C, 4, 4), "temb": randn(B, 8, 4, 4)}, "spatial_norm")
    g.forward("spatial_norm_group_norm_residual", dict(base, spatial_norm_dim=16, norm_num_groups=4,
                                                       residual_connection=True, rescale_output_factor=2.0),
              {"hidden_states": randn(B, C, 6, 4), "temb": randn(B, 16, 3, 3)}, "spatial_norm")
    g.forward("spatial_norm_err_no_temb", dict(base, spatial_norm_dim=16),
              {"hidden_states": randn(B, C, 4, 4)}, "spatial_norm_error")
    g.forward("spatial_norm_err_3d_input", dict(base, spatial_norm_dim=16),
              {"hidden_states": x3, "temb": randn(B, 16, 2, 2)}, "spatial_norm_error")
    g.forward("cross_norm_layer", dict(cross, cross_attention_norm="layer_norm"), ce, "cross_attention_norm")
    g.forward("cross_norm_group", dict(cross, cross_attention_norm="group_norm", cross_attention_norm_num_groups=4),
              ce, "cross_attention_norm")
    g.forward("cross_norm_layer_self", dict(base, cross_attention_norm="layer_norm"), {"hidden_states": x3},
              "cross_attention_norm")
    for kind in ("layer_norm", "fp32_layer_norm", "rms_norm", "l2"):
        g.forward(f"qk_norm_{kind}", dict(base, qk_norm=kind, eps=1e-6), {"hidden_states": x3}, "qk_norm")
    for kind in ("layer_norm", "rms_norm"):
        g.forward(f"qk_norm_{kind}_no_affine", dict(base, qk_norm=kind, elementwise_affine=False),
                  {"hidden_states": x3}, "qk_norm")
    g.forward("qk_norm_rms_norm_cross", dict(cross, qk_norm="rms_norm"), ce, "qk_norm")
    for kind in ("layer_norm_across_heads", "rms_norm_across_heads"):
        g.forward(f"qk_norm_{kind}", dict(base, qk_norm=kind, kv_heads=4), {"hidden_states": x3}, "qk_norm")

    # ---------------- forward: output options ----------------
    g.forward("residual_3d", dict(base, residual_connection=True), {"hidden_states": x3}, "residual_rescale")
    g.forward("residual_4d_rescale", dict(base, residual_connection=True, rescale_output_factor=1.7),
              {"hidden_states": x4}, "residual_rescale")
    g.forward("rescale_2_5", dict(cross, rescale_output_factor=2.5), ce, "residual_rescale")
    g.forward("upcast_both", dict(cross, upcast_attention=True, upcast_softmax=True),
              dict(ce, attention_mask=lambda r: additive(r, (B, 1, S))), "upcast")
    g.forward("upcast_attention", dict(base, upcast_attention=True), {"hidden_states": x3}, "upcast")
    g.forward("upcast_softmax", dict(base, upcast_softmax=True), {"hidden_states": x3}, "upcast")
    g.forward("scale_qk_false", dict(base, scale_qk=False), {"hidden_states": x3}, "scale_qk")
    g.forward("scale_qk_false_cross", dict(cross, scale_qk=False), ce, "scale_qk")
    g.forward("bias_true_out_bias_false", dict(cross, bias=True, out_bias=False), ce, "bias")
    g.forward("bias_true", dict(base, bias=True), {"hidden_states": x3}, "bias")
    g.forward("dropout_eval", dict(base, dropout=0.1), {"hidden_states": x3}, "bias")
    g.forward("out_dim_48", dict(base, out_dim=48), {"hidden_states": x3}, "out_dim")
    g.forward("out_dim_40_dim_head_16", dict(query_dim=C, heads=4, dim_head=16, out_dim=40),
              {"hidden_states": x3}, "out_dim")
    g.forward("out_dim_48_err_4d", dict(base, out_dim=48), {"hidden_states": x4}, "out_dim_error")
    g.forward("out_dim_48_err_residual", dict(base, out_dim=48, residual_connection=True),
              {"hidden_states": x3}, "out_dim_error")
    g.forward("kv_heads_err", dict(base, kv_heads=2), {"hidden_states": x3}, "kv_heads_error")
    g.forward("kv_heads_equal", dict(base, kv_heads=4), {"hidden_states": x3}, "basic")
    g.forward("err_encoder_width", cross, {"hidden_states": x3, "encoder_hidden_states": randn(B, S, 20)},
              "input_error")
    g.forward("err_pre_only", dict(base, pre_only=True), {"hidden_states": x3}, "input_error")
    g.forward("added_kv_default_processor", dict(base, added_kv_proj_dim=20), {"hidden_states": x3},
              "added_kv", processors=(None,) + PROCS)
    g.forward("only_cross_err", dict(base, added_kv_proj_dim=20, only_cross_attention=True),
              {"hidden_states": x3, "encoder_hidden_states": randn(B, S, 20)}, "input_error")

    # ---------------- construct: errors ----------------
    g.construct("init_err_only_cross_no_added_kv", dict(base, only_cross_attention=True), "construct_error")
    g.construct("init_err_group_norm_divisibility", dict(base, norm_num_groups=5), "construct_error")
    g.construct("init_err_spatial_norm_divisibility", dict(query_dim=40, heads=4, dim_head=10, spatial_norm_dim=8),
                "construct_error")
    g.construct("init_err_unknown_qk_norm", dict(base, qk_norm="batch_norm"), "construct_error")
    g.construct("init_err_layer_norm_across_heads_no_kv_heads", dict(base, qk_norm="layer_norm_across_heads"),
                "construct_error")
    g.construct("init_err_rms_norm_across_heads_no_kv_heads", dict(base, qk_norm="rms_norm_across_heads"),
                "construct_error")
    g.construct("init_err_unknown_cross_attention_norm", dict(cross, cross_attention_norm="rms_norm"),
                "construct_error")
    g.construct("init_err_cross_group_norm_divisibility",
                dict(cross, cross_attention_norm="group_norm", cross_attention_norm_num_groups=5), "construct_error")
    g.construct("init_err_cross_group_norm_default_groups",
                dict(cross, cross_attention_norm="group_norm"), "construct_error")
    g.construct("init_err_l2_with_added_kv", dict(base, qk_norm="l2", added_kv_proj_dim=20), "construct_error")
    g.construct("init_err_layer_norm_across_heads_with_added_kv",
                dict(base, qk_norm="layer_norm_across_heads", kv_heads=4, added_kv_proj_dim=20), "construct_error")
    g.construct("init_err_only_cross_before_group_norm",
                dict(base, only_cross_attention=True, norm_num_groups=5), "construct_error")

    # ---------------- construct: attributes, default processor, state-dict names ----------------
    g.construct("init_defaults", dict(query_dim=C), "construct")
    g.construct("init_cross", cross, "construct")
    g.construct("init_out_dim_48", dict(base, out_dim=48), "construct")
    g.construct("init_out_dim_40_dim_head_16", dict(query_dim=C, heads=4, dim_head=16, out_dim=40), "construct")
    g.construct("init_out_dim_kv_heads", dict(base, out_dim=48, kv_heads=2), "construct")
    g.construct("init_scale_qk_false", dict(base, scale_qk=False), "construct")
    g.construct("init_kv_heads_2", dict(base, kv_heads=2, bias=True), "construct")
    g.construct("init_all_norms", dict(cross, norm_num_groups=4, spatial_norm_dim=8, qk_norm="layer_norm",
                                       cross_attention_norm="layer_norm"), "construct")
    g.construct("init_cross_group_norm", dict(cross, cross_attention_norm="group_norm",
                                              cross_attention_norm_num_groups=8), "construct")
    g.construct("init_added_kv", dict(base, added_kv_proj_dim=20), "construct")
    g.construct("init_added_kv_context_pre_only_false", dict(base, added_kv_proj_dim=20, context_pre_only=False,
                                                             out_context_dim=24, qk_norm="rms_norm",
                                                             elementwise_affine=False), "construct")
    g.construct("init_added_kv_context_pre_only_true", dict(base, added_kv_proj_dim=20, context_pre_only=True,
                                                            added_proj_bias=False, qk_norm="layer_norm"), "construct")
    g.construct("init_added_kv_rms_across_heads", dict(base, added_kv_proj_dim=20, qk_norm="rms_norm_across_heads",
                                                       kv_heads=4), "construct")
    g.construct("init_added_kv_group_cross_norm", dict(cross, added_kv_proj_dim=20, cross_attention_norm="group_norm",
                                                       cross_attention_norm_num_groups=4), "construct")
    g.construct("init_only_cross", dict(base, added_kv_proj_dim=20, only_cross_attention=True), "construct")
    g.construct("init_pre_only", dict(base, pre_only=True), "construct")
    g.construct("init_context_pre_only_false_no_added", dict(base, context_pre_only=False), "construct")
    g.construct("init_fp32_layer_norm", dict(base, qk_norm="fp32_layer_norm"), "construct")
    g.construct("init_l2", dict(base, qk_norm="l2"), "construct")
    g.construct("init_layer_norm_across_heads", dict(base, qk_norm="layer_norm_across_heads", kv_heads=2,
                                                     elementwise_affine=False), "construct")
    g.construct("init_deprecated_attn_block", dict(base, _from_deprecated_attn_block=True, residual_connection=True,
                                                   is_causal=True), "construct")
    g.construct("init_no_out_bias_bias", dict(base, bias=True, out_bias=False), "construct")

    # ---------------- helpers ----------------
    hb = dict(query_dim=C, heads=4, dim_head=8)
    r = rng_for("helpers")
    for shape in ((2, 7), (2, 1, 7), (2, 5, 7), (1, 1, 7), (2, 1, 4), (8, 1, 7)):
        m = additive(r, shape)
        tag = "x".join(map(str, shape))
        for od in (3, 4):
            g.helper(f"prepare_mask_{tag}_out{od}", hb, "prepare_attention_mask", [m, 7, 2], {"out_dim": od},
                     "prepare_attention_mask")
    g.helper("prepare_mask_bool_2x1x7_out3", hb, "prepare_attention_mask", [keep_mask(r, (2, 1, 7)), 7, 2],
             {"out_dim": 3}, "prepare_attention_mask")
    g.helper("prepare_mask_bool_2x1x4_out3_pad", hb, "prepare_attention_mask", [keep_mask(r, (2, 1, 4)), 7, 2],
             {}, "prepare_attention_mask")
    g.helper("prepare_mask_bool_2x7_out4", hb, "prepare_attention_mask", [keep_mask(r, (2, 7)), 7, 2],
             {"out_dim": 4}, "prepare_attention_mask")
    g.helper("prepare_mask_none", hb, "prepare_attention_mask", [None, 7, 2], {}, "prepare_attention_mask")
    g.helper("prepare_mask_2x1x7_default_out", hb, "prepare_attention_mask", [additive(r, (2, 1, 7)), 7, 2], {},
             "prepare_attention_mask")
    g.helper("prepare_mask_out_dim_heads6", dict(hb, out_dim=48), "prepare_attention_mask",
             [additive(r, (2, 1, 7)), 7, 2], {}, "prepare_attention_mask")

    t3 = f16r(r.standard_normal((2, 6, 32)))
    t4 = f16r(r.standard_normal((2, 3, 5, 32)))
    for od in (3, 4):
        g.helper(f"head_to_batch_3d_out{od}", hb, "head_to_batch_dim", [t3], {"out_dim": od}, "head_batch")
        g.helper(f"head_to_batch_4d_out{od}", hb, "head_to_batch_dim", [t4], {"out_dim": od}, "head_batch")
    g.helper("head_to_batch_3d_default", hb, "head_to_batch_dim", [t3], {}, "head_batch")
    g.helper("batch_to_head", hb, "batch_to_head_dim", [f16r(r.standard_normal((8, 6, 8)))], {},
             "head_batch")
    g.helper("batch_to_head_heads2", dict(hb, heads=2), "batch_to_head_dim",
             [f16r(r.standard_normal((4, 5, 16)))], {}, "head_batch")

    q = f16r(r.standard_normal((8, 6, 8)))
    k = f16r(r.standard_normal((8, 7, 8)))
    gs = "get_attention_scores"
    g.helper("scores_no_mask", hb, gs, [q, k], {}, gs)
    g.helper("scores_mask_b1s", hb, gs, [q, k], {"attention_mask": additive(r, (8, 1, 7))}, gs)
    g.helper("scores_mask_bls", hb, gs, [q, k], {"attention_mask": additive(r, (8, 6, 7))}, gs)
    m = additive(r, (8, 6, 7), fill=-np.inf)
    m[2, 4, :] = -np.inf
    g.helper("scores_mask_neginf_row", hb, gs, [q, k], {"attention_mask": m}, gs)
    g.helper("scores_mask_positional", hb, gs, [q, k, additive(r, (8, 1, 7))], {}, gs)
    g.helper("scores_upcast", dict(hb, upcast_attention=True, upcast_softmax=True), gs, [q, k],
             {"attention_mask": additive(r, (8, 1, 7))}, gs)
    g.helper("scores_scale_qk_false", dict(hb, scale_qk=False), gs, [q, k], {}, gs)
    g.helper("scores_err_bool_mask", hb, gs, [q, k], {"attention_mask": keep_mask(r, (8, 1, 7))}, gs)
    g.helper("scores_err_shape", hb, gs, [q, f16r(r.standard_normal((8, 7, 4)))], {}, gs)

    e = f16r(r.standard_normal((2, 9, CE)))
    ne = "norm_encoder_hidden_states"
    g.helper("norm_encoder_layer", dict(cross, cross_attention_norm="layer_norm"), ne, [e], {}, ne)
    g.helper("norm_encoder_group", dict(cross, cross_attention_norm="group_norm", cross_attention_norm_num_groups=4),
             ne, [e], {}, ne)
    g.helper("norm_encoder_err_no_norm_cross", cross, ne, [e], {}, ne)

    # ---------------- sdpa ----------------
    r = rng_for("sdpa")

    def rn(*shape):
        return f16r(r.standard_normal(shape))

    g.sdpa("sdpa_d8_self", rn(2, 2, 16, 8), rn(2, 2, 16, 8), rn(2, 2, 16, 8))
    q, k, v = rn(2, 3, 16, 40), rn(2, 3, 24, 40), rn(2, 3, 24, 40)
    g.sdpa("sdpa_d40_nq_ne_nk", q, k, v, group="sdpa_shared_qkv")
    g.sdpa("sdpa_d64", rn(1, 2, 32, 64), rn(1, 2, 20, 64), rn(1, 2, 20, 64))
    g.sdpa("sdpa_d64_long", rn(1, 2, 48, 64), rn(1, 2, 64, 64), rn(1, 2, 64, 64))
    g.sdpa("sdpa_mask_add_2d_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=additive(r, (16, 24)))
    g.sdpa("sdpa_mask_add_11_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=additive(r, (1, 1, 16, 24)))
    g.sdpa("sdpa_mask_add_b11_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=additive(r, (2, 1, 1, 24)))
    g.sdpa("sdpa_mask_add_bh_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=additive(r, (2, 3, 16, 24)))
    g.sdpa("sdpa_mask_add_b1_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=additive(r, (2, 1, 16, 24)))
    g.sdpa("sdpa_mask_add_soft", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=rn(2, 3, 16, 24))
    g.sdpa("sdpa_mask_bool_b1_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=keep_mask(r, (2, 1, 16, 24)))
    g.sdpa("sdpa_mask_bool_111_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=keep_mask(r, (1, 1, 1, 24)))
    g.sdpa("sdpa_mask_bool_bh_nq_nk", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=keep_mask(r, (2, 3, 16, 24)))
    bm = keep_mask(r, (2, 3, 16, 24))
    bm[1, 2, 7, :] = False
    bm[0, 0, 0, :] = False
    g.sdpa("sdpa_mask_bool_full_row", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=bm)
    fm = additive(r, (2, 1, 16, 24), fill=-np.inf)
    fm[0, 0, 3, :] = -np.inf
    g.sdpa("sdpa_mask_neginf_full_row", q, k, v, "sdpa_mask", group="sdpa_shared_qkv", attn_mask=fm)
    g.sdpa("sdpa_causal_nq_lt_nk", rn(2, 2, 12, 8), rn(2, 2, 20, 8), rn(2, 2, 20, 8), "sdpa_causal", is_causal=True)
    g.sdpa("sdpa_causal_nq_gt_nk", rn(2, 2, 20, 8), rn(2, 2, 12, 8), rn(2, 2, 12, 8), "sdpa_causal", is_causal=True)
    g.sdpa("sdpa_causal_square_d64", rn(1, 2, 32, 64), rn(1, 2, 32, 64), rn(1, 2, 32, 64), "sdpa_causal",
           is_causal=True)
    g.sdpa("sdpa_scale_explicit", q, k, v, "sdpa_scale", group="sdpa_shared_qkv", scale=0.3)
    g.sdpa("sdpa_scale_one_with_mask", q, k, v, "sdpa_scale", group="sdpa_shared_qkv", scale=1.0, attn_mask=additive(r, (2, 1, 1, 24)))
    g.sdpa("sdpa_gqa", rn(2, 4, 16, 8), rn(2, 2, 20, 8), rn(2, 2, 20, 8), "sdpa_gqa", enable_gqa=True)
    g.sdpa("sdpa_gqa_mask_causal_scale", rn(1, 4, 16, 40), rn(1, 2, 16, 40), rn(1, 2, 16, 40), "sdpa_gqa",
           enable_gqa=True, is_causal=True, scale=0.2)
    g.sdpa("sdpa_gqa_mask", rn(2, 4, 16, 8), rn(2, 2, 20, 8), rn(2, 2, 20, 8), "sdpa_gqa",
           enable_gqa=True, attn_mask=additive(r, (2, 4, 16, 20)))
    g.sdpa("sdpa_gqa_equal_heads", q, k, v, "sdpa_gqa", group="sdpa_shared_qkv", enable_gqa=True)
    # strided inputs: stored (B, N, H, D) and passed as a transposed view (B, H, N, D);
    # key/value taken with a step along the token axis.
    g.sdpa("sdpa_strided_transposed", rn(2, 16, 3, 8), rn(2, 24, 3, 8), rn(2, 24, 3, 8), "sdpa_strided",
           views={"query": {"transpose": [0, 2, 1, 3]}, "key": {"transpose": [0, 2, 1, 3]},
                  "value": {"transpose": [0, 2, 1, 3]}})
    g.sdpa("sdpa_strided_step", rn(2, 3, 16, 8), rn(2, 3, 40, 8), rn(2, 3, 40, 16), "sdpa_strided",
           views={"key": {"slice": [None, None, [0, None, 2], None]},
                  "value": {"slice": [None, None, [0, None, 2], [0, None, 2]]}},
           attn_mask=additive(r, (2, 1, 16, 20)))
    g.sdpa("sdpa_err_d_mismatch", rn(2, 2, 16, 8), rn(2, 2, 16, 16), rn(2, 2, 16, 16), "sdpa_error")
    g.sdpa("sdpa_err_heads_no_gqa", rn(2, 4, 16, 8), rn(2, 2, 16, 8), rn(2, 2, 16, 8), "sdpa_error")
    g.sdpa("sdpa_err_causal_with_mask", q, k, v, "sdpa_error", group="sdpa_shared_qkv", is_causal=True, attn_mask=additive(r, (2, 1, 1, 24)))
    g.sdpa("sdpa_err_mask_shape", q, k, v, "sdpa_error", group="sdpa_shared_qkv", attn_mask=additive(r, (2, 1, 16, 23)))
    g.sdpa("sdpa_err_kv_len_mismatch", rn(1, 2, 8, 8), rn(1, 2, 8, 8), rn(1, 2, 6, 8), "sdpa_error",
           deviation="value has 6 tokens but key has 8; torch's CPU kernel reads past the end of value")
