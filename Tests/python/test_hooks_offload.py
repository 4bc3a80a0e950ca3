"""Group offloading (bitwise equal to resident, bounded, disk faults) and user hooks from C and
Python seeing the same calls."""

import ctypes
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from diffattn import models
from diffattn.hooks import HookRegistry, ModelHook, group_offload_stats
from diffattn._lib import lib

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "Fixtures", "models", "index.json")) as fh:
    MODELS = {c["name"]: c for c in json.load(fh)["cases"]}


def make_model():
    spec = MODELS["unet2d_two_heads"]
    m = models.UNet2DConditionModel.from_config(spec["config"])
    rng = np.random.default_rng(1)
    sd = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in m.state_dict().items()}
    sd["conv_in.weight"] = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)  # a host weight node
    m.load_state_dict(sd, strict=False)
    return m


def run(m, steps=3):
    rng = np.random.default_rng(2)
    outs = []
    for t in range(steps):
        with m.step(900 - 100 * t):
            outs.append(m.state_dict()["conv_in.weight"].copy())
            for p in m.module_paths("attention"):
                a = m.get_submodule(p)
                hs = rng.standard_normal((2, 5, a.query_dim)).astype(np.float32)
                enc = rng.standard_normal((2, 3, a.cross_attention_dim)).astype(np.float32) if a.is_cross_attention else None
                outs.append(a(hs, enc))
    return outs


@pytest.mark.parametrize("offload_type", ["block_level", "leaf_level"])
@pytest.mark.parametrize("use_stream", [False, True])
@pytest.mark.parametrize("disk", [False, True])
def test_offloaded_outputs_bitwise_equal(tmp_path, offload_type, use_stream, disk):
    reference = run(make_model())
    m = make_model()
    m.enable_group_offload("cpu", offload_type=offload_type, num_blocks_per_group=1, use_stream=use_stream,
                           offload_to_disk_path=str(tmp_path / "off") if disk else None)
    got = run(m)
    assert len(got) == len(reference)
    for a, b in zip(got, reference):
        assert a.tobytes() == b.tobytes()
    s = group_offload_stats(m)
    assert s["resident_groups"] == 0 and s["resident_bytes"] == 0
    assert s["peak_resident_bytes"] < s["total_bytes"] or s["groups"] <= 3  # root + current + prefetched
    if use_stream:
        assert s["order_learned"] and s["prefetched"] > 0
    if disk:
        assert len(os.listdir(tmp_path / "off")) == s["groups"]


def test_offload_validation(tmp_path):
    m = make_model()
    with pytest.raises(ValueError, match="not a valid GroupOffloadingType"):
        m.enable_group_offload(offload_type="layer")
    with pytest.raises(ValueError, match="num_blocks_per_group"):
        m.enable_group_offload(offload_type="block_level")
    with pytest.raises(ValueError, match="record_stream"):
        m.enable_group_offload(num_blocks_per_group=1, record_stream=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        m.enable_group_offload(num_blocks_per_group=1, offload_to_disk_path=str(blocker / "sub"))
    run(m)  # nothing changed: still resident and usable
    m.enable_group_offload(num_blocks_per_group=1)
    with pytest.raises(ValueError, match="group offloading"):
        m.load_state_dict({}, strict=False)


def test_disk_faults_give_errors_and_recover(tmp_path):
    reference = run(make_model())
    m = make_model()
    d = tmp_path / "off"
    m.enable_group_offload(num_blocks_per_group=1, offload_to_disk_path=str(d), use_stream=True)
    assert [a.tobytes() for a in run(m)] == [b.tobytes() for b in reference]
    backup = tmp_path / "backup"
    shutil.copytree(d, backup)
    victim = sorted(os.listdir(d))[0]
    # truncated file
    with open(d / victim, "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(OSError, match="truncated|bytes"):
        run(m)
    shutil.copy(backup / victim, d / victim)
    assert [a.tobytes() for a in run(m)] == [b.tobytes() for b in reference]
    # corrupted content
    with open(d / victim, "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x01\x02\x03\x04")
    with pytest.raises(OSError, match="checksum"):
        run(m)
    shutil.copy(backup / victim, d / victim)
    # directory removed mid-run
    shutil.rmtree(d)
    with pytest.raises(OSError, match="No such file"):
        run(m)
    shutil.copytree(backup, d)
    assert [a.tobytes() for a in run(m)] == [b.tobytes() for b in reference]
    m.disable_group_offload()
    assert [a.tobytes() for a in run(m)] == [b.tobytes() for b in reference]


C_HOOK = r"""
#include <stdio.h>
#include <string.h>
#include <diffattn.h>
static char log_buf[1 << 16];
static size_t used;
static void add(const char *s) { size_t n = strlen(s); if (used + n + 1 < sizeof log_buf) { memcpy(log_buf + used, s, n); used += n; log_buf[used++] = '\n'; log_buf[used] = 0; } }
static char line[512];
static da_status pre(void *u, const char *p, DLTensor *t) { (void)u; snprintf(line, sizeof line, "pre %s %d", p, t ? (int)t->shape[t->ndim - 1] : -1); add(line); return DA_OK; }
static da_status post(void *u, const char *p, DLTensor *o, int32_t n) { (void)u; snprintf(line, sizeof line, "post %s %d", p, n ? (int)o[0].shape[o[0].ndim - 1] : -1); add(line); (void)o; return DA_OK; }
static da_status reset(void *u, const char *p) { (void)u; snprintf(line, sizeof line, "reset %s", p); add(line); return DA_OK; }
const char *c_hook_log(void) { return log_buf; }
da_status c_hook_make(da_hook *out) {
    da_hook_callbacks cb; da_status s = da_hook_callbacks_init(&cb, sizeof cb);
    if (s) return s;
    cb.is_stateful = 1; cb.pre_forward = pre; cb.post_forward = post; cb.reset_state = reset;
    return da_hook_create(&cb, out);
}
"""


def test_c_and_python_hooks_see_the_same_calls(tmp_path):
    src = tmp_path / "chook.c"
    src.write_text(C_HOOK)
    libdir = os.path.dirname(lib._name)
    so = tmp_path / "chook.so"
    include = os.path.join(HERE, "..", "..", "include")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-I", include, str(src), "-o", str(so), f"-L{libdir}", "-ldiffattn"],
                   check=True)
    chook = ctypes.CDLL(str(so))
    chook.c_hook_log.restype = ctypes.c_char_p
    py_log = []

    class PyHook(ModelHook):
        _is_stateful = True

        def __init__(self, path):
            self.path = path

        def pre_forward(self, module, *args, **kwargs):
            py_log.append(f"pre {self.path} {args[0].shape[-1] if args else -1}")
            return args, kwargs

        def post_forward(self, module, output):
            py_log.append(f"post {self.path} {output.shape[-1] if hasattr(output, 'shape') else -1}")
            return output

        def reset_state(self, module):
            py_log.append(f"reset {self.path}")

    m = make_model()
    m.enable_group_offload(num_blocks_per_group=1)
    targets = [""] + m.module_paths("attention")[:3] + ["conv_in"]
    for p in targets:
        module = m if p == "" else m.get_submodule(p)
        reg = HookRegistry.check_if_exists_or_initialize(module)
        h = ctypes.c_void_p()
        assert chook.c_hook_make(ctypes.byref(h)) == 0
        assert lib.da_hook_registry_register(reg._handle, b"c_hook", h) == 0
        lib.da_hook_destroy(h)
        reg.register_hook(PyHook(p), "py_hook")  # registered later: outer; sees the same calls
    run(m, steps=2)
    conv = HookRegistry.check_if_exists_or_initialize(m.get_submodule("conv_in"))
    conv.enter()
    conv.exit()
    m.reset_stateful_hooks()
    c_log = chook.c_hook_log().decode().splitlines()
    assert py_log == c_log
    assert c_log[0] == "pre  -1" and "reset " in c_log[-1] and len(c_log) > 10


def test_failed_pre_forward_leaves_no_group_pinned():
    """A hook that raises in its pre-forward after group offloading onloaded (and pinned) the block:
    the host never calls exit, so the pin is dropped where the call fails — the group is released
    at the end of the step as always (a kept pin would leave it resident for the model's life)."""

    class Refuses(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            raise ValueError("refused by the test hook")

    m = make_model()
    block = m.get_submodule("down_blocks.0")
    # Registered before offloading: inner, so offloading's pre-forward (outer) has run when it raises.
    HookRegistry.check_if_exists_or_initialize(block).register_hook(Refuses(), "refuses")
    m.enable_group_offload(num_blocks_per_group=1)
    reg = HookRegistry.check_if_exists_or_initialize(block)
    for t in (900, 800):
        with m.step(t):
            with pytest.raises(ValueError, match="refused by the test hook"):
                reg.enter()
        s = group_offload_stats(m)
        assert s["resident_groups"] == 0 and s["resident_bytes"] == 0, s
