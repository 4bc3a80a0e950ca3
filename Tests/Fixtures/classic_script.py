"""The classic-processor fixture generator's recorder: emulated hardware back ends, the .npz
store, and `Script` (one case: construct, then a sequence of calls on one module) / `Gen`."""

import contextlib
import hashlib
import os
import sys
import types

import numpy as np

import generate as G

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
        out[k] = G.random_weight(rng, shape, leaf, is_norm)
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
