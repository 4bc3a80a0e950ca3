"""Run diffusers pipelines' attention in libdiffattn (docs/diffusers.md).

    import diffattn.diffusers as dd
    pipe = dd.use_diffattn(pipe)            # or a single model, e.g. pipe.transformer
    image = pipe(...).images[0]
    dd.stats(pipe)                          # {"calls": …, "fallbacks": …, "fallback_reasons": {…}}
    dd.restore(pipe)                        # diffusers' own processors and backends again

mode="kernel": every attention computation (F.scaled_dot_product_attention in a processor, or
dispatch_attention_fn) runs on libdiffattn's SDPA; diffusers does the rest. mode="module": the
whole attention module runs in libdiffattn for the processor classes it implements, reading the
torch parameters in place; other modules get kernel mode. torch and diffusers are imported on
first use, so `import diffattn.diffusers` works without them.
"""

import weakref

from . import _diffusers_kernel as k
from . import _diffusers_module as m
from ._torch import lazy_torch as torch

MODES = ("kernel", "module")
_sessions = weakref.WeakKeyDictionary()   # torch module (a model) → its Session


def _models(obj):
    """The torch modules use_diffattn works on: a pipeline's module components, or `obj` itself."""
    if isinstance(obj, torch.nn.Module):
        return [obj]
    components = getattr(obj, "components", None)
    if isinstance(components, dict):
        return [c for c in components.values() if isinstance(c, torch.nn.Module)]
    raise TypeError(f"use_diffattn takes a diffusers pipeline or a torch.nn.Module, got {type(obj).__name__}")


def _attention_modules(model):
    for name, m in model.named_modules():
        if hasattr(m, "set_processor") and hasattr(m, "processor"):
            yield name, m


def register_backend():
    """Adds `diffattn` to diffusers' attention backends and returns its AttentionBackendName member, for
    `model.set_attention_backend("diffattn")` or `with attention_backend("diffattn"):` (those set the
    process-global backend; use_diffattn does not)."""
    return k.register_backend()


def use_diffattn(obj, mode="kernel"):
    """Routes `obj`'s attention to libdiffattn and returns `obj`. Idempotent; a different mode
    replaces the previous one. Apply after diffusers switches that install processors (PAG,
    load_ip_adapter, fuse_qkv_projections, set_default_attn_processor)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for model in _models(obj):
        current = _sessions.get(model)
        if current is not None and current.mode == mode:
            continue
        if current is not None:
            _restore_model(model)
        _sessions[model] = _convert(model, mode)
    return obj


def restore(obj):
    """Undoes use_diffattn on `obj`: the original processor objects and backend fields come back."""
    for model in _models(obj):
        _restore_model(model)
    return obj


def stats(obj):
    """{"calls", "fallbacks", "fallback_reasons"} since use_diffattn, summed over a pipeline's models.
    A call is one attention computation served by libdiffattn (a kernel call or a module forward);
    fallbacks are calls diffusers computed itself, by reason. fallback_reasons also counts, once per
    module, modules left to diffusers (e.g. "AttnProcessor: no SDPA call")."""
    calls, fallbacks, reasons = 0, 0, {}
    for model in _models(obj):
        s = _sessions.get(model)
        if s is None:
            continue
        calls += s.calls
        fallbacks += s.fallbacks
        for r, n in s.reasons.items():
            reasons[r] = reasons.get(r, 0) + n
    return {"calls": calls, "fallbacks": fallbacks, "fallback_reasons": reasons}


def _restore_model(model):
    s = _sessions.pop(model, None)
    if s is not None:
        for undo in reversed(s.undo):
            undo()


def _convert(model, mode):
    s = k.Session(mode)
    member = None
    for _, attn in _attention_modules(model):
        processor = attn.processor
        if mode == "module":
            reason = m.install(attn, s)
            if reason is None:
                _hook(attn, s)
                continue
            s.note(f"{type(processor).__name__}: kernel mode ({reason})")
        routed = False
        if hasattr(processor, "_attention_backend"):
            member = member or k.register_backend()
            _set_backend(processor, member, s)
            routed = True
        sub = k.rebound_class(type(processor))
        if sub is not None:
            _swap_processor(attn, processor, k.twin(processor, sub), s)
            routed = True
        if routed:
            _hook(attn, s)
        else:
            s.note(f"{type(processor).__name__}: no SDPA call, left to diffusers")
    return s


_UNSET = object()


def _set_backend(processor, member, s):
    had = processor.__dict__.get("_attention_backend", _UNSET)
    processor._attention_backend = member

    def undo():
        if had is _UNSET:
            processor.__dict__.pop("_attention_backend", None)
        else:
            processor._attention_backend = had
    s.undo.append(undo)


def _swap_processor(attn, old, new, s):
    attn.set_processor(new)
    s.undo.append(lambda: attn.set_processor(old))


def _hook(attn, s):
    """Counts the module's calls in `s` (a context variable set around its forward)."""
    tokens = []

    def pre(module, args):
        tokens.append(k.enter(s))

    def post(module, args, output):
        if tokens:
            k.leave(tokens.pop())
    h1 = attn.register_forward_pre_hook(pre)
    h2 = attn.register_forward_hook(post, always_call=True)
    s.undo.append(h1.remove)
    s.undo.append(h2.remove)
