#!/bin/sh
# Lays out the root filesystem of the barnacle image in OUT_DIR:
#
#   /usr/local/bin/barnacle                the binary (stripped)
#   /usr/local/bin/<name> -> barnacle      one relative symlink per line of docker/commands.txt
#   /etc/ssl/certs/ca-certificates.crt     CA roots for HTTPS endpoints (AWS S3)
#   /etc/passwd, /etc/group                root and nobody (65534), nothing else
#   /tmp                                   1777 (mount an emptyDir there under --read-only)
#
# Used by docker/Dockerfile (inside its builder stage) and by scripts/build-image.sh (on the host,
# for docker/Dockerfile.prebuilt), so both images have exactly the same layout.
# A static binary (`-C target-feature=+crt-static`) needs nothing else. A dynamically linked one
# gets its ELF interpreter and the shared libraries `ldd` names copied in at the same paths, so
# that it still runs FROM scratch.
#
# usage: docker/rootfs.sh BINARY OUT_DIR [CA_BUNDLE]
set -eu

binary=${1:?usage: rootfs.sh BINARY OUT_DIR [CA_BUNDLE]}
out=${2:?usage: rootfs.sh BINARY OUT_DIR [CA_BUNDLE]}
ca=${3:-/etc/ssl/certs/ca-certificates.crt}
here=$(cd "$(dirname "$0")" && pwd)

[ -f "$binary" ] || { echo "rootfs.sh: no binary at $binary" >&2; exit 1; }
[ -f "$ca" ] || { echo "rootfs.sh: no CA bundle at $ca (install ca-certificates)" >&2; exit 1; }

mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
chmod 1777 "$out/tmp"
cp "$binary" "$out/usr/local/bin/barnacle"
chmod 0755 "$out/usr/local/bin/barnacle"
if command -v strip >/dev/null 2>&1; then
  strip "$out/usr/local/bin/barnacle"
fi

grep -v -e '^#' -e '^[[:space:]]*$' "$here/commands.txt" | while read -r name; do
  ln -sfn barnacle "$out/usr/local/bin/$name"
done

cp "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$out/etc/ssl/certs/ca-certificates.crt"

printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' \
  > "$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$out/etc/group"

# A glibc-linked binary: bring its loader and libraries (ldd prints "lib => /path (addr)" and
# "/lib64/ld-linux-x86-64.so.2 (addr)"; a static one prints "statically linked" or "not a dynamic
# executable").
if ldd "$binary" 2>/dev/null | grep -q '=>'; then
  echo "rootfs.sh: $binary is dynamically linked; copying its loader and libraries" >&2
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
      mkdir -p "$out$(dirname "$lib")"
      cp -L "$lib" "$out$lib"
    done
fi
