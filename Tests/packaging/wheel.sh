#!/usr/bin/env bash
# The wheel as a pip user meets it: make the wheel, pip-install it into a fresh venv, and use it with
# no DIFFATTN_LIBRARY, no checkout on the path and no LD_LIBRARY_PATH: the library and OpenBLAS must
# come from the wheel itself. Run by `make test-wheel` (part of `make test`).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
work=$(mktemp -d /tmp/diffattn-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {
  local name=$1; shift
  local log=$work/log.$((passed + failed))
  if "$@" >"$log" 2>&1; then passed=$((passed + 1)); echo "  ok    $name"
  else failed=$((failed + 1)); echo "  FAIL  $name"; sed 's/^/        /' "$log" | tail -25; fi
}

check "packaging/build-wheel.py builds the wheel" python3 packaging/build-wheel.py --out "$work/dist"
wheel=$(ls "$work"/dist/diffattn-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "wheel: $passed passed, $failed failed"; exit 1; }
check "the wheel holds libdiffattn.so and OpenBLAS" \
  python3 -c "import sys, zipfile; n = zipfile.ZipFile(sys.argv[1]).namelist(); \
assert 'diffattn/_libs/libdiffattn.so' in n and 'diffattn/_libs/libopenblas.so.0' in n, n" "$wheel"

# numpy comes from the system site (the test runs offline); diffattn only from the wheel.
venv=$work/venv
check "pip install the wheel into a fresh venv" \
  bash -c "python3 -m venv --system-site-packages '$venv' && '$venv/bin/pip' install -q --no-deps --no-index '$wheel'"
py() { (cd "$work" && env -u DIFFATTN_LIBRARY -u PYTHONPATH -u LD_LIBRARY_PATH "$venv/bin/python" -I "$@"); }
check "import diffattn uses the bundled libdiffattn and OpenBLAS" py -c '
import numpy as np, diffattn, importlib.metadata as md
assert diffattn.__file__.startswith("'"$venv"'"), diffattn.__file__
maps = open("/proc/self/maps").read()
libs = {l.split()[-1] for l in maps.splitlines() if ".so" in l}
for name in ("libdiffattn.so", "libopenblas.so.0"):
    hits = [p for p in libs if p.endswith("/" + name)]
    assert hits and all("/diffattn/_libs/" in p for p in hits), (name, hits)
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((1, 2, 5, 8)).astype(np.float32) for _ in range(3))
s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(8)
ref = np.exp(s - s.max(-1, keepdims=True)); ref = ref / ref.sum(-1, keepdims=True) @ v
assert np.abs(diffattn.scaled_dot_product_attention(q, k, v) - ref).max() < 1e-5
a = diffattn.Attention(query_dim=16, heads=2, dim_head=8)
assert a(rng.standard_normal((1, 4, 16)).astype(np.float32)).shape == (1, 4, 16)
req = md.requires("diffattn")
assert any(r.startswith("diffusers==0.42.1") and "extra == \"diffusers\"" in r for r in req), req
print(diffattn.__version__)
'
echo "wheel: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
