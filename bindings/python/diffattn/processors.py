"""diffusers' attention processor classes, by the same names.

A processor object here only records its class and constructor arguments; the computation is
in the library. Every diffusers class name exists so that imports port unchanged;
`is_implemented()` says whether this build can run it.
"""

import ctypes

from ._core import check
from ._lib import ProcessorConfig, defaults, lib

# Family values of the C API (DA_PROCESSOR_FAMILY_*): they choose a class's constructor.
_CUSTOM_DIFFUSION, _IP_ADAPTER, _DIT_SD3_IP_ADAPTER, _DIT_FLUX_IP_ADAPTER = 3, 4, 11, 12


def _library_kinds():
    """[(kind, diffusers class name, family)] of every processor class the library names, in header order."""
    result = []
    for i in range(lib.da_processor_kind_count()):
        kind, family = ctypes.c_int32(), ctypes.c_int32()
        check(lib.da_processor_kind_at(i, ctypes.byref(kind)))
        check(lib.da_processor_family(kind.value, ctypes.byref(family)))
        result.append((kind.value, lib.da_processor_name(kind.value).decode(), family.value))
    return result


_KINDS = _library_kinds()
PROCESSOR_NAMES = tuple(name for _, name, _ in _KINDS)
# Kinds whose processors carry IP-Adapter scales (classic and DiT IP-Adapters).
IP_ADAPTER_KINDS = frozenset(k for k, _, f in _KINDS if f in (_IP_ADAPTER, _DIT_SD3_IP_ADAPTER, _DIT_FLUX_IP_ADAPTER))


def _family_defaults(family):
    """The C API's constructor defaults (da_processor_config_init) of the first kind of `family`."""
    kind = next(k for k, _, f in _KINDS if f == family)
    return defaults(ProcessorConfig, lib.da_processor_config_init, kind)


_CUSTOM_DIFFUSION_DEFAULTS = _family_defaults(_CUSTOM_DIFFUSION)
_SD3_IP_ADAPTER_DEFAULTS = _family_defaults(_DIT_SD3_IP_ADAPTER)

# Keyword names (beyond hidden_states, encoder_hidden_states, attention_mask) each processor's
# __call__ declares; other keywords given to Attention.__call__ are warned about and dropped
# (attention_processor.py:Attention.forward).
_NO_KEYWORDS = ("SlicedAttnProcessor", "XFormersAttnAddedKVProcessor", "AttnAddedKVProcessor",
                "AttnAddedKVProcessor2_0", "CustomDiffusionAttnProcessor", "CustomDiffusionAttnProcessor2_0",
                "CustomDiffusionXFormersAttnProcessor")
_IP_KEYWORDS = ("temb", "scale", "ip_adapter_masks")
# The DiT processors' keywords (their __call__ in attention_processor.py and transformer_flux.py).
_DIT_KEYWORDS = {
    **{n: () for n in ("JointAttnProcessor2_0", "FusedJointAttnProcessor2_0", "XFormersJointAttnProcessor",
                       "PAGJointAttnProcessor2_0", "PAGCFGJointAttnProcessor2_0", "AuraFlowAttnProcessor2_0",
                       "FusedAuraFlowAttnProcessor2_0", "MochiVaeAttnProcessor2_0", "SanaLinearAttnProcessor2_0",
                       "PAGCFGSanaLinearAttnProcessor2_0", "PAGIdentitySanaLinearAttnProcessor2_0",
                       "SanaMultiscaleAttnProcessor2_0")},
    **{n: ("image_rotary_emb",) for n in ("CogVideoXAttnProcessor2_0", "FusedCogVideoXAttnProcessor2_0",
                                          "MochiAttnProcessor2_0", "FluxAttnProcessor", "FluxAttnProcessor2_0",
                                          "FusedFluxAttnProcessor2_0", "FluxAttnProcessor2_0_NPU",
                                          "FusedFluxAttnProcessor2_0_NPU", "FluxSingleAttnProcessor2_0",
                                          "XLAFluxFlashAttnProcessor2_0")},
    **{n: ("temb", "image_rotary_emb") for n in ("HunyuanAttnProcessor2_0", "FusedHunyuanAttnProcessor2_0",
                                                 "PAGHunyuanAttnProcessor2_0", "PAGCFGHunyuanAttnProcessor2_0",
                                                 "AllegroAttnProcessor2_0")},
    "LuminaAttnProcessor2_0": ("query_rotary_emb", "key_rotary_emb", "base_sequence_length"),
    "StableAudioAttnProcessor2_0": ("rotary_emb",),
    "SD3IPAdapterJointAttnProcessor2_0": ("ip_hidden_states", "temb"),
    "FluxIPAdapterJointAttnProcessor2_0": ("image_rotary_emb", "ip_hidden_states", "ip_adapter_masks"),
    "FluxIPAdapterAttnProcessor": ("image_rotary_emb", "ip_hidden_states", "ip_adapter_masks"),
}


class AttentionProcessor:
    """Base of every processor class: a kind and its constructor arguments."""

    _kind = 0
    _family = 0

    def __init__(self):
        pass

    @classmethod
    def is_implemented(cls):
        return bool(lib.da_processor_is_implemented(cls._kind))

    def _config(self):
        c = ProcessorConfig()
        check(lib.da_processor_config_init(ctypes.byref(c), ctypes.sizeof(c), self._kind))
        c.slice_size = getattr(self, "slice_size", 0) or 0
        return c

    @property
    def call_keywords(self):
        name = type(self).__name__
        if name in _DIT_KEYWORDS:
            return _DIT_KEYWORDS[name]
        if name in _NO_KEYWORDS:
            return ()
        return _IP_KEYWORDS if self._family == _IP_ADAPTER else ("temb",)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _CustomDiffusion(AttentionProcessor):
    """Custom Diffusion: optional replacement projections, registered as `processor.*` weights."""

    _train_q_out_default = True  # each class's own default is read from the library (_make_class)

    def __init__(self, train_kv=bool(_CUSTOM_DIFFUSION_DEFAULTS.train_kv), train_q_out=None, hidden_size=None,
                 cross_attention_dim=None, out_bias=bool(_CUSTOM_DIFFUSION_DEFAULTS.out_bias),
                 dropout=_CUSTOM_DIFFUSION_DEFAULTS.dropout, attention_op=None):
        self.train_kv = bool(train_kv)
        self.train_q_out = self._train_q_out_default if train_q_out is None else bool(train_q_out)
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.out_bias = bool(out_bias)
        self.dropout = dropout
        self.attention_op = attention_op

    def _config(self):
        c = super()._config()
        c.train_kv, c.train_q_out, c.out_bias = self.train_kv, self.train_q_out, self.out_bias
        c.hidden_size = _optional_size(self.hidden_size, "hidden_size")
        c.cross_attention_dim = _optional_size(self.cross_attention_dim, "cross_attention_dim")
        c.dropout = float(self.dropout)
        return c


class _IPAdapter(AttentionProcessor):
    """IP-Adapter: extra attentions over image tokens; weights `processor.to_k_ip.{k}`, …"""

    def __init__(self, hidden_size, cross_attention_dim=None, num_tokens=(4,), scale=1.0, attention_op=None):
        if not isinstance(num_tokens, (tuple, list)):
            num_tokens = [num_tokens]
        if not isinstance(scale, list):
            scale = [scale] * len(num_tokens)  # a tuple is "not a list" and is replicated whole, as diffusers does
        if len(scale) != len(num_tokens):
            raise ValueError("`scale` should be a list of integers with the same length as `num_tokens`.")
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.attention_op = attention_op
        self._attention = None
        self._scale = scale

    @property
    def scale(self):
        return self._scale

    @scale.setter
    def scale(self, value):
        # Pipelines set the adapter strength here; it takes effect on the module at once.
        self._scale = value
        attention = self._attention() if self._attention is not None else None
        if attention is not None and attention._processor is self:
            config = self._config()
            check(lib.da_attention_update_processor(attention._handle, ctypes.byref(config)))

    def _config(self):
        c = super()._config()
        c.hidden_size = _optional_size(self.hidden_size, "hidden_size")
        c.cross_attention_dim = _optional_size(self.cross_attention_dim, "cross_attention_dim")
        scale = self._scale if isinstance(self._scale, list) else [self._scale] * len(self.num_tokens)
        counts, values = [], []
        for s in scale:
            if isinstance(s, (list, tuple)):
                if not all(isinstance(v, (int, float)) for v in s):
                    raise TypeError(f"IP-Adapter scale entries must be numbers or lists of numbers, got {s!r}")
                counts.append(len(s))
                values.extend(float(v) for v in s)
            elif isinstance(s, (int, float)):
                counts.append(0)
                values.append(float(s))
            else:
                raise TypeError(f"IP-Adapter scale entries must be numbers or lists of numbers, got {s!r}")
        c.num_ip_adapters = len(self.num_tokens)
        self._arrays = ((ctypes.c_int64 * len(self.num_tokens))(*[int(t) for t in self.num_tokens]),
                        (ctypes.c_int32 * len(counts))(*counts), (ctypes.c_double * max(len(values), 1))(*values))
        c.num_tokens, c.scale_counts, c.scales = (ctypes.cast(a, ctypes.POINTER(t)) for a, t in
                                                  zip(self._arrays, (ctypes.c_int64, ctypes.c_int32, ctypes.c_double)))
        return c

    def __repr__(self):
        return (f"{type(self).__name__}(hidden_size={self.hidden_size}, cross_attention_dim={self.cross_attention_dim}, "
                f"num_tokens={self.num_tokens}, scale={self._scale})")


class _FluxIPAdapter(_IPAdapter):
    """FluxIPAdapterAttnProcessor: biased `processor.to_k_ip.{i}` / `to_v_ip.{i}`, returns (img, txt, ip_out)."""

    def __init__(self, hidden_size, cross_attention_dim, num_tokens=(4,), scale=1.0, device=None, dtype=None):
        super().__init__(hidden_size, cross_attention_dim, num_tokens, scale)


class _SD3IPAdapter(AttentionProcessor):
    """SD3IPAdapterJointAttnProcessor2_0: AdaLN-normed image tokens (`processor.norm_ip`, `to_k_ip`, ...)."""

    def __init__(self, hidden_size, ip_hidden_states_dim, head_dim,
                 timesteps_emb_dim=_SD3_IP_ADAPTER_DEFAULTS.timesteps_emb_dim, scale=0.5):
        self.hidden_size, self.ip_hidden_states_dim, self.head_dim = hidden_size, ip_hidden_states_dim, head_dim
        self.timesteps_emb_dim = timesteps_emb_dim
        self._attention = None
        self._scale = scale

    scale = _IPAdapter.scale

    def _config(self):
        c = super()._config()
        c.hidden_size = _optional_size(self.hidden_size, "hidden_size")
        c.ip_hidden_states_dim = _optional_size(self.ip_hidden_states_dim, "ip_hidden_states_dim")
        c.head_dim = _optional_size(self.head_dim, "head_dim")
        c.timesteps_emb_dim = _optional_size(self.timesteps_emb_dim, "timesteps_emb_dim")
        if isinstance(self._scale, bool) or not isinstance(self._scale, (int, float)):
            raise TypeError(f"scale must be a number, got {self._scale!r}")
        self._arrays = (ctypes.c_double * 1)(float(self._scale))
        c.num_ip_adapters, c.scales = 1, ctypes.cast(self._arrays, ctypes.POINTER(ctypes.c_double))
        return c

    def __repr__(self):
        return (f"{type(self).__name__}(hidden_size={self.hidden_size}, ip_hidden_states_dim={self.ip_hidden_states_dim}, "
                f"head_dim={self.head_dim}, timesteps_emb_dim={self.timesteps_emb_dim}, scale={self._scale})")


def _optional_size(value, name):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TypeError(f"{name} must be a positive int or None, got {value!r}")
    return value


def _with_slice_size(cls):
    def __init__(self, slice_size):
        self.slice_size = slice_size
    cls.__init__ = __init__
    cls.__repr__ = lambda self: f"{type(self).__name__}(slice_size={self.slice_size})"
    return cls


def _with_attention_op(cls):
    def __init__(self, attention_op=None):
        # xFormers' operator choice; this library always runs its own memory-efficient kernel.
        self.attention_op = attention_op
    cls.__init__ = __init__
    return cls


def _with_partition_spec(cls):
    def __init__(self, partition_spec=None):
        # XLA SPMD mesh axes; meaningless on a CPU, kept for API compatibility.
        self.partition_spec = partition_spec
    cls.__init__ = __init__
    return cls


_BASES = {_CUSTOM_DIFFUSION: _CustomDiffusion, _IP_ADAPTER: _IPAdapter, _DIT_FLUX_IP_ADAPTER: _FluxIPAdapter,
          _DIT_SD3_IP_ADAPTER: _SD3IPAdapter}


def _make_class(kind, name, family):
    base = _BASES.get(family, AttentionProcessor)
    attrs = {"_kind": kind, "_family": family, "__module__": __name__}
    if base is _CustomDiffusion:
        attrs["_train_q_out_default"] = bool(defaults(ProcessorConfig, lib.da_processor_config_init, kind).train_q_out)
    cls = type(name, (base,), attrs)
    if name.startswith("Sliced"):
        _with_slice_size(cls)
    elif "XFormers" in name and base is AttentionProcessor:
        _with_attention_op(cls)
    elif name == "XLAFlashAttnProcessor2_0":
        _with_partition_spec(cls)
    return cls


_classes = {name: _make_class(kind, name, family) for kind, name, family in _KINDS}
globals().update(_classes)

_BY_KIND = {c._kind: c for c in _classes.values()}


def from_config(c, previous=None, scale=None):
    """The processor object for a library-side ProcessorConfig; an IP-Adapter's token counts come
    from `previous` (the switches carry them over) and its scale from the library."""
    cls = _BY_KIND[c.kind]
    obj = cls.__new__(cls)
    if c.slice_size:
        obj.slice_size = c.slice_size
    if issubclass(cls, _CustomDiffusion):
        obj.train_kv, obj.train_q_out, obj.out_bias = bool(c.train_kv), bool(c.train_q_out), bool(c.out_bias)
        obj.hidden_size = c.hidden_size or None
        obj.cross_attention_dim = c.cross_attention_dim or None
        obj.dropout, obj.attention_op = c.dropout, None
    elif issubclass(cls, _SD3IPAdapter):
        obj.hidden_size, obj.ip_hidden_states_dim = c.hidden_size or None, c.ip_hidden_states_dim or None
        obj.head_dim, obj.timesteps_emb_dim = c.head_dim or None, c.timesteps_emb_dim
        obj._scale, obj._attention = scale[0] if scale else 0.5, None
    elif issubclass(cls, _IPAdapter):
        obj.hidden_size = c.hidden_size or None
        obj.cross_attention_dim = c.cross_attention_dim or None
        obj.num_tokens = getattr(previous, "num_tokens", [4] * c.num_ip_adapters)
        obj._scale, obj._attention, obj.attention_op = scale, None, None
    elif "XFormers" in cls.__name__:
        obj.attention_op = None
    return obj


__all__ = ["AttentionProcessor", *PROCESSOR_NAMES]
