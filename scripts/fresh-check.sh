#!/usr/bin/env bash
# Proves the README's promise on a machine with nothing installed: builds a clean Debian 12 root
# with debootstrap (minbase) from this machine's package mirror, copies the committed tree in, and
# inside a chroot runs what a new user runs: `apt-get install make`, then `CI=true make test`
# (which calls scripts/install-deps.sh first). Run it when dependencies change; record the output
# in docs/reliability.md.
#   sudo scripts/fresh-check.sh [ROOT_DIR] [TARGET]   (default /var/tmp/invad-fresh, target test)
# Needs root, debootstrap (installed if missing) and ~6 GB of disk. Log: out/fresh-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/var/tmp/invad-fresh}
target=${2:-test}
log=$PWD/out/fresh-check.log
mkdir -p out
exec > >(tee "$log") 2>&1
[[ $(id -u) -eq 0 ]] || { echo "run as root (chroot, mounts)"; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
start=$(date +%s)
echo "fresh-check: $(date -u +%FT%TZ), mirror $mirror, root $root, commit $(git rev-parse --short HEAD)"

cleanup() {
  for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$root"
debootstrap --variant=minbase bookworm "$root" "$mirror"
# the host's apt sources (same mirror, security updates), nothing else
rm -f "$root/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
echo "fresh-check: debootstrap done after $(( $(date +%s) - start )) s"

mkdir -p "$root/src"
git archive HEAD | tar -x -C "$root/src"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin CI=true \
  OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-}" bash -euo pipefail -c "
    cd /src
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make
    t0=\$(date +%s)
    make $target
    echo \"fresh-check: make $target took \$(( \$(date +%s) - t0 )) s\"
  "
echo "fresh-check: passed after $(( $(date +%s) - start )) s"
