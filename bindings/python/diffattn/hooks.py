"""diffusers' hooks (issue 6): `HookRegistry`, `ModelHook`, group offloading, pyramid attention
broadcast -- the names and signatures of `diffusers.hooks`.

    from diffattn.hooks import HookRegistry, ModelHook, PyramidAttentionBroadcastConfig
    from diffattn.hooks import apply_pyramid_attention_broadcast, apply_group_offloading

    class Trace(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            print("pre", module)
            return args, kwargs

    HookRegistry.check_if_exists_or_initialize(model.get_submodule("transformer_blocks.0.attn1")).register_hook(Trace(), "trace")
    apply_pyramid_attention_broadcast(model, PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=2, current_timestep_callback=lambda: scheduler_t))
    for t in timesteps:
        with model.step(t):            # begin_step(t) / end_step(): the root module's forward
            ...                        # the host's forward: calls attention modules fetched by path

The host runs the model's forward itself, so the root's forward is the step bracket, and
host-run modules (weight nodes) are bracketed with `registry.enter()` / `registry.exit()`.
Python hooks are diffusers' ModelHook whole: `pre_forward(module, *args, **kwargs)` sees every
input stream and keyword (numpy float32 arrays, numbers, None) and returns replacements;
`new_forward(module, *args, **kwargs)` replaces the computation and reaches the original as
diffusers does, `self.fn_ref.original_forward(*args, **kwargs)`; `post_forward(module, output)` may
return outputs of other shapes and counts. Host-run modules are called through their hooks with
`module(*args)` once the host set `module.forward` (see `diffattn.models.ModuleTree`).
"""

import ctypes
import itertools
import threading

import numpy as np

from . import _hook_values as _hv
from ._core import c_strings, check, guard_callback
from ._hook_lib import DestroyFn, GroupOffloadConfig, GroupOffloadStats, HookCallbacks, NewForwardFn, PathFn, ValuesFn
from ._lib import lib
from ._pab import PyramidAttentionBroadcastConfig, pab_c_config, require_timestep_callback
from .caches import (FasterCacheConfig, FirstBlockCacheConfig, LayerSkipConfig, MagCacheConfig, TaylorSeerCacheConfig,
                     TeaCacheConfig, apply_faster_cache, apply_first_block_cache, apply_layer_skip, apply_mag_cache,
                     apply_taylorseer_cache, apply_teacache)

_live = {}            # registration id -> (hook, module, callbacks): alive while the library holds it
_ids = itertools.count(1)
_lock = threading.Lock()


def _view(tensor):
    shape = tuple(tensor.shape[i] for i in range(tensor.ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(shape, dtype=np.float32)
    buffer = (ctypes.c_float * count).from_address(tensor.data)
    return np.ctypeslib.as_array(buffer).reshape(shape)


def _copy_back(view, value, what):
    if value is view:
        return
    value = np.asarray(value, dtype=np.float32)
    if value.shape != view.shape:
        raise ValueError(f"{what} must keep the shape {view.shape}, got {value.shape}")
    view[...] = value


class ModelHook:
    """Base class of user hooks (diffusers' `ModelHook`). Override what you need."""

    _is_stateful = False

    def initialize_hook(self, module):
        return module

    def deinitalize_hook(self, module):  # diffusers' spelling
        return module

    def pre_forward(self, module, *args, **kwargs):
        return args, kwargs

    def post_forward(self, module, output):
        return output

    def reset_state(self, module):
        if self._is_stateful:
            raise NotImplementedError("This hook is stateful and needs to implement the `reset_state` method.")
        return module

    def _callbacks(self, module):
        """The C callback struct for one registration of this hook on `module`: every input stream
        and keyword reaches pre_forward / new_forward, and outputs of any count and shape come back."""
        hook = self

        def guard(fn):
            def run(*a):
                fn(*a)
                return 0
            return guard_callback(run)

        def pre(_user, _path, values):
            entries = _hv.read(values)
            args, kwargs = _hv.split(entries)
            result = hook.pre_forward(module, *args, **kwargs)
            new_args, new_kwargs = result
            _hv.write_call(values, entries, new_args, dict(new_kwargs), "pre_forward's return")

        def post(_user, _path, values):
            output = _hv.outputs_of(_hv.read(values))
            result = hook.post_forward(module, output)
            if result is not output:
                _hv.write_outputs(values, result, "post_forward's return")

        def new(_user, path, values, outputs, original, original_context):
            entries = _hv.read(values)
            args, kwargs = _hv.split(entries)
            names = [n for n, p, _ in entries if p]

            def original_forward(*a, **kw):
                call, out = _hv.Values(), _hv.Values()
                _hv.write(call.handle, [(names[i] if i < len(names) else f"arg{i}", True, v) for i, v in enumerate(a)]
                          + [(k, False, v) for k, v in kw.items()], "original_forward's arguments")
                check(original(original_context, path, call.handle, out.handle))
                return _hv.copy_output(_hv.read(out.handle))

            ref = hook.fn_ref if isinstance(getattr(hook, "fn_ref", None), HookFunctionReference) else HookFunctionReference()
            saved = ref.original_forward
            ref.original_forward = original_forward
            hook.fn_ref = ref
            try:
                result = hook.new_forward(module, *args, **kwargs)
            finally:
                ref.original_forward = saved
            _hv.write_outputs(outputs, result, "new_forward's return")

        key = next(_ids)
        cb = HookCallbacks()
        check(lib.da_hook_callbacks_init(ctypes.byref(cb), ctypes.sizeof(cb)))
        cb.is_stateful = int(bool(self._is_stateful))
        cb.user_data = key
        cb.initialize_hook = PathFn(guard(lambda _u, _p: hook.initialize_hook(module)))
        cb.deinitialize_hook = PathFn(guard(lambda _u, _p: hook.deinitalize_hook(module)))
        cb.pre_forward_args = ValuesFn(guard(pre))
        cb.post_forward_args = ValuesFn(guard(post))
        if hasattr(self, "new_forward"):  # diffusers detects new_forward by presence (hooks.py: register_hook)
            cb.new_forward = NewForwardFn(guard(new))
        cb.reset_state = PathFn(guard(lambda _u, _p: hook.reset_state(module)))
        cb.destroy = DestroyFn(lambda user: _live.pop(user, None))
        with _lock:
            _live[key] = (self, module, cb)
        return key, cb


class HookFunctionReference:
    """diffusers' `HookFunctionReference`: inside `new_forward`, `self.fn_ref.original_forward(*args,
    **kwargs)` runs what the hook wraps (inner hooks, then the module)."""

    def __init__(self):
        self.pre_forward = self.post_forward = self.forward = self.original_forward = None


class _BuiltinHook:
    """What `get_hook` returns for a hook the library implements (group offloading, PAB)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<built-in hook {self.name}>"


class HookRegistry:
    """The hooks of one module: a model (its root), an attention module, or a weight module.
    Each of those classes says where its registry is (`_hook_registry_handle()`), so this module
    needs none of them."""

    def __init__(self, module, handle):
        self._module_ref = module
        self._handle = handle
        self.hooks = {}

    @classmethod
    def check_if_exists_or_initialize(cls, module):
        existing = getattr(module, "_diffusers_hook", None)
        if existing is not None:
            return existing
        locate = getattr(module, "_hook_registry_handle", None)
        if locate is None:
            raise TypeError(f"module must be a diffattn model, attention module or weight module, got {type(module).__name__}")
        registry = cls(module, locate())
        module._diffusers_hook = registry
        return registry

    @property
    def _hook_order(self):
        count = ctypes.c_int64()
        check(lib.da_hook_registry_hook_count(self._handle, ctypes.byref(count)))
        names = []
        for i in range(count.value):
            s = ctypes.c_char_p()
            check(lib.da_hook_registry_hook_name(self._handle, i, ctypes.byref(s)))
            names.append(s.value.decode())
        return names

    def register_hook(self, hook, name):
        if not isinstance(hook, ModelHook):
            raise TypeError(f"hook must be a diffattn.hooks.ModelHook, got {type(hook).__name__}")
        key, cb = hook._callbacks(self._module_ref)
        handle = ctypes.c_void_p()
        status = lib.da_hook_create(ctypes.byref(cb), ctypes.byref(handle))
        if status != 0:
            _live.pop(key, None)
            check(status)
        try:
            check(lib.da_hook_registry_register(self._handle, name.encode(), handle))
            self.hooks[name] = hook
            hook.fn_ref = HookFunctionReference()
        finally:
            lib.da_hook_destroy(handle)  # the registration keeps it (destroy callback when it goes)
        return hook

    def get_hook(self, name):
        if name in self.hooks and name in self._hook_order:
            return self.hooks[name]
        present = ctypes.c_int32()
        check(lib.da_hook_registry_has_hook(self._handle, name.encode(), ctypes.byref(present)))
        return _BuiltinHook(name) if present.value else None

    def remove_hook(self, name, recurse=True):
        check(lib.da_hook_registry_remove(self._handle, name.encode(), int(bool(recurse))))
        self.hooks.pop(name, None)

    def reset_stateful_hooks(self, recurse=True):
        check(lib.da_hook_registry_reset_stateful_hooks(self._handle, int(bool(recurse))))

    def enter(self):
        """Pre-forward of a host-run module (its hooks see no tensors)."""
        check(lib.da_hook_registry_enter(self._handle))

    def exit(self):
        check(lib.da_hook_registry_exit(self._handle))

    def __repr__(self):
        def shown(n):  # diffusers (hooks.py: HookRegistry.__repr__): the hook's own repr, else its class name
            if n not in self.hooks:
                return n
            hook = self.hooks[n]
            return repr(hook) if type(hook).__repr__ is not object.__repr__ else type(hook).__name__
        lines = [f"  ({i}) {n} - {shown(n)}" for i, n in enumerate(self._hook_order)]
        return "HookRegistry(\n" + "\n".join(lines) + "\n)"


# --- group offloading --------------------------------------------------------------------------
_OFFLOAD_TYPES = {"block_level": 0, "leaf_level": 1}


def apply_group_offloading(module, onload_device, offload_device="cpu", offload_type="block_level",
                           num_blocks_per_group=None, non_blocking=False, use_stream=False, record_stream=False,
                           low_cpu_mem_usage=False, offload_to_disk_path=None, block_modules=None,
                           exclude_kwargs=None):
    """diffusers' `apply_group_offloading` on a diffattn model (see the header for CPU meanings)."""
    offload_type = getattr(offload_type, "value", offload_type)
    if offload_type not in _OFFLOAD_TYPES:
        raise ValueError(f"'{offload_type}' is not a valid GroupOffloadingType")
    if str(offload_device) != "cpu":
        raise NotImplementedError(f"offload_device '{offload_device}' is not available: libdiffattn computes on the CPU only")
    c = GroupOffloadConfig()
    check(lib.da_group_offload_config_init(ctypes.byref(c), ctypes.sizeof(c)))
    c.offload_type = _OFFLOAD_TYPES[offload_type]
    c.num_blocks_per_group = 0 if num_blocks_per_group is None else int(num_blocks_per_group)
    c.non_blocking, c.use_stream = int(bool(non_blocking)), int(bool(use_stream))
    c.record_stream, c.low_cpu_mem_usage = int(bool(record_stream)), int(bool(low_cpu_mem_usage))
    path = None if offload_to_disk_path is None else str(offload_to_disk_path).encode()
    c.offload_to_disk_path = path
    blocks, nb = c_strings(block_modules)
    excl, ne = c_strings(exclude_kwargs)
    c.block_modules, c.num_block_modules = blocks, nb
    c.exclude_kwargs, c.num_exclude_kwargs = excl, ne
    check(lib.da_model_enable_group_offload(module._handle, str(onload_device).encode(), ctypes.byref(c)))


def group_offload_stats(module):
    s = GroupOffloadStats()
    s.struct_size = ctypes.sizeof(s)
    check(lib.da_model_group_offload_stats(module._handle, ctypes.byref(s)))
    return {name: getattr(s, name) for name, _ in GroupOffloadStats._fields_[1:]}


# --- pyramid attention broadcast (config in _pab) -------------------------------------------
def apply_pyramid_attention_broadcast(module, config):
    """diffusers' `apply_pyramid_attention_broadcast(module, config)` on a diffattn model."""
    require_timestep_callback(config)
    if (config.spatial_attention_block_skip_range is None and config.temporal_attention_block_skip_range is None
            and config.cross_attention_block_skip_range is None):
        config.spatial_attention_block_skip_range = 2  # diffusers warns and mutates the config
    c, keep = pab_c_config(config)
    hooked = ctypes.c_int64()
    check(lib.da_model_apply_pyramid_attention_broadcast(module._handle, ctypes.byref(c), ctypes.byref(hooked)))
    module._pab_callbacks = getattr(module, "_pab_callbacks", []) + [keep]
    return hooked.value


from .newer_hooks import (SeaCacheConfig, SmoothedEnergyGuidanceConfig, TextKVCacheConfig, apply_sea_cache,  # noqa: E402
                          apply_smoothed_energy_guidance, apply_text_kv_cache, remove_smoothed_energy_guidance, sea_filter,
                          seg_blur_query, text_kv_cache_counts)

__all__ = ["SeaCacheConfig", "SmoothedEnergyGuidanceConfig", "TextKVCacheConfig", "apply_text_kv_cache",
           "text_kv_cache_counts", "apply_sea_cache", "apply_smoothed_energy_guidance",
           "remove_smoothed_energy_guidance", "sea_filter", "seg_blur_query", "HookFunctionReference",
           "HookRegistry", "ModelHook", "PyramidAttentionBroadcastConfig", "apply_group_offloading",
           "apply_pyramid_attention_broadcast", "group_offload_stats", "FasterCacheConfig", "FirstBlockCacheConfig",
           "LayerSkipConfig", "MagCacheConfig", "TaylorSeerCacheConfig", "TeaCacheConfig", "apply_faster_cache",
           "apply_first_block_cache", "apply_layer_skip", "apply_mag_cache", "apply_taylorseer_cache", "apply_teacache"]
