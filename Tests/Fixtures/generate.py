#!/usr/bin/env python3
"""Golden-fixture generator for diffattn's parity tests (issue 2).

Runs the reference implementation -- Hugging Face diffusers' ``Attention`` module and
``torch.nn.functional.scaled_dot_product_attention`` on the CPU, float32, eval mode -- over a
grid of options, and writes the results to ``Tests/Fixtures/attention/``.

Usage (needs torch + diffusers; the committed data was made with the versions recorded in the index):

    /work/venv-ref/bin/python Tests/Fixtures/generate.py            # rewrite the fixtures
    /work/venv-ref/bin/python Tests/Fixtures/generate.py --check    # regenerate in memory, compare

Everything is deterministic: every case draws its random numbers from a numpy generator seeded
with the CRC-32 of the case's (config) name, and the .npz files are written with fixed zip
timestamps, so re-running with the same library versions reproduces the files byte for byte.

FORMAT
======

``attention/index.json``::

    {
      "format": "diffattn-golden", "format_version": 1,
      "generator": "Tests/Fixtures/generate.py",
      "versions": {"diffusers": "0.42.1", "torch": "...", "numpy": "...", "python": "..."},
      "reference": "CPU, float32, module in eval mode",
      "tolerance": {"rtol": 2e-4},
      "counts": {"<category>": n, ...},
      "cases": [ <case>, ... ]
    }

Each ``<case>`` is a JSON object:

``name``       unique id (``[a-z0-9_.-]+``), used as the pytest id.
``kind``       ``"construct"`` -- build an ``Attention``, check attributes/processor/state-dict names;
               ``"forward"``   -- build, load weights, ``set_processor``, call the module;
               ``"helper"``    -- build, load weights, call one helper method;
               ``"sdpa"``      -- call ``scaled_dot_product_attention`` (no module).
``category``   finer grouping for reports (e.g. ``"mask"``, ``"qk_norm"``, ``"construct_error"``).
``file``       the .npz holding this case's arrays (relative to ``attention/``; several cases
               may share one file, e.g. the two processors of one configuration). Construct
               cases have no file (they check names/shapes only, not numbers).
``init``       (construct/forward/helper) keyword arguments for ``Attention(**init)``, plain JSON
               (``null`` = ``None``). Cases that fail at construction have ``expect.stage = "init"``.
``state_dict`` (when the module builds) ``[[key, [shape...]], ...]`` exactly as diffusers'
               ``state_dict()`` reports it, in diffusers' order. For forward/helper cases the
               weights are the arrays ``param/<key>`` of ``file`` (random, non-trivial: norm
               weights are not ones, biases not zeros; values are float16-representable so the
               files compress well); load them with ``load_state_dict``.
``attributes`` (when the module builds) ``heads``, ``inner_dim``, ``inner_kv_dim``, ``scale``,
               ``sliceable_head_dim``, ``is_cross_attention`` read from the diffusers module.
``default_processor`` (when the module builds) ``type(attn.processor).__name__`` right after
               construction (the ``init`` never passes a processor).
``processor``  (forward) the processor class to install with ``set_processor`` before the call,
               or ``null`` to keep the default one.
``call``       ``{"method": m, "args": [...], "kwargs": {...}}``; ``m`` is ``"__call__"`` for
               forward cases, the helper name for helper cases, ``"scaled_dot_product_attention"``
               for sdpa cases. Argument values are JSON scalars or array references.
``expect``     either ``{"output": <array reference or null>}`` (``null`` = the call returns
               ``None``; construct cases that build use ``null``) or
               ``{"error": {"type": "<class name>", "message": "...", "accept": [...]},
               "stage": "init" | "call"}``. ``type`` and ``message`` are the reference's;
               ``accept`` lists the exception classes diffattn may raise: ``[type]`` when
               diffusers raises ValueError/TypeError deliberately, else ``["ValueError",
               "TypeError"]`` (torch shape errors, AttributeError/AssertionError, and TypeErrors
               that are mere ``None`` dereferences such as calling a missing ``to_k``).
               ``stage`` "call" means construction and weight loading succeed and the call fails.

An *array reference* is ``{"$array": "<key in file>"}`` with optional ``"transpose": [axes]``
and/or ``"slice": [[start, stop, step] | null, ...]`` (one entry per axis; ``null`` = whole
axis) which the loader applies to the stored array as *views* -- this is how non-contiguous
(strided) inputs are described. Stored key prefixes: ``param/`` weights, ``in/`` inputs,
``out/`` expected outputs (``out/<processor>`` for forward cases, ``out/default`` when the
default processor is used; in the shared sdpa file per-case arrays are ``in/<name>/...`` and
``out/<name>/result``). Masks are stored as float32
(additive) or bool. Expected outputs may contain NaN (e.g. a fully ``-inf``-masked row under
``AttnProcessor``); NaN positions must match exactly.
"""

import argparse
import io
import json
import os
import platform
import sys
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "attention")
DATE = (1980, 1, 1, 0, 0, 0)

PROCS = ("AttnProcessor", "AttnProcessor2_0")
ATTRS = ("heads", "inner_dim", "inner_kv_dim", "scale", "sliceable_head_dim", "is_cross_attention")

# --------------------------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------------------------


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def ref(key, **extra):
    d = {"$array": key}
    d.update(extra)
    return d


def write_npz(arrays):
    """A standard .npz (loadable by np.load) with fixed timestamps -> byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            a = np.ascontiguousarray(arrays[key])
            b = io.BytesIO()
            np.lib.format.write_array(b, a, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, b.getvalue())
    return buf.getvalue()


def err_record(e):
    msg = str(e).strip().splitlines()
    msg = (msg[0] if msg else "")[:400]
    t = type(e).__name__
    # Errors diffusers raises on purpose (ValueError/TypeError) must be matched by class; the
    # accidental ones (shape errors from torch, None dereferences, assertions) may come back
    # from diffattn as either ValueError or TypeError.
    if t in ("ValueError", "TypeError") and not msg.startswith("'NoneType' object"):
        accept = [t]
    else:
        accept = ["ValueError", "TypeError"]
    return {"type": t, "message": msg, "accept": accept}


def f16r(a):
    """float32 array whose values are exactly representable in float16: still random and
    non-trivial, but the stored bytes compress about twice as well (keeps the fixtures small)."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def sync_dir(out_dir, blobs, check, label):
    """Writes {file: bytes} into out_dir (removing stale files), or with `check` compares them;
    returns 1 when a check finds differences."""
    if check:
        bad = [f for f, b in blobs.items()
               if not os.path.exists(os.path.join(out_dir, f)) or open(os.path.join(out_dir, f), "rb").read() != b]
        extra = sorted(set(os.listdir(out_dir)) - set(blobs)) if os.path.isdir(out_dir) else []
        print(f"{label}: {len(blobs)} files, {len(bad)} differ, {len(extra)} stale")
        return 1 if bad or extra else 0
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f not in blobs:
            os.remove(os.path.join(out_dir, f))
    for f, b in blobs.items():
        with open(os.path.join(out_dir, f), "wb") as fh:
            fh.write(b)
    print(f"{label}: wrote {len(blobs)} files, {sum(len(b) for b in blobs.values()) / 1e6:.2f} MB to {out_dir}")
    return 0


def jsonable(v):
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------


class Gen:
    def __init__(self):
        import torch
        import diffusers
        from diffusers.models import attention_processor as ap

        self.torch = torch
        self.diffusers = diffusers
        self.ap = ap
        torch.manual_seed(0)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        self.cases = []
        self.files = {}  # file name -> dict of arrays

    # ---- module helpers ---------------------------------------------------------------------

    def t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a))

    def randomize(self, attn, rng):
        """Deterministic, non-trivial parameter values; returns the numpy state dict."""
        torch = self.torch
        sd = attn.state_dict()
        new = {}
        for k, v in sd.items():
            shape = tuple(v.shape)
            leaf = k.rsplit(".", 1)[-1]
            is_norm = ("norm" in k) and not k.startswith("spatial_norm.conv")
            if leaf == "weight" and is_norm:
                a = 1.0 + 0.3 * rng.standard_normal(shape)
            elif leaf == "bias":
                a = 0.1 * rng.standard_normal(shape)
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
                a = rng.standard_normal(shape) / np.sqrt(fan_in)
            new[k] = f16r(a)
        attn.load_state_dict({k: torch.from_numpy(v) for k, v in new.items()}, strict=True)
        return new

    def build(self, init, rng):
        """Returns (attn or None, record-dict, arrays)."""
        rec = {"init": init}
        arrays = {}
        try:
            attn = self.ap.Attention(**init)
        except Exception as e:  # noqa: BLE001 - the reference's error is the data
            rec["expect"] = {"error": err_record(e), "stage": "init"}
            return None, rec, arrays
        attn.eval()
        sd = self.randomize(attn, rng)
        rec["state_dict"] = [[k, list(v.shape)] for k, v in attn.state_dict().items()]
        rec["attributes"] = {a: jsonable(getattr(attn, a)) for a in ATTRS}
        rec["default_processor"] = type(attn.processor).__name__
        for k, v in sd.items():
            arrays["param/" + k] = v
        return attn, rec, arrays

    def add_file(self, fname, arrays):
        assert fname not in self.files, fname
        self.files[fname] = arrays

    def add_case(self, case):
        assert all(c["name"] != case["name"] for c in self.cases), case["name"]
        self.cases.append(case)

    # ---- case kinds -------------------------------------------------------------------------

    def construct(self, name, init, category="construct"):
        rng = rng_for(name)
        attn, rec, arrays = self.build(init, rng)
        case = {"name": name, "kind": "construct", "category": category}
        case.update(rec)
        if attn is not None:
            case["expect"] = {"output": None}
        self.add_case(case)

    def forward(self, name, init, inputs, category, processors=PROCS):
        """inputs: dict call-kwarg -> numpy array (hidden_states required) or callable(rng)."""
        torch = self.torch
        rng = rng_for(name)
        attn, rec, arrays = self.build(init, rng)
        fname = name + ".npz"
        call_kwargs = {}
        tin = {}
        for k, v in inputs.items():
            a = v(rng) if callable(v) else v
            arrays["in/" + k] = a
            call_kwargs[k] = ref("in/" + k)
            tin[k] = self.t(a)
        hs = call_kwargs.pop("hidden_states")
        for proc in processors:
            case = {"name": f"{name}__{proc if proc else 'default'}", "kind": "forward",
                    "category": category, "file": fname}
            case.update(rec)
            case["processor"] = proc
            case["call"] = {"method": "__call__", "args": [hs], "kwargs": call_kwargs}
            if attn is not None:
                if proc is not None:
                    attn.set_processor(getattr(self.ap, proc)())
                else:
                    attn.set_processor(getattr(self.ap, rec["default_processor"])())
                try:
                    with torch.no_grad():
                        out = attn(**tin)
                    key = "out/" + (proc or "default")
                    arrays[key] = out.numpy().astype(np.float32)
                    case["expect"] = {"output": ref(key)}
                except Exception as e:  # noqa: BLE001
                    case["expect"] = {"error": err_record(e), "stage": "call"}
            self.add_case(case)
        self.add_file(fname, arrays)

    def helper(self, name, init, method, args, kwargs=None, category="helper"):
        """args/kwargs: values are JSON scalars or numpy arrays (stored as in/argN / in/<kw>)."""
        torch = self.torch
        kwargs = kwargs or {}
        rng = rng_for(name)
        attn, rec, arrays = self.build(init, rng)
        assert attn is not None, name
        jargs, targs, jkw, tkw = [], [], {}, {}
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                arrays[f"in/arg{i}"] = a
                jargs.append(ref(f"in/arg{i}"))
                targs.append(self.t(a))
            else:
                jargs.append(a)
                targs.append(a)
        for k, a in kwargs.items():
            if isinstance(a, np.ndarray):
                arrays["in/" + k] = a
                jkw[k] = ref("in/" + k)
                tkw[k] = self.t(a)
            else:
                jkw[k] = a
                tkw[k] = a
        case = {"name": name, "kind": "helper", "category": category, "file": name + ".npz"}
        case.update(rec)
        case["call"] = {"method": method, "args": jargs, "kwargs": jkw}
        try:
            with torch.no_grad():
                out = getattr(attn, method)(*targs, **tkw)
            if out is None:
                case["expect"] = {"output": None}
            else:
                arrays["out/result"] = out.numpy()
                case["expect"] = {"output": ref("out/result")}
        except Exception as e:  # noqa: BLE001
            case["expect"] = {"error": err_record(e), "stage": "call"}
        self.add_file(case["file"], arrays)
        self.add_case(case)

    def sdpa(self, name, q, k, v, category="sdpa", views=None, group=None, deviation=None, **kw):
        """q,k,v: numpy arrays as stored; views: optional dict arg -> extra ref options
        (transpose/slice) applied to the stored array to form the actual argument.
        group: share one .npz between cases with the same q/k/v (stored once as in/query,
        in/key, in/value; per-case arrays under in/<name>/..., out/<name>)."""
        torch = self.torch
        F = torch.nn.functional
        views = views or {}
        fname = (group or name) + ".npz"
        if group is None:
            assert fname not in self.files, fname
        arrays = self.files.setdefault(fname, {})
        pre = "" if group is None else name + "/"
        jargs, targs = [], []
        for an, a in (("query", q), ("key", k), ("value", v)):
            key = "in/" + an
            if key in arrays:
                assert np.array_equal(arrays[key], a), (name, key)
            arrays[key] = a
            opts = views.get(an, {})
            jargs.append(ref(key, **opts))
            targs.append(apply_view(self.t(a), opts))
        jkw, tkw = {}, {}
        for kk, a in kw.items():
            if isinstance(a, np.ndarray):
                arrays["in/" + pre + kk] = a
                jkw[kk] = ref("in/" + pre + kk)
                tkw[kk] = self.t(a)
            else:
                jkw[kk] = a
                tkw[kk] = a
        case = {"name": name, "kind": "sdpa", "category": category, "file": fname,
                "call": {"method": "scaled_dot_product_attention", "args": jargs, "kwargs": jkw}}
        if deviation is not None:
            # torch accepts this input without a check and computes from memory outside the
            # tensors; libdiffattn rejects it. Recorded as a deliberate, documented deviation.
            case["expect"] = {"error": {"type": "ValueError", "message": deviation, "accept": ["ValueError"]},
                              "stage": "call", "deviation": True}
            self.add_case(case)
            return
        try:
            with torch.no_grad():
                out = F.scaled_dot_product_attention(*targs, **tkw)
            key = "out/" + (pre + "result" if pre else "result")
            arrays[key] = out.numpy().astype(np.float32)
            case["expect"] = {"output": ref(key)}
        except Exception as e:  # noqa: BLE001
            case["expect"] = {"error": err_record(e), "stage": "call"}
        self.add_case(case)


def apply_view(t, opts):
    """Same view semantics as Tests/python/fixtures.py (works on torch tensors and numpy)."""
    if "slice" in opts:
        idx = tuple(slice(None) if s is None else slice(*s) for s in opts["slice"])
        t = t[idx]
    if "transpose" in opts:
        perm = opts["transpose"]
        t = t.permute(*perm) if hasattr(t, "permute") else np.transpose(t, perm)
    return t


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------

B, C, L, S, CE = 2, 32, 16, 12, 24


def randn(*shape, s=1.0):
    return lambda rng: f16r(s * rng.standard_normal(shape))


def keep_mask(rng, shape, p=0.3):
    """Boolean keep-mask with ~p removed, never removing a whole row."""
    m = rng.random(shape) >= p
    m[..., 0] = True
    return m


def additive(rng, shape, fill=-10000.0):
    return np.where(keep_mask(rng, shape), 0.0, fill).astype(np.float32)


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


def dump_index(index):
    """Pretty JSON with one case per line (small, readable, diff-friendly)."""
    head = {k: v for k, v in index.items() if k != "cases"}
    text = json.dumps(head, indent=1, allow_nan=False)[:-2]
    lines = [json.dumps(c, allow_nan=False, separators=(", ", ": ")) for c in index["cases"]]
    return text + ',\n "cases": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def golden_index(cases, generator, reference, **extra):
    """The index.json of a golden set: format, the versions that made it, tolerance, any `extra`
    fields, the case count per category, then the cases (key order kept for byte-identical files)."""
    import diffusers
    import torch

    counts = {}
    for c in cases:
        counts[c["category"]] = counts.get(c["category"], 0) + 1
    index = {
        "format": "diffattn-golden",
        "format_version": 1,
        "generator": generator,
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "reference": reference,
        "tolerance": {"rtol": 2e-4},
    }
    index.update(extra)
    index["counts"] = dict(sorted(counts.items()))
    index["cases"] = cases
    return index


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the files on disk")
    args = ap.parse_args()

    g = Gen()
    build_grid(g)
    index = golden_index(g.cases, "Tests/Fixtures/generate.py",
                         "diffusers.models.attention_processor.Attention and torch.nn.functional."
                         "scaled_dot_product_attention on CPU, float32, module in eval mode")
    blobs = {f: write_npz(a) for f, a in g.files.items()}
    blobs["index.json"] = dump_index(index).encode()

    rc = sync_dir(OUT_DIR, blobs, args.check, f"attention ({len(g.cases)} cases)")
    if args.check:
        return rc
    for k, v in index["counts"].items():
        print(f"  {k:28s} {v}")
    print("versions:", index["versions"])
    import gen_models  # model-level fixtures (issue 5), written to Tests/Fixtures/models/
    return gen_models.main()


if __name__ == "__main__":
    rc = main()
    import gen_classic  # issue 3: classic processors, SpatialNorm, switches -> Tests/Fixtures/classic

    import gen_dit  # issue 4: DiT and joint-attention processors -> Tests/Fixtures/dit
    import gen_hooks  # issue 6: pyramid attention broadcast decisions -> Tests/Fixtures/hooks
    import gen_caches  # issue 10: cache and layer-skip decisions -> Tests/Fixtures/hooks/caches.json

    sys.exit(max(rc, gen_classic.main(), gen_dit.run("--check" in sys.argv), gen_hooks.main(), gen_caches.main()))
