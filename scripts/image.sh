#!/usr/bin/env bash
# Builds the hibernator image without a Docker engine or a registry, and
# smoke-tests it (run by .ci/run; see docs/installation.md#building-the-image).
#
#   sudo bash scripts/image.sh             # cargo build --release, image, smoke test
#   HIBERNATOR_BIN=path/to/hibernator bash scripts/image.sh
#
# The image is the Dockerfile's `prebuilt` target: its `runtime-base` stage
# (labels, user 65532:65532, exposed ports, entrypoint) is the one
# `docker build` uses, with the binary of the host's cargo build on a base
# assembled here instead of distroless, which CI cannot pull:
#   - the shared libraries `ldd` lists for the binary (glibc, libgcc_s, ld-linux),
#   - /etc/ssl/certs/ca-certificates.crt from Debian's ca-certificates,
#   - /etc/passwd, /etc/group with the nonroot user 65532, /etc/nsswitch.conf,
#     /home/nonroot and /tmp (1777), and distroless' PATH and SSL_CERT_FILE.
# Built with `buildah --storage-driver vfs` (tagged $IMAGE in the local
# storage), exported as an OCI layout to $OUT/oci, unpacked to $OUT/rootfs
# and run there by scripts/image-smoke.py (as uid 65532 under chroot).
#
# Needs root (buildah's vfs storage, chroot, mount namespaces) and Debian or
# Ubuntu: installs buildah, ca-certificates and openssl with apt-get when
# missing, and the chart venv (target/chart-venv) when missing.
# Environment: HIBERNATOR_BIN (default: build ${CARGO_TARGET_DIR:-target}/release/hibernator),
# IMAGE (default localhost/hibernator:ci), OUT (default target/image).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)
say() { echo "image.sh ($(( $(date +%s) - start ))s): $*"; }
die() { echo "image.sh: $*" >&2; exit 1; }

IMAGE=${IMAGE:-localhost/hibernator:ci}
BASE_IMAGE=localhost/hibernator-ci-base:latest
OUT=${OUT:-target/image}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)

[ "$(id -u)" = 0 ] || die "needs root (buildah vfs storage, chroot, mount namespaces)"

# --- tools -------------------------------------------------------------------
missing=()
command -v buildah >/dev/null || missing+=(buildah)
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v openssl >/dev/null || missing+=(openssl)
for t in unshare setpriv chroot mount tar ldd; do command -v "$t" >/dev/null || die "$t is missing"; done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bh() { buildah --storage-driver vfs "$@"; }
say "$(buildah --version)"

venv=$root/target/chart-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import helm_python, yaml' 2>/dev/null; then
  say "chart venv ($venv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-chart.txt
fi

# --- the binary --------------------------------------------------------------
if [ -z "${HIBERNATOR_BIN:-}" ]; then
  say "cargo build --release"
  cargo build --quiet --release --locked -p hibernator-operator --bin hibernator
  HIBERNATOR_BIN=${CARGO_TARGET_DIR:-target}/release/hibernator
fi
bin=$(realpath "$HIBERNATOR_BIN")
[ -x "$bin" ] || die "$bin is not an executable"
say "binary $bin ($(stat -c %s "$bin") bytes)"

# Shared libraries: every absolute path ldd prints (the vDSO has none).
ldd_out=$(ldd "$bin") || die "ldd $bin failed: $ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then die "unresolved libraries:"$'\n'"$ldd_out"; fi
mapfile -t libs < <(grep -o '/[^ ]*' <<<"$ldd_out" | sort -u)
[ ${#libs[@]} -gt 0 ] || die "ldd lists no libraries (a static binary needs no base; adjust this script)"

# --- base image ----------------------------------------------------------------
work=hibernator-ci-base-work
cleanup() {
  bh umount "$work" >/dev/null 2>&1 || true
  bh rm "$work" >/dev/null 2>&1 || true
  if [ -n "${ctx:-}" ]; then rm -rf "$ctx"; fi
}
trap cleanup EXIT
cleanup
# Replace, not accumulate, this script's images in the vfs storage.
bh rmi -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true

bh from --quiet --name "$work" scratch >/dev/null
mnt=$(bh mount "$work")
for lib in "${libs[@]}"; do
  install -D -m 0755 "$(realpath "$lib")" "$mnt$lib"
done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
# The users and groups of distroless' nonroot images.
install -d -m 0755 "$mnt/etc"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$mnt/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$mnt/etc/group"
printf '%s\n' 'hosts: files dns' >"$mnt/etc/nsswitch.conf"
chmod 0644 "$mnt/etc/passwd" "$mnt/etc/group" "$mnt/etc/nsswitch.conf"
install -d -m 0755 "$mnt/root"
install -d -m 0700 -o 65532 -g 65532 "$mnt/home/nonroot"
install -d -m 1777 "$mnt/tmp"
bh umount "$work" >/dev/null
bh config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --workingdir /home/nonroot --user 65532 \
  "$work"
bh commit --quiet --rm "$work" "$BASE_IMAGE" >/dev/null
say "base $BASE_IMAGE: ${#libs[@]} libraries (${libs[*]}), CA bundle, nonroot user"

# --- the image: the Dockerfile's prebuilt target -------------------------------
ctx=$(mktemp -d)
install -m 0755 "$bin" "$ctx/hibernator"
bh bud --quiet --pull-never --target prebuilt --build-arg BASE="$BASE_IMAGE" \
  -f "$root/Dockerfile" -t "$IMAGE" "$ctx" >/dev/null
say "built $IMAGE ($(bh images --format '{{.Size}}' "$IMAGE"))"

# --- export, unpack, run -------------------------------------------------------
rm -rf "$OUT/oci"
bh push --quiet "$IMAGE" "oci:$OUT/oci:ci"
say "exported to $OUT/oci"
"$venv/bin/python" scripts/image-smoke.py --oci "$OUT/oci" --rootfs "$OUT/rootfs" ${VERBOSE:+-v}

compressed=$(du -sb --apparent-size "$OUT/oci/blobs" | cut -f1)
unpacked=$(du -sb --apparent-size "$OUT/rootfs" | cut -f1)
say "sizes: binary $(stat -c %s "$bin") B, image $unpacked B unpacked, $compressed B compressed (OCI blobs incl. manifest and config)"
say "done"
