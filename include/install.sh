#!/bin/sh
# Installs the C library: libstoffel_vm.so (and .a), stoffel_vm.h and a pkg-config file.
#
#   include/install.sh [--prefix DIR] [--lib-dir DIR]
#
# --prefix   where to install (default /usr/local): DIR/lib, DIR/include, DIR/lib/pkgconfig
# --lib-dir  take the built library from DIR instead of running `cargo build --release`
#
# Afterwards: pkg-config --cflags --libs stoffel_vm
# (set PKG_CONFIG_PATH=DIR/lib/pkgconfig for a prefix pkg-config does not search).
set -eu

prefix=/usr/local
lib_src=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --lib-dir) lib_src="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$lib_src" ]; then
  (cd "$root" && cargo build --release --lib)
  lib_src="$root/target/release"
fi
if [ ! -f "$lib_src/libstoffel_vm.so" ]; then
  echo "install.sh: $lib_src/libstoffel_vm.so not found" >&2
  exit 1
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$lib_src/libstoffel_vm.so" "$prefix/lib/"
if [ -f "$lib_src/libstoffel_vm.a" ]; then
  cp "$lib_src/libstoffel_vm.a" "$prefix/lib/"
fi
cp "$root/include/stoffel_vm.h" "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" \
  "$root/include/stoffel_vm.pc.in" > "$prefix/lib/pkgconfig/stoffel_vm.pc"
echo "installed stoffel_vm $version under $prefix"
