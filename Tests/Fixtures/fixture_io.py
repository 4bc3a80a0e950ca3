"""Shared pieces of the fixture generators: seeded random numbers, byte-reproducible .npz and
index.json files, error records, and writing or checking a fixture directory.

`generate.py` re-exports these names, so the other generators reach them as `G.<name>`.
"""

import io
import json
import os
import platform
import zipfile
import zlib

import numpy as np

DATE = (1980, 1, 1, 0, 0, 0)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def ref(key, **extra):
    d = {"$array": key}
    d.update(extra)
    return d


def write_npz(arrays):
    """A standard .npz (loadable by np.load) with fixed timestamps -> byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            a = np.ascontiguousarray(arrays[key])
            b = io.BytesIO()
            np.lib.format.write_array(b, a, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, b.getvalue())
    return buf.getvalue()


def err_record(e):
    msg = str(e).strip().splitlines()
    msg = (msg[0] if msg else "")[:400]
    t = type(e).__name__
    # Errors diffusers raises on purpose (ValueError/TypeError) must be matched by class; the
    # accidental ones (shape errors from torch, None dereferences, assertions) may come back
    # from diffattn as either ValueError or TypeError.
    if t in ("ValueError", "TypeError") and not msg.startswith("'NoneType' object"):
        accept = [t]
    else:
        accept = ["ValueError", "TypeError"]
    return {"type": t, "message": msg, "accept": accept}


def f16r(a):
    """float32 array whose values are exactly representable in float16: still random and
    non-trivial, but the stored bytes compress about twice as well (keeps the fixtures small)."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def sync_dir(out_dir, blobs, check, label):
    """Writes {file: bytes} into out_dir (removing stale files), or with `check` compares them;
    returns 1 when a check finds differences."""
    if check:
        bad = [f for f, b in blobs.items()
               if not os.path.exists(os.path.join(out_dir, f)) or open(os.path.join(out_dir, f), "rb").read() != b]
        extra = sorted(set(os.listdir(out_dir)) - set(blobs)) if os.path.isdir(out_dir) else []
        print(f"{label}: {len(blobs)} files, {len(bad)} differ, {len(extra)} stale")
        return 1 if bad or extra else 0
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f not in blobs:
            os.remove(os.path.join(out_dir, f))
    for f, b in blobs.items():
        with open(os.path.join(out_dir, f), "wb") as fh:
            fh.write(b)
    print(f"{label}: wrote {len(blobs)} files, {sum(len(b) for b in blobs.values()) / 1e6:.2f} MB to {out_dir}")
    return 0


def random_weight(rng, shape, leaf, is_norm):
    """A parameter's random value: norm weights near 1, biases small, others scaled by 1/sqrt(fan_in);
    float16-representable (f16r)."""
    if leaf == "weight" and is_norm:
        a = 1.0 + 0.3 * rng.standard_normal(shape)
    elif leaf == "bias":
        a = 0.1 * rng.standard_normal(shape)
    else:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        a = rng.standard_normal(shape) / np.sqrt(fan_in)
    return f16r(a)


def jsonable(v):
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def dump_index(index):
    """Pretty JSON with one case per line (small, readable, diff-friendly)."""
    head = {k: v for k, v in index.items() if k != "cases"}
    text = json.dumps(head, indent=1, allow_nan=False)[:-2]
    lines = [json.dumps(c, allow_nan=False, separators=(", ", ": ")) for c in index["cases"]]
    return text + ',\n "cases": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def golden_index(cases, generator, reference, **extra):
    """The index.json of a golden set: format, the versions that made it, tolerance, any `extra`
    fields, the case count per category, then the cases (key order kept for byte-identical files)."""
    import diffusers
    import torch

    counts = {}
    for c in cases:
        counts[c["category"]] = counts.get(c["category"], 0) + 1
    index = {
        "format": "diffattn-golden",
        "format_version": 1,
        "generator": generator,
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "reference": reference,
        "tolerance": {"rtol": 2e-4},
    }
    index.update(extra)
    index["counts"] = dict(sorted(counts.items()))
    index["cases"] = cases
    return index


def randn(*shape, s=1.0):
    return lambda rng: f16r(s * rng.standard_normal(shape))


def keep_mask(rng, shape, p=0.3):
    """Boolean keep-mask with ~p removed, never removing a whole row."""
    m = rng.random(shape) >= p
    m[..., 0] = True
    return m


def additive(rng, shape, fill=-10000.0):
    return np.where(keep_mask(rng, shape), 0.0, fill).astype(np.float32)


def write_hook_fixture(path, fmt, generator, cases, **extra):
    """Writes a hook fixture (Tests/Fixtures/hooks/*.json): format, generator, the versions that
    made it, any `extra` fields (e.g. rtol), the cases; sorted keys, one indent, trailing newline."""
    import diffusers
    import torch

    out = {"format": fmt, "format_version": 1, "generator": generator,
           "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "python": platform.python_version()},
           "cases": cases}
    out.update(extra)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
