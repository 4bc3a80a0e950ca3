"""Golden fixtures for the DiT and joint-attention processors (issue 4), written to ``dit/``.

Called by ``generate.py`` (same format as ``attention/index.json``, see its docstring), with these
additions per forward case:

``module``     the module class: ``Attention``, ``FluxAttention``, ``MochiAttention`` or
               ``SanaMultiscaleLinearAttention`` (``init`` holds its keyword arguments).
``fuse``       call ``fuse_projections()`` after loading the weights, before ``set_processor``.
``processor``  the class name installed (``null``: keep the module's own processor).
``processor_init`` (optional) constructor keywords of a weight-holding processor (the DiT
               IP-Adapters); it is installed before the weights are drawn, so ``state_dict`` holds
               its ``processor.*`` entries and the test installs it before loading.
``reference``  (optional) the class whose numbers are recorded when the named one cannot run on
               a CPU without extra packages (xFormers, torch_xla, Ascend NPU); see docs/deviations.md.
Outputs of joint processors are lists of array references (image, text). Keyword values may be
nested lists (rotary pairs, Allegro's tables and positions); complex tables (Lumina) are stored
as complex64.
"""

import json
import os
import warnings
import zlib

import numpy as np

import generate as G

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "dit")


class DiTGen:
    def __init__(self):
        import torch
        from diffusers.models import attention_processor as ap
        from diffusers.models.transformers import transformer_flux as tf
        from diffusers.models.transformers import transformer_mochi as tm

        self.torch, self.ap, self.tf, self.tm = torch, ap, tf, tm
        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.cases, self.files = [], {}

    def module(self, cls, init, processor):
        if cls == "Attention":
            return self.ap.Attention(**init)
        if cls == "FluxAttention":
            return self.tf.FluxAttention(**init)
        if cls == "MochiAttention":
            return self.tm.MochiAttention(processor=self.ap.MochiAttnProcessor2_0(), **init)
        return self.ap.SanaMultiscaleLinearAttention(**{k: tuple(v) if isinstance(v, list) else v for k, v in init.items()})

    def processor(self, name, init=None):
        if name is None:
            return None
        init = init or {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name in ("FluxAttnProcessor", "FluxIPAdapterAttnProcessor"):
                return getattr(self.tf, name)(**init)
            if name == "XLAFluxFlashAttnProcessor2_0":   # its constructor needs torch_xla; the call checks masks first
                p = self.tf.FluxAttnProcessor()
                p._attention_backend = "_native_xla"
                return p
            return getattr(self.ap, name)(**init)

    def randomize(self, m, rng):
        sd = m.state_dict()
        new = {}
        for k, v in sd.items():
            shape = tuple(v.shape)
            leaf = k.rsplit(".", 1)[-1]
            if v.dtype == self.torch.int64:
                new[k] = np.asarray(3, dtype=np.int64).reshape(shape)
                continue
            if leaf == "running_var":
                a = 0.5 + rng.random(shape)
            elif leaf == "running_mean" or leaf == "bias":
                a = 0.1 * rng.standard_normal(shape)
            elif leaf == "weight" and "norm" in k and len(shape) == 1:
                a = 1.0 + 0.3 * rng.standard_normal(shape)
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
                a = rng.standard_normal(shape) / np.sqrt(fan_in)
            new[k] = G.f16r(a)
        m.load_state_dict({k: self.torch.from_numpy(np.asarray(v)) for k, v in new.items()}, strict=True)
        return new

    def add(self, name, category, cls, init, processor, args, kwargs=None, fuse=False, reference=None, proc_init=None):
        kwargs = kwargs or {}
        rng = G.rng_for(name)
        arrays = {}
        m = self.module(cls, init, processor)
        m.eval()
        if proc_init is not None:
            m.set_processor(self.processor(processor, proc_init))
        sd = self.randomize(m, rng)
        if fuse:
            m.fuse_projections()
        for k, v in m.state_dict().items():
            arrays["param/" + k] = v.numpy() if k not in sd else sd[k]
        state_dict = [[k, list(v.shape)] for k, v in m.state_dict().items()]
        proc = None if proc_init is not None else self.processor(reference or processor)
        if proc is not None:
            m.set_processor(proc)

        def store(v, key):
            if isinstance(v, np.ndarray):
                arrays["in/" + key] = v
                return G.ref("in/" + key)
            if isinstance(v, (list, tuple)):
                return [store(x, f"{key}.{i}") for i, x in enumerate(v)]
            return v

        def torchify(v):
            if isinstance(v, np.ndarray):
                return self.torch.from_numpy(v)
            if isinstance(v, (list, tuple)):
                return tuple(torchify(x) for x in v)
            return v

        call = {"method": "__call__", "args": [store(a, f"arg{i}") for i, a in enumerate(args)],
                "kwargs": {k: store(v, k) for k, v in kwargs.items()}}
        rec = {"name": name, "kind": "forward", "category": category, "module": cls, "init": init,
               "state_dict": state_dict, "fuse": fuse, "processor": processor, "file": name + ".npz", "call": call}
        if reference:
            rec["reference"] = reference
        if proc_init is not None:
            rec["processor_init"] = proc_init
        try:
            with self.torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = m(*[torchify(a) for a in args], **{k: torchify(v) for k, v in kwargs.items()})
            if isinstance(out, tuple):
                refs = []
                for i, o in enumerate(out):
                    arrays[f"out/{i}"] = o.numpy()
                    refs.append(G.ref(f"out/{i}"))
                rec["expect"] = {"output": refs}
            else:
                arrays["out/0"] = out.numpy()
                rec["expect"] = {"output": G.ref("out/0")}
        except Exception as e:  # noqa: BLE001 - the reference's error is the data
            rec["expect"] = {"error": G.err_record(e), "stage": "call"}
            arrays = {k: v for k, v in arrays.items()}
        self.files[name + ".npz"] = arrays
        self.cases.append(rec)


def rnd(name, *shape, scale=1.0):
    return G.f16r(np.random.default_rng(zlib.crc32(name.encode())).standard_normal(shape) * scale)


def interleaved_tables(rows, dim, seed):
    """Flux/Hunyuan/CogVideoX-style tables (repeat-interleaved cos/sin) from random positions."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    pos = np.random.default_rng(seed).integers(0, 64, rows).astype(np.float64)
    c, s = get_1d_rotary_pos_embed(dim, pos, use_real=True, repeat_interleave_real=True)
    return [c.numpy(), s.numpy()]


def build(g):
    B, S, T, C = 2, 7, 5, 32
    x, e24, e32 = rnd("x", B, S, C), rnd("e24", B, T, 24), rnd("e32", B, T, C)
    sd3 = dict(query_dim=C, added_kv_proj_dim=24, dim_head=16, heads=2, out_dim=C, context_pre_only=False, bias=True, eps=1e-6)
    sd3_rms = dict(sd3, qk_norm="rms_norm")
    # --- SD3 joint family ---
    g.add("joint", "sd3", "Attention", sd3, "JointAttnProcessor2_0", [x, e24])
    g.add("joint_rms", "sd3", "Attention", sd3_rms, "JointAttnProcessor2_0", [x, e24])
    g.add("joint_context_pre_only", "sd3", "Attention", dict(sd3_rms, context_pre_only=True), "JointAttnProcessor2_0", [x, e24])
    g.add("joint_self", "sd3", "Attention", dict(query_dim=C, dim_head=16, heads=2, qk_norm="rms_norm", bias=True), "JointAttnProcessor2_0", [x])
    g.add("joint_mask_ignored", "sd3", "Attention", sd3, "JointAttnProcessor2_0", [x, e24, np.zeros((B, S + T), np.float32) - 1e9])
    g.add("fused_joint", "sd3", "Attention", sd3_rms, "FusedJointAttnProcessor2_0", [x, e24], fuse=True)
    g.add("fused_joint_unfused_module", "sd3_error", "Attention", sd3, "FusedJointAttnProcessor2_0", [x, e24])
    g.add("fused_joint_no_encoder", "sd3_error", "Attention", sd3, "FusedJointAttnProcessor2_0", [x], fuse=True)
    g.add("xformers_joint", "sd3", "Attention", sd3_rms, "XFormersJointAttnProcessor", [x, e24], reference="JointAttnProcessor2_0")
    x4, e4, x6, e6 = rnd("x4", 4, S, C), rnd("e4", 4, T, 24), rnd("x6", 6, S, C), rnd("e6", 6, T, 24)
    g.add("pag_joint", "sd3_pag", "Attention", sd3_rms, "PAGJointAttnProcessor2_0", [x4, e4])
    g.add("pag_cfg_joint", "sd3_pag", "Attention", sd3, "PAGCFGJointAttnProcessor2_0", [x6, e6])
    g.add("pag_joint_batch3", "sd3_pag", "Attention", sd3, "PAGJointAttnProcessor2_0", [rnd("x3", 3, S, C), rnd("e3", 3, T, 24)])
    g.add("pag_cfg_joint_batch4", "sd3_error", "Attention", sd3, "PAGCFGJointAttnProcessor2_0", [x4, e4])
    g.add("pag_joint_no_encoder", "sd3_error", "Attention", sd3, "PAGJointAttnProcessor2_0", [x4])
    # --- SD3 IP-Adapter (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0): hidden_size = inner width, its own per-head RMS norms ---
    ip16, temb12 = rnd("ip16", B, 3, 20), rnd("temb12", B, 12)
    sd3ip = dict(hidden_size=C, ip_hidden_states_dim=20, head_dim=16, timesteps_emb_dim=12)
    ipk = {"ip_hidden_states": ip16, "temb": temb12}
    g.add("sd3_ip_adapter", "sd3_ip", "Attention", sd3_rms, "SD3IPAdapterJointAttnProcessor2_0", [x, e24], ipk, proc_init=sd3ip)
    g.add("sd3_ip_adapter_scale", "sd3_ip", "Attention", sd3, "SD3IPAdapterJointAttnProcessor2_0", [x, e24], ipk,
          proc_init=dict(sd3ip, scale=1.3))
    g.add("sd3_ip_adapter_context_pre_only", "sd3_ip", "Attention", dict(sd3_rms, context_pre_only=True),
          "SD3IPAdapterJointAttnProcessor2_0", [x, e24], ipk, proc_init=sd3ip)
    g.add("sd3_ip_adapter_self", "sd3_ip", "Attention", dict(query_dim=C, dim_head=16, heads=2, bias=True),
          "SD3IPAdapterJointAttnProcessor2_0", [x], ipk, proc_init=sd3ip)
    g.add("sd3_ip_adapter_no_ip", "sd3_ip", "Attention", sd3_rms, "SD3IPAdapterJointAttnProcessor2_0", [x, e24], {"temb": temb12},
          proc_init=sd3ip)
    g.add("sd3_ip_adapter_scale_zero", "sd3_ip", "Attention", sd3_rms, "SD3IPAdapterJointAttnProcessor2_0", [x, e24],
          {"ip_hidden_states": ip16}, proc_init=dict(sd3ip, scale=0.0))
    g.add("sd3_ip_adapter_no_temb", "sd3_ip_error", "Attention", sd3_rms, "SD3IPAdapterJointAttnProcessor2_0", [x, e24],
          {"ip_hidden_states": ip16}, proc_init=sd3ip)
    # --- AuraFlow ---
    aura = dict(query_dim=C, added_kv_proj_dim=C, added_proj_bias=False, dim_head=16, heads=2, qk_norm="fp32_layer_norm",
                out_dim=C, bias=False, out_bias=False, context_pre_only=False)
    g.add("auraflow", "auraflow", "Attention", aura, "AuraFlowAttnProcessor2_0", [x, e32])
    g.add("auraflow_scale_qk_false", "auraflow", "Attention", dict(aura, scale_qk=False), "AuraFlowAttnProcessor2_0", [x, e32])
    g.add("auraflow_self", "auraflow", "Attention", dict(query_dim=C, dim_head=16, heads=2, qk_norm="fp32_layer_norm", out_dim=C),
          "AuraFlowAttnProcessor2_0", [x])
    g.add("fused_auraflow", "auraflow", "Attention", aura, "FusedAuraFlowAttnProcessor2_0", [x, e32], fuse=True)
    g.add("fused_auraflow_unfused_module", "auraflow_error", "Attention", aura, "FusedAuraFlowAttnProcessor2_0", [x, e32])
    # --- Flux ---
    flux = dict(query_dim=C, heads=2, dim_head=16, added_kv_proj_dim=C, out_dim=C, context_pre_only=False, bias=True, eps=1e-6)
    single = dict(query_dim=C, heads=2, dim_head=16, out_dim=C, bias=True, eps=1e-6, pre_only=True)
    rot = interleaved_tables(S + T, 16, 1)
    for p in ("FluxAttnProcessor", "FluxAttnProcessor2_0", "FusedFluxAttnProcessor2_0", "FluxSingleAttnProcessor2_0"):
        g.add("flux_double_" + p.lower(), "flux", "FluxAttention", flux, p, [x, e32], {"image_rotary_emb": rot})
    g.add("flux_double_fused", "flux", "FluxAttention", flux, "FluxAttnProcessor", [x, e32], {"image_rotary_emb": rot}, fuse=True)
    keep = np.ones((B, S + T), bool); keep[0, 2] = keep[1, 9] = keep[1, 0] = False
    g.add("flux_double_bool_mask", "flux", "FluxAttention", flux, "FluxAttnProcessor", [x, e32, keep], {"image_rotary_emb": rot})
    add = np.where(keep, 0.0, -np.inf).astype(np.float32)
    g.add("flux_double_additive_mask", "flux", "FluxAttention", flux, "FluxAttnProcessor", [x, e32, add], {"image_rotary_emb": rot})
    xs = rnd("xs", B, S + T, C)
    g.add("flux_single", "flux", "FluxAttention", single, "FluxAttnProcessor", [xs], {"image_rotary_emb": rot})
    g.add("flux_single_fused", "flux", "FluxAttention", single, "FluxAttnProcessor", [xs], {"image_rotary_emb": rot}, fuse=True)
    g.add("flux_single_no_rotary", "flux", "FluxAttention", single, "FluxSingleAttnProcessor2_0", [xs])
    g.add("flux_single_with_encoder", "flux_error", "FluxAttention", single, "FluxAttnProcessor", [x, e32])
    g.add("flux_double_no_encoder", "flux_error", "FluxAttention", flux, "FluxAttnProcessor", [x])
    g.add("flux_bad_rotary", "flux_error", "FluxAttention", flux, "FluxAttnProcessor", [x, e32], {"image_rotary_emb": interleaved_tables(S, 16, 2)})
    g.add("flux_npu", "flux", "FluxAttention", flux, "FluxAttnProcessor2_0_NPU", [x, e32, keep], {"image_rotary_emb": rot}, reference="FluxAttnProcessor")
    g.add("flux_xla", "flux", "FluxAttention", flux, "XLAFluxFlashAttnProcessor2_0", [x, e32], {"image_rotary_emb": rot}, reference="FluxAttnProcessor")
    g.add("flux_xla_mask", "flux_error", "FluxAttention", flux, "XLAFluxFlashAttnProcessor2_0", [x, e32, keep], {"image_rotary_emb": rot})
    g.add("flux_fused_npu", "flux_error", "FluxAttention", flux, "FusedFluxAttnProcessor2_0_NPU", [x, e32], {"image_rotary_emb": rot})
    # --- Flux IP-Adapter (transformer_flux.py:FluxIPAdapterAttnProcessor.__call__): (img, txt, ip_out); biased per-adapter projections ---
    fip = dict(hidden_size=C, cross_attention_dim=24, num_tokens=[3, 2], scale=[0.7, 1.4])
    ips = [rnd("fip0", B, 3, 24), rnd("fip1", B, 2, 24)]
    for p in ("FluxIPAdapterAttnProcessor", "FluxIPAdapterJointAttnProcessor2_0"):
        g.add("flux_ip_" + p.lower(), "flux_ip", "FluxAttention", flux, p, [x, e32], {"image_rotary_emb": rot, "ip_hidden_states": ips},
              proc_init=fip)
    g.add("flux_ip_one_adapter_mask", "flux_ip", "FluxAttention", flux, "FluxIPAdapterAttnProcessor", [x, e32, keep],
          {"image_rotary_emb": rot, "ip_hidden_states": ips[:1]}, proc_init=dict(fip, num_tokens=[3], scale=0.5))
    g.add("flux_ip_fused", "flux_ip", "FluxAttention", flux, "FluxIPAdapterAttnProcessor", [x, e32],
          {"image_rotary_emb": rot, "ip_hidden_states": ips}, fuse=True, proc_init=fip)
    g.add("flux_ip_single", "flux_ip", "FluxAttention", single, "FluxIPAdapterAttnProcessor", [xs], {"image_rotary_emb": rot},
          proc_init=fip)
    g.add("flux_ip_double_no_encoder", "flux_ip", "FluxAttention", flux, "FluxIPAdapterAttnProcessor", [x], {"image_rotary_emb": interleaved_tables(S, 16, 6)},
          proc_init=fip)
    g.add("flux_ip_no_ip_states", "flux_ip_error", "FluxAttention", flux, "FluxIPAdapterAttnProcessor", [x, e32],
          {"image_rotary_emb": rot}, proc_init=fip)
    # --- CogVideoX ---
    cog = dict(query_dim=C, dim_head=16, heads=2, qk_norm="layer_norm", eps=1e-6, bias=True)
    crot = interleaved_tables(S, 16, 3)
    g.add("cogvideox", "cogvideox", "Attention", cog, "CogVideoXAttnProcessor2_0", [x, e32], {"image_rotary_emb": crot})
    cmask = np.zeros((B, 1, S + T), np.float32); cmask[1, 0, 3] = -1e4
    g.add("cogvideox_mask", "cogvideox", "Attention", cog, "CogVideoXAttnProcessor2_0", [x, e32, cmask], {"image_rotary_emb": crot})
    g.add("fused_cogvideox", "cogvideox", "Attention", cog, "FusedCogVideoXAttnProcessor2_0", [x, e32], {"image_rotary_emb": crot}, fuse=True)
    g.add("fused_cogvideox_unfused_module", "cogvideox_error", "Attention", cog, "FusedCogVideoXAttnProcessor2_0", [x, e32])
    g.add("cogvideox_no_encoder", "cogvideox_error", "Attention", cog, "CogVideoXAttnProcessor2_0", [x])
    # --- Hunyuan ---
    hy = dict(query_dim=C, dim_head=16, heads=2, qk_norm="layer_norm", eps=1e-6, bias=True)
    hyx = dict(hy, cross_attention_dim=24)
    hmask = np.zeros((B, S), np.float32); hmask[0, 4] = -1e4
    g.add("hunyuan_self", "hunyuan", "Attention", hy, "HunyuanAttnProcessor2_0", [x, None, hmask], {"image_rotary_emb": crot})
    g.add("hunyuan_cross", "hunyuan", "Attention", hyx, "HunyuanAttnProcessor2_0", [x, e24], {"image_rotary_emb": crot})
    xi = rnd("xi", B, C, 2, 3)
    g.add("hunyuan_image_input", "hunyuan", "Attention", dict(hy, residual_connection=True, rescale_output_factor=2.0),
          "HunyuanAttnProcessor2_0", [xi], {"image_rotary_emb": interleaved_tables(6, 16, 4)})
    g.add("fused_hunyuan_self", "hunyuan", "Attention", hy, "FusedHunyuanAttnProcessor2_0", [x], {"image_rotary_emb": crot}, fuse=True)
    g.add("fused_hunyuan_cross", "hunyuan", "Attention", hyx, "FusedHunyuanAttnProcessor2_0", [x, e24], {"image_rotary_emb": crot}, fuse=True)
    g.add("fused_hunyuan_self_with_encoder", "hunyuan_error", "Attention", hy, "FusedHunyuanAttnProcessor2_0", [x, e32], fuse=True)
    g.add("pag_hunyuan", "hunyuan_pag", "Attention", hy, "PAGHunyuanAttnProcessor2_0", [rnd("hx4", 4, S, C)], {"image_rotary_emb": crot})
    g.add("pag_cfg_hunyuan", "hunyuan_pag", "Attention", hy, "PAGCFGHunyuanAttnProcessor2_0", [rnd("hx6", 6, S, C)], {"image_rotary_emb": crot})
    g.add("pag_hunyuan_image_input", "hunyuan_pag", "Attention", dict(hy, residual_connection=True), "PAGHunyuanAttnProcessor2_0",
          [rnd("hxi", 4, C, 2, 3)], {"image_rotary_emb": interleaved_tables(6, 16, 4)})
    # --- Lumina ---
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    lum = dict(query_dim=C, dim_head=8, heads=4, kv_heads=2, qk_norm="layer_norm_across_heads", eps=1e-5, bias=False, out_bias=False)
    fq = get_1d_rotary_pos_embed(8, S).numpy()[None]   # (1, S, 4) complex64
    lmask = np.ones((B, S), bool); lmask[1, 5:] = False
    g.add("lumina_self", "lumina", "Attention", lum, "LuminaAttnProcessor2_0", [x, x, lmask], {"query_rotary_emb": fq, "key_rotary_emb": fq})
    g.add("lumina_self_base_length", "lumina", "Attention", lum, "LuminaAttnProcessor2_0", [x, x, lmask],
          {"query_rotary_emb": fq, "key_rotary_emb": fq, "base_sequence_length": 4})
    tmask = np.ones((B, T), np.float32); tmask[0, 3:] = 0
    g.add("lumina_cross", "lumina", "Attention", dict(lum, cross_attention_dim=24), "LuminaAttnProcessor2_0", [x, e24, tmask],
          {"query_rotary_emb": fq})
    g.add("lumina_no_mask", "lumina_error", "Attention", lum, "LuminaAttnProcessor2_0", [x, x])
    # --- Allegro ---
    al = dict(query_dim=48, dim_head=24, heads=2, bias=True, qk_norm="layer_norm")
    xa = rnd("xa", B, 6, 48)
    tables = []
    for axis, n in enumerate((3, 4, 5)):
        c, s = get_1d_rotary_pos_embed(8, n, use_real=True, repeat_interleave_real=False)
        tables.append([c.numpy(), s.numpy()])
    positions = [np.random.default_rng(7 + a).integers(0, n, (1, 6)).astype(np.int64) for a, n in enumerate((3, 4, 5))]
    amask = np.zeros((B, 6), np.float32); amask[1, 2] = -1e4
    g.add("allegro_self", "allegro", "Attention", al, "AllegroAttnProcessor2_0", [xa, None, amask], {"image_rotary_emb": [tables, positions]})
    g.add("allegro_cross", "allegro", "Attention", dict(al, cross_attention_dim=24), "AllegroAttnProcessor2_0", [xa, e24],
          {"image_rotary_emb": [tables, positions]})
    # --- Stable Audio ---
    c, s = get_1d_rotary_pos_embed(8, S, use_real=True, repeat_interleave_real=False)
    sa_rot = [c.numpy(), s.numpy()]
    sa = dict(query_dim=C, heads=2, dim_head=16, bias=False, out_bias=False)
    g.add("stable_audio_self", "stable_audio", "Attention", sa, "StableAudioAttnProcessor2_0", [x], {"rotary_emb": sa_rot})
    smask = np.zeros((B, T), np.float32); smask[0, 1] = -1e4
    g.add("stable_audio_cross_gqa", "stable_audio", "Attention", dict(sa, cross_attention_dim=24, kv_heads=1),
          "StableAudioAttnProcessor2_0", [x, e24, smask], {"rotary_emb": sa_rot})
    # --- Mochi ---
    mo = dict(query_dim=C, added_kv_proj_dim=24, heads=2, dim_head=16, out_context_dim=24, added_proj_bias=False, eps=1e-5)
    ang = np.random.default_rng(5).uniform(-3, 3, (S, 2, 8))
    mrot = [np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)]
    mmask = np.ones((B, T), bool); mmask[0, 1] = mmask[0, 4] = False; mmask[1, 3:] = False
    g.add("mochi", "mochi", "MochiAttention", mo, None, [x, e24, mmask], {"image_rotary_emb": mrot})
    g.add("mochi_last_block", "mochi", "MochiAttention", dict(mo, context_pre_only=True), None, [x, e24, mmask.astype(np.float32)],
          {"image_rotary_emb": mrot})
    g.add("mochi_no_mask", "mochi_error", "MochiAttention", mo, None, [x, e24])
    vae = dict(query_dim=64, heads=2, dim_head=32, qk_norm="l2", is_causal=True)
    g.add("mochi_vae", "mochi", "Attention", vae, "MochiVaeAttnProcessor2_0", [rnd("xv", 3, 5, 64)])
    g.add("mochi_vae_single_frame", "mochi", "Attention", vae, "MochiVaeAttnProcessor2_0", [rnd("xv1", 3, 1, 64)])
    g.add("mochi_vae_mask_and_causal", "mochi_error", "Attention", vae, "MochiVaeAttnProcessor2_0",
          [rnd("xv", 3, 5, 64), None, np.zeros((3, 5), np.float32)])
    # --- Sana ---
    sana = dict(query_dim=C, heads=2, dim_head=16, kv_heads=2, qk_norm="rms_norm_across_heads", bias=True)
    xn = rnd("xn", B, 9, C)
    g.add("sana_linear", "sana", "Attention", sana, "SanaLinearAttnProcessor2_0", [xn])
    g.add("sana_linear_cross", "sana", "Attention", dict(sana, cross_attention_dim=24), "SanaLinearAttnProcessor2_0", [xn, e24])
    g.add("pag_cfg_sana", "sana_pag", "Attention", sana, "PAGCFGSanaLinearAttnProcessor2_0", [rnd("xn6", 6, 9, C)])
    g.add("pag_identity_sana", "sana_pag", "Attention", sana, "PAGIdentitySanaLinearAttnProcessor2_0", [rnd("xn4", 4, 9, C)])
    ms = dict(in_channels=C, out_channels=C, attention_head_dim=8, kernel_sizes=[3, 5], norm_type="batch_norm", residual_connection=True)
    g.add("sana_multiscale_linear", "sana_multiscale", "SanaMultiscaleLinearAttention", ms, None, [rnd("xm", B, C, 3, 5)])
    g.add("sana_multiscale_quadratic", "sana_multiscale", "SanaMultiscaleLinearAttention", ms, None, [rnd("xq", B, C, 2, 3)])
    g.add("sana_multiscale_rms", "sana_multiscale", "SanaMultiscaleLinearAttention", dict(ms, norm_type="rms_norm", kernel_sizes=[3], mult=0.5),
          None, [rnd("xm", B, C, 3, 5)])
    g.add("sana_multiscale_layer_norm", "sana_multiscale", "SanaMultiscaleLinearAttention",
          dict(in_channels=16, out_channels=4, attention_head_dim=8, norm_type="layer_norm", kernel_sizes=[5]), None, [rnd("xl", 1, 16, 3, 4)])
    # --- PAG identity self ---
    ps = dict(query_dim=C, heads=2, dim_head=16, qk_norm="layer_norm", norm_num_groups=8, residual_connection=True, rescale_output_factor=2.0)
    pmask = np.zeros((2, S), np.float32); pmask[1, 1] = -1e4
    g.add("pag_identity_self", "pag_identity", "Attention", ps, "PAGIdentitySelfAttnProcessor2_0", [rnd("px4", 4, S, C), None, pmask])
    g.add("pag_cfg_identity_self", "pag_identity", "Attention", ps, "PAGCFGIdentitySelfAttnProcessor2_0", [rnd("px6", 6, S, C)])
    g.add("pag_identity_self_image", "pag_identity", "Attention", ps, "PAGIdentitySelfAttnProcessor2_0", [rnd("pxi", 4, C, 2, 3)])


def run(check=False):
    import diffusers
    import platform
    import torch

    g = DiTGen()
    build(g)
    counts = {}
    for c in g.cases:
        counts[c["category"]] = counts.get(c["category"], 0) + 1
    index = {
        "format": "diffattn-golden", "format_version": 1, "generator": "Tests/Fixtures/gen_dit.py",
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "reference": "diffusers DiT/joint attention processors and module classes on CPU, float32, eval mode",
        "tolerance": {"rtol": 2e-4}, "counts": dict(sorted(counts.items())), "cases": g.cases,
    }
    blobs = {f: G.write_npz(a) for f, a in g.files.items()}
    blobs["index.json"] = G.dump_index(index).encode()
    return G.sync_dir(OUT_DIR, blobs, check, f"dit ({len(g.cases)} cases)")

if __name__ == "__main__":
    import sys
    sys.exit(run("--check" in sys.argv))
