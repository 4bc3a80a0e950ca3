"""The attention-module fixture generator's case recorder (`Gen`): builds diffusers' `Attention`,
runs it and records each case of Tests/Fixtures/attention/ (format: generate.py's docstring)."""

import numpy as np

from fixture_io import err_record, jsonable, random_weight, ref, rng_for

PROCS = ("AttnProcessor", "AttnProcessor2_0")
ATTRS = ("heads", "inner_dim", "inner_kv_dim", "scale", "sliceable_head_dim", "is_cross_attention")


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
            new[k] = random_weight(rng, shape, leaf, is_norm)
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
