"""Loader for the golden fixtures in Tests/Fixtures/attention (format: see Tests/Fixtures/generate.py).

numpy only (no torch): the parity tests run with a plain python3 + numpy.
"""

import json
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE_DIR = os.path.join(REPO, "Tests", "Fixtures", "attention")
INDEX_PATH = os.path.join(FIXTURE_DIR, "index.json")

_index = None
_files = {}


def index():
    global _index
    if _index is None:
        with open(INDEX_PATH) as fh:
            _index = json.load(fh)
        assert _index.get("format") == "diffattn-golden" and _index.get("format_version") == 1, INDEX_PATH
    return _index


def rtol():
    return float(index()["tolerance"]["rtol"])


def cases(*kinds):
    """All cases (dicts) whose kind is in ``kinds`` (all cases if none given), index order."""
    return [Case(c) for c in index()["cases"] if not kinds or c["kind"] in kinds]


def params(*kinds, where=None):
    """Cases as pytest parameters with the case name as id."""
    import pytest

    return [pytest.param(c, id=c.name) for c in cases(*kinds) if where is None or where(c)]


def _npz(fname):
    if fname not in _files:
        with np.load(os.path.join(FIXTURE_DIR, fname), allow_pickle=False) as z:
            _files[fname] = {k: z[k] for k in z.files}
    return _files[fname]


def apply_view(a, opts):
    """Non-contiguous views described by an array reference (slice first, then transpose)."""
    if "slice" in opts:
        a = a[tuple(slice(None) if s is None else slice(*s) for s in opts["slice"])]
    if "transpose" in opts:
        a = np.transpose(a, opts["transpose"])
    return a


class Case:
    def __init__(self, raw):
        self.raw = raw
        self.name = raw["name"]
        self.kind = raw["kind"]
        self.category = raw.get("category", "")

    def __getitem__(self, k):
        return self.raw[k]

    def get(self, k, default=None):
        return self.raw.get(k, default)

    def __repr__(self):
        return f"Case({self.name})"

    # --- arrays ---------------------------------------------------------------------------
    def array(self, key):
        """A stored array by key. Returns a copy so a test can never alter the cache."""
        return _npz(self.raw["file"])[key].copy()

    def resolve(self, v):
        """JSON value -> Python value (array references become numpy arrays / views)."""
        if isinstance(v, dict) and "$array" in v:
            return apply_view(self.array(v["$array"]), v)
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        return v

    @property
    def init(self):
        return dict(self.raw["init"])

    def state_dict(self):
        """The weights to load (``param/<name>`` arrays), in diffusers' order."""
        return {k: self.array("param/" + k) for k, _ in self.raw["state_dict"]}

    def state_dict_shapes(self):
        return {k: tuple(s) for k, s in self.raw["state_dict"]}

    def call_args(self):
        c = self.raw["call"]
        return [self.resolve(a) for a in c["args"]], {k: self.resolve(v) for k, v in c["kwargs"].items()}

    @property
    def expects_error(self):
        return "error" in self.raw["expect"]

    @property
    def error_stage(self):
        return self.raw["expect"].get("stage")

    def expected(self):
        """The expected output (numpy array) or None."""
        return self.resolve(self.raw["expect"]["output"])

    def accepted_errors(self):
        """Tuple of exception classes the binding may raise for an error case."""
        import builtins

        return tuple(getattr(builtins, n) for n in self.raw["expect"]["error"]["accept"])

    def error_text(self):
        e = self.raw["expect"]["error"]
        return f"reference raised {e['type']}: {e['message']}"


def assert_matches(ours, ref, rtol=None, what="output"):
    """Compare an output with the reference.

    Float: same shape, float32, NaN positions identical, elsewhere
    |ours - ref| <= rtol*|ref| + rtol*max|ref| (infinities must match exactly).
    Bool: same shape and identical values.
    """
    rtol = rtol if rtol is not None else globals()["rtol"]()
    assert ours is not None, f"{what}: got None, expected an array of shape {ref.shape}"
    ours = np.asarray(ours)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    if ref.dtype == np.bool_:
        assert ours.dtype == np.bool_, f"{what}: dtype {ours.dtype}, reference is bool"
        np.testing.assert_array_equal(ours, ref, err_msg=what)
        return
    assert ours.dtype == np.float32, f"{what}: dtype {ours.dtype}, expected float32"
    ref_nan = np.isnan(ref)
    our_nan = np.isnan(ours)
    if not np.array_equal(ref_nan, our_nan):
        raise AssertionError(
            f"{what}: NaN positions differ: reference has {int(ref_nan.sum())} NaN, ours {int(our_nan.sum())}, "
            f"{int((ref_nan != our_nan).sum())} positions disagree")
    ok = ~ref_nan
    finite = ok & np.isfinite(ref)
    scale = float(np.max(np.abs(ref[finite]))) if finite.any() else 0.0
    scale = max(scale, np.finfo(np.float32).tiny)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=rtol, atol=rtol * scale, err_msg=what)
