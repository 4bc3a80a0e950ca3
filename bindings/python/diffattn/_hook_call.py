"""`ModelMixin.call_module`: a host-run module's forward called through its hooks
(da_model_call_module, include/diffattn.h)."""

import ctypes
import inspect

from . import _hook_values as _hv
from ._core import callback_failed, check
from ._lib import lib

def _positional_names(forward, count):
    """Names of the first `count` positional parameters of `forward` (arg<i> where unknown)."""
    try:
        params = [p.name for p in inspect.signature(forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


def call_module(model, path, forward, args, kwargs):
    names = _positional_names(forward, len(args))
    call, out = _hv.Values(), _hv.Values()
    _hv.write(call.handle, [(n, True, a) for n, a in zip(names, args)] + [(k, False, v) for k, v in kwargs.items()],
              f"the arguments of '{path}'")

    def run(_ctx, _path, values, outputs):
        try:
            a, kw = _hv.split(_hv.read(values))
            _hv.write_outputs(outputs, forward(*a, **kw), f"the output of '{path}'")
            return 0
        except BaseException as exc:  # noqa: BLE001 -- re-raised by check() below
            return callback_failed(exc)

    fn = _hv.ForwardFn(run)
    check(lib.da_model_call_module(model._handle, path.encode(), call.handle, out.handle, fn, None))
    return _hv.copy_output(_hv.read(out.handle))
