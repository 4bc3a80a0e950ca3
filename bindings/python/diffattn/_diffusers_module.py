"""Module mode of diffattn.diffusers: the whole `Attention` module runs in libdiffattn.

A diffusers `Attention` (models/attention_processor.py Attention.__init__) keeps every constructor
input recoverable from its attributes and layers; `_config` rebuilds the keywords, a
`diffattn.Attention` is made from them, and its state-dict names and shapes must equal the torch
module's — else the module keeps kernel mode. Weights are borrowed (the library reads the torch
parameters' memory) where the library offers it, else copied once; either way they are re-read
when a parameter changes (torch bumps `_version` on in-place writes) or is replaced.
"""

import inspect

from . import _diffusers_kernel as k
from . import processors as _processors
from ._torch import lazy_torch as torch
from .attention import Attention
from .dit import FluxAttention

# diffusers processor classes whose whole forward the library runs without extra constructor
# arguments or fused/IP-Adapter weights held on the processor.
SUPPORTED = ("AttnProcessor", "AttnProcessor2_0", "JointAttnProcessor2_0", "AuraFlowAttnProcessor2_0",
             "CogVideoXAttnProcessor2_0", "HunyuanAttnProcessor2_0", "LuminaAttnProcessor2_0",
             "AllegroAttnProcessor2_0", "StableAudioAttnProcessor2_0", "MochiVaeAttnProcessor2_0",
             "SanaLinearAttnProcessor2_0")
# processor classes of diffusers' own module classes (not `Attention`), each with the library's
# twin of that class (transformer_flux.py FluxAttention).
SUPPORTED_CLASSES = {("FluxAttention", "FluxAttnProcessor"): FluxAttention}


def _qk_norm(attn, dim_head):
    norm = getattr(attn, "norm_q", None)
    if norm is None:
        return None, None, True
    name = type(norm).__name__
    width = getattr(norm, "normalized_shape", None) or getattr(norm, "dim", None)
    width = width[0] if isinstance(width, (tuple, list, torch.Size)) else width
    across = width is not None and width != dim_head
    affine = getattr(norm, "elementwise_affine", getattr(norm, "weight", None) is not None)
    kinds = {"LayerNorm": "layer_norm_across_heads" if across else "layer_norm", "FP32LayerNorm": "fp32_layer_norm",
             "RMSNorm": "rms_norm_across_heads" if across else "rms_norm", "LpNorm": "l2"}
    if name not in kinds:
        raise ValueError(f"norm_q {name}")
    return kinds[name], getattr(norm, "eps", None), bool(affine)


def _config(attn):
    """diffattn.Attention keywords equal to the ones `attn` was built with."""
    heads = attn.heads
    dim_head = attn.inner_dim // heads
    qk_norm, qk_eps, affine = _qk_norm(attn, dim_head)
    out = attn.to_out[0] if getattr(attn, "to_out", None) is not None else getattr(attn, "to_add_out", None)
    cfg = dict(query_dim=attn.query_dim, heads=heads, dim_head=dim_head, dropout=attn.dropout, bias=attn.use_bias,
               upcast_attention=attn.upcast_attention, upcast_softmax=attn.upcast_softmax,
               added_kv_proj_dim=attn.added_kv_proj_dim, added_proj_bias=attn.added_proj_bias,
               out_bias=out is None or out.bias is not None, scale_qk=attn.scale_qk,
               only_cross_attention=attn.only_cross_attention, rescale_output_factor=attn.rescale_output_factor,
               residual_connection=attn.residual_connection,
               _from_deprecated_attn_block=attn._from_deprecated_attn_block, context_pre_only=attn.context_pre_only,
               pre_only=attn.pre_only, is_causal=attn.is_causal, qk_norm=qk_norm, elementwise_affine=affine)
    if attn.is_cross_attention:
        cfg["cross_attention_dim"] = attn.cross_attention_dim
    if attn.inner_kv_dim != attn.inner_dim:
        cfg["kv_heads"] = attn.inner_kv_dim // dim_head
    if attn.out_dim != attn.query_dim:
        cfg["out_dim"] = attn.out_dim
    if attn.out_context_dim != attn.query_dim:
        cfg["out_context_dim"] = attn.out_context_dim
    eps = qk_eps
    if attn.group_norm is not None:
        cfg["norm_num_groups"] = attn.group_norm.num_groups
        eps = attn.group_norm.eps
    if attn.spatial_norm is not None:
        cfg["spatial_norm_dim"] = attn.spatial_norm.conv_y.in_channels
    if attn.norm_cross is not None:
        if isinstance(attn.norm_cross, torch.nn.GroupNorm):
            cfg["cross_attention_norm"] = "group_norm"
            cfg["cross_attention_norm_num_groups"] = attn.norm_cross.num_groups
        else:
            cfg["cross_attention_norm"] = "layer_norm"
    if eps is not None:
        cfg["eps"] = eps
    return cfg


def _flux_config(attn):
    """FluxAttention keywords equal to the ones `attn` was built with (transformer_flux.py
    FluxAttention.__init__: `out_dim`, when given, sets the inner width and the head count)."""
    eps = getattr(attn.norm_q, "eps", None)
    if eps is None:
        raise ValueError("norm_q has no eps")
    out = getattr(attn, "to_add_out", None) if attn.pre_only else attn.to_out[0]
    explicit_out = not (attn.inner_dim == attn.heads * attn.head_dim and attn.out_dim == attn.query_dim)
    return dict(query_dim=attn.query_dim, heads=attn.heads, dim_head=attn.head_dim, dropout=attn.dropout,
                bias=attn.use_bias, added_kv_proj_dim=attn.added_kv_proj_dim,
                added_proj_bias=bool(attn.added_proj_bias), out_bias=out is None or out.bias is not None, eps=eps,
                out_dim=attn.out_dim if explicit_out else None, context_pre_only=attn.context_pre_only,
                pre_only=attn.pre_only, elementwise_affine=attn.norm_q.weight is not None)


class _Module:
    """The library's twin of one torch Attention, kept in step with the torch parameters."""

    def __init__(self, attn, kind):
        self.torch_attn = attn
        twin = SUPPORTED_CLASSES.get((type(attn).__name__, kind))
        self.da = twin(**_flux_config(attn)) if twin is FluxAttention else Attention(**_config(attn))
        self.da.set_processor(getattr(_processors, kind)())
        ours = dict(self.da._weight_infos())
        theirs = {n: tuple(p.shape) for n, p in attn.state_dict(keep_vars=True).items()
                  if not n.startswith("processor.")}
        if ours != theirs:
            diff = sorted(set(ours.items()) ^ set(theirs.items()))[:4]
            raise ValueError(f"weights differ from the library's layout: {diff}")
        self.seen = {}
        self.copied = set()

    def sync(self):
        """Borrows each parameter again when it was replaced (new memory: LoRA fusing, group
        offloading's onload, `.to()`); a parameter that cannot be borrowed (not contiguous, not
        float32/bfloat16) is copied, and copied again after an in-place write (`_version`)."""
        params = self.torch_attn.state_dict(keep_vars=True)
        for name, p in params.items():
            if name.startswith("processor."):
                continue
            key = (id(p), p.data_ptr(), p.dtype, p._version)
            prev = self.seen.get(name)
            if prev is not None and (prev[:3] == key[:3] if prev[3] is None else prev == key):
                continue
            t = p.detach()
            if t.is_contiguous() and t.dtype in (torch.float32, torch.bfloat16):
                self.da.borrow_weight(name, t)
                self.seen[name] = key[:3] + (None,)
            else:
                self.da.load_state_dict({name: t.float()}, strict=False)
                self.seen[name] = key
                if name not in self.copied:
                    self.copied.add(name)
                    k.session().note(f"module mode: a {t.dtype} {'strided ' if not t.is_contiguous() else ''}"
                                     f"weight kept as a float32 copy")


def _processor_class(inner_cls):
    """`Diffattn<Name>Module`: a processor presenting the wrapped class's signature (diffusers'
    Attention.forward keeps only the keywords the processor's __call__ names)."""
    sig = inspect.signature(inner_cls.__call__)

    def __call__(self, attn, *args, **kwargs):
        a = {}
        for name, value in sig.bind(self, attn, *args, **kwargs).arguments.items():
            kind = sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                a.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                a[name] = value
        for name in list(sig.parameters)[:2]:   # self, attn
            a.pop(name, None)
        hidden = a.pop("hidden_states")
        if _unserved(hidden, self._module.torch_attn):
            k.session().fallback("module mode: grad or non-CPU input")
            return self._inner(attn, *args, **kwargs)
        self._module.sync()
        out = self._module.da(hidden, a.pop("encoder_hidden_states", None), a.pop("attention_mask", None),
                              **{n: v for n, v in a.items() if v is not None})
        k.session().calls += 1
        return out
    __call__.__signature__ = sig
    return type(f"Diffattn{inner_cls.__name__}Module", (), {"__call__": __call__, "__module__": __name__,
                                                           "_diffattn_wrapped": inner_cls})


_classes = {}


def _unserved(hidden, attn):
    return hidden.device.type != "cpu" or (torch.is_grad_enabled() and (
        hidden.requires_grad or any(p.requires_grad for p in attn.parameters())))


def install(attn, session):
    """Puts a module-mode processor on `attn`; returns None, or why the module keeps kernel mode."""
    processor = attn.processor
    name = type(processor).__name__
    module_class = type(attn).__name__
    if (module_class, name) in SUPPORTED_CLASSES:
        if getattr(processor, "_parallel_config", None) is not None:
            return "context parallelism set on the processor"
    elif name not in SUPPORTED:
        return "processor not run whole by the library"
    elif module_class != "Attention":
        return f"module class {module_class}"
    if isinstance(processor, torch.nn.Module):
        return "processor holds weights"
    try:
        module = _Module(attn, name)
    except (ValueError, TypeError, NotImplementedError) as e:
        return str(e)
    cls = _classes.get(type(processor)) or _classes.setdefault(type(processor), _processor_class(type(processor)))
    new = cls()
    new._module, new._inner = module, processor
    attn.set_processor(new)
    session.undo.append(lambda: attn.set_processor(processor))
    return None
