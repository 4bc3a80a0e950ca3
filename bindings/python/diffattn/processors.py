"""diffusers' attention processor classes, by the same names.

A processor object here only records its class and constructor arguments; the computation is
in the library. Every diffusers class name exists so that imports port unchanged;
`is_implemented()` says whether this build can run it.
"""

import ctypes

from ._core import check
from ._lib import ProcessorConfig, lib

# Every diffusers processor class the C API names (DA_PROCESSOR_*), in header order.
PROCESSOR_NAMES = (
    "AttnProcessor", "AttnProcessor2_0", "FusedAttnProcessor2_0", "SlicedAttnProcessor",
    "XFormersAttnProcessor", "AttnProcessorNPU", "XLAFlashAttnProcessor2_0",
    "AttnAddedKVProcessor", "AttnAddedKVProcessor2_0", "SlicedAttnAddedKVProcessor",
    "XFormersAttnAddedKVProcessor", "CustomDiffusionAttnProcessor", "CustomDiffusionAttnProcessor2_0",
    "CustomDiffusionXFormersAttnProcessor", "IPAdapterAttnProcessor", "IPAdapterAttnProcessor2_0",
    "IPAdapterXFormersAttnProcessor", "LoRAAttnProcessor", "LoRAAttnProcessor2_0",
    "LoRAXFormersAttnProcessor", "LoRAAttnAddedKVProcessor",
    "JointAttnProcessor2_0", "FusedJointAttnProcessor2_0", "XFormersJointAttnProcessor",
    "PAGJointAttnProcessor2_0", "PAGCFGJointAttnProcessor2_0", "SD3IPAdapterJointAttnProcessor2_0",
    "FluxAttnProcessor2_0", "FusedFluxAttnProcessor2_0", "FluxAttnProcessor2_0_NPU",
    "FusedFluxAttnProcessor2_0_NPU", "FluxSingleAttnProcessor2_0", "XLAFluxFlashAttnProcessor2_0",
    "FluxIPAdapterJointAttnProcessor2_0", "FluxAttnProcessor", "FluxIPAdapterAttnProcessor",
    "AuraFlowAttnProcessor2_0", "FusedAuraFlowAttnProcessor2_0", "CogVideoXAttnProcessor2_0",
    "FusedCogVideoXAttnProcessor2_0", "HunyuanAttnProcessor2_0", "FusedHunyuanAttnProcessor2_0",
    "PAGHunyuanAttnProcessor2_0", "PAGCFGHunyuanAttnProcessor2_0", "LuminaAttnProcessor2_0",
    "AllegroAttnProcessor2_0", "StableAudioAttnProcessor2_0", "MochiAttnProcessor2_0",
    "MochiVaeAttnProcessor2_0", "SanaLinearAttnProcessor2_0", "PAGCFGSanaLinearAttnProcessor2_0",
    "PAGIdentitySanaLinearAttnProcessor2_0", "SanaMultiscaleAttnProcessor2_0",
    "PAGIdentitySelfAttnProcessor2_0", "PAGCFGIdentitySelfAttnProcessor2_0",
)

# Keyword names (beyond hidden_states, encoder_hidden_states, attention_mask) each processor's
# __call__ declares; other keywords given to Attention.__call__ are warned about and dropped.
_CALL_KEYWORDS = {"SlicedAttnProcessor": (), "XFormersAttnAddedKVProcessor": (),
                  "AttnAddedKVProcessor": (), "AttnAddedKVProcessor2_0": ()}
_CALL_KEYWORDS.update({
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
})
_DEFAULT_CALL_KEYWORDS = ("temb",)


def _kind(name):
    kind = ctypes.c_int32()
    check(lib.da_processor_kind_from_name(name.encode(), ctypes.byref(kind)))
    return kind.value


class AttentionProcessor:
    """Base of every processor class: a kind and its constructor arguments."""

    _kind = 0

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
        return _CALL_KEYWORDS.get(type(self).__name__, _DEFAULT_CALL_KEYWORDS)

    def __repr__(self):
        return f"{type(self).__name__}()"


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


_classes = {}
for _name in PROCESSOR_NAMES:
    _cls = type(_name, (AttentionProcessor,), {"_kind": _kind(_name), "__module__": __name__})
    if _name.startswith("Sliced"):
        _with_slice_size(_cls)
    elif "XFormers" in _name:
        _with_attention_op(_cls)
    elif _name == "XLAFlashAttnProcessor2_0":
        _with_partition_spec(_cls)
    _classes[_name] = _cls
globals().update(_classes)

_BY_KIND = {c._kind: c for c in _classes.values()}


def from_config(c):
    """The processor object for a library-side ProcessorConfig."""
    cls = _BY_KIND[c.kind]
    obj = cls.__new__(cls)
    if c.slice_size:
        obj.slice_size = c.slice_size
    return obj


__all__ = ["AttentionProcessor", *PROCESSOR_NAMES]
