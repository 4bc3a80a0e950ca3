#!/usr/bin/env python3
"""Golden fixtures for issue 3: every classic diffusers attention processor, SpatialNorm, and the
``Attention`` switches (set_attention_slice, xFormers / NPU / XLA, fuse_projections, get/set_processor).

Runs diffusers 0.42.1 on the CPU (float32, eval mode) and writes ``Tests/Fixtures/classic/``.
Called from ``generate.py`` (one command regenerates every fixture directory) or on its own:

    /work/venv-ref/bin/python Tests/Fixtures/generate.py                 # attention/ and classic/
    /work/venv-ref/bin/python Tests/Fixtures/gen_classic.py [--check]     # classic/ only

Deterministic and byte-reproducible like generate.py (seeds from CRC-32 of names, fixed zip dates).

FORMAT (additions to the one documented at the top of generate.py)
=================================================================

``classic/index.json`` has the same header (``format`` "diffattn-golden", ``format_version`` 1,
``versions``, ``tolerance``, ``counts``) plus ``"emulation"``: a dictionary explaining every
emulation tag used below. Every case has ``kind`` = ``"script"``:

``module``     ``"Attention"`` or ``"SpatialNorm"``; ``init`` its constructor keywords.
``default_processor``, ``state_dict``, ``attributes``   as in generate.py, right after construction
               (``attributes`` adds ``fused_projections``; SpatialNorm cases have only ``state_dict``).
               If construction fails: ``expect`` = ``{"error": ..., "stage": "init"}`` and no steps.
``file``       the .npz with this case's arrays. Several cases share one file; arrays are
               de-duplicated by content, so keys are only names (do not infer meaning from them).
``emulated``   list of emulation tags this case actually exercised in diffusers (empty = plain
               diffusers on CPU). The tags are explained in the index's ``"emulation"`` dictionary
               (fake xFormers package, CUDA check, NPU availability, XLA version guard, ...).
``steps``      executed in order on one module. Every step is ``{"op": ..., ...}``:

  ``{"op": "set_processor", "processor": {"class": name, "kwargs": {...}}}``
        construct ``diffattn.<name>(**kwargs)`` (JSON lists where diffusers had tuples) and
        ``attn.set_processor`` it. A constructor error is the step's error.
  ``{"op": "load_state_dict", "state_dict": [[key, shape], ...], "values": {key: array key}}``
        ``attn.load_state_dict({key: <array values[key]>})`` -- the *whole* state dict of the module at
        that point (module weights, ``processor.*`` weights, fused ``to_qkv``/``to_kv``), in
        diffusers' order.
  ``{"op": "method", "method": m, "args": [...], "kwargs": {...}}``
        ``getattr(attn, m)(*args, **kwargs)`` -- the switches, ``fuse_projections``,
        ``get_processor``. A returned processor is described by ``expect.processor_class``
        (``expect.output`` null = the call returned None).
  ``{"op": "set_processor_attr", "name": n, "value": v}``    ``setattr(attn.processor, n, v)``.
  ``{"op": "forward", "args": [...], "kwargs": {...}}``      ``attn(*args, **kwargs)`` (SpatialNorm:
        ``sn(f, zq)``); ``expect.output`` is the reference result.

  ``expect`` of a step: ``{"output": ...}`` / ``{"processor_class": name}`` on success, or
  ``{"error": {type, message, accept}}`` (same meaning as generate.py). ``after`` (every step,
  also after an error): ``processor_class`` (``type(attn.processor).__name__``), ``state_dict``
  (``[[key, shape], ...]`` in diffusers' order), ``fused_projections``; optionally
  ``state_dict_values``: ``{key: array key}``, the value of every state-dict entry (recorded after
  fuse_projections and after switches that copy processor weights).
  ``may_raise`` (optional, list of class names): diffusers accepts this step, but the spec allows
  a port to reject it here (e.g. ``set_attention_slice(0)``, spec §3.3); if diffattn raises one of
  these classes the rest of the script is skipped.

Argument values: JSON scalars, array references (as in generate.py), JSON lists of values, and
``{"$tuple": [v, ...]}`` for a Python tuple (IP-Adapter's ``(text, [ip_0, ip_1, ...])``).
"""

import argparse
import contextlib
import hashlib
import json
import os
import platform
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import generate as G  # noqa: E402  (shared utilities: write_npz, err_record, f16r, rng_for, ...)

OUT_DIR = os.path.join(HERE, "classic")

EMULATION = {
    "xformers": "diffusers believes xFormers is installed: a fake `xformers` package is put in sys.modules "
                "and attention_processor.xformers / is_xformers_available are patched; its "
                "ops.memory_efficient_attention(q, k, v, attn_bias=None, p=0.0, scale=None, op=None) computes "
                "softmax(scale*q@k^T + attn_bias)@v in float32 (scale default 1/sqrt(D)) on the (B*H, N, D) "
                "tensors diffusers passes; `op` is ignored.",
    "xformers_bias_broadcast": "the fake xFormers kernel received an attn_bias with a singleton query axis "
                               "((B*H, 1, S), not expanded by diffusers) and broadcast it over the queries; real "
                               "xFormers wants it expanded (spec 6.4/7.4: 'CPU port: equivalent to the classic "
                               "processor'), so these numbers are the spec's intended semantics.",
    "cuda": "set_use_memory_efficient_attention_xformers(True): torch.cuda.is_available patched to True and the "
            "smoke-test tensor created on the CPU (it runs through the fake kernel).",
    "npu": "attention_processor.is_torch_npu_available patched to True, so AttnProcessorNPU constructs; inputs are "
           "float32, so its F.scaled_dot_product_attention branch runs (including the mask inversion, spec 5.6); "
           "torch_npu itself is never called.",
    "xla": "attention_processor.is_torch_xla_version and is_spmd patched to return False so the broken version "
           "guards pass (spec 3.6/5.7); every sequence is < 4096 tokens, so XLAFlashAttnProcessor2_0 runs its "
           "plain-SDPA CPU branch (torch_xla's flash kernel is never called).",
}


# --------------------------------------------------------------------------------------------
# emulated back ends
# --------------------------------------------------------------------------------------------


class Emu:
    """Installs the fake back ends once; records which of them each case exercised."""

    def __init__(self, torch, ap):
        self.torch, self.ap = torch, ap
        self.used = set()
        emu = self

        def memory_efficient_attention(query, key, value, attn_bias=None, p=0.0, scale=None, *, op=None,
                                       output_dtype=None):
            emu.used.add("xformers")
            q, k, v = query.float(), key.float(), value.float()
            if q.ndim == 4:  # (B, M, H, K) layout
                q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            s = scale if scale is not None else q.shape[-1] ** -0.5
            scores = s * (q @ k.transpose(-1, -2))
            if attn_bias is not None:
                if tuple(attn_bias.shape) != tuple(scores.shape):
                    emu.used.add("xformers_bias_broadcast")
                scores = scores + attn_bias.float()
            out = torch.softmax(scores, dim=-1) @ v
            if query.ndim == 4:
                out = out.transpose(1, 2)
            return out.to(query.dtype)

        xf = types.ModuleType("xformers")
        xf.__version__ = "0.0.0+diffattn-fake"
        ops = types.ModuleType("xformers.ops")
        ops.memory_efficient_attention = memory_efficient_attention
        xf.ops = ops
        sys.modules.setdefault("xformers", xf)
        sys.modules.setdefault("xformers.ops", ops)
        ap.xformers = xf

        def track(tag, value):
            def f(*a, **k):
                emu.used.add(tag)
                return value
            return f

        ap.is_xformers_available = track("xformers", True)
        ap.is_torch_npu_available = track("npu", True)
        ap.is_torch_xla_version = track("xla", False)
        ap.is_spmd = track("xla", False)

    @contextlib.contextmanager
    def cuda(self):
        torch = self.torch
        old_avail, old_randn = torch.cuda.is_available, torch.randn
        emu = self

        def avail():
            emu.used.add("cuda")
            return True

        def randn(*a, **k):
            if k.get("device") == "cuda":
                k = dict(k, device="cpu")
            return old_randn(*a, **k)

        torch.cuda.is_available, torch.randn = avail, randn
        try:
            yield
        finally:
            torch.cuda.is_available, torch.randn = old_avail, old_randn


# --------------------------------------------------------------------------------------------
# one fixture file shared by several cases (arrays de-duplicated by content)
# --------------------------------------------------------------------------------------------


class FileStore:
    def __init__(self):
        self.arrays = {}
        self.by_hash = {}

    def put(self, key, a):
        a = np.ascontiguousarray(a)
        h = hashlib.sha1(str((a.dtype.str, a.shape)).encode() + a.tobytes()).hexdigest()
        if h in self.by_hash:
            return self.by_hash[h]
        base, n = key, 1
        while key in self.arrays:
            n += 1
            key = f"{base}~{n}"
        self.arrays[key] = a
        self.by_hash[h] = key
        return key


def err_record(e):
    """generate.err_record, but a ValueError/TypeError counts as deliberate (accept only that class) only
    when diffusers' own code raised it; errors raised inside torch or by Python argument binding accept
    ValueError or TypeError (the binding maps its internal errors to those)."""
    rec = G.err_record(e)
    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    if len(rec["accept"]) == 1 and not (last and os.sep + "diffusers" + os.sep in last):
        rec["accept"] = ["ValueError", "TypeError"]
    return rec


def weight_values(sd_shapes, seed):
    """Deterministic non-trivial values per key (same key+shape+seed -> same values)."""
    out = {}
    for k, shape in sd_shapes:
        rng = G.rng_for(f"{seed}/{k}/{shape}")
        shape = tuple(shape)
        leaf = k.rsplit(".", 1)[-1]
        is_norm = ("norm" in k) and "conv" not in k
        if leaf == "weight" and is_norm:
            a = 1.0 + 0.3 * rng.standard_normal(shape)
        elif leaf == "bias":
            a = 0.1 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            a = rng.standard_normal(shape) / np.sqrt(fan_in)
        out[k] = G.f16r(a)
    return out


# --------------------------------------------------------------------------------------------
# a script case
# --------------------------------------------------------------------------------------------


class Script:
    def __init__(self, gen, name, category, init, module="Attention", group=None):
        self.g, self.name = gen, name
        self.torch, self.ap = gen.torch, gen.ap
        self.fname = (group or name) + ".npz"
        self.store = gen.files.setdefault(self.fname, FileStore())
        self.case = {"name": name, "kind": "script", "category": category, "module": module,
                     "file": self.fname, "init": init}
        self.steps = []
        self.seed = group or name
        gen.emu.used = set()
        self.dead = False
        try:
            if module == "SpatialNorm":
                self.m = self.ap.SpatialNorm(**init)
            else:
                self.m = self.ap.Attention(**init)
        except Exception as e:  # noqa: BLE001
            self.m = None
            self.dead = True
            self.case["expect"] = {"error": err_record(e), "stage": "init"}
            return
        self.m.eval()
        if module == "Attention":
            self.case["default_processor"] = type(self.m.processor).__name__
            self.case["attributes"] = {a: G.jsonable(getattr(self.m, a)) for a in G.ATTRS}
            self.case["attributes"]["fused_projections"] = bool(self.m.fused_projections)
        self.case["state_dict"] = self.sd_shapes()

    # ---- helpers ----
    def sd_shapes(self):
        return [[k, list(v.shape)] for k, v in self.m.state_dict().items()]

    def after(self, values=False):
        a = {"state_dict": self.sd_shapes()}
        if self.case["module"] == "Attention":
            a["processor_class"] = type(self.m.processor).__name__
            a["fused_projections"] = bool(self.m.fused_projections)
        if values:
            a["state_dict_values"] = {
                k: self.store.put(f"sd/{k}", v.detach().numpy().astype(np.float32))
                for k, v in self.m.state_dict().items()}
        return a

    def enc(self, v, label):
        """numpy/tuple/list value -> (json, torch value)."""
        if isinstance(v, np.ndarray):
            key = self.store.put("in/" + label, v)
            return G.ref(key), self.torch.from_numpy(np.ascontiguousarray(v))
        if isinstance(v, tuple):
            js, ts = zip(*[self.enc(x, f"{label}.{i}") for i, x in enumerate(v)]) if v else ((), ())
            return {"$tuple": list(js)}, tuple(ts)
        if isinstance(v, list):
            if not v:
                return [], []
            js, ts = zip(*[self.enc(x, f"{label}.{i}") for i, x in enumerate(v)])
            return list(js), list(ts)
        return G.jsonable(v), v

    def _run(self, step, fn, values=False, result=None):
        if self.dead:
            return None
        try:
            with self.torch.no_grad():
                out = fn()
                # a processor module installed after .eval() starts in training mode (dropout active);
                # the reference is evaluation mode throughout
                self.m.eval()
            step["expect"] = result(out) if result else {"output": None}
        except Exception as e:  # noqa: BLE001
            out = None
            step["expect"] = {"error": err_record(e)}
            values = False
        step["after"] = self.after(values)
        self.steps.append(step)
        return out

    # ---- steps ----
    def set_processor(self, cls, **kwargs):
        step = {"op": "set_processor", "processor": {"class": cls, "kwargs": {k: self.enc(v, k)[0]
                                                                             for k, v in kwargs.items()}}}

        def fn():
            p = getattr(self.ap, cls)(**kwargs)
            self.m.set_processor(p)
        self._run(step, fn)
        return self

    def load(self, seed=None):
        if self.dead:
            return self
        shapes = self.sd_shapes()
        vals = weight_values(shapes, seed or self.seed)
        step = {"op": "load_state_dict", "state_dict": shapes,
                "values": {k: self.store.put("param/" + k, v) for k, v in vals.items()}}
        self._run(step, lambda: self.m.load_state_dict({k: self.torch.from_numpy(v) for k, v in vals.items()},
                                                      strict=True))
        return self

    def method(self, name, *args, values=False, may_raise=None, **kwargs):
        step = {"op": "method", "method": name, "args": [self.enc(a, f"a{i}")[0] for i, a in enumerate(args)],
                "kwargs": {k: self.enc(v, k)[0] for k, v in kwargs.items()}}
        if may_raise:
            step["may_raise"] = list(may_raise)
        targs = [self.enc(a, f"a{i}")[1] for i, a in enumerate(args)]
        tkw = {k: self.enc(v, k)[1] for k, v in kwargs.items()}

        def fn():
            ctx = self.g.emu.cuda() if name == "set_use_memory_efficient_attention_xformers" else \
                contextlib.nullcontext()
            with ctx:
                return getattr(self.m, name)(*targs, **tkw)

        def result(out):
            if out is None:
                return {"output": None}
            return {"processor_class": type(out).__name__}
        self._run(step, fn, values=values, result=result)
        return self

    def set_attr(self, name, value):
        step = {"op": "set_processor_attr", "name": name, "value": value}
        self._run(step, lambda: setattr(self.m.processor, name, value))
        return self

    def forward(self, *args, **kwargs):
        idx = len(self.steps)
        jargs, targs = [], []
        for i, a in enumerate(args):
            j, t = self.enc(a, f"arg{i}")
            jargs.append(j)
            targs.append(t)
        jkw, tkw = {}, {}
        for k, v in kwargs.items():
            jkw[k], tkw[k] = self.enc(v, k)
        step = {"op": "forward", "args": jargs, "kwargs": jkw}

        def result(out):
            key = self.store.put(f"out/{self.name}/{idx}", out.detach().numpy().astype(np.float32))
            return {"output": G.ref(key)}
        self._run(step, lambda: self.m(*targs, **tkw), result=result)
        return self

    def done(self):
        self.case["emulated"] = sorted(self.g.emu.used)
        if not self.dead or "expect" in self.case:
            self.case["steps"] = self.steps
        self.g.add_case(self.case)


class Gen:
    def __init__(self):
        import torch
        import diffusers
        from diffusers.models import attention_processor as ap

        self.torch, self.diffusers, self.ap = torch, diffusers, ap
        torch.manual_seed(0)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        import logging
        logging.getLogger("diffusers").setLevel(logging.ERROR)
        import warnings
        warnings.simplefilter("ignore")
        self.emu = Emu(torch, ap)
        self.cases = []
        self.files = {}

    def add_case(self, case):
        assert all(c["name"] != case["name"] for c in self.cases), case["name"]
        self.cases.append(case)

    def script(self, name, category, init, module="Attention", group=None):
        return Script(self, name, category, init, module, group)


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------

B, C, L, S, CE, A = 2, 32, 16, 6, 24, 20


def rnd(label, *shape, s=1.0):
    return G.f16r(s * G.rng_for("classic-in/" + label).standard_normal(shape))


def additive(label, shape, fill=-10000.0):
    return G.additive(G.rng_for("classic-mask/" + label), shape, fill)


def build_grid(g):  # noqa: C901 - a long, flat list of cases
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

    def fwd(name, category, init, proc, proc_kwargs=None, group=None, pre=None, calls=()):
        s = g.script(name, category, init, group=group)
        if pre:
            pre(s)
        s.set_processor(proc, **(proc_kwargs or {}))
        s.load()
        for args, kw in calls:
            s.forward(*args, **kw)
        s.done()

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

    # ================= family B: added KV =================
    binit = dict(base, added_kv_proj_dim=A, norm_num_groups=4, bias=True, upcast_softmax=True)
    eA = rnd("eA", B, S, A)
    xB3 = rnd("xB3", B, C, L)  # channels-first 3-D
    mA = additive("mA", (B, 1, S))
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
    cd_procs = ("CustomDiffusionAttnProcessor", "CustomDiffusionAttnProcessor2_0",
                "CustomDiffusionXFormersAttnProcessor")
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
    ip_procs = ("IPAdapterAttnProcessor", "IPAdapterAttnProcessor2_0", "IPAdapterXFormersAttnProcessor")
    CI = 20
    ip4 = rnd("ip4", B, 4, CI)
    ip2 = rnd("ip2", B, 2, CI)
    ip_multi = rnd("ip_multi", B, 3, 2, CI)  # 3 images x 2 tokens
    ip_multi2 = rnd("ip_multi2", B, 2, 4, CI)
    mask3 = G.rng_for("ipmask3").random((1, 3, 8, 8)).astype(np.float32)
    mask2 = (G.rng_for("ipmask2").random((1, 2, 6, 6)) > 0.5).astype(np.float32)
    mask_nonsq = G.rng_for("ipmask_ns").random((1, 3, 5, 9)).astype(np.float32)
    x18 = rnd("x18", B, 18, C)
    x14 = rnd("x14", B, 14, C)
    ip1 = dict(hidden_size=C, cross_attention_dim=CI, num_tokens=(4,), scale=0.7)
    ip2k = dict(hidden_size=C, cross_attention_dim=CI, num_tokens=[2, 6], scale=[0.5, 1.5])
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="classic-processor golden fixtures")
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the files on disk")
    args, _ = ap.parse_known_args(argv)

    g = Gen()
    build_grid(g)
    index = G.golden_index(
        g.cases, "Tests/Fixtures/gen_classic.py",
        "diffusers.models.attention_processor (Attention, every classic processor, SpatialNorm) on CPU, "
        "float32, eval mode; hardware back ends emulated as listed in 'emulation' and per case in 'emulated'",
        emulation=EMULATION)
    blobs = {f: G.write_npz(st.arrays) for f, st in g.files.items()}
    blobs["index.json"] = G.dump_index(index).encode()

    rc = G.sync_dir(OUT_DIR, blobs, args.check, f"classic ({len(g.cases)} cases)")
    if args.check:
        return rc
    for k, v in index["counts"].items():
        print(f"  {k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
