"""Kernel mode of diffattn.diffusers: diffusers computes everything but the attention itself.

Two routes reach `scaled_dot_product_attention` (docs/diffusers.md "How kernel mode reaches the
attention"):

* processors that call `F.scaled_dot_product_attention` themselves (diffusers
  models/attention_processor.py, AttnProcessor2_0.__call__ and ~30 others) get a twin instance of a
  generated subclass whose SDPA-calling methods are the same code objects run with a copy of their
  module's globals in which `F` is `_FUNCTIONAL` — so no module, and nothing process-wide, changes;
* processors that call `dispatch_attention_fn` (transformer_flux.py FluxAttnProcessor.__call__ …)
  get the `diffattn` attention backend in their `_attention_backend` field.

Calls are counted in the session of the attention module running (a forward pre-hook sets it).
"""

import contextvars
import dis
import inspect
import types

from ._torch import lazy_torch as torch
from .sdpa import scaled_dot_product_attention as _da_sdpa

_current = contextvars.ContextVar("diffattn_session", default=None)
_LSE = "return_lse" in inspect.signature(_da_sdpa).parameters   # the library's da_sdpa_with_lse


class Session:
    """What use_diffattn changed on one model, and the calls served since."""

    def __init__(self, mode):
        self.mode = mode
        self.calls = 0
        self.fallbacks = 0
        self.reasons = {}
        self.undo = []   # callables, run in reverse by restore

    def fallback(self, reason, calls=1):
        self.fallbacks += calls
        self.reasons[reason] = self.reasons.get(reason, 0) + calls

    def note(self, reason):
        """A module left as diffusers runs it (counted per module, not per call)."""
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


_orphan = Session("kernel")   # calls made outside any converted module's forward


def session():
    return _current.get() or _orphan


def enter(s):
    return _current.set(s)


def leave(token):
    _current.reset(token)


# --- the attention ------------------------------------------------------------------------
def _unserved(query, key, value, attn_mask, dropout_p, is_causal):
    """Why libdiffattn cannot take this call, or None."""
    tensors = (query, key, value) if attn_mask is None else (query, key, value, attn_mask)
    if any(t.device.type != "cpu" for t in tensors):
        return "not on the CPU"
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return "grad required"
    if dropout_p:
        return "dropout_p > 0 (training)"
    if any(t.dtype not in (torch.float32, torch.bfloat16) for t in (query, key, value)):
        return f"dtype {query.dtype}"
    if query.ndim not in (3, 4) or key.ndim != query.ndim or value.ndim != query.ndim:
        return f"rank {query.ndim} tensors"
    if attn_mask is not None and not (attn_mask.dtype == torch.bool or attn_mask.is_floating_point()):
        return f"mask dtype {attn_mask.dtype}"
    if attn_mask is not None and is_causal:
        return "mask with is_causal"
    return None


def _out_like_heads_last(query, value):
    """(B, H, Nq, Dv) view of a (B, Nq, H, Dv) allocation: the `transpose(1, 2).reshape(…)` or
    `flatten(2, 3)` a processor does next is then free."""
    if query.ndim != 4:
        return None
    b, h, n = query.shape[:3]
    return torch.empty(b, n, h, value.shape[-1], dtype=torch.float32).permute(0, 2, 1, 3)


def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """torch.nn.functional.scaled_dot_product_attention, computed by libdiffattn when it can be."""
    s = session()
    reason = _unserved(query, key, value, attn_mask, dropout_p, is_causal)
    if reason is None:
        try:
            out = _da_sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale,
                           enable_gqa=enable_gqa, out=_out_like_heads_last(query, value))
            s.calls += 1
            return out
        except (TypeError, ValueError) as e:
            reason = f"library: {e}"
    s.fallback(reason)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                                           dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                                                           enable_gqa=enable_gqa)


class _Functional:
    """`torch.nn.functional` with SDPA replaced: what `F` names inside a rebound processor."""

    scaled_dot_product_attention = staticmethod(sdpa)

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)


_FUNCTIONAL = _Functional()


# --- processors that call F.scaled_dot_product_attention --------------------------------------
def _calls_sdpa(code):
    """Whether `code` (or a nested function's code) loads `F` and the attribute
    `scaled_dot_product_attention`."""
    names = set(code.co_names)
    if "F" in names and "scaled_dot_product_attention" in names:
        return any(i.argval == "F" and i.opname == "LOAD_GLOBAL" for i in dis.get_instructions(code))
    return any(_calls_sdpa(c) for c in code.co_consts if isinstance(c, types.CodeType))


_globals_copies = {}   # id(module globals) → (globals, copy with F = _FUNCTIONAL)
_rebound_classes = {}  # processor class → generated subclass (or None: nothing to reroute)


def _rebind(fn):
    g = fn.__globals__
    entry = _globals_copies.get(id(g))
    if entry is None or entry[0] is not g:
        copy = dict(g)
        copy["F"] = _FUNCTIONAL
        entry = _globals_copies[id(g)] = (g, copy)
    new = types.FunctionType(fn.__code__, entry[1], fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    for attr in ("__qualname__", "__doc__", "__module__", "__annotations__"):
        setattr(new, attr, getattr(fn, attr))
    new.__dict__.update(fn.__dict__)
    return new


def rebound_class(cls):
    """`Diffattn<Name>`: a subclass whose SDPA-calling methods see `_FUNCTIONAL` as `F`; None when
    the class never calls F.scaled_dot_product_attention."""
    if cls in _rebound_classes:
        return _rebound_classes[cls]
    methods = {}
    for klass in cls.__mro__:
        for name, fn in vars(klass).items():
            if (name not in methods and isinstance(fn, types.FunctionType)
                    and fn.__globals__.get("F") is torch.nn.functional and _calls_sdpa(fn.__code__)):
                methods[name] = _rebind(fn)
    sub = None
    if methods:
        # the name keeps the wrapped one inside it: diffusers tests `"Added" in name` (attention.py)
        sub = type(f"Diffattn{cls.__name__}", (cls,), dict(methods, __module__=__name__,
                                                           _diffattn_wrapped=cls))
    _rebound_classes[cls] = sub
    return sub


def twin(processor, sub):
    """An instance of `sub` sharing `processor`'s __dict__: same weights, same state-dict keys,
    same settings; the original object is left untouched for restore."""
    new = sub.__new__(sub)
    object.__setattr__(new, "__dict__", processor.__dict__)
    return new


# --- processors that call dispatch_attention_fn ----------------------------------------------
def _lse_math(query, key, value, attn_mask, scale):
    """(out, lse) in torch, for return_lse when the library has no LSE entry point."""
    q, k, v = (x.float() for x in (query, key, value))
    scores = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    lse = torch.logsumexp(scores, dim=-1)
    return (torch.softmax(scores, dim=-1) @ v).to(query.dtype), lse


def backend(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
            return_lse=False, _parallel_config=None):
    """diffusers' attention-backend contract (attention_dispatch.py dispatch_attention_fn): (B, S, H, D)
    in, (B, S, H, D) out, or (out, lse (B, S, H)) with return_lse."""
    if _parallel_config is not None:
        return _context_parallel(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                                 return_lse, _parallel_config)
    # the native backend's rule (attention_dispatch.py _native_attention): (B, S_kv) → (B, 1, 1, S_kv)
    if (attn_mask is not None and attn_mask.ndim == 2 and attn_mask.shape[0] == query.shape[0]
            and attn_mask.shape[1] == key.shape[1]):
        attn_mask = attn_mask[:, None, None, :]
    q, k, v = (x.permute(0, 2, 1, 3) for x in (query, key, value))
    if return_lse:
        return _with_lse(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    return sdpa(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa).permute(0, 2, 1, 3)


def _with_lse(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa):
    s = session()
    reason = _unserved(q, k, v, attn_mask, dropout_p, is_causal)
    if reason is None and _LSE:
        out, lse = _da_sdpa(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
                            return_lse=True)
        s.calls += 1
    else:
        s.fallback(reason or "return_lse: this libdiffattn has no da_sdpa_with_lse")
        out, lse = _lse_math(q, k, v, attn_mask, scale)
    return out.permute(0, 2, 1, 3), lse.permute(0, 2, 1)


def _cp_forward_op(ctx, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                   enable_gqa=False, return_lse=False, _save_ctx=True, _parallel_config=None):
    q, k, v = (x.permute(0, 2, 1, 3) for x in (query, key, value))
    out, lse = _with_lse(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    return (out, lse) if return_lse else out


def _cp_backward_op(ctx, grad_out, *args, **kwargs):
    raise NotImplementedError("libdiffattn is inference only: no backward pass")


def _context_parallel(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, return_lse, config):
    from diffusers.models import attention_dispatch as d
    return d._templated_context_parallel_attention(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, return_lse,
        forward_op=_cp_forward_op, backward_op=_cp_backward_op, _parallel_config=config)


def register_backend():
    """The `diffattn` member of diffusers' AttentionBackendName, registered with `backend` (spec:
    the enum cannot be subclassed, so the member is made as the enum machinery makes one and added
    to its maps). Additive: no existing name changes. Idempotent."""
    from diffusers.models import attention_dispatch as d
    enum = d.AttentionBackendName
    member = enum._value2member_map_.get("diffattn")
    if member is None:
        member = str.__new__(enum, "diffattn")
        member._name_, member._value_ = "DIFFATTN", "diffattn"
        member.__objclass__ = enum
        type.__setattr__(enum, "DIFFATTN", member)
        enum._member_map_["DIFFATTN"] = member
        enum._value2member_map_["diffattn"] = member
        enum._member_names_.append("DIFFATTN")
        if enum("diffattn") is not member or member not in list(enum):
            raise RuntimeError("could not add 'diffattn' to diffusers' AttentionBackendName on this Python")
    if d._AttentionBackendRegistry._backends.get(member) is not backend:
        d._AttentionBackendRegistry.register(member, constraints=[d._check_device, d._check_shape],
                                             supports_context_parallel=_LSE)(backend)
    return member

