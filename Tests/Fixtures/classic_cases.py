"""The classic-processor grid, part 1: the inputs every part shares, and family A (standard
processors, fused projections). Random inputs are seeded by label, so their values do not depend
on the order in which parts run; cases are recorded in the order the parts are called."""

import numpy as np

import generate as G

B, C, L, S, CE, A = 2, 32, 16, 6, 24, 20


def rnd(label, *shape, s=1.0):
    return G.f16r(s * G.rng_for("classic-in/" + label).standard_normal(shape))


def additive(label, shape, fill=-10000.0):
    return G.additive(G.rng_for("classic-mask/" + label), shape, fill)



# the inputs and module configurations the parts share
base = dict(query_dim=C, heads=4, dim_head=8)
cross = dict(base, cross_attention_dim=CE)
x3 = rnd("x3", B, L, C)
x4 = rnd("x4", B, C, 4, 4)
e3 = rnd("e3", B, S, CE)
x3b1, e3b1 = x3[:1].copy(), e3[:1].copy()
m_b1s = additive("b1s", (B, 1, S))
m_bls = additive("bls", (B, L, S))
m_self_b1l = additive("self_b1l", (B, 1, L))
m_self_bll = additive("self_bll", (B, L, L))
temb = rnd("temb", B, 8, 2, 2)

binit = dict(base, added_kv_proj_dim=A, norm_num_groups=4, bias=True, upcast_softmax=True)
eA = rnd("eA", B, S, A)
mA = additive("mA", (B, 1, S))
cd_procs = ("CustomDiffusionAttnProcessor", "CustomDiffusionAttnProcessor2_0",
            "CustomDiffusionXFormersAttnProcessor")
ip_procs = ("IPAdapterAttnProcessor", "IPAdapterAttnProcessor2_0", "IPAdapterXFormersAttnProcessor")
CI = 20
ip2 = rnd("ip2", B, 2, CI)
ip2k = dict(hidden_size=C, cross_attention_dim=CI, num_tokens=[2, 6], scale=[0.5, 1.5])


def make_fwd(g):
    """`fwd(name, category, init, proc, ...)`: one forward case of `g` (set processor, load, call)."""

    def fwd(name, category, init, proc, proc_kwargs=None, group=None, pre=None, calls=()):
        s = g.script(name, category, init, group=group)
        if pre:
            pre(s)
        s.set_processor(proc, **(proc_kwargs or {}))
        s.load()
        for args, kw in calls:
            s.forward(*args, **kw)
        s.done()

    return fwd


def family_a(g):
    fwd = make_fwd(g)
    # ================= family A =================
    sn_init = dict(base, norm_num_groups=4, spatial_norm_dim=8)
    famA_calls = {
        "self": [((x3,), {}), ((x3,), {"attention_mask": m_self_b1l}), ((x3,), {"attention_mask": m_self_bll})],
        "cross": [((x3,), {"encoder_hidden_states": e3}),
                  ((x3,), {"encoder_hidden_states": e3, "attention_mask": m_b1s}),
                  ((x3,), {"encoder_hidden_states": e3, "attention_mask": m_bls})],
        "4d_group_norm": [((x4,), {}), ((x4,), {"attention_mask": m_self_b1l}),
                          ((x4,), {"encoder_hidden_states": rnd("e32", B, S, C), "attention_mask": m_b1s})],
    }
    famA_inits = {"self": base, "cross": cross, "4d_group_norm": dict(base, norm_num_groups=4)}
    for tag in ("self", "cross", "4d_group_norm"):
        for slice_size in (1, 3, 4, 8):
            fwd(f"sliced{slice_size}_{tag}", "sliced", famA_inits[tag], "SlicedAttnProcessor",
                {"slice_size": slice_size}, group=f"famA_{tag}", calls=famA_calls[tag])
        for proc in ("XFormersAttnProcessor", "AttnProcessorNPU", "XLAFlashAttnProcessor2_0", "AttnProcessor",
                     "AttnProcessor2_0"):
            fwd(f"{proc}_{tag}", "memory_efficient", famA_inits[tag], proc, group=f"famA_{tag}",
                calls=famA_calls[tag])
    fwd("XLAFlashAttnProcessor2_0_partition_spec", "memory_efficient", base, "XLAFlashAttnProcessor2_0",
        {"partition_spec": ("data", None)}, group="famA_self", calls=famA_calls["self"][:1])
    rr = dict(base, residual_connection=True, rescale_output_factor=2.0)
    for proc, kw in (("SlicedAttnProcessor", {"slice_size": 3}), ("XFormersAttnProcessor", {}),
                     ("AttnProcessorNPU", {}), ("XLAFlashAttnProcessor2_0", {})):
        fwd(f"{proc}_residual_rescale", "residual_rescale", rr, proc, kw, group="famA_rr",
            calls=[((x3,), {}), ((x4,), {})])
        fwd(f"{proc}_scale_qk_false", "scale_qk", dict(base, scale_qk=False), proc, kw, group="famA_sqk",
            calls=[((x3,), {})])
        fwd(f"{proc}_qk_norm", "qk_norm", dict(base, qk_norm="rms_norm"), proc, kw, group="famA_qkn",
            calls=[((x3,), {})])
        fwd(f"{proc}_spatial_norm", "spatial_norm", sn_init, proc, kw, group="famA_sn",
            calls=[((x4,), {"temb": temb}), ((x4,), {})])
        fwd(f"{proc}_norm_cross", "cross_attention_norm", dict(cross, cross_attention_norm="layer_norm"), proc, kw,
            group="famA_nc", calls=[((x3,), {"encoder_hidden_states": e3})])
    for proc in ("XFormersAttnProcessor", "SlicedAttnProcessor", "AttnProcessorNPU"):
        kw = {"slice_size": 2} if proc == "SlicedAttnProcessor" else {}
        fwd(f"{proc}_neginf_row", "mask", cross, proc, kw, group="famA_cross", calls=[
            ((x3,), {"encoder_hidden_states": e3,
                     "attention_mask": np.where(np.arange(S)[None, None, :] < 3 + np.arange(B)[:, None, None],
                                                0.0, -np.inf).astype(np.float32)}),
            ((x3,), {"encoder_hidden_states": e3, "attention_mask": np.full((B, 1, S), -np.inf, np.float32)})])
        fwd(f"{proc}_heads2_dim16_b1", "basic", dict(query_dim=C, heads=2, dim_head=16, cross_attention_dim=CE),
            proc, kw, group="famA_h2", calls=[((x3b1,), {"encoder_hidden_states": e3b1})])
        fwd(f"{proc}_out_dim_40", "out_dim", dict(query_dim=C, heads=4, dim_head=16, out_dim=40), proc, kw,
            group="famA_od", calls=[((x3,), {})])
        fwd(f"{proc}_mask_errors", "mask_error", cross, proc, kw, group="famA_cross", calls=[
            ((x3,), {"encoder_hidden_states": e3, "attention_mask": additive("short", (B, 1, S - 1))}),
            ((x3,), {"encoder_hidden_states": e3, "attention_mask": additive("b1", (1, 1, S))}),
            ((x3,), {"encoder_hidden_states": rnd("e_bad", B, S, 16)})])
    fwd("SlicedAttnProcessor_0", "sliced_error", base, "SlicedAttnProcessor", {"slice_size": 0},
        group="famA_self", calls=[((x3,), {})])
    fwd("XFormersAttnProcessor_attention_op_none", "memory_efficient", base, "XFormersAttnProcessor",
        {"attention_op": None}, group="famA_self", calls=[((x3,), {})])
    # the deprecated `scale` keyword is stripped by forward
    fwd("XFormersAttnProcessor_scale_kwarg", "memory_efficient", base, "XFormersAttnProcessor", group="famA_self",
        calls=[((x3,), {"scale": 0.5})])

    # ---- fused ----
    def fused(name, init, calls, fuse_kw=None, independent=False, group="famA_fused"):
        s = g.script(name, "fused", init, group=group)
        s.load()
        for a, kw in calls:
            s.forward(*a, **kw)
        s.method("fuse_projections", values=True, **(fuse_kw or {}))
        if independent:
            s.load(seed="independent")
        s.set_processor("FusedAttnProcessor2_0")
        for a, kw in calls:
            s.forward(*a, **kw)
        s.set_processor("AttnProcessor2_0")
        for a, kw in calls:
            s.forward(*a, **kw)
        s.done()

    selfb = dict(base, bias=True)
    crossb = dict(cross, bias=True)
    fused("fused_self", selfb, [((x3,), {}), ((x3,), {"attention_mask": m_self_b1l}), ((x4,), {})])
    fused("fused_self_no_bias_qk_norm", dict(base, qk_norm="layer_norm", norm_num_groups=4),
          [((x3,), {}), ((x4,), {})])
    fused("fused_cross", crossb, [((x3,), {"encoder_hidden_states": e3}),
                                  ((x3,), {"encoder_hidden_states": e3, "attention_mask": m_bls})])
    fused("fused_cross_norm_cross", dict(cross, cross_attention_norm="layer_norm"),
          [((x3,), {"encoder_hidden_states": e3})])
    fused("fused_fuse_false", selfb, [((x3,), {})], fuse_kw={"fuse": False})
    fused("fused_self_independent_weights", selfb, [((x3,), {})], independent=True)
    fused("fused_cross_independent_weights", crossb, [((x3,), {"encoder_hidden_states": e3})], independent=True)
    # errors: never fused; path chosen by presence of encoder states
    s = g.script("fused_error_not_fused", "fused_error", selfb, group="famA_fused")
    s.set_processor("FusedAttnProcessor2_0").load().forward(x3).forward(x3, encoder_hidden_states=rnd("e32", B, S, C))
    s.done()
    s = g.script("fused_error_self_fused_called_with_context", "fused_error", selfb, group="famA_fused")
    s.load().method("fuse_projections").set_processor("FusedAttnProcessor2_0")
    s.forward(x3, encoder_hidden_states=rnd("e32", B, S, C)).forward(x3)
    s.done()
    s = g.script("fused_error_cross_fused_called_without_context", "fused_error", crossb, group="famA_fused")
    s.load().method("fuse_projections").set_processor("FusedAttnProcessor2_0")
    s.forward(x3).forward(x3, encoder_hidden_states=e3)
    s.done()
    s = g.script("fused_error_only_cross", "fused_error", dict(base, added_kv_proj_dim=C, only_cross_attention=True,
                                                                norm_num_groups=4), group="famB")
    s.load().method("fuse_projections")
    s.done()
    s = g.script("fused_added_kv_context_pre_only", "fused", dict(base, added_kv_proj_dim=A, context_pre_only=False),
                 group="famA_fused")
    s.load().method("fuse_projections", values=True).method("fuse_projections", values=True)
    s.done()
