#!/usr/bin/env bash
# Builds the Debian package jobstore_<version>_amd64.deb (CPack's DEB generator, packaging/) from
# a build directory, the binary and the man page included, into OUT_DIR.
#   scripts/package.sh [BUILD_DIR (build)] [OUT_DIR (BUILD_DIR/package)]
# Prints the package's path last. Needs help2man and dpkg-dev (scripts/debian-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=$(realpath -m "${2:-$build/package}")
for tool in help2man dpkg-shlibdeps fakeroot; do
  command -v $tool >/dev/null || { echo "package.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -f "$build/CMakeCache.txt" ] || scripts/setup.sh "$build"
cmake --build "$build" --target jobstore jobstore_package_files -j"$(nproc)"
mkdir -p "$out"
(cd "$build" && fakeroot cpack -G DEB -B "$out" >/dev/null)
rm -rf "$out/_CPack_Packages"
ls "$out"/jobstore_*_amd64.deb
