#!/usr/bin/env bash
# deps.sh - install the Debian packages the test suite needs (idempotent).
# Called by `make test`. Each binding adds its packages to PKGS below.
set -euo pipefail
PKGS=(
  curl ca-certificates
  # sim: proliantutils is an independent client of the simulator
  python3-proliantutils
  # sim conformance suites: independent clients of the simulator (issue 11)
  python3-hpilo python3-sushy redfishtool
  # bindings/image: floppy + ISO checks and media boot under qemu
  dosfstools mtools xorriso isolinux syslinux-common grub-efi-amd64-bin busybox-static cpio
  qemu-system-x86 ovmf qemu-utils
  genisoimage  # ISOs made by another tool, for the ISO reader tests
  # bindings/image deploy ramdisk: kernel fetched with apt-get download + dpkg-deb;
  # cpio/gzip read it back; xz/zstd compress modules for the decompression test
  dpkg xz-utils zstd gzip
  # bindings/swift: Swift all-in-one with tempauth + tempurl
  swift swift-proxy swift-account swift-container swift-object python3-swiftclient memcached attr
  # bindings/ipmi + sim: ipmitool drives the simulator's IPMI face; OpenIPMI's
  # ipmi_sim (and sdrcomp) is an independent BMC for our client
  ipmitool openipmi
  tmux  # cmd/lightsout: `lightsout console` under a real terminal
  postgresql  # runtime/store: the PostgreSQL store suite (testdata/tools/pg.sh starts a throw-away server)
  # runtime/e2e: the test instance image (testdata/tools/build-test-disk.sh): a GPT
  # disk booted by syslinux (BIOS) and Debian's signed shim + GRUB (UEFI, secure boot)
  gdisk fdisk syslinux shim-signed grub-efi-amd64-signed
  # runtime/deployagent: qcow2 images by qemu-img/qemu-io (qemu-utils above),
  # GPT by sgdisk, ext4 by mkfs.ext4, checks by blkid and sfdisk
  gdisk e2fsprogs util-linux
  # bindings/pxe: real TFTP clients and server (benchmark peer), dnsmasq to
  # load the DHCP snippets, the boot loaders copied into tftp_root
  tftp-hpa tftpd-hpa dnsmasq pxelinux ipxe grub-efi-amd64-signed shim-signed
  # bindings/iscsi + iscsi_ilo: tgtd (target in the ramdisk and the emulated
  # ramdisk), qemu-img iscsi:// (libiscsi) as the writer, iscsi-inq for checks
  tgt qemu-block-extra libiscsi-bin
  # bindings/iscsi partition images: mke2fs -d builds the test images, mkfs.ext4/
  # mkfs.vfat make ephemeral and ESP filesystems, sfdisk/blkid/mkswap check them
  e2fsprogs dosfstools fdisk util-linux
  # runtime/e2e pxe_ilo over real PXE: a network namespace with a bridge and a
  # tap (ip), dnsmasq for DHCP (above), SeaBIOS with qemu's iPXE NIC ROMs
  # (BIOS) and OVMF (UEFI, above)
  iproute2 seabios ipxe-qemu
  # runtime/e2e local boot (testdata/tools/build-test-grub-partition.sh): the GRUB
  # packages are fetched with apt-get download; the shared libraries of their
  # binaries (and gettext, which grub-mkconfig calls) are copied from the host
  grub-common gettext-base
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
