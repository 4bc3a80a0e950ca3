#!/usr/bin/env bash
# The packages as a new user meets them: build the .debs, lint them, install them with dpkg -i,
# compile and run the C and C++ examples against the installed headers with pkg-config only,
# pip-install the Python binding into a venv and use the installed library from it, then
# dpkg -r and check that nothing is left. Needs root (dpkg). Run by `make test-packaging`.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [ "$(id -u)" != 0 ]; then
  echo "packaging: skipped (dpkg -i needs root)"
  exit 0
fi
# One packaging test at a time on a machine: they share dpkg's database.
exec 9>/tmp/diffattn-packaging-test.lock
flock 9

work=$(mktemp -d /tmp/diffattn-packaging.XXXXXX)
passed=0 failed=0
check() {  # check "name" command... — output kept in $work/log.<n>, shown on failure
  local name=$1; shift
  local log=$work/log.$((passed + failed))
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "  ok    $name"
  else
    failed=$((failed + 1)); echo "  FAIL  $name"; sed 's/^/        /' "$log" | tail -25
  fi
}

macro() { sed -n "s/^#define DA_VERSION_$1 \([0-9][0-9]*\).*/\1/p" include/diffattn.h; }
version=$(macro MAJOR).$(macro MINOR).$(macro PATCH)
arch=$(dpkg --print-architecture)
debs=$repo/.build/deb
runtime_deb=$debs/libdiffattn0_${version}_${arch}.deb
dev_deb=$debs/libdiffattn-dev_${version}_${arch}.deb
mpi_deb=$debs/libdiffattn-mpi0_${version}_${arch}.deb
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
installed_lib="(/usr)?/lib/$multiarch/libdiffattn.so.0"  # /lib is /usr/lib on merged-/usr systems

installed=0  # (a libdiffattn installed before the test is replaced, then removed with the rest)
cleanup() {
  [ "$installed" = 1 ] && dpkg -r libdiffattn-mpi0 libdiffattn-dev libdiffattn0 >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

echo "packaging: libdiffattn $version"

# ---- build and lint ---------------------------------------------------------------------------
rm -f "$runtime_deb" "$dev_deb" "$mpi_deb"  # never test the packages of an earlier run
check "packaging/build-deb.sh builds both packages" bash packaging/build-deb.sh "$debs"
[ -f "$runtime_deb" ] && [ -f "$dev_deb" ] || { echo "packaging: $passed passed, $failed failed"; exit 1; }
check "lintian: no errors, no warnings" lintian --fail-on error,warning "$runtime_deb" "$dev_deb"
check "bindings/python/pyproject.toml has the header's version $version" \
  grep -q "^version = \"$version\"" bindings/python/pyproject.toml
check "docs/api/diffattn.md: every section and comment of the header, up to date (make docs)" \
  python3 Tests/packaging/api_docs_check.py "$repo"
DIFFATTN_LIBRARY=$repo/.build/release/libdiffattn.so python3 packaging/processor-table.py --check README.md \
  || echo "  note  the README's processor table differs from what the library reports: run make docs"

# ---- install ----------------------------------------------------------------------------------
check "dpkg -i both packages" dpkg -i "$runtime_deb" "$dev_deb"
installed=1
check "the ldconfig trigger registered libdiffattn.so.0" \
  sh -c "ldconfig -p | grep -Eq 'libdiffattn.so.0 .*=> $installed_lib\$'"
check "pkg-config --modversion diffattn is $version" \
  sh -c "[ \"\$(pkg-config --modversion diffattn)\" = '$version' ]"

# ---- C and C++ against the installed files only -----------------------------------------------
flags=$(pkg-config --cflags --libs diffattn)
build_and_run() {  # compiler, std, source, binary, extra flags: no -I/-L of the checkout; runs from $work
  local cc=$1 std=$2 src=$3 bin=$4
  shift 4
  $cc -std="$std" -O2 -Wall "$@" "$src" $flags -lm -o "$bin" || return 1
  local deps; deps=$(ldd "$bin")  # not `ldd | grep -q`: under pipefail, grep's early exit fails the pipe
  grep -Eq "libdiffattn.so.0 => $installed_lib " <<< "$deps" \
    || { echo "$bin does not use the installed library:"; echo "$deps"; return 1; }
  (cd "$work" && "$bin")
}
c_sources=(examples/c/*.c)
[ -e "${c_sources[0]}" ] || c_sources=()
for src in "${c_sources[@]}" Tests/packaging/smoke.c; do
  check "C: $src (gcc, pkg-config diffattn)" build_and_run gcc c11 "$repo/$src" "$work/$(basename "$src" .c)-c"
done
readme_block() {  # the first ```$2 block after the README line "$1"
  awk -v h="$1" -v fence='```'"$2" '$0 == h {f = 1; next} f && $0 == fence {c = 1; next}
                                    c && $0 == "```" {exit} c {print}' README.md
}
readme_block "## A complete C program" c > "$work/readme-example.c"
check "C: the README's C program" build_and_run gcc c11 "$work/readme-example.c" "$work/readme-example"
for src in examples/cpp/*.cpp; do
  check "C++: $src (g++ -std=c++17, pkg-config diffattn)" \
    build_and_run g++ c++17 "$repo/$src" "$work/$(basename "$src" .cpp)-cpp"
done
# The wrapper is included by users' code: it must stay quiet under their strictest warnings.
check "C++: Tests/packaging/hpp_check.cpp (diffattn.hpp, -Wconversion -Werror)" \
  build_and_run g++ c++17 "$repo/Tests/packaging/hpp_check.cpp" "$work/hpp_check" \
  -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror

# A program built against the packages gets its dependency from the installed symbols file.
shlibdeps_of_demo() {
  mkdir -p "$work/shlibdeps/debian" && printf 'Source: x\n\nPackage: x\nArchitecture: any\n' \
    > "$work/shlibdeps/debian/control"
  local deps
  deps=$(cd "$work/shlibdeps" && dpkg-shlibdeps -O "$work/smoke-c") || return 1
  echo "$deps"
  grep -q "libdiffattn0 (>= $version)" <<< "$deps"
}
check "dpkg-shlibdeps reads the symbols file: a C program depends on libdiffattn0 (>= $version)" shlibdeps_of_demo

# ---- Python: pip install ./bindings/python into a venv, installed library ----------------------
venv=$work/venv
pip_install() {
  python3 -m venv --system-site-packages "$venv" || return 1
  # A copy of bindings/python, so that setuptools' build/ and egg-info stay out of the checkout.
  mkdir -p "$work/bindings" && cp -r bindings/python "$work/bindings/python" || return 1
  find "$work/bindings" -name __pycache__ -prune -exec rm -rf {} +
  # Offline when the venv sees setuptools and wheel (python3-setuptools/-wheel or pip's own).
  if "$venv/bin/python" -c "import setuptools, wheel" 2>/dev/null; then
    (cd "$work" && "$venv/bin/pip" install -q --no-build-isolation ./bindings/python)
  else
    (cd "$work" && "$venv/bin/pip" install -q ./bindings/python)
  fi
}
check "python3 -m venv + pip install ./bindings/python" pip_install
py() { (cd "$work" && env -u DIFFATTN_LIBRARY -u PYTHONPATH "$venv/bin/python" -I "$@"); }
info_uses_installed() {
  py -m diffattn info > "$work/info.txt" || { cat "$work/info.txt"; return 1; }
  sed 's/^/        /' "$work/info.txt" >&3
  grep -Eq "^library +$installed_lib" "$work/info.txt" || { cat "$work/info.txt"; return 1; }
}
exec 3>&1
check "python -m diffattn info reports the installed library" info_uses_installed
check "python: a forward through the installed library" py -c '
import numpy as np, diffattn
assert diffattn.__file__.startswith("'"$venv"'"), diffattn.__file__
assert diffattn.library_path == "libdiffattn.so.0", diffattn.library_path
attn = diffattn.Attention(query_dim=32, heads=2, dim_head=16)
out = attn(np.ones((1, 4, 32), np.float32))
assert out.shape == (1, 4, 32) and np.isfinite(out).all()
o = diffattn.scaled_dot_product_attention(*(np.ones((1, 2, 3, 4), np.float32),) * 3)
assert np.allclose(o, 1.0)
print("forward ok:", diffattn.__version__, out.shape)
'
readme_block "## Python from a venv" python > "$work/readme-example.py"
check "python: the README's Python example" py "$work/readme-example.py"

# ---- the MPI plugin package (built when make build found mpi.h) -------------------------------
if [ -f "$mpi_deb" ] && command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
  check "lintian libdiffattn-mpi0: no errors, no warnings" lintian --fail-on error,warning "$mpi_deb"
  check "dpkg -i libdiffattn-mpi0" dpkg -i "$mpi_deb"
  mpi_program() {  # the installed library finds the installed plugin next to itself
    mpicc -std=gnu11 -O1 -I"$repo/include" "$repo/Tests/mpi/cp_mpi.c" "$repo/Tests/mpi/cp_cases.c" $flags -lm \
      -o "$work/cp_mpi" || return 1
    local deps; deps=$(ldd "$work/cp_mpi")
    grep -Eq "libdiffattn.so.0 => $installed_lib " <<< "$deps" || { echo "$deps"; return 1; }
    (cd "$work" && env -u DIFFATTN_MPI_PLUGIN timeout 120 mpirun -np 2 --oversubscribe --allow-run-as-root \
       --bind-to none -x OPENBLAS_NUM_THREADS=1 -x DIFFATTN_NUM_THREADS=1 ./cp_mpi) | tee "$work/mpi.txt"
    grep -Eq "^mpi-c np=2: [0-9]+ passed, 0 failed$" "$work/mpi.txt"
  }
  check "mpirun -np 2: context parallel attention through the installed plugin" mpi_program
  mpi_files=$(dpkg-deb --fsys-tarfile "$mpi_deb" | tar -t | sed -e 's|^\./|/|' -e '\|^/$|d' | grep -v '/$')
  check "dpkg -r libdiffattn-mpi0" dpkg -r libdiffattn-mpi0
  mpi_leftovers() {
    local left=""
    while read -r f; do { [ -e "$f" ] || [ -L "$f" ]; } && left="$left $f"; done <<< "$mpi_files"
    [ -z "$left" ] || { echo "left behind:$left"; return 1; }
  }
  check "dpkg -r libdiffattn-mpi0 leaves nothing behind" mpi_leftovers
else
  echo "  note  libdiffattn-mpi0 not built or no mpirun: MPI package checks skipped"
fi

# ---- remove: nothing may be left --------------------------------------------------------------
files=$(for deb in "$runtime_deb" "$dev_deb"; do dpkg-deb --fsys-tarfile "$deb" | tar -t; done \
        | sed -e 's|^\./|/|' -e '\|^/$|d')
check "dpkg -r both packages" dpkg -r libdiffattn-dev libdiffattn0
installed=0
leftovers() {
  local status left=""
  for p in libdiffattn0 libdiffattn-dev; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
    [ -z "$status" ] || [ "$status" = not-installed ] || left="$left $p:$status"
  done
  while read -r f; do
    case $f in */) [ -d "$f" ] && ! dpkg -S "${f%/}" >/dev/null 2>&1 && left="$left $f" ;;
               *) { [ -e "$f" ] || [ -L "$f" ]; } && left="$left $f" ;; esac
  done <<< "$files"
  ldconfig -p > "$work/ldconfig.txt"; grep -q libdiffattn "$work/ldconfig.txt" && left="$left (ldconfig cache)"
  [ -z "$left" ] || { echo "left behind:$left"; return 1; }
}
check "dpkg -r leaves nothing behind (files, status, ldconfig cache)" leftovers

echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
