#!/usr/bin/env bash
# Builds libdiffattn0_<version>_<arch>.deb (the shared library) and libdiffattn-dev_<version>_<arch>.deb
# (headers, the .so link, diffattn.pc) from .build/release into .build/deb/, without debhelper:
# the files debhelper would write (md5sums, shlibs, symbols, triggers) are written here.
#
# usage: packaging/build-deb.sh [output-dir]     (run `swift build -c release` first; `make deb` does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-$root/.build/deb}
lib=$root/.build/release/libdiffattn.so
header=$root/include/diffattn.h

for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture chrpath strip nm python3; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev chrpath binutils python3)" >&2; exit 1; }
done
[ -f "$lib" ] || { echo "build-deb: $lib is missing; run swift build -c release (or make deb)" >&2; exit 1; }

macro() { sed -n "s/^#define DA_VERSION_$1 \([0-9][0-9]*\).*/\1/p" "$header"; }
major=$(macro MAJOR); minor=$(macro MINOR); patch=$(macro PATCH)
version=$major.$minor.$patch
[ "$major" = 0 ] || { echo "build-deb: DA_VERSION_MAJOR is $major: rename the package for the new soname" >&2; exit 1; }
changelog_version=$(sed -n '1s/^libdiffattn (\([^)]*\)).*/\1/p' packaging/changelog)
[ "$changelog_version" = "$version" ] || {
  echo "build-deb: packaging/changelog's top entry is $changelog_version, the header says $version: add an entry" >&2; exit 1; }

arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' packaging/changelog | head -1)
realname=libdiffattn.so.$major.$minor.$patch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=$work/debian/libdiffattn0
dev=$work/debian/libdiffattn-dev
libdir=usr/lib/$multiarch

# --- files -------------------------------------------------------------------------------------
install -d "$run/$libdir" "$run/DEBIAN" "$dev/$libdir/pkgconfig" "$dev/usr/include" "$dev/DEBIAN"
# As dh_strip does; the RUNPATH ($ORIGIN) SwiftPM adds is meaningless in /usr/lib.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$run/$libdir/$realname" "$lib"
chrpath -d "$run/$libdir/$realname" >/dev/null
chmod 0644 "$run/$libdir/$realname"
ln -s "$realname" "$run/$libdir/libdiffattn.so.0"

install -m 0644 "$header" "$dev/usr/include/diffattn.h"
install -m 0644 bindings/cpp/diffattn.hpp "$dev/usr/include/diffattn.hpp"
install -d "$dev/usr/include/diffattn"  # the wrapper's parts, included by diffattn.hpp
install -m 0644 bindings/cpp/diffattn/*.hpp "$dev/usr/include/diffattn/"
ln -s "$realname" "$dev/$libdir/libdiffattn.so"
sed -e "s/@MULTIARCH@/$multiarch/" -e "s/@VERSION@/$version/" packaging/diffattn.pc.in \
  > "$dev/$libdir/pkgconfig/diffattn.pc"
chmod 0644 "$dev/$libdir/pkgconfig/diffattn.pc"

for pkg in "$run" "$dev"; do
  doc=$pkg/usr/share/doc/$(basename "$pkg")
  install -d "$doc"
  install -m 0644 packaging/copyright "$doc/copyright"
  gzip -9n < packaging/changelog > "$doc/changelog.gz"   # native package: changelog.gz
  chmod 0644 "$doc/changelog.gz"
done

# --- control data of the runtime package -------------------------------------------------------
python3 packaging/symbols.py "$header" "$run/$libdir/$realname" "$version" \
  packaging/libdiffattn0.symbols.released > "$run/DEBIAN/symbols"
echo "libdiffattn 0 libdiffattn0 (>= $version)" > "$run/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$run/DEBIAN/triggers"

# dpkg-shlibdeps reads debian/control from the current directory.
printf 'Source: libdiffattn\n\nPackage: libdiffattn0\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e"debian/libdiffattn0/$libdir/$realname" 2>"$work/shlibdeps.log" \
          | sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.log" >&2; exit 1; }
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; cat "$work/shlibdeps.log" >&2; exit 1; }
sed 's/^/build-deb: /' "$work/shlibdeps.log" >&2  # its warnings, if any
rm "$work/debian/control"

description_tail=" libdiffattn is Hugging Face diffusers' attention layer (the Attention module
 and its attention processors, computed as diffusers 0.42.1 computes them) as a
 native CPU library with a stable C API, for inference engines written in C or
 C++ and for Python programs that do without torch. Large matrix products use
 OpenBLAS; the attention kernels have their own AVX-512 and AVX2 code paths,
 chosen at run time."

control() {  # package-dir, then the fields that differ
  local pkg=$1; shift
  {
    echo "Package: $(basename "$pkg")"
    echo "Source: libdiffattn"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Multi-Arch: same"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
    printf '%s\n' "$@"
    echo "Priority: optional"
  } > "$pkg/DEBIAN/control"
}
control "$run" "Depends: $depends" "Section: libs" \
  "Description: diffusers' attention layer on the CPU - shared library" "$description_tail" \
  " ." " This package contains the shared library."
control "$dev" "Depends: libdiffattn0 (= $version), libdlpack-dev" "Section: libdevel" \
  "Description: diffusers' attention layer on the CPU - development files" "$description_tail" \
  " ." " This package contains the C header diffattn.h, the header-only C++17" \
  " wrapper diffattn.hpp and the pkg-config file (pkg-config diffattn)."

for pkg in "$run" "$dev"; do
  (cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
     | xargs -0 md5sum > DEBIAN/md5sums)
  chmod 0644 "$pkg"/DEBIAN/*
  find "$pkg" -type d -exec chmod 0755 {} +
done

mkdir -p "$out"
for pkg in "$run" "$dev"; do
  dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out/$(basename "$pkg")_${version}_${arch}.deb" >/dev/null
done
echo "built $out/libdiffattn0_${version}_${arch}.deb and $out/libdiffattn-dev_${version}_${arch}.deb"

# --- libdiffattn-mpi0: the optional MPI plugin, when it was built (make build finds mpi.h) ------
plugin=$root/.build/release/libdiffattn-mpi.so.0
[ -f "$plugin" ] || { echo "build-deb: $plugin not built (no mpi.h): libdiffattn-mpi0 skipped"; exit 0; }
mpi=$work/debian/libdiffattn-mpi0
plugin_real=libdiffattn-mpi.so.$major.$minor.$patch
install -d "$mpi/$libdir" "$mpi/DEBIAN"
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$mpi/$libdir/$plugin_real" "$plugin"
chmod 0644 "$mpi/$libdir/$plugin_real"
ln -s "$plugin_real" "$mpi/$libdir/libdiffattn-mpi.so.0"
doc=$mpi/usr/share/doc/libdiffattn-mpi0
install -d "$doc"
install -m 0644 packaging/copyright "$doc/copyright"
gzip -9n < packaging/changelog > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
# Its one export is the plugin table that libdiffattn0 of the same version loads.
printf ' diffattn_mpi_plugin_v1@Base %s\n' "$version" | sed "1i libdiffattn-mpi.so.0 libdiffattn-mpi0 #MINVER#" \
  > "$mpi/DEBIAN/symbols"
echo "libdiffattn-mpi 0 libdiffattn-mpi0 (>= $version)" > "$mpi/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$mpi/DEBIAN/triggers"
printf 'Source: libdiffattn\n\nPackage: libdiffattn-mpi0\nArchitecture: any\n' > "$work/debian/control"
mpi_depends=$(cd "$work" && dpkg-shlibdeps -O -e"debian/libdiffattn-mpi0/$libdir/$plugin_real" 2>"$work/shlibdeps.log" \
              | sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.log" >&2; exit 1; }
rm "$work/debian/control"
control "$mpi" "Depends: libdiffattn0 (= $version), $mpi_depends" "Section: libs" \
  "Description: diffusers' attention layer on the CPU - MPI transport" "$description_tail" \
  " ." " This package contains the plugin that libdiffattn loads to run context-" \
  " parallel attention (ring, Ulysses) across MPI processes, over Open MPI."
(cd "$mpi" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$mpi"/DEBIAN/*
find "$mpi" -type d -exec chmod 0755 {} +
dpkg-deb --root-owner-group -Zxz --build "$mpi" "$out/libdiffattn-mpi0_${version}_${arch}.deb" >/dev/null
echo "built $out/libdiffattn-mpi0_${version}_${arch}.deb"
