#!/usr/bin/env bash
# build-test-partition.sh - build (and cache) the partition "instance image"
# the iscsi_ilo netboot tests deploy and boot from a per-instance boot ISO:
#
#   root.ext4   a 32 MiB ext4 file system (mke2fs -d: no root, no loop device)
#               with a fixed UUID, holding a static busybox and /sbin/init, which prints
#                 LIGHTSOUT-NETBOOT-ROOT-BOOTED id=<id> uuid=<uuid> firmware=<bios|uefi>
#               on the serial console (console=ttyS0) and powers off
#   vmlinuz     Debian's kernel (linux-image-amd64, the package build-test-disk.sh uses)
#   initrd.img  the instance's busybox initramfs: loads the disk and ext4 modules
#               of that kernel (AHCI for Gen8/Gen9, virtio-blk for Gen10+), finds the
#               root file system named by root=UUID=<uuid> on the kernel command line
#               (the boot ISO's), mounts it read-only and switch_roots into /sbin/init.
#               It prints LIGHTSOUT-NETBOOT-INITRD root=<uuid> first and, when the root
#               is not found, LIGHTSOUT-NETBOOT-ROOT-MISSING and powers off.
#
# usage: build-test-partition.sh CACHE_DIR
#   prints "ROOTFS KERNEL INITRD UUID" (absolute paths inside CACHE_DIR) on the
#   last line; the image id (the cache key) is in CACHE_DIR/testpartition-<id>/id.
#   Repeated runs reuse the cache (keyed by this script, the kernel package and
#   busybox); the kernel package (~70 MB) is downloaded once with apt-get download,
#   or taken from a linux-image .deb already cached under CACHE_DIR's parent
#   (`lightsout image ramdisk`'s cache).
#
# Needs: apt-get, dpkg-deb, busybox-static, cpio (or busybox cpio), gzip, xz/zstd
# when modules are compressed, mke2fs (e2fsprogs) - all in testdata/tools/deps.sh.
set -euo pipefail

die() { echo "build-test-partition: $*" >&2; exit 1; }
LIB=$(dirname "$0")/testimage-lib.sh
# shellcheck source=testimage-lib.sh
. "$LIB"
[ $# -eq 1 ] || die "usage: build-test-partition.sh CACHE_DIR"
CACHE=$1
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

for t in mke2fs dpkg-deb apt-get gzip; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run testdata/tools/deps.sh)"
done
[ -f /bin/busybox ] || die "/bin/busybox missing (run testdata/tools/deps.sh)"
! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (apt-get install busybox-static)"

ROOT_UUID=4c494748-5453-4f55-8000-0000000000e4   # fixed: the same inputs give the same file system
NETBOOT_MARKER=LIGHTSOUT-NETBOOT-ROOT-BOOTED

# the concrete kernel package linux-image-amd64 depends on
pkg=$(kernel_pkg)

# kernel_tree -> prints a directory holding boot/vmlinuz-* and lib/modules/<v>/
# (the whole package extracted once)
kernel_tree() {
  local dir="$CACHE/kernel/$pkg" deb tmp
  if [ -f "$dir/.done" ]; then echo "$dir"; return; fi
  tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  deb=$(find "$(dirname "$CACHE")" -maxdepth 5 \( -path "*/${pkg}_*/package.deb" -o -name "${pkg}_*.deb" \) 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    deb=$(ls "$tmp"/*.deb | head -1)
  fi
  mkdir -p "$tmp/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './lib/modules/*' 2>/dev/null \
    || dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './usr/lib/modules/*'
  [ -d "$tmp/x/usr/lib/modules" ] && { mkdir -p "$tmp/x/lib"; mv "$tmp/x/usr/lib/modules" "$tmp/x/lib/modules"; }
  touch "$tmp/x/.done"
  mkdir -p "$CACHE/kernel"
  rm -rf "$dir"
  mv "$tmp/x" "$dir"
  rm -rf "$tmp"
  echo "$dir"
}

KTREE=$(kernel_tree)
VMLINUZ=$(ls "$KTREE"/boot/vmlinuz-* | head -1)
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR="$KTREE/lib/modules/$KVER"
[ -d "$MODDIR/kernel" ] || die "no modules in $MODDIR"

KEY=$( (sha256sum "$0" "$LIB" /bin/busybox "$VMLINUZ" | cut -d' ' -f1) | sha256sum | cut -c1-16)
OUT="$CACHE/testpartition-$KEY"

# modules the instance initramfs loads, in this order (dependencies first):
# crypto and CRC back-ends the others look up by name (no modprobe in the
# initramfs), the disk controllers of the qemu machines (sim/qemu/args.go),
# the SCSI disk driver and ext4
WANT="crc32c_generic crct10dif_generic crc64_rocksoft_generic ahci sd_mod virtio_pci virtio_blk ext4"

# modinfo_depends FILE -> the module names FILE depends on (its .modinfo
# "depends=" field; the package has no modules.dep: depmod makes it at install)
modinfo_depends() {
  local f=$1
  case "$f" in
    *.xz) xz -dc "$f";;
    *.zst) zstd -qdc "$f";;
    *) cat "$f";;
  esac | tr '\0' '\n' | grep -a -m1 '^depends=' | cut -d= -f2 | tr ',' ' '
}

# module_order -> prints the module files to load, dependencies first
module_order() {
  local index seen="" out=""
  index=$(mktemp "$CACHE/.modindex.XXXXXX")
  find "$MODDIR/kernel" -name '*.ko*' | while read -r f; do
    n=${f##*/}; n=${n%%.ko*}; echo "${n//-/_} $f"
  done > "$index"
  visit() {
    local name=${1//-/_} f dep
    case " $seen " in *" $name "*) return;; esac
    seen="$seen $name"
    f=$(awk -v n="$name" '$1 == n { print $2; exit }' "$index")
    if [ -z "$f" ]; then
      grep -Eq "/${1}\.ko|/${name}\.ko" "$MODDIR/modules.builtin" 2>/dev/null && return
      rm -f "$index"
      die "module $1 is neither a module file nor built in ($MODDIR)"
    fi
    for dep in $(modinfo_depends "$f"); do visit "$dep"; done
    out="$out $f"
  }
  local m
  for m in $WANT; do visit "$m"; done
  rm -f "$index"
  echo "$out"
}

make_initrd() { # make_initrd OUT.img
  local out=$1 root m base n=0
  root=$(mktemp -d "$CACHE/.initrd.XXXXXX")
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,newroot,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  for m in $(module_order); do
    n=$((n + 1))
    base=$(printf '%02d-%s' "$n" "$(basename "${m%%.ko*}").ko")
    case "$m" in
      *.xz) xz -dc "$m" > "$root/lib/modules/$base";;
      *.zst) zstd -qdc "$m" > "$root/lib/modules/$base";;
      *) cp "$m" "$root/lib/modules/$base";;
    esac
  done
  cat > "$root/init" <<'EOF'
#!/bin/busybox sh
# lightsout test instance initramfs: mount root=UUID=... and switch_root into it.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
dmesg -n 1
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
uuid=
for a in $(cat /proc/cmdline); do
  case "$a" in root=UUID=*) uuid=${a#root=UUID=};; esac
done
echo "LIGHTSOUT-NETBOOT-INITRD root=$uuid"
dev=
i=0
# devtmpfs adds the disks as their drivers probe them: up to 20 s
while [ -n "$uuid" ] && [ $i -lt 40 ]; do
  dev=$(findfs "UUID=$uuid" 2>/dev/null) && break
  dev=
  sleep 0.5
  i=$((i + 1))
done
if [ -z "$dev" ] || ! mount -t ext4 -o ro "$dev" /newroot; then
  echo "LIGHTSOUT-NETBOOT-ROOT-MISSING root=$uuid"
  poweroff -f
fi
umount /proc /sys 2>/dev/null
exec switch_root /newroot /sbin/init
EOF
  chmod +x "$root/init"
  pack_initrd "$root" "$out"
  rm -rf "$root"
}

make_rootfs() { # make_rootfs ID OUT.ext4
  local id=$1 out=$2 root
  root=$(mktemp -d "$CACHE/.rootfs.XXXXXX")
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc}
  cp /bin/busybox "$root/bin/busybox"
  echo "$id" > "$root/etc/lightsout-test-root"
  # the root is mounted read-only: busybox applets are called by name (no --install)
  cat > "$root/sbin/init" <<EOF
#!/bin/busybox sh
# lightsout test partition image: say we run from the deployed root, then power off.
bb=/bin/busybox
\$bb mount -t proc proc /proc
\$bb mount -t sysfs sysfs /sys
fw=bios
[ -d /sys/firmware/efi ] && fw=uefi
echo "$NETBOOT_MARKER id=\$(\$bb cat /etc/lightsout-test-root) uuid=$ROOT_UUID firmware=\$fw"
echo "LIGHTSOUT-NETBOOT-CMDLINE \$(\$bb cat /proc/cmdline)"
\$bb sync
\$bb poweroff -f
EOF
  chmod +x "$root/sbin/init"
  find "$root" -exec touch -h -d @0 {} +
  rm -f "$out"
  E2FSPROGS_FAKE_TIME=0 mke2fs -q -F -t ext4 -U "$ROOT_UUID" -E "hash_seed=$ROOT_UUID" -L lightsout-root \
    -d "$root" "$out" 32M >&2 || die "mke2fs failed"
  rm -rf "$root"
}

if [ ! -f "$OUT/root.ext4" ] || [ ! -f "$OUT/initrd.img" ] || [ ! -f "$OUT/vmlinuz" ]; then
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  make_initrd "$work/initrd.img"
  make_rootfs "$KEY" "$work/root.ext4"
  cp "$VMLINUZ" "$work/vmlinuz"
  echo "$KEY" > "$work/id"
  rm -rf "$OUT"
  mv "$work" "$OUT"
  trap - EXIT
  find "$CACHE" -maxdepth 1 -name 'testpartition-*' ! -name "testpartition-$KEY" -exec rm -rf {} + 2>/dev/null || true
fi
echo "$OUT/root.ext4 $OUT/vmlinuz $OUT/initrd.img $ROOT_UUID"
