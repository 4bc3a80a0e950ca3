#!/usr/bin/env python3
"""Golden fixtures for issue 3: every classic diffusers attention processor, SpatialNorm, and the
``Attention`` switches (set_attention_slice, xFormers / NPU / XLA, fuse_projections, get/set_processor).

Runs diffusers 0.42.1 on the CPU (float32, eval mode) and writes ``Tests/Fixtures/classic/``.
Called from ``generate.py`` (one command regenerates every fixture directory) or on its own:

    /work/venv-ref/bin/python Tests/Fixtures/generate.py                 # attention/ and classic/
    /work/venv-ref/bin/python Tests/Fixtures/gen_classic.py [--check]     # classic/ only

Deterministic and byte-reproducible like generate.py (seeds from CRC-32 of names, fixed zip dates).

FORMAT (additions to the one documented at the top of generate.py)
=================================================================

``classic/index.json`` has the same header (``format`` "diffattn-golden", ``format_version`` 1,
``versions``, ``tolerance``, ``counts``) plus ``"emulation"``: a dictionary explaining every
emulation tag used below. Every case has ``kind`` = ``"script"``:

``module``     ``"Attention"`` or ``"SpatialNorm"``; ``init`` its constructor keywords.
``default_processor``, ``state_dict``, ``attributes``   as in generate.py, right after construction
               (``attributes`` adds ``fused_projections``; SpatialNorm cases have only ``state_dict``).
               If construction fails: ``expect`` = ``{"error": ..., "stage": "init"}`` and no steps.
``file``       the .npz with this case's arrays. Several cases share one file; arrays are
               de-duplicated by content, so keys are only names (do not infer meaning from them).
``emulated``   list of emulation tags this case actually exercised in diffusers (empty = plain
               diffusers on CPU). The tags are explained in the index's ``"emulation"`` dictionary
               (fake xFormers package, CUDA check, NPU availability, XLA version guard, ...).
``steps``      executed in order on one module. Every step is ``{"op": ..., ...}``:

  ``{"op": "set_processor", "processor": {"class": name, "kwargs": {...}}}``
        construct ``diffattn.<name>(**kwargs)`` (JSON lists where diffusers had tuples) and
        ``attn.set_processor`` it. A constructor error is the step's error.
  ``{"op": "load_state_dict", "state_dict": [[key, shape], ...], "values": {key: array key}}``
        ``attn.load_state_dict({key: <array values[key]>})`` -- the *whole* state dict of the module at
        that point (module weights, ``processor.*`` weights, fused ``to_qkv``/``to_kv``), in
        diffusers' order.
  ``{"op": "method", "method": m, "args": [...], "kwargs": {...}}``
        ``getattr(attn, m)(*args, **kwargs)`` -- the switches, ``fuse_projections``,
        ``get_processor``. A returned processor is described by ``expect.processor_class``
        (``expect.output`` null = the call returned None).
  ``{"op": "set_processor_attr", "name": n, "value": v}``    ``setattr(attn.processor, n, v)``.
  ``{"op": "forward", "args": [...], "kwargs": {...}}``      ``attn(*args, **kwargs)`` (SpatialNorm:
        ``sn(f, zq)``); ``expect.output`` is the reference result.

  ``expect`` of a step: ``{"output": ...}`` / ``{"processor_class": name}`` on success, or
  ``{"error": {type, message, accept}}`` (same meaning as generate.py). ``after`` (every step,
  also after an error): ``processor_class`` (``type(attn.processor).__name__``), ``state_dict``
  (``[[key, shape], ...]`` in diffusers' order), ``fused_projections``; optionally
  ``state_dict_values``: ``{key: array key}``, the value of every state-dict entry (recorded after
  fuse_projections and after switches that copy processor weights).
  ``may_raise`` (optional, list of class names): diffusers accepts this step, but a port may
  reject it here (e.g. ``set_attention_slice(0)``, attention_processor.py:Attention.set_attention_slice); if diffattn raises one of
  these classes the rest of the script is skipped.

Argument values: JSON scalars, array references (as in generate.py), JSON lists of values, and
``{"$tuple": [v, ...]}`` for a Python tuple (IP-Adapter's ``(text, [ip_0, ip_1, ...])``).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import generate as G  # noqa: E402  (shared utilities: write_npz, golden_index, sync_dir, ...)
from classic_cases import family_a  # noqa: E402
from classic_cases_more import other_families  # noqa: E402
from classic_script import EMULATION, Gen  # noqa: E402

OUT_DIR = os.path.join(HERE, "classic")


def build_grid(g):
    family_a(g)
    other_families(g)


def main(argv=None):
    ap = argparse.ArgumentParser(description="classic-processor golden fixtures")
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the files on disk")
    args, _ = ap.parse_known_args(argv)

    g = Gen()
    build_grid(g)
    index = G.golden_index(
        g.cases, "Tests/Fixtures/gen_classic.py",
        "diffusers.models.attention_processor (Attention, every classic processor, SpatialNorm) on CPU, "
        "float32, eval mode; hardware back ends emulated as listed in 'emulation' and per case in 'emulated'",
        emulation=EMULATION)
    blobs = {f: G.write_npz(st.arrays) for f, st in g.files.items()}
    blobs["index.json"] = G.dump_index(index).encode()

    rc = G.sync_dir(OUT_DIR, blobs, args.check, f"classic ({len(g.cases)} cases)")
    if args.check:
        return rc
    for k, v in index["counts"].items():
        print(f"  {k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
