"""The user hooks the hook-script cases register (Tests/Fixtures/gen_hook_scripts.py runs them on
diffusers' `ModelHook`, Tests/python/test_hook_scripts.py on diffattn's): one definition, so both
sides run the same hook code; only the base class and what counts as a tensor differ."""


def make_hook(ModelHook, is_tensor, log, kind, value=None, label=None, skip=False):
    def each(args, fn):
        return (fn(x) if is_tensor(x) else x for x in args)  # a generator, as upstream

    class AddHook(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            log.append("AddHook pre_forward")
            return each(args, lambda x: x + value), kwargs

        def post_forward(self, module, output):
            log.append("AddHook post_forward")
            return output

    class MultiplyHook(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            log.append("MultiplyHook pre_forward")
            return each(args, lambda x: x * value), kwargs

        def post_forward(self, module, output):
            log.append("MultiplyHook post_forward")
            return output

        def __repr__(self):
            return f"MultiplyHook(value={value})"

    class StatefulAddHook(ModelHook):
        _is_stateful = True

        def __init__(self):
            super().__init__()
            self.increment = 0

        def pre_forward(self, module, *args, **kwargs):
            log.append("StatefulAddHook pre_forward")
            v = value + self.increment
            self.increment += 1
            return each(args, lambda x: x + v), kwargs

        def reset_state(self, module):
            log.append("StatefulAddHook reset_state")
            self.increment = 0

    class SkipLayerHook(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            log.append("SkipLayerHook pre_forward")
            return args, kwargs

        def new_forward(self, module, *args, **kwargs):
            log.append("SkipLayerHook new_forward")
            return args[0] if skip else self.fn_ref.original_forward(*args, **kwargs)

        def post_forward(self, module, output):
            log.append("SkipLayerHook post_forward")
            return output

    class Trace(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            log.append(f"{label} pre")
            return args, kwargs

        def post_forward(self, module, output):
            log.append(f"{label} post")
            return output

    class TraceNew(Trace):
        def new_forward(self, module, *args, **kwargs):
            log.append(f"{label} new")
            return self.fn_ref.original_forward(*args, **kwargs)

    class ScaleKwarg(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            log.append(f"{label} pre")
            return args, {k: (v * value if k == "x" else v) for k, v in kwargs.items()}

    class SliceOutput(ModelHook):
        def post_forward(self, module, output):
            log.append(f"{label} post")
            return output[..., :value]

    class PairOutput(ModelHook):
        def post_forward(self, module, output):
            log.append(f"{label} post")
            return output, output * value

    class StatefulTrace(ModelHook):
        _is_stateful = True

        def pre_forward(self, module, *args, **kwargs):
            log.append(f"{label} pre")
            return args, kwargs

        def reset_state(self, module):
            log.append(f"{label} reset")

    class StatefulNoReset(ModelHook):
        _is_stateful = True

    class FailingInit(ModelHook):
        def initialize_hook(self, module):
            raise ValueError("refused")

    cls = dict(add=AddHook, multiply=MultiplyHook, stateful_add=StatefulAddHook, skip_layer=SkipLayerHook,
               trace=TraceNew if skip else Trace, scale_kwarg=ScaleKwarg, slice_output=SliceOutput,
               pair_output=PairOutput, stateful_trace=StatefulTrace, stateful_no_reset=StatefulNoReset,
               failing_init=FailingInit)[kind]
    return cls()
