#!/usr/bin/env bash
# Builds the barnacle image from a binary built on this host (no Rust image, no registry needed),
# and optionally the CloudNativePG PostgreSQL image on top of a base you name.
#
#   scripts/build-image.sh                                   # static release build, then the image
#   scripts/build-image.sh --tag registry.example.com/barnacle:0.1.0 \
#       --cnpg-base ghcr.io/cloudnative-pg/postgresql:15 \
#       --cnpg-tag registry.example.com/barnacle-cnpg-postgres:15
#   scripts/build-image.sh --binary target/debug/barnacle    # any barnacle binary (a glibc one too)
#
# Options:
#   --binary FILE      use this binary instead of building the static one
#   --tag IMAGE        the barnacle image (default localhost/barnacle:<version>)
#   --cnpg-base IMAGE  also build docker/cnpg-postgres on this PostgreSQL image ...
#   --cnpg-tag IMAGE   ... tagged IMAGE (default localhost/barnacle-cnpg-postgres:15)
#   --engine NAME      podman (default when present), docker or buildah
#   --save DIR         also write each image as an OCI archive into DIR
# Environment: IMAGE_BUILD_FLAGS is added to every build command (e.g. "--pull=never").
#
# The static binary: RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile dist --target
# x86_64-unknown-linux-gnu (glibc static-pie; aws-lc, zstd, lz4 and liblzma are C and link in),
# without debug info. The script checks it is static before using it.
# On hosts like our CI machines (hybrid cgroups, no registry) podman needs the settings in
# docker/README.md ("Building it", without a registry): CONTAINERS_CONF, BUILDAH_ISOLATION=chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="" tag="" cnpg_base="" cnpg_tag="" engine="" save=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --cnpg-base) cnpg_base=$2; shift 2 ;;
    --cnpg-tag) cnpg_tag=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 3 ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=${tag:-localhost/barnacle:$version}
cnpg_tag=${cnpg_tag:-localhost/barnacle-cnpg-postgres:15}
if [ -z "$engine" ]; then
  for e in podman docker buildah; do
    if command -v "$e" >/dev/null 2>&1; then engine=$e; break; fi
  done
fi
[ -n "$engine" ] || { echo "build-image.sh: no podman, docker or buildah on PATH" >&2; exit 1; }
build() {
  # shellcheck disable=SC2086 # IMAGE_BUILD_FLAGS is a list of flags
  if [ "$engine" = buildah ]; then
    buildah bud ${IMAGE_BUILD_FLAGS:-} "$@"
  else
    "$engine" build ${IMAGE_BUILD_FLAGS:-} "$@"
  fi
}
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

if [ -z "$binary" ]; then
  t=$(now)
  target=x86_64-unknown-linux-gnu
  RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_DIST_DEBUG=false \
    cargo build --profile dist --locked --target "$target" --bin barnacle
  binary=target/$target/dist/barnacle
  if ldd "$binary" 2>/dev/null | grep -q '=>'; then
    echo "build-image.sh: $binary is not statically linked" >&2
    exit 1
  fi
  echo "build-image.sh: static binary built in $(took "$t")"
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/barnacle-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
sh docker/rootfs.sh "$binary" "$context/rootfs"
cp docker/Dockerfile.prebuilt "$context/Dockerfile"

t=$(now)
build -f "$context/Dockerfile" -t "$tag" "$context"
echo "build-image.sh: $tag built in $(took "$t")"

if [ -n "$cnpg_base" ]; then
  t=$(now)
  build -f docker/cnpg-postgres/Dockerfile \
    --build-arg "BARNACLE_IMAGE=$tag" --build-arg "POSTGRES_IMAGE=$cnpg_base" \
    -t "$cnpg_tag" docker/cnpg-postgres
  echo "build-image.sh: $cnpg_tag built in $(took "$t")"
fi

if [ -n "$save" ]; then
  mkdir -p "$save"
  for image in "$tag" ${cnpg_base:+"$cnpg_tag"}; do
    file="$save/$(echo "${image##*/}" | tr ':' '_').oci.tar"
    if [ "$engine" = buildah ]; then
      buildah push "$image" "oci-archive:$file:$image"
    else
      "$engine" save --format oci-archive -o "$file" "$image" 2>/dev/null ||
        "$engine" save -o "$file" "$image"
    fi
    echo "build-image.sh: saved $image to $file"
  done
fi

if [ "$engine" != buildah ]; then
  "$engine" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    grep -F -e "${tag}" ${cnpg_base:+-e "$cnpg_tag"} || true
fi
