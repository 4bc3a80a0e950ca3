"""Parity of diffattn's classic processors, SpatialNorm and the Attention switches with diffusers 0.42.1
(golden fixtures in Tests/Fixtures/classic, made by Tests/Fixtures/gen_classic.py; format documented there).

One test per case (the case name is the id). A case is a script of steps on one module: set_processor,
load_state_dict, a switch / method call, a processor attribute change, a forward call. After every step
the processor class name, the state-dict keys (diffusers' order) and shapes, and fused_projections are
checked; outputs at rtol 2e-4 with NaN positions exact; errors by class. Nothing expected is computed
here: every number comes from the fixture files.
"""

import json
import os

import numpy as np
import pytest

import diffattn
import fixtures

CLASSIC_DIR = os.path.join(fixtures.REPO, "Tests", "Fixtures", "classic")
_index = None
_files = {}


def index():
    global _index
    if _index is None:
        with open(os.path.join(CLASSIC_DIR, "index.json")) as fh:
            _index = json.load(fh)
        assert _index.get("format") == "diffattn-golden" and _index.get("format_version") == 1
    return _index


class ClassicCase(fixtures.Case):
    """fixtures.Case reading its arrays from Tests/Fixtures/classic; adds {"$tuple": [...]} values."""

    def array(self, key):
        fname = self.raw["file"]
        if fname not in _files:
            with np.load(os.path.join(CLASSIC_DIR, fname), allow_pickle=False) as z:
                _files[fname] = {k: z[k] for k in z.files}
        return _files[fname][key].copy()

    def resolve(self, v):
        if isinstance(v, dict) and "$tuple" in v:
            return tuple(self.resolve(x) for x in v["$tuple"])
        if isinstance(v, dict) and "$array" in v:
            return fixtures.apply_view(self.array(v["$array"]), v)
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        return v


def _params():
    return [pytest.param(ClassicCase(c), id=c["name"]) for c in index()["cases"]]



def rtol():
    return float(index()["tolerance"]["rtol"])


# -------------------------------------------------------------------------------------------
# checks
# -------------------------------------------------------------------------------------------


def check_state(case, module, after, where):
    if "processor_class" in after:
        got = type(module.processor).__name__
        assert got == after["processor_class"], f"{where}: processor is {got}, diffusers has {after['processor_class']}"
    if "fused_projections" in after:
        assert bool(module.fused_projections) is after["fused_projections"], (
            f"{where}: fused_projections {module.fused_projections!r}, diffusers {after['fused_projections']!r}")
    sd = module.state_dict()
    want = [k for k, _ in after["state_dict"]]
    got = list(sd)
    assert sorted(got) == sorted(want), (
        f"{where}: state-dict keys differ: missing {sorted(set(want) - set(got))}, "
        f"unexpected {sorted(set(got) - set(want))}")
    assert got == want, f"{where}: state-dict key order {got} != diffusers' {want}"
    for k, shape in after["state_dict"]:
        assert tuple(np.shape(sd[k])) == tuple(shape), f"{where}: {k} shape {np.shape(sd[k])} != {tuple(shape)}"
    if "state_dict_values" in after:
        for k, key in after["state_dict_values"].items():
            fixtures.assert_matches(np.asarray(sd[k]), case.array(key), rtol=rtol(), what=f"{where}: value of {k}")


def run_step(case, module, step, i):
    op = step["op"]
    where = f"{case.name} step {i} ({op}{' ' + step['method'] if op == 'method' else ''})"
    expect = step["expect"]

    def act():
        if op == "set_processor":
            p = step["processor"]
            kwargs = {k: case.resolve(v) for k, v in p["kwargs"].items()}
            module.set_processor(getattr(diffattn, p["class"])(**kwargs))
            return None
        if op == "load_state_dict":
            module.load_state_dict({k: case.array(step["values"][k]) for k, _ in step["state_dict"]})
            return None
        if op == "method":
            args = [case.resolve(a) for a in step["args"]]
            kwargs = {k: case.resolve(v) for k, v in step["kwargs"].items()}
            return getattr(module, step["method"])(*args, **kwargs)
        if op == "set_processor_attr":
            setattr(module.processor, step["name"], case.resolve(step["value"]))
            return None
        if op == "forward":
            args = [case.resolve(a) for a in step["args"]]
            kwargs = {k: case.resolve(v) for k, v in step["kwargs"].items()}
            return module(*args, **kwargs)
        raise AssertionError(f"unknown op {op}")

    if "error" in expect:
        accept = tuple(getattr(__import__("builtins"), n) for n in expect["error"]["accept"])
        with pytest.raises(accept):
            act()
            pytest.fail(f"{where}: no error; diffusers raised {expect['error']['type']}: {expect['error']['message']}")
    else:
        if step.get("may_raise"):
            allowed = tuple(getattr(__import__("builtins"), n) for n in step["may_raise"])
            try:
                out = act()
            except allowed:
                return False  # a port may reject this (see the fixture); the rest of the script is moot
        else:
            out = act()
        if "processor_class" in expect:
            assert out is not None and type(out).__name__ == expect["processor_class"], (
                f"{where}: returned {type(out).__name__}, diffusers {expect['processor_class']}")
        elif expect.get("output") is None:
            if op in ("method",):
                assert out is None, f"{where}: returned {out!r}, diffusers returned None"
        else:
            fixtures.assert_matches(out, case.resolve(expect["output"]), rtol=rtol(), what=where)
    check_state(case, module, step["after"], where)
    return True


# -------------------------------------------------------------------------------------------
# the tests
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params())
def test_classic(case):
    cls = getattr(diffattn, case["module"])
    init = case.init
    if case.get("expect", {}).get("stage") == "init":
        with pytest.raises(case.accepted_errors()):
            cls(**init)
        return
    module = cls(**init)
    if case["module"] == "Attention":
        assert type(module.processor).__name__ == case["default_processor"]
        for name, want in case["attributes"].items():
            got = getattr(module, name)
            if isinstance(want, bool):
                assert bool(got) is want, f"{name}: {got!r} != {want!r}"
            elif isinstance(want, float):
                assert abs(float(got) - want) <= 1e-6 * abs(want), f"{name}: {got!r} != {want!r}"
            else:
                assert got == want, f"{name}: {got!r} != {want!r}"
    check_state(case, module, {"state_dict": case["state_dict"]}, f"{case.name} after construction")
    for i, step in enumerate(case["steps"]):
        if not run_step(case, module, step, i):
            break


def test_classic_metadata():
    idx = index()
    assert idx["versions"]["diffusers"] == "0.42.1"
    names = [c["name"] for c in idx["cases"]]
    assert len(names) == len(set(names))
    tags = set(idx["emulation"])
    for c in idx["cases"]:
        assert set(c["emulated"]) <= tags, c["name"]


def test_classic_coverage():
    """Every processor class of issue 3 is installed by some case, and every switch is exercised."""
    classes, methods = set(), set()
    for c in index()["cases"]:
        for st in c["steps"]:
            if st["op"] == "set_processor":
                classes.add(st["processor"]["class"])
            if st["op"] == "method":
                methods.add(st["method"])
            if "processor_class" in st["after"]:
                classes.add(st["after"]["processor_class"])
    want = {"AttnProcessor", "AttnProcessor2_0", "FusedAttnProcessor2_0", "SlicedAttnProcessor",
            "XFormersAttnProcessor", "AttnProcessorNPU", "XLAFlashAttnProcessor2_0", "AttnAddedKVProcessor",
            "AttnAddedKVProcessor2_0", "SlicedAttnAddedKVProcessor", "XFormersAttnAddedKVProcessor",
            "CustomDiffusionAttnProcessor", "CustomDiffusionAttnProcessor2_0", "CustomDiffusionXFormersAttnProcessor",
            "IPAdapterAttnProcessor", "IPAdapterAttnProcessor2_0", "IPAdapterXFormersAttnProcessor",
            "LoRAAttnProcessor", "LoRAAttnProcessor2_0", "LoRAXFormersAttnProcessor", "LoRAAttnAddedKVProcessor"}
    assert want <= classes, sorted(want - classes)
    assert {"set_attention_slice", "set_use_memory_efficient_attention_xformers", "set_use_npu_flash_attention",
            "set_use_xla_flash_attention", "fuse_projections", "get_processor"} <= methods
