"""`diffattn.Attention`: diffusers' `Attention` module, with the same keywords and defaults."""

import ctypes
import logging
import weakref

import numpy as np

from . import _torch
from . import dit_args as _dit
from . import processors as _processors
from ._core import (TensorArg, call_returning_tensor, check, managed_to_numpy, optional_arg, pointer, read_state_dict,
                    weight_infos)
from ._hook_lib import lib as _hook_lib  # declares da_attention_hook_registry
from ._lib import (MAX_OUTPUTS, AttentionConfig, AttentionInfo, DLManagedTensor, DLTensor, ForwardArgs, OutputShapes,
                   ProcessorConfig, c_int64, c_void_p, defaults, lib)
from .casting import enable_attention_casting

logger = logging.getLogger("diffattn")

_QK_NORMS = {None: 0, "layer_norm": 1, "fp32_layer_norm": 2, "layer_norm_across_heads": 3,
             "rms_norm": 4, "rms_norm_across_heads": 5, "l2": 6}
_CROSS_NORMS = {None: 0, "layer_norm": 1, "group_norm": 2}
_UNKNOWN = 1000  # an enum value the library rejects with diffusers' "unknown …" message
_QUIET_KWARGS = {"ip_adapter_masks", "ip_hidden_states"}


def _size(value, name):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _float_mask(m):
    if _torch.is_tensor(m):
        return m if m.dtype.is_floating_point else m.float()
    return np.asarray(m, dtype=np.float32)


def _tristate(value):
    return -1 if value is None else int(bool(value))


# The constructor's defaults, as the C API's da_attention_config_init gives them (DA_NONE fields are None).
_D = defaults(AttentionConfig, lib.da_attention_config_init)


def _flag(name):
    return bool(getattr(_D, name))


def _optional_flag(name):
    value = getattr(_D, name)
    return None if value < 0 else bool(value)


class Attention:
    """A cross-attention layer (diffusers.models.attention_processor.Attention).

    Weights use diffusers' state-dict names; load them with `load_state_dict`. Calling the module
    runs its processor on numpy float32 arrays and returns numpy float32 arrays.
    """

    def __init__(self, query_dim, cross_attention_dim=None, heads=_D.heads, kv_heads=None, dim_head=_D.dim_head,
                 dropout=_D.dropout, bias=_flag("bias"), upcast_attention=_flag("upcast_attention"),
                 upcast_softmax=_flag("upcast_softmax"), cross_attention_norm=None,
                 cross_attention_norm_num_groups=_D.cross_attention_norm_num_groups, qk_norm=None,
                 added_kv_proj_dim=None, added_proj_bias=_optional_flag("added_proj_bias"), norm_num_groups=None,
                 spatial_norm_dim=None, out_bias=_flag("out_bias"), scale_qk=_flag("scale_qk"),
                 only_cross_attention=_flag("only_cross_attention"), eps=_D.eps,
                 rescale_output_factor=_D.rescale_output_factor, residual_connection=_flag("residual_connection"),
                 _from_deprecated_attn_block=_flag("from_deprecated_attn_block"), processor=None, out_dim=None,
                 out_context_dim=None, context_pre_only=_optional_flag("context_pre_only"), pre_only=_flag("pre_only"),
                 elementwise_affine=_flag("elementwise_affine"), is_causal=_flag("is_causal")):
        self._handle = None
        c = AttentionConfig()
        check(lib.da_attention_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.query_dim = int(query_dim) if not isinstance(query_dim, bool) else 0
        c.cross_attention_dim = _size(cross_attention_dim, "cross_attention_dim")
        c.heads = int(heads)
        c.kv_heads = _size(kv_heads, "kv_heads")
        c.dim_head = int(dim_head)
        c.dropout = float(dropout)
        c.bias = bool(bias)
        c.upcast_attention = bool(upcast_attention)
        c.upcast_softmax = bool(upcast_softmax)
        c.cross_attention_norm = _CROSS_NORMS.get(cross_attention_norm, _UNKNOWN)
        c.cross_attention_norm_num_groups = int(cross_attention_norm_num_groups)
        c.qk_norm = _QK_NORMS.get(qk_norm, _UNKNOWN)
        c.added_kv_proj_dim = _size(added_kv_proj_dim, "added_kv_proj_dim")
        c.added_proj_bias = _tristate(added_proj_bias)
        c.norm_num_groups = _size(norm_num_groups, "norm_num_groups")
        c.spatial_norm_dim = _size(spatial_norm_dim, "spatial_norm_dim")
        c.out_bias = bool(out_bias)
        c.scale_qk = bool(scale_qk)
        c.only_cross_attention = bool(only_cross_attention)
        c.eps = float(eps)
        c.rescale_output_factor = float(rescale_output_factor)
        c.residual_connection = bool(residual_connection)
        c.from_deprecated_attn_block = bool(_from_deprecated_attn_block)
        c.out_dim = _size(out_dim, "out_dim")
        c.out_context_dim = _size(out_context_dim, "out_context_dim")
        c.context_pre_only = _tristate(context_pre_only)
        c.pre_only = bool(pre_only)
        c.elementwise_affine = bool(elementwise_affine)
        c.is_causal = bool(is_causal)
        handle = c_void_p()
        try:
            check(lib.da_attention_create(ctypes.byref(c), ctypes.byref(handle)))
        except ValueError as e:
            # Name the caller's string where the C API could only carry an enum value.
            text = str(e).replace(f"qk_norm: {_UNKNOWN}", f"qk_norm: {qk_norm}")
            text = text.replace(f"cross_attention_norm: {_UNKNOWN}", f"cross_attention_norm: {cross_attention_norm}")
            raise ValueError(text) from None
        self._handle = handle
        self.query_dim = int(query_dim)
        self.use_bias = bool(bias)
        self.upcast_attention = bool(upcast_attention)
        self.upcast_softmax = bool(upcast_softmax)
        self.rescale_output_factor = rescale_output_factor
        self.residual_connection = bool(residual_connection)
        self.dropout = dropout
        self.added_kv_proj_dim = added_kv_proj_dim
        self.only_cross_attention = only_cross_attention
        self.context_pre_only = context_pre_only
        self.pre_only = pre_only
        self.is_causal = is_causal
        self.scale_qk = scale_qk
        self._from_deprecated_attn_block = _from_deprecated_attn_block
        if processor is not None:
            self.set_processor(processor)

    def _hook_registry_handle(self):
        handle = c_void_p()
        check(_hook_lib.da_attention_hook_registry(self._handle, ctypes.byref(handle)))
        return handle

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.da_attention_destroy(self._handle)
            self._handle = None

    # --- attributes diffusers derives -----------------------------------------------------
    def _info(self):
        info = AttentionInfo()
        info.struct_size = ctypes.sizeof(info)
        check(lib.da_attention_get_info(self._handle, ctypes.byref(info)))
        return info

    heads = property(lambda self: self._info().heads)
    inner_dim = property(lambda self: self._info().inner_dim)
    inner_kv_dim = property(lambda self: self._info().inner_kv_dim)
    sliceable_head_dim = property(lambda self: self._info().sliceable_head_dim)
    scale = property(lambda self: self._info().scale)
    is_cross_attention = property(lambda self: bool(self._info().is_cross_attention))
    cross_attention_dim = property(lambda self: self._info().cross_attention_dim)
    out_dim = property(lambda self: self._info().out_dim)
    out_context_dim = property(lambda self: self._info().out_context_dim)
    fused_projections = property(lambda self: bool(self._info().fused_projections))

    # --- processor ------------------------------------------------------------------------
    def set_processor(self, processor):
        if not isinstance(processor, _processors.AttentionProcessor):
            raise TypeError(f"processor must be a diffattn processor object, got {type(processor).__name__}")
        config = processor._config()
        check(lib.da_attention_set_processor(self._handle, ctypes.byref(config)))
        self._processor = processor
        if isinstance(processor, (_processors._IPAdapter, _processors._SD3IPAdapter)):
            processor._attention = weakref.ref(self)

    def get_processor(self, return_deprecated_lora=False):
        if return_deprecated_lora:
            return None  # diffusers 0.42.1 returns nothing on this path
        return self.processor

    @property
    def processor(self):
        c = ProcessorConfig()
        c.struct_size = ctypes.sizeof(c)
        check(lib.da_attention_get_processor(self._handle, ctypes.byref(c)))
        current = getattr(self, "_processor", None)
        if current is None or current._kind != c.kind:
            scale = self._ip_adapter_scale() if c.kind in _processors.IP_ADAPTER_KINDS else None
            current = _processors.from_config(c, previous=current, scale=scale)
            self._processor = current
            if isinstance(current, (_processors._IPAdapter, _processors._SD3IPAdapter)):
                current._attention = weakref.ref(self)
        return current

    def _ip_adapter_scale(self):
        n = c_int64()
        check(lib.da_attention_get_ip_adapter_scale(self._handle, None, 0, None, 0, ctypes.byref(n)))
        values = (ctypes.c_double * max(n.value, 1))()
        counts = (ctypes.c_int32 * 1024)()
        check(lib.da_attention_get_ip_adapter_scale(self._handle, values, n.value, counts, 1024, ctypes.byref(n)))
        scale, i = [], 0
        c = ProcessorConfig()
        c.struct_size = ctypes.sizeof(c)
        check(lib.da_attention_get_processor(self._handle, ctypes.byref(c)))
        for k in range(c.num_ip_adapters):
            if counts[k] == 0:
                scale.append(values[i])
                i += 1
            else:
                scale.append(list(values[i:i + counts[k]]))
                i += counts[k]
        return scale

    # --- switches -------------------------------------------------------------------------
    def set_attention_slice(self, slice_size):
        if slice_size is not None and (isinstance(slice_size, bool) or not isinstance(slice_size, int)):
            raise TypeError(f"slice_size must be an int or None, got {slice_size!r}")
        if slice_size is not None and slice_size <= 0 and slice_size <= self.sliceable_head_dim:
            raise ValueError(f"slice_size must be at least 1, got {slice_size}")
        check(lib.da_attention_set_attention_slice(self._handle, 0 if slice_size is None else slice_size))

    def set_use_memory_efficient_attention_xformers(self, use_memory_efficient_attention_xformers, attention_op=None):
        # attention_op picks an xFormers operator; libdiffattn always runs its own memory-efficient kernel.
        check(lib.da_attention_set_use_memory_efficient_attention_xformers(
            self._handle, bool(use_memory_efficient_attention_xformers)))

    def set_use_npu_flash_attention(self, use_npu_flash_attention):
        check(lib.da_attention_set_use_npu_flash_attention(self._handle, bool(use_npu_flash_attention)))

    def set_use_xla_flash_attention(self, use_xla_flash_attention, partition_spec=None, is_flux=False):
        check(lib.da_attention_set_use_xla_flash_attention(self._handle, bool(use_xla_flash_attention), bool(is_flux)))

    def fuse_projections(self, fuse=True):
        check(lib.da_attention_fuse_projections(self._handle, bool(fuse)))

    def unfuse_projections(self):
        check(lib.da_attention_unfuse_projections(self._handle))

    @processor.setter
    def processor(self, value):
        self.set_processor(value)

    # --- weights --------------------------------------------------------------------------
    def _weight_infos(self):
        return weight_infos(self._handle, lib.da_attention_weight_count, lib.da_attention_weight_info)

    def state_dict(self):
        """The weights as {name: float32 array}, in diffusers' order."""
        return read_state_dict(self._handle, self._weight_infos(), lib.da_attention_get_weight)

    def enable_layerwise_casting(self, storage_dtype="bfloat16", compute_dtype="float32", skip_modules_pattern="auto",
                                 skip_modules_classes=None, non_blocking=False):
        """diffusers' ``enable_layerwise_casting``: Linear weights stored as ``storage_dtype`` (bfloat16 or
        float16), widened to float32 in the GEMM. ``skip_modules_pattern="auto"`` uses diffusers' defaults
        (``DEFAULT_SKIP_MODULES_PATTERN``: pos_embed, patch_embed, norm, ^proj_in$, ^proj_out$)."""
        enable_attention_casting(self._handle, storage_dtype, compute_dtype, skip_modules_pattern)

    def load_state_dict(self, state_dict, strict=True):
        """Copies weights in; with `strict`, missing or unexpected keys are an error listing them."""
        expected = dict(self._weight_infos())
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        if strict and (missing or unexpected):
            raise ValueError(f"Error(s) in loading state_dict for Attention: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for name, value in state_dict.items():
            if name in expected:
                value = value if _torch.is_tensor(value) else np.asarray(value)
                check(lib.da_attention_set_weight(self._handle, name.encode(), TensorArg(value, name).ref))

    def borrow_weight(self, name, tensor):
        """Reads weight `name` from `tensor`'s memory from now on (a contiguous float32 or bfloat16
        CPU torch tensor or numpy float32 array; no copy). This object keeps `tensor` alive; writes
        to it are seen by the next forward; load_state_dict or another borrow replaces it."""
        bf16 = _torch.is_tensor(tensor)
        arg = TensorArg(tensor.detach() if bf16 else tensor, name, allow_bf16=bf16)
        check(lib.da_attention_borrow_weight(self._handle, name.encode(), arg.ref))
        if not hasattr(self, "_borrowed"):
            self._borrowed = {}
        self._borrowed[name] = arg.array

    # --- forward --------------------------------------------------------------------------
    def __call__(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **cross_attention_kwargs):
        return self.forward(hidden_states, encoder_hidden_states, attention_mask, **cross_attention_kwargs)

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **cross_attention_kwargs):
        processor = self.processor
        accepted = set(processor.call_keywords)
        unused = [k for k in cross_attention_kwargs if k not in accepted and k not in _QUIET_KWARGS]
        if unused:
            logger.warning(f"cross_attention_kwargs {unused} are not expected by {type(processor).__name__} "
                           f"and will be ignored.")
        temb = cross_attention_kwargs.get("temb") if "temb" in accepted else None
        ip_states = None
        if "ip_hidden_states" in accepted and cross_attention_kwargs.get("ip_hidden_states") is not None:
            ip_states = cross_attention_kwargs["ip_hidden_states"]   # the DiT IP-Adapters' keyword
            ip_states = list(ip_states) if isinstance(ip_states, (list, tuple)) else [ip_states]
        elif isinstance(encoder_hidden_states, tuple):
            if not type(processor).__name__.startswith("IPAdapter"):
                raise TypeError(f"{type(processor).__name__} takes encoder_hidden_states as an array; the tuple "
                                f"(text, [ip_hidden_states]) is for IP-Adapter processors ('tuple' object has no attribute 'shape')")
            if len(encoder_hidden_states) != 2:
                raise ValueError("encoder_hidden_states as a tuple must be (text_states, [ip_hidden_states, ...])")
            encoder_hidden_states, ip_states = encoder_hidden_states
            ip_states = list(ip_states) if isinstance(ip_states, (list, tuple)) else [ip_states]
        keep = [TensorArg(hidden_states, "hidden_states"),
                optional_arg(encoder_hidden_states, "encoder_hidden_states"),
                optional_arg(attention_mask, "attention_mask", allow_bool=True),
                optional_arg(temb, "temb")]
        args = ForwardArgs()
        check(lib.da_forward_args_init(ctypes.byref(args), ctypes.sizeof(args)))
        args.hidden_states, args.encoder_hidden_states, args.attention_mask, args.temb = map(pointer, keep)
        if ip_states is not None:
            ip_args = [TensorArg(t, f"ip_hidden_states[{i}]") for i, t in enumerate(ip_states)]
            array = (DLTensor * max(len(ip_args), 1))(*[a.tensor for a in ip_args])
            keep += [ip_args, array]
            args.ip_hidden_states_given, args.num_ip_hidden_states = 1, len(ip_args)
            args.ip_hidden_states = ctypes.cast(array, ctypes.POINTER(DLTensor))
        masks = cross_attention_kwargs.get("ip_adapter_masks") if "ip_adapter_masks" in accepted else None
        if masks is not None:
            if isinstance(masks, np.ndarray) or _torch.is_tensor(masks):  # (K, 1, h, w) → K masks
                masks = [masks[k:k + 1] for k in range(masks.shape[0])]
            mask_args = [None if m is None else TensorArg(_float_mask(m), f"ip_adapter_masks[{i}]")
                         for i, m in enumerate(masks)]
            pointers = (ctypes.POINTER(DLTensor) * max(len(mask_args), 1))(*[pointer(m) for m in mask_args])
            keep += [mask_args, pointers]
            args.num_ip_adapter_masks = len(mask_args)
            args.ip_adapter_masks = ctypes.cast(pointers, ctypes.POINTER(ctypes.POINTER(DLTensor)))
        keep.append(_dit.attach(args, accepted, cross_attention_kwargs))
        if _torch.is_tensor(hidden_states):
            return self._forward_into_torch(args, hidden_states)
        managed = (ctypes.POINTER(DLManagedTensor) * MAX_OUTPUTS)()
        count = ctypes.c_int32()
        check(lib.da_attention_forward_alloc(self._handle, ctypes.byref(args), managed, MAX_OUTPUTS, ctypes.byref(count)))
        outputs = [managed_to_numpy(managed[i]) for i in range(count.value)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _forward_into_torch(self, args, like):
        """Outputs allocated by torch (shapes from da_attention_output_shapes), written by the library."""
        shapes = OutputShapes()
        shapes.struct_size = ctypes.sizeof(shapes)
        check(lib.da_attention_output_shapes(self._handle, ctypes.byref(args), ctypes.byref(shapes)))
        outs = [_torch.empty(tuple(shapes.shape[i][j] for j in range(shapes.ndim[i]))) for i in range(shapes.count)]
        out_args = [TensorArg(o, "output") for o in outs]
        array = (DLTensor * max(len(out_args), 1))(*[a.tensor for a in out_args])
        check(lib.da_attention_forward(self._handle, ctypes.byref(args), array, len(out_args)))
        outs = [_torch.result(o, like) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # --- helper methods -------------------------------------------------------------------
    def prepare_attention_mask(self, attention_mask, target_length, batch_size, out_dim=3):
        if attention_mask is None:
            return None
        mask = TensorArg(attention_mask, "attention_mask", allow_bool=True)
        return call_returning_tensor(lib.da_attention_prepare_attention_mask, self._handle, mask.ref,
                                     int(target_length), int(batch_size), int(out_dim), like=attention_mask)

    def head_to_batch_dim(self, tensor, out_dim=3):
        t = TensorArg(tensor, "tensor")
        return call_returning_tensor(lib.da_attention_head_to_batch_dim, self._handle, t.ref, int(out_dim), like=tensor)

    def batch_to_head_dim(self, tensor):
        t = TensorArg(tensor, "tensor")
        return call_returning_tensor(lib.da_attention_batch_to_head_dim, self._handle, t.ref, like=tensor)

    def get_attention_scores(self, query, key, attention_mask=None):
        q, k = TensorArg(query, "query"), TensorArg(key, "key")
        m = optional_arg(attention_mask, "attention_mask", allow_bool=True)
        return call_returning_tensor(lib.da_attention_get_attention_scores, self._handle, q.ref, k.ref, pointer(m),
                                     like=query)

    def norm_encoder_hidden_states(self, encoder_hidden_states):
        e = TensorArg(encoder_hidden_states, "encoder_hidden_states")
        return call_returning_tensor(lib.da_attention_norm_encoder_hidden_states, self._handle, e.ref,
                                     like=encoder_hidden_states)
