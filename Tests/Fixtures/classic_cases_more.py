"""The classic-processor grid, part 2: families B (added KV), C (Custom Diffusion), D (IP-Adapter),
the deprecated LoRA stubs, SpatialNorm and the switches."""

import numpy as np

import generate as G
from classic_cases import (A, B, C, CE, CI, L, S, additive, base, binit, cd_procs, cross, e3, e3b1, eA, ip2, ip2k,
                           ip_procs, m_b1s, m_bls, m_self_b1l, m_self_bll, make_fwd, mA, rnd, temb, x3, x3b1, x4)


def other_families(g):
    fwd = make_fwd(g)
    # ================= family B: added KV =================
    xB3 = rnd("xB3", B, C, L)  # channels-first 3-D
    b_calls = [((xB3,), {"encoder_hidden_states": eA}), ((x4,), {"encoder_hidden_states": eA}),
               ((xB3,), {"encoder_hidden_states": eA, "attention_mask": mA}),
               ((x4,), {"encoder_hidden_states": eA, "attention_mask": mA}),
               ((xB3,), {"encoder_hidden_states": eA, "attention_mask": additive("mA_S+L", (B, 1, S + L))}),
               ((xB3,), {"encoder_hidden_states": eA, "attention_mask": additive("mA_bad", (B, 1, S + 1))})]
    bself = dict(base, added_kv_proj_dim=C, norm_num_groups=4)
    bself_calls = [((xB3,), {}), ((x4,), {}), ((xB3,), {"attention_mask": additive("mAs", (B, 1, L))})]
    bonly = dict(base, added_kv_proj_dim=A, norm_num_groups=4, only_cross_attention=True)
    bnc = dict(binit, cross_attention_norm="group_norm", cross_attention_norm_num_groups=4)
    binner = dict(query_dim=C, heads=2, dim_head=8, added_kv_proj_dim=A, norm_num_groups=4)
    bsn = dict(binit, spatial_norm_dim=8)
    bnogn = dict(base, added_kv_proj_dim=A)
    brr = dict(binit, residual_connection=True, rescale_output_factor=4.0, scale_qk=False)
    for proc, kw in (("AttnAddedKVProcessor", {}), ("AttnAddedKVProcessor2_0", {}),
                     ("XFormersAttnAddedKVProcessor", {}), ("SlicedAttnAddedKVProcessor", {"slice_size": 3}),
                     ("SlicedAttnAddedKVProcessor", {"slice_size": 1}), ("SlicedAttnAddedKVProcessor", {"slice_size": 8})):
        tag = proc + (f"{kw['slice_size']}" if kw else "")
        fwd(f"{tag}_cross", "added_kv", binit, proc, kw, group="famB", calls=b_calls)
        fwd(f"{tag}_self", "added_kv", bself, proc, kw, group="famB", calls=bself_calls)
        if kw.get("slice_size", 3) != 3:
            continue
        fwd(f"{tag}_only_cross", "added_kv", bonly, proc, kw, group="famB", calls=b_calls[:3])
        fwd(f"{tag}_norm_cross_group", "added_kv", bnc, proc, kw, group="famB", calls=b_calls[:3])
        fwd(f"{tag}_inner_ne_c", "added_kv", binner, proc, kw, group="famB", calls=b_calls[:3])
        fwd(f"{tag}_spatial_norm", "added_kv_spatial_norm", bsn, proc, kw, group="famB",
            calls=[((x4,), {"encoder_hidden_states": eA, "temb": temb}), ((x4,), {"encoder_hidden_states": eA})])
        fwd(f"{tag}_no_group_norm", "added_kv_error", bnogn, proc, kw, group="famB", calls=b_calls[:1])
        fwd(f"{tag}_residual_rescale_scale_qk", "added_kv", brr, proc, kw, group="famB", calls=b_calls[:1])
    s = g.script("added_kv_default_processor_ignores_added", "added_kv", binit, group="famB")
    s.load().forward(x4, encoder_hidden_states=rnd("e32", B, S, C)).done()

    # ================= family C: Custom Diffusion =================
    c_calls = [((x3,), {"encoder_hidden_states": e3}), ((x3b1,), {"encoder_hidden_states": e3b1}),
               ((x3,), {"encoder_hidden_states": e3, "attention_mask": m_b1s}),
               ((x3b1,), {"encoder_hidden_states": e3b1, "attention_mask": m_b1s[:1]}),
               ((x4,), {"encoder_hidden_states": e3})]
    c_self_calls = [((x3,), {}), ((x3,), {"attention_mask": m_self_b1l}),
                    ((x3b1,), {"attention_mask": m_self_b1l[:1]}), ((x4,), {})]
    cinit = dict(cross, cross_attention_norm=None)
    for proc in cd_procs:
        for tkv in (True, False):
            for tqo in (True, False):
                fwd(f"{proc}_kv{int(tkv)}_qo{int(tqo)}", "custom_diffusion", cinit, proc,
                    dict(train_kv=tkv, train_q_out=tqo, hidden_size=C, cross_attention_dim=CE),
                    group="famC", calls=c_calls)
        fwd(f"{proc}_defaults_hidden", "custom_diffusion", cinit, proc, dict(hidden_size=C, cross_attention_dim=CE),
            group="famC", calls=c_calls[:2])
        fwd(f"{proc}_self_module", "custom_diffusion", base, proc,
            dict(train_kv=True, train_q_out=True, hidden_size=C), group="famC", calls=c_self_calls)
        fwd(f"{proc}_self_module_no_weights", "custom_diffusion", base, proc,
            dict(train_kv=False, train_q_out=False), group="famC", calls=c_self_calls[:3])
        fwd(f"{proc}_out_bias_false_dropout", "custom_diffusion", cinit, proc,
            dict(train_q_out=True, hidden_size=C, cross_attention_dim=CE, out_bias=False, dropout=0.1),
            group="famC", calls=c_calls[:1])
        fwd(f"{proc}_norm_cross", "custom_diffusion", dict(cross, cross_attention_norm="layer_norm"), proc,
            dict(train_kv=False, train_q_out=False), group="famC", calls=c_calls[:1])
        fwd(f"{proc}_inner_ne_c", "custom_diffusion",
            dict(query_dim=C, heads=2, dim_head=8, cross_attention_dim=CE), proc,
            dict(train_kv=True, train_q_out=False, hidden_size=16, cross_attention_dim=CE), group="famC",
            calls=c_calls[:1])
        fwd(f"{proc}_hidden_none", "custom_diffusion_error", cinit, proc, dict(train_kv=True), group="famC",
            calls=c_calls[:1])

    # ================= family D: IP-Adapter =================
    ip4 = rnd("ip4", B, 4, CI)
    ip_multi = rnd("ip_multi", B, 3, 2, CI)  # 3 images x 2 tokens
    ip_multi2 = rnd("ip_multi2", B, 2, 4, CI)
    mask3 = G.rng_for("ipmask3").random((1, 3, 8, 8)).astype(np.float32)
    mask2 = (G.rng_for("ipmask2").random((1, 2, 6, 6)) > 0.5).astype(np.float32)
    mask_nonsq = G.rng_for("ipmask_ns").random((1, 3, 5, 9)).astype(np.float32)
    x18 = rnd("x18", B, 18, C)
    x14 = rnd("x14", B, 14, C)
    ip1 = dict(hidden_size=C, cross_attention_dim=CI, num_tokens=(4,), scale=0.7)
    e_concat = rnd("e_concat", B, S + 4, CE)
    for proc in ip_procs:
        def ipf(name, kw, calls, init=cross, category="ip_adapter"):
            s = g.script(f"{proc}_{name}", category, init, group="famD")
            s.set_processor(proc, **kw)
            s.load()
            for c in calls:
                if c[0] == "set":
                    s.set_attr(c[1], c[2])
                else:
                    s.forward(*c[0], **c[1])
            s.done()

        ipf("one_adapter", ip1, [
            ((x3,), {"encoder_hidden_states": (e3, [ip4])}),
            ((x3,), {"encoder_hidden_states": (e3, [ip4]), "attention_mask": m_b1s}),
            ((x3,), {"encoder_hidden_states": (e3, [ip4]), "attention_mask": m_bls}),
            ((x3,), {"encoder_hidden_states": (e3, [ip4]), "scale": 0.0}),
            ((x3,), {"encoder_hidden_states": (e3, [rnd("ip4x2", B, 2, 4, CI)])}),
            ((x3,), {"encoder_hidden_states": (e3, [])}),
            ((x3,), {"encoder_hidden_states": (e3, [ip4]), "ip_adapter_masks": [mask3[:, :1]]}),
            ((x3,), {"encoder_hidden_states": (e3, [rnd("ip4x1", B, 1, 4, CI)]), "ip_adapter_masks": [mask3[:, :1]]}),
            ((x3,), {}),
            ((x3,), {"encoder_hidden_states": (e3, [rnd("ip_badw", B, 4, 16)])}),
        ])
        ipf("legacy_concat", dict(ip1, cross_attention_dim=CE), [
            ((x3,), {"encoder_hidden_states": e_concat}),
            ((x3,), {"encoder_hidden_states": (e_concat[:, :S].copy(), [e_concat[:, S:].copy()])})])
        ipf("scale_zero", dict(ip1, scale=0.0), [((x3,), {"encoder_hidden_states": (e3, [ip4])}),
                                                 ((x3,), {"encoder_hidden_states": (e3, [ip4]),
                                                          "ip_adapter_masks": [mask3[:, :1]]})])
        ipf("two_adapters", ip2k, [
            ((x3,), {"encoder_hidden_states": (e3, [ip2, rnd("ip6", B, 6, CI)])}),
            ((x3,), {"encoder_hidden_states": (e3, [ip2])}),  # zip truncation
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2])}),  # joint softmax per adapter
            ((x4,), {"encoder_hidden_states": (e3, [ip2, rnd("ip6", B, 6, CI)]), "attention_mask": m_b1s}),
        ], init=dict(cross, norm_num_groups=4))
        ipf("masks", dict(ip2k, scale=[[0.3, 0.6, 0.9], 1.5]), [
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3, mask2]}),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3, None]}),
            ((x18,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]),
                      "ip_adapter_masks": [mask_nonsq, mask2]}),
            ((x14,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]),  # aspect mismatch -> zero padding
                      "ip_adapter_masks": [mask3, mask2]}),
            # errors: count mismatch, not 4-D, image count, scale count, per-image scale without masks
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3]}),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3[0], mask2]}),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]),
                     "ip_adapter_masks": [mask3[:, :2], mask2]}),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask2, mask2]}),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2])}),
            ((x3,), {"encoder_hidden_states": (e3, []), "ip_adapter_masks": [mask3]}),
            ("set", "scale", [[0.3, 0.6], 1.5]),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3, mask2]}),
            ("set", "scale", [[0.0, 0.0, 0.0], [0.5, 0.25]]),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3, mask2]}),
        ])
        ipf("self_attention_none", ip1, [((x3,), {}), ((x3,), {"encoder_hidden_states": (x3, [ip4])})], init=base,
            category="ip_adapter_error")
        ipf("masks_tensor_form", dict(ip2k, scale=[0.8, 0.4]), [
            ((x3,), {"encoder_hidden_states": (e3, [rnd("ipm1", B, 1, 2, CI), rnd("ipm2", B, 1, 6, CI)]),
                     "ip_adapter_masks": np.concatenate([mask3[:, :1], mask3[:, 1:2]], 0)})])
        ipf("scale_mutated", ip2k, [
            ("set", "scale", [0.25, 1.0]),
            ((x3,), {"encoder_hidden_states": (e3, [ip2, rnd("ip6", B, 6, CI)])}),
            ("set", "scale", [[0.2, 0.5, 0.9], [1.0, 0.0]]),
            ((x3,), {"encoder_hidden_states": (e3, [ip_multi, ip_multi2]), "ip_adapter_masks": [mask3, mask2]}),
            ("set", "scale", [0.0, 0.0]),
            ((x3,), {"encoder_hidden_states": (e3, [ip2, rnd("ip6", B, 6, CI)])})])
        ipf("spatial_norm_residual", dict(ip1, hidden_size=C), [
            ((x4,), {"encoder_hidden_states": (e3, [ip4]), "temb": temb})],
            init=dict(cross, spatial_norm_dim=8, residual_connection=True, rescale_output_factor=2.0))
        ipf("scale_qk_false_norm_cross", ip1, [((x3,), {"encoder_hidden_states": (e3, [ip4])})],
            init=dict(cross, scale_qk=False, cross_attention_norm="layer_norm"))
        ipf("error_scale_len", dict(ip2k, scale=[0.5]), [((x3,), {"encoder_hidden_states": (e3, [ip2])})],
            category="ip_adapter_error")
        ipf("error_scale_tuple", dict(ip2k, scale=(0.5, 0.5)),
            [((x3,), {"encoder_hidden_states": (e3, [ip2, rnd("ip6", B, 6, CI)])})], category="ip_adapter_error")
        ipf("cross_attention_dim_none", dict(hidden_size=C, num_tokens=[4]),
            [((x3,), {"encoder_hidden_states": (e3, [rnd("ip4_32", B, 4, C)])})], category="ip_adapter_error")
        ipf("int_num_tokens", dict(hidden_size=C, cross_attention_dim=CI, num_tokens=4),
            [((x3,), {"encoder_hidden_states": (e3, [ip4])})])

    # ================= LoRA stubs =================
    for proc in ("LoRAAttnProcessor", "LoRAAttnProcessor2_0", "LoRAXFormersAttnProcessor", "LoRAAttnAddedKVProcessor"):
        s = g.script(f"{proc}_stub", "lora_stub", base, group="famA_self")
        s.load().set_processor(proc).forward(x3).method("get_processor")
        s.method("get_processor", return_deprecated_lora=True)
        s.set_processor(proc, hidden_size=C)
        s.method("set_use_memory_efficient_attention_xformers", True).forward(x3)
        s.done()

    # ================= SpatialNorm =================
    for name, init, calls in (
            ("spatial_norm_same", dict(f_channels=32, zq_channels=8),
             [(rnd("f", B, 32, 4, 4), rnd("zq", B, 8, 4, 4))]),
            ("spatial_norm_upsample", dict(f_channels=64, zq_channels=4),
             [(rnd("f64", B, 64, 5, 7), rnd("zq23", B, 4, 2, 3)), (rnd("f64b", 1, 64, 7, 3), rnd("zq33", 1, 4, 3, 3))]),
            ("spatial_norm_downsample", dict(f_channels=32, zq_channels=8),
             [(rnd("f", B, 32, 4, 4), rnd("zq66", B, 8, 6, 5))]),
            ("spatial_norm_errors", dict(f_channels=32, zq_channels=8),
             [(rnd("f3", B, 32, 16), rnd("zq", B, 8, 4, 4)), (rnd("f", B, 32, 4, 4), rnd("zq", B, 4, 4, 4))]),
            ("spatial_norm_error_channels", dict(f_channels=40, zq_channels=8), [])):
        s = g.script(name, "spatial_norm", init, module="SpatialNorm", group="spatial_norm")
        s.load()
        for f, zq in calls:
            s.forward(f, zq)
        s.done()

    # ================= switches =================
    def switch_standard(name, init, calls):
        s = g.script(name, "switch", init, group="switch")
        s.load()
        for a, k in calls:
            s.forward(*a, **k)
        s.method("get_processor").method("get_processor", return_deprecated_lora=True)
        s.method("set_attention_slice", 2)
        for a, k in calls:
            s.forward(*a, **k)
        s.method("set_attention_slice", 3).forward(*calls[0][0], **calls[0][1])
        s.method("set_attention_slice", 4).method("set_attention_slice", 5)  # > heads
        s.method("set_attention_slice", None)
        s.method("set_use_memory_efficient_attention_xformers", True)
        for a, k in calls:
            s.forward(*a, **k)
        s.method("set_use_memory_efficient_attention_xformers", False)
        s.method("set_use_npu_flash_attention", True).forward(*calls[0][0], **calls[0][1])
        s.method("set_use_npu_flash_attention", False)
        s.method("set_use_xla_flash_attention", True, partition_spec=("data", None))
        for a, k in calls:
            s.forward(*a, **k)
        s.method("set_use_xla_flash_attention", False)
        s.method("fuse_projections", values=True)
        s.set_processor("FusedAttnProcessor2_0")
        for a, k in calls:
            s.forward(*a, **k)
        s.method("set_attention_slice", 1).forward(*calls[0][0], **calls[0][1])
        s.done()

    switch_standard("switch_standard_self", base, [((x3,), {}), ((x4,), {"attention_mask": m_self_b1l})])
    switch_standard("switch_standard_cross", cross, [((x3,), {"encoder_hidden_states": e3, "attention_mask": m_b1s})])
    switch_standard("switch_scale_qk_false", dict(base, scale_qk=False), [((x3,), {})])
    switch_standard("switch_out_dim_heads", dict(query_dim=C, heads=4, dim_head=8, out_dim=48),
                    [((x3,), {})])  # attn.heads 6, sliceable_head_dim 4

    s = g.script("switch_slice_zero", "switch", base, group="switch")
    s.load().method("set_attention_slice", 0, may_raise=["ValueError"]).forward(x3).done()

    s = g.script("switch_added_kv", "switch", binit, group="switch")
    s.set_processor("AttnAddedKVProcessor2_0").load()
    s.forward(x4, encoder_hidden_states=eA, attention_mask=mA)
    s.method("set_attention_slice", 2).forward(x4, encoder_hidden_states=eA, attention_mask=mA)
    s.method("set_attention_slice", None).forward(x4, encoder_hidden_states=eA)
    s.method("set_use_memory_efficient_attention_xformers", True).forward(x4, encoder_hidden_states=eA,
                                                                          attention_mask=mA)
    s.method("set_use_memory_efficient_attention_xformers", False).forward(x4)  # quirk: standard processor
    s.set_processor("SlicedAttnAddedKVProcessor", slice_size=3)
    s.method("set_use_memory_efficient_attention_xformers", True)
    s.set_processor("XFormersAttnAddedKVProcessor")
    s.method("set_use_memory_efficient_attention_xformers", True)
    s.method("set_use_npu_flash_attention", True).method("set_use_npu_flash_attention", False)
    s.set_processor("AttnAddedKVProcessor")
    s.method("set_use_xla_flash_attention", True).method("set_attention_slice", 5)
    s.method("fuse_projections", values=True)
    s.done()

    for start in ip_procs:
        s = g.script(f"switch_ip_from_{start}", "switch", cross, group="switch")
        s.set_processor(start, **ip2k).load()
        ehs = (e3, [ip2, rnd("ip6", B, 6, CI)])
        s.forward(x3, encoder_hidden_states=ehs)
        s.set_attr("scale", [1.25, 0.5])
        s.method("set_use_memory_efficient_attention_xformers", True, values=True)
        s.forward(x3, encoder_hidden_states=ehs)
        s.method("set_use_memory_efficient_attention_xformers", False, values=True)
        s.forward(x3, encoder_hidden_states=ehs)
        s.method("set_use_npu_flash_attention", True).forward(x3, encoder_hidden_states=e3)
        s.set_processor(start, **ip2k).load(seed="second")
        s.method("set_use_xla_flash_attention", True).forward(x3, encoder_hidden_states=e3)
        s.set_processor(start, **ip2k).load(seed="third")
        s.method("set_attention_slice", 2).forward(x3, encoder_hidden_states=e3)
        s.set_processor(start, **ip2k).load(seed="fourth")
        s.set_processor("AttnProcessor").forward(x3, encoder_hidden_states=e3)
        s.set_processor(start, **ip2k).load(seed="fifth")
        s.method("fuse_projections").forward(x3, encoder_hidden_states=ehs)
        s.done()

    for start in cd_procs:
        for tkv, tqo in ((True, True), (True, False), (False, False), (False, True)):
            s = g.script(f"switch_cd_from_{start}_kv{int(tkv)}_qo{int(tqo)}", "switch", cross, group="switch")
            s.set_processor(start, train_kv=tkv, train_q_out=tqo, hidden_size=C, cross_attention_dim=CE).load()
            s.forward(x3b1, encoder_hidden_states=e3b1)
            s.method("set_use_memory_efficient_attention_xformers", True, values=True)
            s.forward(x3b1, encoder_hidden_states=e3b1).forward(x3, encoder_hidden_states=e3)
            s.method("set_use_memory_efficient_attention_xformers", False, values=True)
            s.forward(x3b1, encoder_hidden_states=e3b1)
            s.method("set_use_npu_flash_attention", True).forward(x3, encoder_hidden_states=e3)
            s.done()
    for start in cd_procs:
        s = g.script(f"switch_cd_out_bias_false_{start}", "switch", cross, group="switch")
        s.set_processor(start, train_kv=True, train_q_out=True, hidden_size=C, cross_attention_dim=CE,
                        out_bias=False).load()
        s.method("set_use_memory_efficient_attention_xformers", True)
        s.method("set_use_memory_efficient_attention_xformers", False)
        s.forward(x3b1, encoder_hidden_states=e3b1)
        s.done()


# --------------------------------------------------------------------------------------------
