#!/usr/bin/env python3
"""Golden-fixture generator for diffattn's parity tests (issue 2).

Runs the reference implementation -- Hugging Face diffusers' ``Attention`` module and
``torch.nn.functional.scaled_dot_product_attention`` on the CPU, float32, eval mode -- over a
grid of options, and writes the results to ``Tests/Fixtures/attention/``.

Usage (needs torch + diffusers; the committed data was made with the versions recorded in the index):

    /work/venv-ref/bin/python Tests/Fixtures/generate.py            # rewrite the fixtures
    /work/venv-ref/bin/python Tests/Fixtures/generate.py --check    # regenerate in memory, compare

Everything is deterministic: every case draws its random numbers from a numpy generator seeded
with the CRC-32 of the case's (config) name, and the .npz files are written with fixed zip
timestamps, so re-running with the same library versions reproduces the files byte for byte.

FORMAT
======

``attention/index.json``::

    {
      "format": "diffattn-golden", "format_version": 1,
      "generator": "Tests/Fixtures/generate.py",
      "versions": {"diffusers": "0.42.1", "torch": "...", "numpy": "...", "python": "..."},
      "reference": "CPU, float32, module in eval mode",
      "tolerance": {"rtol": 2e-4},
      "counts": {"<category>": n, ...},
      "cases": [ <case>, ... ]
    }

Each ``<case>`` is a JSON object:

``name``       unique id (``[a-z0-9_.-]+``), used as the pytest id.
``kind``       ``"construct"`` -- build an ``Attention``, check attributes/processor/state-dict names;
               ``"forward"``   -- build, load weights, ``set_processor``, call the module;
               ``"helper"``    -- build, load weights, call one helper method;
               ``"sdpa"``      -- call ``scaled_dot_product_attention`` (no module).
``category``   finer grouping for reports (e.g. ``"mask"``, ``"qk_norm"``, ``"construct_error"``).
``file``       the .npz holding this case's arrays (relative to ``attention/``; several cases
               may share one file, e.g. the two processors of one configuration). Construct
               cases have no file (they check names/shapes only, not numbers).
``init``       (construct/forward/helper) keyword arguments for ``Attention(**init)``, plain JSON
               (``null`` = ``None``). Cases that fail at construction have ``expect.stage = "init"``.
``state_dict`` (when the module builds) ``[[key, [shape...]], ...]`` exactly as diffusers'
               ``state_dict()`` reports it, in diffusers' order. For forward/helper cases the
               weights are the arrays ``param/<key>`` of ``file`` (random, non-trivial: norm
               weights are not ones, biases not zeros; values are float16-representable so the
               files compress well); load them with ``load_state_dict``.
``attributes`` (when the module builds) ``heads``, ``inner_dim``, ``inner_kv_dim``, ``scale``,
               ``sliceable_head_dim``, ``is_cross_attention`` read from the diffusers module.
``default_processor`` (when the module builds) ``type(attn.processor).__name__`` right after
               construction (the ``init`` never passes a processor).
``processor``  (forward) the processor class to install with ``set_processor`` before the call,
               or ``null`` to keep the default one.
``call``       ``{"method": m, "args": [...], "kwargs": {...}}``; ``m`` is ``"__call__"`` for
               forward cases, the helper name for helper cases, ``"scaled_dot_product_attention"``
               for sdpa cases. Argument values are JSON scalars or array references.
``expect``     either ``{"output": <array reference or null>}`` (``null`` = the call returns
               ``None``; construct cases that build use ``null``) or
               ``{"error": {"type": "<class name>", "message": "...", "accept": [...]},
               "stage": "init" | "call"}``. ``type`` and ``message`` are the reference's;
               ``accept`` lists the exception classes diffattn may raise: ``[type]`` when
               diffusers raises ValueError/TypeError deliberately, else ``["ValueError",
               "TypeError"]`` (torch shape errors, AttributeError/AssertionError, and TypeErrors
               that are mere ``None`` dereferences such as calling a missing ``to_k``).
               ``stage`` "call" means construction and weight loading succeed and the call fails.

An *array reference* is ``{"$array": "<key in file>"}`` with optional ``"transpose": [axes]``
and/or ``"slice": [[start, stop, step] | null, ...]`` (one entry per axis; ``null`` = whole
axis) which the loader applies to the stored array as *views* -- this is how non-contiguous
(strided) inputs are described. Stored key prefixes: ``param/`` weights, ``in/`` inputs,
``out/`` expected outputs (``out/<processor>`` for forward cases, ``out/default`` when the
default processor is used; in the shared sdpa file per-case arrays are ``in/<name>/...`` and
``out/<name>/result``). Masks are stored as float32
(additive) or bool. Expected outputs may contain NaN (e.g. a fully ``-inf``-masked row under
``AttnProcessor``); NaN positions must match exactly.
"""

import argparse
import os
import sys

from fixture_io import (DATE, additive, dump_index, err_record, f16r, golden_index, jsonable, keep_mask,  # noqa: F401
                        random_weight, randn, ref, rng_for, sync_dir, write_npz)
from gen_attention import ATTRS, PROCS, Gen, apply_view  # noqa: F401  (G.ATTRS for gen_classic)
from gen_attention_grid import build_grid

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "attention")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the files on disk")
    args = ap.parse_args()

    g = Gen()
    build_grid(g)
    index = golden_index(g.cases, "Tests/Fixtures/generate.py",
                         "diffusers.models.attention_processor.Attention and torch.nn.functional."
                         "scaled_dot_product_attention on CPU, float32, module in eval mode")
    blobs = {f: write_npz(a) for f, a in g.files.items()}
    blobs["index.json"] = dump_index(index).encode()

    rc = sync_dir(OUT_DIR, blobs, args.check, f"attention ({len(g.cases)} cases)")
    if args.check:
        return rc
    for k, v in index["counts"].items():
        print(f"  {k:28s} {v}")
    print("versions:", index["versions"])
    import gen_models  # model-level fixtures (issue 5), written to Tests/Fixtures/models/
    return gen_models.main()


if __name__ == "__main__":
    rc = main()
    import gen_classic  # issue 3: classic processors, SpatialNorm, switches -> Tests/Fixtures/classic

    import gen_dit  # issue 4: DiT and joint-attention processors -> Tests/Fixtures/dit
    import gen_hooks  # issue 6: pyramid attention broadcast decisions -> Tests/Fixtures/hooks
    import gen_caches  # issue 10: cache and layer-skip decisions -> Tests/Fixtures/hooks/caches.json
    import gen_pretrained  # issue 18: saved model folders (sharded, bf16) -> Tests/Fixtures/pretrained

    rc = max(rc, gen_classic.main(), gen_dit.run("--check" in sys.argv), gen_hooks.main(), gen_caches.main(),
                 gen_pretrained.main())

    # issue 16: ModelHook scripts, SEG / skip_attention_scores / TaylorSeer lite, SeaCache -> Tests/Fixtures/hooks
    import gen_hook_scripts
    import gen_hooks_newer
    import gen_sea_cache
    rc = max(rc, gen_hook_scripts.main(), gen_hooks_newer.main(), gen_sea_cache.main())
    sys.exit(rc)
