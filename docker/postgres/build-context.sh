#!/bin/sh
# Assembles a docker build context for a PostgreSQL image from THIS machine's PostgreSQL
# installation (Debian's postgresql package): no image is pulled, so the demo and the tests
# work without a registry. Usage: docker/postgres/build-context.sh OUTDIR
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgroot=$(dirname "$bindir")
version=$(basename "$pgroot")
rootfs="$out/rootfs"
rm -rf "$out"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/usr/share" "$out/home"
touch "$out/home/.keep"

copy() { # copy a file to the same path inside the rootfs
  mkdir -p "$rootfs$(dirname "$1")"
  cp -L "$1" "$rootfs$1"
}
libs_of() {
  ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/lib/{print $1}'
}

for exe in postgres initdb pg_ctl; do
  copy "$bindir/$exe"
  for lib in $(libs_of "$bindir/$exe"); do copy "$lib"; done
done
# Server modules (plpgsql, encodings...), except the LLVM JIT and its huge libraries.
for so in "$pgroot"/lib/*.so; do
  case "$so" in *llvmjit*) continue ;; esac
  copy "$so"
  for lib in $(libs_of "$so"); do copy "$lib"; done
done
cp -a "/usr/share/postgresql/$version" "$rootfs/usr/share/postgresql-$version.tmp"
mkdir -p "$rootfs/usr/share/postgresql" && mv "$rootfs/usr/share/postgresql-$version.tmp" "$rootfs/usr/share/postgresql/$version"
mkdir -p "$rootfs/usr/share/zoneinfo/Etc"
cp -L /usr/share/zoneinfo/Etc/UTC "$rootfs/usr/share/zoneinfo/Etc/UTC"
cp -L /usr/share/zoneinfo/UTC "$rootfs/usr/share/zoneinfo/UTC"
# A shell for the entrypoint script.
copy /bin/sh
for lib in $(libs_of /bin/sh); do copy "$lib"; done
for l in /lib64/ld-linux-x86-64.so.2; do [ -e "$l" ] && copy "$l"; done

printf 'root:x:0:0::/:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\npostgres:x:999:\n' > "$rootfs/etc/group"
ln -s "$bindir/postgres" "$rootfs/bin/postgres"
ln -s "$bindir/initdb" "$rootfs/bin/initdb"
cp "$here/entrypoint.sh" "$rootfs/entrypoint.sh"
chmod 755 "$rootfs/entrypoint.sh"
cp "$here/Dockerfile" "$out/Dockerfile"
echo "$out"
