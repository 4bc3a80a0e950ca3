"""Module forwards read contiguous float32 inputs in place (issue 18: "contiguous float32 inputs are
read in place, not copied"; Sources/DiffAttnC/DLTensorBridge.swift `Loans`).

What must hold: the caller's memory is never written, even by processors that normalise their input
in place; the result is bitwise the one of the copying path (the same values in a strided view);
and the peak memory of a forward is lower than the copying path's by about the input's size."""

import os
import subprocess
import sys

import numpy as np
import pytest

import diffattn

BINDING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bindings",
                       "python")


def _strided_copy(x):
    """The same values in a non-contiguous view (the library copies those)."""
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), np.float32)
    view = wide[..., ::2]
    view[...] = x
    assert not view.flags.c_contiguous
    return view


CASES = {
    # VAE mid-block style: 4-D input, group norm (in place on the module's copy), residual
    "vae_group_norm_residual": (dict(query_dim=32, heads=1, dim_head=32, norm_num_groups=8, residual_connection=True,
                                     rescale_output_factor=2.0, bias=True, _from_deprecated_attn_block=True),
                                (2, 32, 4, 5), None),
    # UNet cross-attention with a LayerNorm over the text (norm_cross)
    "cross_norm_cross": (dict(query_dim=24, cross_attention_dim=16, heads=3, dim_head=8,
                              cross_attention_norm="layer_norm"), (2, 9, 24), (2, 7, 16)),
    # UnCLIP-style added key/value projections (AttnAddedKVProcessor2_0)
    "added_kv": (dict(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8, added_kv_proj_dim=12, norm_num_groups=4, bias=True),
                 (2, 16, 3, 3), (2, 5, 12)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs_are_never_written_and_layout_does_not_change_the_result(name):
    kwargs, x_shape, e_shape = CASES[name]
    attn = diffattn.Attention(**kwargs)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    e = None if e_shape is None else rng.standard_normal(e_shape).astype(np.float32)
    x_before, e_before = x.copy(), None if e is None else e.copy()
    in_place = attn(x, e)
    assert np.array_equal(x.view(np.uint32), x_before.view(np.uint32)), "hidden_states was written"
    if e is not None:
        assert np.array_equal(e.view(np.uint32), e_before.view(np.uint32)), "encoder_hidden_states was written"
    copied = attn(_strided_copy(x), None if e is None else _strided_copy(e))
    assert np.array_equal(in_place.view(np.uint32), copied.view(np.uint32))


_PEAK = r"""
import sys
import numpy as np
import diffattn
layout = sys.argv[1]
# Wide input, narrow attention: the input dominates what a forward holds (q, k, v are 4096 x 8).
tokens, channels = 4096, 2048
attn = diffattn.Attention(query_dim=channels, heads=1, dim_head=8, out_dim=8)
rng = np.random.default_rng(0)
# Built in place, a slab at a time, so that the peak so far is what is held now.
if layout == "strided":
    wide = np.zeros((1, tokens, 2 * channels), np.float32)   # every page touched
    x = wide[..., ::2]
else:
    x = np.empty((1, tokens, channels), np.float32)
for i in range(0, tokens, 256):
    x[:, i:i + 256] = rng.standard_normal((1, 256, channels), dtype=np.float32)
def peak_kib():
    # VmHWM, this process's own high-water mark (ru_maxrss also carries the parent's from before exec)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
attn(x[:, :64])  # load what a first call loads
base = peak_kib()
attn(x)
print(peak_kib() - base)
"""


def _peak_growth_kib(layout):
    env = dict(os.environ, PYTHONPATH=BINDING + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", DIFFATTN_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _PEAK, layout], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_a_contiguous_input_is_not_copied():
    input_kib = 4096 * 2048 * 4 // 1024  # 32 MiB
    contiguous, strided = _peak_growth_kib("contiguous"), _peak_growth_kib("strided")
    # The strided call copies the input (held for the whole forward); the contiguous one must not.
    assert strided - contiguous > 0.75 * input_kib, (contiguous, strided)
    assert contiguous < 0.5 * input_kib, (contiguous, strided)
