#!/usr/bin/env bash
# media-build-ramdisk.sh - build (and cache) the tiny test "deploy ramdisk" the
# media boot tests of bindings/image boot under qemu (adapted from the shared
# tools/build-test-media.sh):
#   vmlinuz     Debian's generic linux-image-*-amd64 kernel (the -cloud flavour has
#               no floppy driver), fetched with `apt-get download` and unpacked
#               without installing anything
#   initrd.img  busybox-static initramfs whose /init loads floppy/vfat, mounts the
#               first vfat medium holding parameters.txt (fd0, then vda/sda...),
#               prints its FAT volume label, the kernel command line and
#               parameters.txt,
#               then DEPLOY-RAMDISK-OK (or DEPLOY-RAMDISK-FAIL), and powers off.
#
# usage: media-build-ramdisk.sh CACHE_DIR
#   prints "VMLINUZ INITRD" (absolute paths inside CACHE_DIR) on the last line.
#   Repeated runs reuse the cached kernel and initrd (keyed by this script's
#   content), so only the first run needs the Debian archive (~70 MB download).
#
# Needs: apt-get, dpkg-deb, busybox-static, cpio (or busybox cpio), gzip.
set -euo pipefail

die() { echo "media-build-ramdisk: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: media-build-ramdisk.sh CACHE_DIR"
CACHE=$1
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

# floppy + FAT, and (in dependency order) what a USB virtual floppy on q35
# needs: the SCSI disk driver and the xHCI + usb-storage stack
MODULES="floppy fat vfat nls_cp437 nls_ascii nls_utf8 scsi_common scsi_mod crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi sd_mod usb-common usbcore xhci-hcd xhci-pci usb-storage"

# kernel_dir -> prints "VMLINUZ MODDIR"; reuses any cached kernel first
kernel_dir() {
  local v pkg
  v=$(ls "$CACHE"/kernel/linux-image-*/boot/vmlinuz-* 2>/dev/null | grep -v cloud | sort -V | tail -1 || true)
  # a kernel cached by an older version of this script lacks the USB modules
  if [ -n "$v" ] && ! find "${v%/boot/vmlinuz-*}/lib/modules" -name 'usb-storage.ko*' | grep -q .; then v=""; fi
  if [ -z "$v" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
      # package lists missing (fresh container): fetch them once
      apt-get update -qq >/dev/null 2>&1 || true
      pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update, or testdata/tools/deps.sh)"
    local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    mkdir -p "$tmp/x"
    # only the kernel image and the modules /init loads (not 400 MB)
    dpkg-deb --fsys-tarfile "$tmp/${pkg}"_*.deb | tar -x -C "$tmp/x" --wildcards \
      './boot/vmlinuz-*' './lib/modules/*/modules.builtin' '*/floppy.ko*' '*/fs/fat/*' \
      '*/nls_cp437.ko*' '*/nls_ascii.ko*' '*/nls_utf8.ko*' '*/drivers/scsi/scsi_common.ko*' \
      '*/drivers/scsi/scsi_mod.ko*' '*/drivers/scsi/sd_mod.ko*' '*/crct10dif_common.ko*' '*/crct10dif_generic.ko*' \
      '*/crc-t10dif.ko*' '*/lib/crc64.ko*' '*/crc64_rocksoft_generic.ko*' '*/crc64-rocksoft.ko*' '*/t10-pi.ko*' \
      '*/usb-common.ko*' '*/usbcore.ko*' '*/xhci-hcd.ko*' '*/xhci-pci.ko*' '*/usb-storage.ko*'
    mkdir -p "$CACHE/kernel"
    rm -rf "$CACHE/kernel/$pkg"
    mv "$tmp/x" "$CACHE/kernel/$pkg"
    rm -rf "$tmp"
    v=$(ls "$CACHE/kernel/$pkg"/boot/vmlinuz-* | head -1)
  fi
  echo "$v ${v%/boot/vmlinuz-*}/lib/modules/${v##*/vmlinuz-}"
}

make_initrd() { # make_initrd MODDIR OUT.img
  local moddir=$1 out=$2 root m f
  root=$(mktemp -d "$CACHE/.root.XXXXXX")
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,mnt,tmp,etc,lib/modules}
  [ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
  cp /bin/busybox "$root/bin/busybox"
  ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (apt-get install busybox-static)"
  for m in $MODULES; do
    f=$(find "$moddir/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) | head -1)
    if [ -z "$f" ]; then
      grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null || die "module $m not found in $moddir"
      continue
    fi
    case "$f" in
      *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko";;
      *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko";;
      *) cp "$f" "$root/lib/modules/";;
    esac
  done
  cat > "$root/init" <<EOF
#!/bin/busybox sh
# Tiny "deploy ramdisk": read the virtual-media parameters, print them, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
dmesg -n 1  # keep kernel messages from interleaving with our lines
echo "RAMDISK-START uptime=\$(cut -d' ' -f1 /proc/uptime)s kernel=\$(uname -r)"
echo "RAMDISK-CMDLINE \$(cat /proc/cmdline)"
[ -d /sys/firmware/efi ] && echo "RAMDISK-FIRMWARE uefi" || echo "RAMDISK-FIRMWARE bios"
for m in $MODULES; do
  [ -f /lib/modules/\$m.ko ] && { insmod /lib/modules/\$m.ko 2>/dev/null || echo "RAMDISK: insmod \$m failed"; }
done
found=""
i=0
while [ \$i -lt 150 ] && [ -z "\$found" ]; do
  for d in /dev/fd0 /dev/vda /dev/vdb /dev/sda /dev/sdb; do
    [ -b "\$d" ] || continue
    if mount -t vfat -o ro "\$d" /mnt 2>/dev/null; then
      if [ -f /mnt/parameters.txt ]; then found=\$d; break; fi
      umount /mnt
    fi
  done
  [ -n "\$found" ] || { sleep 0.2; i=\$((i+1)); }
done
if [ -n "\$found" ]; then
  echo "RAMDISK-PARAMS-DEVICE \$found"
  # the FAT volume label in the boot sector (no udev/blkid here: floppies are
  # not in /proc/partitions, so busybox findfs cannot see them)
  echo "RAMDISK-FAT-LABEL \$(dd if=\$found bs=1 skip=43 count=11 2>/dev/null | tr -d ' ')"
  echo "----- parameters.txt -----"
  cat /mnt/parameters.txt
  echo
  echo "----- end -----"
  umount /mnt
  echo "DEPLOY-RAMDISK-OK uptime=\$(cut -d' ' -f1 /proc/uptime)s"
else
  echo "RAMDISK: no vfat medium with parameters.txt; block devices: \$(ls /sys/class/block | tr '\n' ' ')"
  echo "DEPLOY-RAMDISK-FAIL"
fi
sync
poweroff -f
EOF
  chmod +x "$root/init"
  if command -v cpio >/dev/null 2>&1; then
    ( cd "$root" && find . | cpio -o -H newc --quiet | gzip -6 ) > "$out.tmp.$$"
  else
    ( cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -6 ) > "$out.tmp.$$"
  fi
  mv "$out.tmp.$$" "$out"
  rm -rf "$root"
}

read -r VMLINUZ MODDIR < <(kernel_dir)
[ -f "$VMLINUZ" ] || die "no kernel image found"
KEY=$( (sha256sum "$0"; echo "$VMLINUZ"; sha256sum /bin/busybox) | sha256sum | cut -c1-16)
OUT="$CACHE/ramdisk-$KEY"
if [ ! -f "$OUT/initrd.img" ] || [ ! -f "$OUT/vmlinuz" ]; then
  mkdir -p "$OUT"
  cp "$VMLINUZ" "$OUT/vmlinuz.tmp.$$" && mv "$OUT/vmlinuz.tmp.$$" "$OUT/vmlinuz"
  make_initrd "$MODDIR" "$OUT/initrd.img"
  # drop ramdisks built by older versions of this script, once unused for a
  # day: another checkout's tests (an older script) may be booting one now
  find "$CACHE" -maxdepth 1 -name 'ramdisk-*' ! -name "ramdisk-$KEY" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
fi
echo "$OUT/vmlinuz $OUT/initrd.img"
