#!/usr/bin/env bash
# build-test-grub-partition.sh - build (and cache) the partition "instance
# image" the local-boot tests deploy with boot_option=local: the deploy
# agent's image.install_bootloader runs the image's own grub-install and
# grub-mkconfig in a chroot, so the image carries GRUB and what its scripts
# need, as a distribution's root file system does.
#
#   root.ext4   a 128 MiB ext4 file system (mke2fs -d) with a fixed UUID holding
#     /boot/vmlinuz-<ver>     Debian's kernel (the one build-test-partition.sh uses)
#     /boot/initrd.img-<ver>  build-test-partition.sh's busybox initramfs: mounts
#                             root=UUID=<uuid> read-only and switch_roots into it
#     /bin/busybox + applet links (sh, sed, grep, sort, ... for grub-mkconfig)
#     GRUB for BIOS and UEFI from Debian's packages (apt-get download grub-pc-bin
#       grub-efi-amd64-bin grub2-common grub-common, dpkg-deb -x) and the shared
#       libraries its binaries need (copied from the host by ldd, same paths),
#       gettext; an empty /boot/efi for the ESP
#     /etc/default/grub       GRUB_TIMEOUT=0, serial terminal, console=ttyS0
#     /sbin/init              prints
#       LIGHTSOUT-LOCALBOOT-ROOT-BOOTED id=<id> uuid=<uuid> firmware=<bios|uefi>
#       LIGHTSOUT-LOCALBOOT-CMDLINE <the kernel command line>
#     on the serial console and powers off
#
# usage: build-test-grub-partition.sh CACHE_DIR
#   prints "ROOTFS UUID" (ROOTFS inside CACHE_DIR) on the last line; the image
#   id (the cache key) is in CACHE_DIR/testgrubpartition-<id>/id. Repeated runs
#   reuse the cache (keyed by this script, build-test-partition.sh's kernel and
#   initramfs, busybox and the GRUB packages); the kernel comes from
#   build-test-partition.sh's cache (CACHE_DIR/../testpartition).
#
# Needs: what build-test-partition.sh needs, apt-get download access for the
# GRUB packages, grub-common and gettext-base installed on the host (their
# shared libraries are copied) - all in testdata/tools/deps.sh.
set -euo pipefail

die() { echo "build-test-grub-partition: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || die "usage: build-test-grub-partition.sh CACHE_DIR"
CACHE=$1
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

for t in mke2fs dpkg-deb apt-get ldd gettext; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run testdata/tools/deps.sh)"
done

ROOT_UUID=4c494748-5453-4f55-8000-0000000000b1   # fixed: the same inputs give the same file system
MARKER=LIGHTSOUT-LOCALBOOT-ROOT-BOOTED
GRUB_PKGS="grub-pc-bin grub-efi-amd64-bin grub2-common grub-common"

# the kernel and the busybox initramfs of the netboot image
read -r _ KERNEL INITRD _ < <(bash "$HERE/build-test-partition.sh" "$(dirname "$CACHE")/testpartition" | tail -1)
KVER=$(ls "$(dirname "$CACHE")"/testpartition/kernel/*/boot/ 2>/dev/null | sed -n 's/^vmlinuz-//p' | head -1)
[ -n "$KVER" ] || die "cannot tell the kernel version from build-test-partition.sh's cache"

# grub_debs -> prints the directory holding the GRUB .debs (downloaded once)
grub_debs() {
  local vers dir tmp
  vers=$(for p in $GRUB_PKGS; do apt-cache policy "$p" | awk '/Candidate:/{print $2}'; done | tr '\n' '_')
  dir="$CACHE/debs/$vers"
  if [ -f "$dir/.done" ]; then echo "$dir"; return; fi
  tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  # shellcheck disable=SC2086
  ( cd "$tmp" && apt-get download $GRUB_PKGS >/dev/null 2>&1 ) || { rm -rf "$tmp"; die "apt-get download $GRUB_PKGS failed"; }
  touch "$tmp/.done"
  mkdir -p "$CACHE/debs"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$dir"
}
DEBS=$(grub_debs)

KEY=$( (sha256sum "$0" "$KERNEL" "$INITRD" /bin/busybox "$DEBS"/*.deb | cut -d' ' -f1) | sha256sum | cut -c1-16)
OUT="$CACHE/testgrubpartition-$KEY"

# copy_libs ROOT FILE... -> copies the shared libraries (and the loader) the
# dynamic executables among FILE need from the host into ROOT, same paths
copy_libs() {
  local root=$1 f lib
  shift
  for f in "$@"; do
    ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true
  done | sort -u | while read -r lib; do
    [ -e "$root$lib" ] && continue
    [ -f "$lib" ] || die "ldd names $lib, missing on the host (install grub-common: testdata/tools/deps.sh)"
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

make_rootfs() { # make_rootfs ID OUT.ext4
  local id=$1 out=$2 root d a f
  root=$(mktemp -d "$CACHE/.rootfs.XXXXXX")
  # Debian's merged /usr layout: the library paths ldd prints resolve
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,run,tmp,etc/default,boot/grub,boot/efi,usr/bin,usr/sbin,usr/lib,usr/lib64}
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  for d in "$DEBS"/*.deb; do dpkg-deb -x "$d" "$root"; done
  rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale"
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ -e "$root/bin/$a" ] || [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/bin/$a"
  done
  cp "$(command -v gettext)" "$root/usr/bin/gettext"
  copy_libs "$root" $(find "$root/usr/bin" "$root/usr/sbin" -type f)
  cp "$KERNEL" "$root/boot/vmlinuz-$KVER"
  cp "$INITRD" "$root/boot/initrd.img-$KVER"
  cat > "$root/etc/default/grub" <<'EOF'
# lightsout local-boot test image: boot at once, on the serial console
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=lightsout-test
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0 panic=-1"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
EOF
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\n' > "$root/etc/group"
  echo "$id" > "$root/etc/lightsout-test-root"
  rm -f "$root/sbin/init"
  cat > "$root/sbin/init" <<EOF
#!/bin/busybox sh
# lightsout local-boot test image: say we run from the deployed root, then power off.
bb=/bin/busybox
\$bb mount -t proc proc /proc
\$bb mount -t sysfs sysfs /sys
fw=bios
[ -d /sys/firmware/efi ] && fw=uefi
echo "$MARKER id=\$(\$bb cat /etc/lightsout-test-root) uuid=$ROOT_UUID firmware=\$fw"
echo "LIGHTSOUT-LOCALBOOT-CMDLINE \$(\$bb cat /proc/cmdline)"
\$bb sync
\$bb poweroff -f
EOF
  chmod +x "$root/sbin/init"
  for f in "$root/usr/sbin/grub-install" "$root/usr/sbin/grub-mkconfig" "$root/usr/sbin/grub-probe" "$root/usr/lib/grub/i386-pc/boot.img" "$root/usr/lib/grub/x86_64-efi/normal.mod"; do
    [ -e "$f" ] || die "${f#"$root"} missing after extracting $GRUB_PKGS"
  done
  find "$root" -exec touch -h -d @0 {} +
  rm -f "$out"
  E2FSPROGS_FAKE_TIME=0 mke2fs -q -F -t ext4 -U "$ROOT_UUID" -E "hash_seed=$ROOT_UUID" -L lightsout-grub \
    -d "$root" "$out" 128M >&2 || die "mke2fs failed"
  rm -rf "$root"
}

if [ ! -f "$OUT/root.ext4" ]; then
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  make_rootfs "$KEY" "$work/root.ext4"
  echo "$KEY" > "$work/id"
  rm -rf "$OUT"
  mv "$work" "$OUT"
  trap - EXIT
  find "$CACHE" -maxdepth 1 -name 'testgrubpartition-*' ! -name "testgrubpartition-$KEY" -exec rm -rf {} + 2>/dev/null || true
fi
echo "$OUT/root.ext4 $ROOT_UUID"
