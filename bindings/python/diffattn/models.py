"""diffusers' model classes as module trees (issue 5): names, switches and checkpoints.

    from diffattn.models import UNet2DConditionModel
    unet = UNet2DConditionModel.from_pretrained("path/to/unet")   # config.json + safetensors
    list(unet.attn_processors)                                     # diffusers' exact keys
    unet.set_attn_processor(diffattn.AttnProcessor())
    attn = unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1")
    out = attn(hidden_states, encoder_hidden_states)               # numpy in, numpy out

The host runs everything that is not attention; this library keeps those weights as named
weight nodes (`model.state_dict()`), so nothing in the checkpoint is lost.
"""

import contextlib
import ctypes
import json
import os

import numpy as np

from . import _torch
from . import processors as _processors
from ._cache_mixin import CacheMixin
from ._core import TensorArg, check, read_state_dict, weight_infos
from ._lib import AttentionConfig, ProcessorConfig, lib
from ._model_lib import (KEYS_MISSING, KEYS_UNEXPECTED, KEYS_UNLOADED, LOAD_ALLOW_RANDOM_INIT, LOAD_SKIP_OTHERS, LOAD_STRICT,
                         MODULE_ATTENTION, MODULE_CONTAINER, MODULE_WEIGHTS,
                         LoadReport, slice_args)
from .attention import Attention
from .casting import enable_model_casting
from .dit import FluxAttention
from ._hook_call import call_module as _call_module
from .hooks import HookRegistry, apply_group_offloading

CLASS_NAMES = ["UNet2DConditionModel", "UNet3DConditionModel", "UNetMotionModel", "I2VGenXLUNet", "AutoencoderKL",
               "SD3Transformer2DModel", "FluxTransformer2DModel", "PixArtTransformer2DModel", "HunyuanDiT2DModel",
               "CogVideoXTransformer3DModel", "AuraFlowTransformer2DModel"]
_KINDS = {"container": MODULE_CONTAINER, "attention": MODULE_ATTENTION, "weights": MODULE_WEIGHTS}


def _weight_value(v):
    """A weight as the library reads it: torch tensors in place when contiguous, else float32 numpy."""
    if _torch.is_tensor(v):
        return v.contiguous()
    return np.ascontiguousarray(np.asarray(v, dtype=np.float32))


def _string_out(fn, *args):
    s = ctypes.c_char_p()
    check(fn(*args, ctypes.byref(s)))
    return s.value.decode()


def _hook_registry(model_handle, path):
    handle = ctypes.c_void_p()
    check(lib.da_model_hook_registry(model_handle, path.encode(), ctypes.byref(handle)))
    return handle


def _borrowed_attention(handle, owner, cls=Attention):
    """A diffattn.Attention (or FluxAttention) over a model's module: the model owns it (destroying
    it is a no-op)."""
    a = cls.__new__(cls)
    a._handle = handle
    a._owner = owner  # keeps the model, and so the handle, alive
    c = AttentionConfig()
    c.struct_size = ctypes.sizeof(c)
    check(lib.da_attention_get_config(handle, ctypes.byref(c)))
    a.query_dim = c.query_dim
    a.use_bias = bool(c.bias)
    a.upcast_attention, a.upcast_softmax = bool(c.upcast_attention), bool(c.upcast_softmax)
    a.rescale_output_factor = c.rescale_output_factor
    a.residual_connection = bool(c.residual_connection)
    a.dropout = c.dropout
    a.added_kv_proj_dim = c.added_kv_proj_dim or None
    a.only_cross_attention = bool(c.only_cross_attention)
    a.context_pre_only = None if c.context_pre_only < 0 else bool(c.context_pre_only)
    a.pre_only, a.is_causal, a.scale_qk = bool(c.pre_only), bool(c.is_causal), bool(c.scale_qk)
    a._from_deprecated_attn_block = bool(c.from_deprecated_attn_block)
    if cls is FluxAttention:
        a.head_dim = c.dim_head
    return a


class WeightModule:
    """A host-owned module of the model: its weights only (`state_dict()`). Once the host sets
    `module.forward`, calling the module runs it through its hooks (`ModelMixin.call_module`)."""

    forward = None

    def __init__(self, model, path):
        self._model, self.path = model, path

    def _hook_registry_handle(self):
        return _hook_registry(self._model._handle, self.path)

    def __call__(self, *args, **kwargs):
        if self.forward is None:
            raise NotImplementedError(f"'{self.path}' is run by the host: set its `forward` to call it through its hooks")
        return self._model.call_module(self.path, self.forward, *args, **kwargs)

    def state_dict(self):
        prefix = self.path + "."
        return {k[len(prefix):]: v for k, v in self._model.state_dict().items()
                if k.startswith(prefix) and "." not in k[len(prefix):]}


class ModelMixin(CacheMixin):
    """Base of the eleven classes. Construct with `from_config(dict)` or `from_pretrained(dir)`."""

    _class_name = None

    def __init__(self, **config):
        self._handle = None
        text = json.dumps(config)
        handle = ctypes.c_void_p()
        check(lib.da_model_create(self._class_name.encode(), text.encode(), ctypes.byref(handle)))
        self._handle = handle
        self.config = dict(config)
        self._modules = {}

    @classmethod
    def from_config(cls, config, **overrides):
        config = dict(config, **overrides)
        return cls(**{k: v for k, v in config.items() if not k.startswith("_")})

    @classmethod
    def from_pretrained(cls, directory, subfolder=None, strict=False, keep_other_weights=True,
                        allow_random_init=False, output_loading_info=False):
        """diffusers' ``from_pretrained`` for a local folder: config.json (its ``_class_name`` must be
        this class), then ``diffusion_pytorch_model.safetensors`` or the shards its ``.index.json``
        names. ``loading_info`` (an attribute; returned too with ``output_loading_info=True``) lists
        ``missing_keys`` and ``unexpected_keys`` over all shards. Without ``allow_random_init`` an
        attention module missing a weight raises when called, naming the weight."""
        if subfolder:
            directory = os.path.join(directory, subfolder)
        with open(os.path.join(directory, "config.json")) as fh:
            config = json.load(fh)
        flags = cls._flags(strict, keep_other_weights) | (LOAD_ALLOW_RANDOM_INIT if allow_random_init else 0)
        handle = ctypes.c_void_p()
        check(lib.da_model_load_pretrained(os.fsencode(directory), cls._class_name.encode(), flags,
                                           ctypes.byref(handle), None))
        model = cls.__new__(cls)
        model._handle = handle
        model.config = {k: v for k, v in config.items() if not k.startswith("_")}
        model._modules = {}
        model.loading_info = {"missing_keys": model._load_keys(KEYS_MISSING),
                              "unexpected_keys": model._load_keys(KEYS_UNEXPECTED),
                              "mismatched_keys": [], "error_msgs": []}
        return (model, model.loading_info) if output_loading_info else model

    def _load_keys(self, which):
        count = ctypes.c_int64()
        check(lib.da_model_load_key_count(self._handle, which, ctypes.byref(count)))
        return [_string_out(lib.da_model_load_key, self._handle, which, i) for i in range(count.value)]

    @property
    def unloaded_weights(self):
        """Attention weights still at random initialisation that make their module refuse to run."""
        return self._load_keys(KEYS_UNLOADED)

    def _hook_registry_handle(self):
        return _hook_registry(self._handle, "")

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.da_model_destroy(self._handle)
            self._handle = None

    # --- processors -----------------------------------------------------------------------
    @property
    def attn_processors(self):
        count = ctypes.c_int64()
        check(lib.da_model_attn_processor_count(self._handle, ctypes.byref(count)))
        result = {}
        for i in range(count.value):
            name = _string_out(lib.da_model_attn_processor_name, self._handle, i)
            c = ProcessorConfig()
            c.struct_size = ctypes.sizeof(c)
            check(lib.da_model_attn_processor_get(self._handle, name.encode(), ctypes.byref(c)))
            result[name] = _processors.from_config(c)
        return result

    def set_attn_processor(self, processor):
        if isinstance(processor, dict):
            names = list(processor)
            configs = (ProcessorConfig * max(len(names), 1))()
            for i, n in enumerate(names):
                configs[i] = self._processor_config(processor[n])
            arr = (ctypes.c_char_p * max(len(names), 1))(*[n.encode() for n in names])
            check(lib.da_model_set_attn_processors(self._handle, arr, configs, len(names)))
        else:
            c = self._processor_config(processor)
            check(lib.da_model_set_attn_processor(self._handle, ctypes.byref(c)))

    @staticmethod
    def _processor_config(p):
        if not isinstance(p, _processors.AttentionProcessor):
            raise TypeError(f"processor must be a diffattn processor object, got {type(p).__name__}")
        return p._config()

    def set_default_attn_processor(self):
        self._call_method("set_default_attn_processor", lib.da_model_set_default_attn_processor)

    def fuse_qkv_projections(self):
        check(lib.da_model_fuse_qkv_projections(self._handle))

    def unfuse_qkv_projections(self):
        check(lib.da_model_unfuse_qkv_projections(self._handle))

    def set_use_memory_efficient_attention_xformers(self, valid, attention_op=None):
        status = lib.da_model_set_use_memory_efficient_attention_xformers(self._handle, int(bool(valid)))
        if status == 7:  # diffusers raises ModuleNotFoundError: xformers does not exist on a CPU
            raise ModuleNotFoundError(lib.da_last_error().decode())
        check(status)

    def enable_xformers_memory_efficient_attention(self, attention_op=None):
        self.set_use_memory_efficient_attention_xformers(True, attention_op)

    def disable_xformers_memory_efficient_attention(self):
        self.set_use_memory_efficient_attention_xformers(False)

    def set_attention_slice(self, slice_size="auto"):
        mode, sizes, count = slice_args(slice_size)
        self._call_method("set_attention_slice", lib.da_model_set_attention_slice, mode, sizes, count)

    def _call_method(self, name, fn, *args):
        status = fn(self._handle, *args)
        if status == 9 and "has no attribute" in lib.da_last_error().decode():
            raise AttributeError(lib.da_last_error().decode())
        check(status)

    # --- modules --------------------------------------------------------------------------
    def get_submodule(self, target):
        if target in self._modules:
            return self._modules[target]
        cls = _string_out(lib.da_model_module_class, self._handle, target.encode())
        if cls in ("Attention", "FluxAttention"):
            handle = ctypes.c_void_p()
            check(lib.da_model_get_attention(self._handle, target.encode(), ctypes.byref(handle)))
            module = _borrowed_attention(handle, self, FluxAttention if cls == "FluxAttention" else Attention)
        else:
            module = WeightModule(self, target)
        self._modules[target] = module
        return module

    def module_paths(self, kind="attention"):
        k = _KINDS[kind]
        count = ctypes.c_int64()
        check(lib.da_model_module_count(self._handle, k, ctypes.byref(count)))
        return [_string_out(lib.da_model_module_path, self._handle, k, i) for i in range(count.value)]

    def named_attention_modules(self):
        return [(p, self.get_submodule(p)) for p in self.module_paths("attention")]

    # --- hooks (issue 6) -------------------------------------------------------------------
    def call_module(self, path, forward, *args, **kwargs):
        """Runs the host's `forward(*args, **kwargs)` for the module at `path` inside its hooks, as
        torch runs a hooked module's forward (pre_forward, new_forward, post_forward)."""
        return _call_module(self, path, forward, args, kwargs)

    def begin_step(self, timestep):
        """Starts a denoising step: the root module's pre-forward hooks run."""
        check(lib.da_model_begin_step(self._handle, float(np.asarray(timestep).reshape(-1)[0])))

    def end_step(self):
        check(lib.da_model_end_step(self._handle))

    @contextlib.contextmanager
    def step(self, timestep):
        """`with model.step(t): ...` brackets the host's forward of one denoising step."""
        self.begin_step(timestep)
        try:
            yield self
        finally:
            self.end_step()

    def enable_group_offload(self, onload_device="cpu", offload_device="cpu", offload_type="block_level",
                             num_blocks_per_group=None, non_blocking=False, use_stream=False, record_stream=False,
                             low_cpu_mem_usage=False, offload_to_disk_path=None, block_modules=None,
                             exclude_kwargs=None):
        apply_group_offloading(self, onload_device, offload_device, offload_type, num_blocks_per_group, non_blocking,
                               use_stream, record_stream, low_cpu_mem_usage, offload_to_disk_path, block_modules,
                               exclude_kwargs)

    def enable_layerwise_casting(self, storage_dtype="bfloat16", compute_dtype="float32", skip_modules_pattern="auto",
                                 skip_modules_classes=None, non_blocking=False):
        """``ModelMixin.enable_layerwise_casting`` on the attention modules; patterns are matched against
        each Linear layer's full path (``transformer_blocks.0.attn.to_q``)."""
        enable_model_casting(self._handle, storage_dtype, compute_dtype, skip_modules_pattern)

    def disable_group_offload(self):
        check(lib.da_model_disable_group_offload(self._handle))

    def reset_stateful_hooks(self):
        HookRegistry.check_if_exists_or_initialize(self).reset_stateful_hooks(recurse=True)

    # --- weights --------------------------------------------------------------------------
    def _weight_infos(self):
        return weight_infos(self._handle, lib.da_model_weight_count, lib.da_model_weight_info)

    def state_dict(self):
        return read_state_dict(self._handle, self._weight_infos(), lib.da_model_get_weight)

    @staticmethod
    def _flags(strict, keep_other_weights):
        return (LOAD_STRICT if strict else 0) | (0 if keep_other_weights else LOAD_SKIP_OTHERS)

    def load_state_dict(self, state_dict, strict=True, keep_other_weights=True):
        names = list(state_dict)
        args = [TensorArg(_weight_value(state_dict[n]), n) for n in names]
        tensors = (type(args[0].tensor) * max(len(args), 1))(*[a.tensor for a in args]) if args else None
        arr = (ctypes.c_char_p * max(len(names), 1))(*[n.encode() for n in names])
        report = LoadReport()
        report.struct_size = ctypes.sizeof(report)
        check(lib.da_model_load_state_dict(self._handle, arr, tensors, len(names),
                                           self._flags(strict, keep_other_weights), ctypes.byref(report)))
        return report

    def load_safetensors(self, path, strict=False, keep_other_weights=True):
        report = LoadReport()
        report.struct_size = ctypes.sizeof(report)
        check(lib.da_model_load_safetensors(self._handle, os.fsencode(path), self._flags(strict, keep_other_weights),
                                            ctypes.byref(report)))
        return report


for _name in CLASS_NAMES:
    globals()[_name] = type(_name, (ModelMixin,), {"_class_name": _name, "__module__": __name__})

__all__ = ["ModelMixin", "ModuleTree", "WeightModule", *CLASS_NAMES]


class ModuleTree(ModelMixin):
    """A host's own module tree (no attention): `ModuleTree(modules=["linear_1", "blocks.0.proj_in", ...])`.
    Its modules take hooks like any module; set `tree.forward` and each `get_submodule(p).forward`,
    then `tree(x)` runs the host's forward through every hook, in diffusers' order."""

    _class_name = "ModuleTree"
    forward = None

    def __call__(self, *args, **kwargs):
        if self.forward is None:
            raise NotImplementedError("set the tree's `forward` (the host's root forward) before calling it")
        return self.call_module("", self.forward, *args, **kwargs)
