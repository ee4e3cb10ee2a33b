#!/usr/bin/env bash
# build-test-disk.sh - build (and cache) the whole-disk "instance image" the
# qemu boot and end-to-end deploy tests write to a node and boot:
#
#   disk.raw    a 64 MiB GPT disk, built without root or loop devices:
#                 MBR        syslinux gptmbr.bin (SeaBIOS -> legacy BIOS boot, Gen8)
#                 part 1     EFI System Partition (FAT), also marked legacy BIOS
#                            bootable (GPT attribute bit 2), holding
#                   /ldlinux.sys, /ldlinux.c32, /syslinux.cfg   (syslinux --install)
#                   /EFI/BOOT/BOOTX64.EFI  Debian's signed shim (shim-signed)
#                   /EFI/BOOT/grubx64.efi  Debian's signed GRUB (grub-efi-amd64-signed)
#                   /EFI/debian/grub.cfg   where that GRUB looks (its prefix is /EFI/debian;
#                                          a copy in /EFI/BOOT/ for its $cmdpath fallback)
#                   /vmlinuz               Debian's SIGNED generic kernel (apt-get download,
#                                          not installed), so shim+GRUB boot it under secure boot
#                   /initrd.img            busybox initramfs whose /init prints
#                        LIGHTSOUT-TEST-IMAGE-ID <id>
#                        LIGHTSOUT-TEST-IMAGE-BOOTED firmware=<bios|uefi> secureboot=<0|1>
#                                          on the serial console (console=ttyS0) and powers off.
#                                          secureboot is the last byte of the SecureBoot EFI
#                                          variable (efivarfs), 0 when absent or under BIOS.
#   disk.qcow2  the same disk converted with qemu-img convert -O qcow2
#
# usage: build-test-disk.sh CACHE_DIR
#   prints "RAW QCOW2" (absolute paths inside CACHE_DIR) on the last line; the
#   image id (the cache key) is in CACHE_DIR/testdisk-<id>/id.
#   Repeated runs reuse the cached disk (keyed by this script's content, the
#   kernel, busybox, shim and GRUB), so only the first run needs the Debian
#   archive (~70 MB kernel package download).
#
# Needs: apt-get, dpkg-deb, busybox-static, cpio (or busybox cpio), gzip, sgdisk
# (gdisk), mkfs.vfat (dosfstools), mtools, syslinux + syslinux-common, shim-signed,
# grub-efi-amd64-signed, qemu-img (qemu-utils) - all in testdata/tools/deps.sh.
set -euo pipefail

die() { echo "build-test-disk: $*" >&2; exit 1; }
LIB=$(dirname "$0")/testimage-lib.sh
# shellcheck source=testimage-lib.sh
. "$LIB"
[ $# -eq 1 ] || die "usage: build-test-disk.sh CACHE_DIR"
CACHE=$1
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

SHIM=/usr/lib/shim/shimx64.efi.signed
GRUB=/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
GPTMBR=/usr/lib/syslinux/mbr/gptmbr.bin
for f in "$SHIM" "$GRUB" "$GPTMBR" /bin/busybox; do
  [ -f "$f" ] || die "$f missing (run testdata/tools/deps.sh)"
done
for t in sgdisk mkfs.vfat mcopy mmd syslinux qemu-img dpkg-deb apt-get gzip; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run testdata/tools/deps.sh)"
done

DISK_MIB=64          # whole disk
PART_START=2048      # sectors (1 MiB)
# fixed identities: the same inputs give the same partition table
DISK_GUID=4c494748-5453-4f55-8000-000000000001
PART_GUID=4c494748-5453-4f55-8000-000000000002
FAT_ID=1e571e57

# kernel -> prints the path of a cached signed vmlinuz (fetching the package once)
kernel() {
  local v pkg tmp
  v=$(ls "$CACHE"/kernel/linux-image-*/boot/vmlinuz-* 2>/dev/null | grep -v cloud | sort -V | tail -1 || true)
  if [ -z "$v" ]; then
    pkg=$(kernel_pkg) || exit 1
    case "$pkg" in *-unsigned) die "$pkg is the unsigned kernel; secure boot needs the signed one";; esac
    tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    mkdir -p "$tmp/x"
    dpkg-deb --fsys-tarfile "$tmp/${pkg}"_*.deb | tar -x -C "$tmp/x" --wildcards \
      './boot/vmlinuz-*' './boot/config-*' './lib/modules/*/modules.builtin' '*/efivarfs.ko*'
    mkdir -p "$CACHE/kernel"
    rm -rf "$CACHE/kernel/$pkg"
    mv "$tmp/x" "$CACHE/kernel/$pkg"
    rm -rf "$tmp"
    v=$(ls "$CACHE/kernel/$pkg"/boot/vmlinuz-* | head -1)
  fi
  echo "$v"
}

make_initrd() { # make_initrd ID OUT.img
  local id=$1 out=$2 root
  root=$(mktemp -d "$CACHE/.root.XXXXXX")
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib}
  # efivarfs is a module in Debian's kernel (CONFIG_EFIVAR_FS=m)
  local ko
  ko=$(find "${VMLINUZ%/boot/*}/lib/modules" -name 'efivarfs.ko*' | head -1)
  case "$ko" in
    "") grep -q '/efivarfs.ko' "${VMLINUZ%/boot/*}"/lib/modules/*/modules.builtin || die "efivarfs.ko not in the kernel package";;
    *.xz) xz -dc "$ko" > "$root/lib/efivarfs.ko";;
    *.zst) zstd -qdc "$ko" > "$root/lib/efivarfs.ko";;
    *) cp "$ko" "$root/lib/efivarfs.ko";;
  esac
  ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (apt-get install busybox-static)"
  cp /bin/busybox "$root/bin/busybox"
  cat > "$root/init" <<EOF
#!/bin/busybox sh
# lightsout test instance image: say how we were booted, then power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
dmesg -n 1
fw=bios
sb=0
if [ -d /sys/firmware/efi ]; then
  fw=uefi
  [ -f /lib/efivarfs.ko ] && insmod /lib/efivarfs.ko 2>/dev/null
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
  v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
  # 4 attribute bytes, then one data byte: 1 = secure boot on
  [ -r \$v ] && sb=\$(tail -c 1 \$v | od -An -tu1 | tr -d ' \n')
  [ -n "\$sb" ] || sb=0
fi
echo "LIGHTSOUT-TEST-IMAGE-ID $id"
echo "LIGHTSOUT-TEST-IMAGE-CMDLINE \$(cat /proc/cmdline)"
echo "LIGHTSOUT-TEST-IMAGE-BOOTED firmware=\$fw secureboot=\$sb"
sync
poweroff -f
EOF
  chmod +x "$root/init"
  pack_initrd "$root" "$out"
  rm -rf "$root"
}

VMLINUZ=$(kernel)
[ -f "$VMLINUZ" ] || die "no kernel image found"
KEY=$( (sha256sum "$0" "$LIB" "$VMLINUZ" /bin/busybox "$SHIM" "$GRUB" "$GPTMBR" /usr/lib/syslinux/modules/bios/ldlinux.c32 2>/dev/null | cut -d' ' -f1) | sha256sum | cut -c1-16)
OUT="$CACHE/testdisk-$KEY"
if [ ! -f "$OUT/disk.raw" ] || [ ! -f "$OUT/disk.qcow2" ]; then
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  make_initrd "$KEY" "$work/initrd.img"

  cat > "$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT test
PROMPT 0
TIMEOUT 0
LABEL test
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0,115200n8 panic=-1 quiet
EOF
  # Debian's signed GRUB (no insmod under lockdown): its built-in config sources
  # $prefix/grub.cfg with prefix=(the ESP)/EFI/debian. OVMF mirrors the UEFI
  # console on the serial port, so no serial commands are needed.
  cat > "$work/grub.cfg" <<'EOF'
set timeout=0
set default=0
menuentry "lightsout test image" {
  linux /vmlinuz console=ttyS0,115200n8 panic=-1 quiet
  initrd /initrd.img
}
EOF

  # the ESP as its own file (FAT, hidden sectors = its offset on the disk), filled
  # with mtools and made BIOS-bootable with the mtools-based syslinux installer
  end=$(( DISK_MIB * 2048 - 34 ))   # last usable sector (backup GPT: 33 sectors)
  psize=$(( end - PART_START + 1 ))
  psize=$(( psize / 8 * 8 ))        # whole 4 KiB
  rm -f "$work/esp.img"
  mkfs.vfat -C -n TESTIMAGE -i "$FAT_ID" -h "$PART_START" "$work/esp.img" $(( psize / 2 )) >/dev/null
  export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0
  mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$work/esp.img" "$SHIM" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$work/esp.img" "$GRUB" ::/EFI/BOOT/grubx64.efi
  mcopy -i "$work/esp.img" "$work/grub.cfg" ::/EFI/debian/grub.cfg
  mcopy -i "$work/esp.img" "$work/grub.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$work/esp.img" "$work/syslinux.cfg" ::/syslinux.cfg
  mcopy -i "$work/esp.img" "$VMLINUZ" ::/vmlinuz
  mcopy -i "$work/esp.img" "$work/initrd.img" ::/initrd.img
  syslinux --install "$work/esp.img"
  mdir -a -i "$work/esp.img" ::/ | grep -qi ldlinux || die "syslinux did not install ldlinux.sys"

  # the disk: GPT made by sgdisk on a plain file, gptmbr.bin in the MBR's code area
  truncate -s "${DISK_MIB}M" "$work/disk.raw"
  sgdisk -U "$DISK_GUID" \
    -n "1:$PART_START:$(( PART_START + psize - 1 ))" -t 1:EF00 -c 1:"EFI System" -u "1:$PART_GUID" \
    -A 1:set:2 "$work/disk.raw" >/dev/null || die "sgdisk failed"
  dd if="$GPTMBR" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
  dd if="$work/esp.img" of="$work/disk.raw" bs=512 seek="$PART_START" conv=notrunc,sparse status=none
  sgdisk -v "$work/disk.raw" | grep -q 'No problems found' || die "sgdisk -v: $(sgdisk -v "$work/disk.raw")"
  sgdisk -i 1 "$work/disk.raw" | grep -qi "$PART_GUID" || die "no partition 1 on the disk: $(sgdisk -p "$work/disk.raw")"

  qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
  echo "$KEY" > "$work/id"
  rm -f "$work/esp.img" "$work/grub.cfg" "$work/syslinux.cfg"
  rm -rf "$OUT"
  mv "$work" "$OUT"
  trap - EXIT
  # drop disks built by older versions of this script
  find "$CACHE" -maxdepth 1 -name 'testdisk-*' ! -name "testdisk-$KEY" -exec rm -rf {} + 2>/dev/null || true
fi
echo "$OUT/disk.raw $OUT/disk.qcow2"
