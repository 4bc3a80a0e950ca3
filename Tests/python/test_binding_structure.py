"""The Python binding is a tree: every submodule imports alone, all imports sit at module top, the
import graph among the binding's own modules has no cycle, and the mirrored C structs are checked."""

import ast
import ctypes
import os
import subprocess
import sys

import pytest

BINDING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "bindings", "python", "diffattn")
MODULES = sorted(f[:-3] for f in os.listdir(BINDING) if f.endswith(".py") and f != "__main__.py")


def _tree(module):
    with open(os.path.join(BINDING, module + ".py")) as fh:
        return ast.parse(fh.read())


def _own_imports(node, module):
    """The binding modules an import statement names ('' for the package itself)."""
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            if not (node.module or "").startswith("diffattn"):
                return []
            base = node.module[len("diffattn."):] if node.module != "diffattn" else ""
        else:
            base = node.module or ""
        if base:
            return [base.split(".")[0]]
        return [a.name for a in node.names]  # from . import x
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] if "." in a.name else "" for a in node.names if a.name.split(".")[0] == "diffattn"]
    return []


@pytest.mark.parametrize("module", MODULES)
def test_submodule_imports_first_and_alone(module):
    name = "diffattn" if module == "__init__" else f"diffattn.{module}"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(BINDING))
    result = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"import {name} in a fresh interpreter failed:\n{result.stderr}"


@pytest.mark.parametrize("module", MODULES + ["__main__"])
def test_no_function_level_imports_of_the_binding(module):
    nested = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in ast.walk(node):
                if inner is not node and _own_imports(inner, module):
                    nested.append(f"line {inner.lineno}: {ast.unparse(inner)}")
    assert not nested, f"{module}.py imports binding modules inside functions (move them to the top): {nested}"


def test_import_graph_is_acyclic():
    graph = {}
    for module in MODULES:
        deps = set()
        for node in _tree(module).body:
            deps.update(d for d in _own_imports(node, module) if d in MODULES and d != "__init__")
        graph[module] = deps - {module}
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
        state[m] = "open"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in MODULES:
        visit(m, [])
    assert "models" not in graph["hooks"] and "hooks" not in graph["caches"]


def test_the_checker_finds_a_hidden_sibling_import():
    tree = ast.parse("def f():\n    from .hooks import HookRegistry\n")
    found = [n for n in ast.walk(tree.body[0]) if n is not tree.body[0] and _own_imports(n, "x")]
    assert len(found) == 1


def test_every_mirrored_struct_is_checked_and_a_mismatch_fails():
    import diffattn  # noqa: F401  (loads every declaration module)

    # (diffattn._lib the attribute is the loaded library; the modules are in sys.modules)
    _lib, _hook_lib, _cache_lib, _model_lib = (sys.modules[f"diffattn.{m}"]
                                               for m in ("_lib", "_hook_lib", "_cache_lib", "_model_lib"))

    mirrored = [v for m in (_lib, _hook_lib, _cache_lib, _model_lib) for v in vars(m).values()
                if isinstance(v, type) and issubclass(v, ctypes.Structure) and v.__module__ == m.__name__]
    assert len(mirrored) == 29, [s.__name__ for s in mirrored]
    sizes = {}
    for m in (_lib, _hook_lib, _cache_lib, _model_lib):
        for node in ast.walk(_tree(m.__name__.split(".")[1])):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check_layouts":
                for key, value in zip(node.args[0].keys, node.args[0].values):
                    sizes[key.value] = getattr(m, value.id)
    assert sorted(s.__name__ for s in sizes.values()) == sorted(s.__name__ for s in mirrored)

    class Short(ctypes.Structure):
        _fields_ = [("struct_size", ctypes.c_uint32)]
    with pytest.raises(ImportError, match="da_attention_info"):
        _lib.check_layouts({"da_attention_info": Short})
    with pytest.raises(ImportError, match="da_no_such_struct"):
        _lib.check_layouts({"da_no_such_struct": Short})


def test_processor_classes_come_from_the_library():
    import diffattn
    from diffattn._lib import lib

    assert len(diffattn.PROCESSOR_NAMES) == lib.da_processor_kind_count() == len(set(diffattn.PROCESSOR_NAMES))
    for name in diffattn.PROCESSOR_NAMES:
        kind = ctypes.c_int32()
        assert lib.da_processor_kind_from_name(name.encode(), ctypes.byref(kind)) == 0
        assert getattr(diffattn, name)._kind == kind.value
    # the families choose the constructors
    assert diffattn.CustomDiffusionXFormersAttnProcessor().train_q_out is False
    assert diffattn.CustomDiffusionAttnProcessor(hidden_size=8).train_q_out is True
    assert list(diffattn.IPAdapterXFormersAttnProcessor(hidden_size=8).num_tokens) == [4]
    assert diffattn.FluxIPAdapterAttnProcessor(8, 8).call_keywords[-1] == "ip_adapter_masks"
