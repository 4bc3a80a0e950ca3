"""ModelHook script fixtures (issue 16): the scripted cases of diffusers' ``tests/hooks/test_hooks.py``
run against diffusers' own ``HookRegistry``, recorded as invocation logs and outputs.

    /work/venv-ref/bin/python Tests/Fixtures/gen_hook_scripts.py

The model is the upstream test's: ``linear_1 -> ReLU -> blocks (2 x [proj_in, ReLU, proj_out]) ->
linear_2``, features 4 -> 8 -> 4, weights drawn with ``torch.manual_seed(0)``. The hooks are a small
vocabulary (``HOOKS``) that ports can rebuild: each logs one line per callback, as the upstream tests'
``logger.debug`` lines, so a log is the exact invocation order.

Writes ``hooks/test_hooks.json``: ``{"format": "diffattn-hook-scripts", "format_version": 1, "versions",
"model": {"weights": {name: nested list}, "order": [module paths in forward order]}, "scripts": [...]}``.
A script has ``name``, ``source`` (upstream test or spec section) and ``ops``; an op is one of

  ``register``  path, name, hook (a kind of ``HOOKS``), value, label, skip; or ``error`` when it raised
  ``remove``    path, name (recurse as diffusers' default)
  ``reset``     path (``reset_stateful_hooks()``); ``log`` = the reset_state lines
  ``call``      input (nested list), keyword (bool: passed as ``x=``); ``log``, then ``output`` (a list of
                arrays; one entry per returned tensor) or ``error`` {type, message}
  ``inspect``   path; ``order`` (``_hook_order``), ``count`` (``len(hooks)``), ``repr``, ``increments``
                (name -> ``increment`` of stateful hooks)

``ref_defect`` on a call marks a log diffusers produces by a bug (docs/deviations.md).

``hooks/test_hooks.txt`` holds the same for C (Tests/capi), one record per line, fields separated by
single spaces, ``-`` for an empty path/label: ``weight <name> <count> <values...>``, ``script <name>``,
``register <path> <name> <hook> <value> <label> <skip> <error type or ->``, ``remove <path> <name>``,
``reset <path> <error type or ->``, ``call <keyword> <ref_defect> <4 input values> <error type or ->``
then ``output <count> <values...>`` per output, ``inspect <path> <count> <names...>`` then
``increment <name> <n>`` lines, ``log <text>`` lines after a call/reset (its log), ``end``.
"""

import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hooks", "test_hooks.json")
OUT_TXT = os.path.join(HERE, "hooks", "test_hooks.txt")

# hook kinds: name -> what it does (ports implement the same)
HOOKS = {
    "add": "pre_forward adds `value` to every positional tensor; logs 'AddHook pre_forward'/'AddHook post_forward'",
    "multiply": "as add with multiplication; repr 'MultiplyHook(value=v)'",
    "stateful_add": "stateful; pre_forward adds value + increment, then increment += 1; logs 'StatefulAddHook "
                    "pre_forward'; reset_state sets increment 0 and logs 'StatefulAddHook reset_state'",
    "skip_layer": "logs 'SkipLayerHook pre_forward|new_forward|post_forward'; new_forward returns args[0] when "
                  "`skip`, else calls the original",
    "trace": "logs '<label> pre', '<label> post', and with `new`, '<label> new' then calls the original",
    "scale_kwarg": "pre_forward multiplies the keyword `x` by value; logs '<label> pre'",
    "slice_output": "post_forward returns output[..., :value]; logs '<label> post'",
    "pair_output": "post_forward returns (output, output * value); logs '<label> post'",
    "stateful_trace": "stateful; logs '<label> pre' and, in reset_state, '<label> reset'",
    "stateful_no_reset": "stateful without reset_state",
    "failing_init": "initialize_hook raises ValueError('refused')",
}


def build_model():
    import torch

    class Block(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.proj_in, self.activation, self.proj_out = torch.nn.Linear(n, n), torch.nn.ReLU(), torch.nn.Linear(n, n)

        def forward(self, x):
            return self.proj_out(self.activation(self.proj_in(x)))

    class Dummy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_1, self.activation = torch.nn.Linear(4, 8), torch.nn.ReLU()
            self.blocks = torch.nn.ModuleList([Block(8) for _ in range(2)])
            self.linear_2 = torch.nn.Linear(8, 4)

        def forward(self, x):
            x = self.activation(self.linear_1(x))
            for b in self.blocks:
                x = b(x)
            return self.linear_2(x)

    torch.manual_seed(0)
    return Dummy()


def make_hook(log, kind, value=None, label=None, skip=False):
    import torch
    from diffusers.hooks import ModelHook
    from script_hooks import make_hook as make
    return make(ModelHook, torch.is_tensor, log, kind, value, label, skip)


def R(path, name, hook, value=None, label=None, skip=False):
    return dict(op="register", path=path, name=name, hook=hook, value=value, label=label, skip=skip)


def X(path, name):
    return dict(op="remove", path=path, name=name)


def C(inp="x", keyword=False, ref_defect=False):
    return dict(op="call", input=inp, keyword=keyword, ref_defect=ref_defect)


def I(path=""):
    return dict(op="inspect", path=path)


SCRIPTS = [
    ("test_hook_registry", "test_hooks.py", [R("", "add_hook", "add", 1), R("", "multiply_hook", "multiply", 2), I(),
                                             X("", "add_hook"), I()]),
    ("test_stateful_hook", "test_hooks.py", [R("", "stateful_add_hook", "stateful_add", 1), I(), C(), C(), C(), I(),
                                             dict(op="reset", path=""), C(), I()]),
    ("test_inference", "test_hooks.py", [R("", "add_hook", "add", 1), R("", "multiply_hook", "multiply", 2), C(),
                                         X("", "multiply_hook"), C("2x"), X("", "add_hook"), C("2x+1")]),
    ("test_skip_layer_hook", "test_hooks.py", [R("", "skip_layer_hook", "skip_layer", skip=True), C("zeros"),
                                               X("", "skip_layer_hook"), R("", "skip_layer_hook", "skip_layer"),
                                               C("zeros")]),
    ("test_skip_layer_internal_block", "test_hooks.py", [R("linear_1", "skip_layer_hook", "skip_layer", skip=True),
                                                         C("zeros"), X("linear_1", "skip_layer_hook"), C("zeros"),
                                                         R("blocks.1", "skip_layer_hook", "skip_layer", skip=True),
                                                         C("zeros")]),
    ("test_invocation_order_stateful_first", "test_hooks.py",
     [R("", "add_hook", "stateful_add", 1), R("", "add_hook_2", "add", 2), R("", "multiply_hook", "multiply", 3), C(),
      X("", "add_hook"), C()]),
    ("test_invocation_order_stateful_middle", "test_hooks.py",
     [R("", "add_hook", "add", 2), R("", "add_hook_2", "stateful_add", 1), R("", "multiply_hook", "multiply", 3), C(),
      X("", "add_hook"), C(), X("", "add_hook_2"), C()]),
    ("test_invocation_order_stateful_last", "test_hooks.py",
     [R("", "add_hook", "add", 1), R("", "multiply_hook", "multiply", 2), R("", "add_hook_2", "stateful_add", 3), C(),
      X("", "add_hook"), C()]),
    # spec hooks-newer §1.3/§1.4: a new_forward in the middle of a stack, and removal around it
    ("new_forward_chain_remove_middle", "hooks-newer §1.3-1.4",
     [R("", "a", "trace", label="A"), R("", "b", "trace", label="B", skip=True), R("", "c", "trace", label="C"), C(),
      X("", "b"), C()]),
    ("new_forward_chain_remove_inner", "hooks-newer §1.4",
     [R("", "a", "trace", label="A"), R("", "b", "trace", label="B", skip=True), R("", "c", "trace", label="C"), C(),
      X("", "a"), C(ref_defect=True)]),
    ("hooks_on_submodules", "issue 16 (every module, every order)",
     [R("blocks.0.proj_out", "t", "trace", label="P"), R("blocks.1", "t", "trace", label="B1", skip=True),
      R("", "t", "trace", label="ROOT"), R("linear_1", "add", "add", 0.5), C()]),
    ("keyword_input", "issue 16 (pre_forward sees keywords)",
     [R("", "add_hook", "add", 1), C(keyword=True), R("", "scale", "scale_kwarg", 3, label="S"), C(keyword=True),
      C()]),
    ("post_forward_shapes", "issue 16 (outputs of other shapes and counts)",
     [R("linear_2", "slice", "slice_output", 2, label="L2"), C(), R("", "pair", "pair_output", 2, label="ROOT"), C()]),
    ("reset_order", "hooks-newer §1.5",
     [R("", "s1", "stateful_trace", label="S1"), R("", "plain", "trace", label="N"),
      R("", "s2", "stateful_trace", label="S2"), R("blocks.1", "b1", "stateful_trace", label="b1"),
      R("blocks.0.proj_out", "b0p", "stateful_trace", label="b0p"), dict(op="reset", path=""), C()]),
    ("registration_errors", "hooks-newer §1.1",
     [R("", "bad", "failing_init"), I(), C(), R("", "dup", "add", 1), R("", "dup", "add", 2), I(),
      R("", "nr", "stateful_no_reset"), dict(op="reset", path="")]),
]


def err(e):
    return {"type": type(e).__name__, "message": str(e)}


def run_script(name, source, ops, x):
    import torch
    from diffusers.hooks import HookRegistry

    model = build_model()
    log, out_ops, hooks = [], [], {}
    inputs = {"x": x, "zeros": torch.zeros(1, 4), "2x": x * 2, "2x+1": x * 2 + 1}
    for op in ops:
        rec = dict(op)
        del log[:]
        mod = model.get_submodule(op["path"]) if "path" in op else None
        if op["op"] == "register":
            try:
                hook = make_hook(log, op["hook"], op["value"], op["label"], op["skip"])
                HookRegistry.check_if_exists_or_initialize(mod).register_hook(hook, op["name"])
                hooks[(op["path"], op["name"])] = hook
            except Exception as e:  # noqa: BLE001 -- recorded
                rec["error"] = err(e)
        elif op["op"] == "remove":
            HookRegistry.check_if_exists_or_initialize(mod).remove_hook(op["name"])
        elif op["op"] == "reset":
            try:
                HookRegistry.check_if_exists_or_initialize(mod).reset_stateful_hooks()
            except Exception as e:  # noqa: BLE001
                rec["error"] = err(e)
            rec["log"] = list(log)
        elif op["op"] == "inspect":
            r = HookRegistry.check_if_exists_or_initialize(mod)
            rec.update(order=list(r._hook_order), count=len(r.hooks), repr=repr(r),
                       increments={n: h.increment for n, h in r.hooks.items() if hasattr(h, "increment")})
        else:
            t = inputs[op["input"]]
            rec["input"] = t.tolist()
            try:
                with torch.no_grad():
                    y = model(x=t) if op["keyword"] else model(t)
                ys = list(y) if isinstance(y, tuple) else [y]
                rec["output"] = [v.tolist() for v in ys]
            except Exception as e:  # noqa: BLE001
                rec["error"] = err(e)
            rec["log"] = list(log)
        out_ops.append(rec)
    return dict(name=name, source=source, ops=out_ops)


def as_text(fixture):
    """The C form of the fixture (see the module docstring)."""
    def num(v):
        return repr(float(v))

    def flat(v):
        a = v if isinstance(v, list) else [v]
        while a and isinstance(a[0], list):
            a = [y for x in a for y in x]
        return a

    lines = []
    for name, w in fixture["model"]["weights"].items():
        f = flat(w)
        lines.append(" ".join(["weight", name, str(len(f))] + [num(x) for x in f]))
    for sc in fixture["scripts"]:
        lines.append(f"script {sc['name']}")
        for op in sc["ops"]:
            path = op.get("path") or "-"
            err_type = op["error"]["type"] if "error" in op else "-"
            if op["op"] == "register":
                lines.append(" ".join(["register", path, op["name"], op["hook"], num(op["value"] or 0),
                                       op["label"] or "-", str(int(op["skip"])), err_type]))
            elif op["op"] == "remove":
                lines.append(f"remove {path} {op['name']}")
            elif op["op"] == "inspect":
                lines.append(" ".join(["inspect", path, str(op["count"])] + op["order"]))
                lines += [f"increment {k} {v}" for k, v in op["increments"].items()]
            elif op["op"] == "reset":
                lines.append(f"reset {path} {err_type}")
            else:
                lines.append(" ".join(["call", str(int(op["keyword"])), str(int(op["ref_defect"]))]
                                      + [num(x) for x in flat(op["input"])] + [err_type]))
                for o in op.get("output", []):
                    f = flat(o)
                    lines.append(" ".join(["output", str(len(f))] + [num(x) for x in f]))
            lines += [f"log {line}" for line in op.get("log", [])]
        lines.append("end")
    return "\n".join(lines) + "\n"


def main():
    import torch
    import diffusers
    x = torch.randn(1, 4, generator=torch.manual_seed(0))
    model = build_model()
    weights = {k: v.tolist() for k, v in model.state_dict().items()}
    order = ["linear_1", "activation", "blocks.0.proj_in", "blocks.0.activation", "blocks.0.proj_out",
             "blocks.1.proj_in", "blocks.1.activation", "blocks.1.proj_out", "linear_2"]
    out = {"format": "diffattn-hook-scripts", "format_version": 1, "generator": "Tests/Fixtures/gen_hook_scripts.py",
           "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "python": platform.python_version()},
           "hooks": HOOKS, "model": {"weights": weights, "order": order},
           "scripts": [run_script(n, s, ops, x) for n, s, ops in SCRIPTS]}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    with open(OUT_TXT, "w") as fh:
        fh.write(as_text(out))
    print(f"wrote {OUT}, {OUT_TXT}: {len(out['scripts'])} scripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
