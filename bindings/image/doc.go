// Package image builds and reads the virtual media of a deploy: the FAT
// "parameters floppy" (FAT12, label ir-vfd-dev, parameters.txt of key=value
// lines) and bootable ISO 9660 images (BIOS via isolinux, UEFI via an El
// Torito efiboot.img holding a GRUB EFI loader, or both).
//
// Writing uses github.com/diskfs/go-diskfs v1.9.4 with workarounds for its
// known defects (see /work/shared/reference/go-dependencies.md §2-3):
//   - FAT12/16 images leave cluster 2 allocated for the fixed root
//     directory; the lost cluster is reclaimed so `fsck.vfat -n` exits 0.
//   - Joliet is never enabled (it breaks SeaBIOS boot and subdirectories).
//   - Files of 4 GiB or more are refused (ISO 9660 without multi-extent
//     files cannot record them; go-diskfs would silently truncate the size).
//   - go-diskfs copies file data in 2 KiB ReadAt/WriteAt pairs from a staging
//     workspace. Payload files (kernel, ramdisk, injected files) are therefore
//     staged as empty placeholders; go-diskfs lays out the metadata and boot
//     files, and the payload is streamed afterwards (copy_file_range where
//     the kernel offers it) to the end of the image and its directory records
//     are patched. Nothing is read whole into memory.
//
// The readers (ReadFloppyParams, ReadISOFile, KernelCmdline, Inspect) are
// used by the CLI and by the emulated deploy ramdisk.
//
// BuildRamdisk builds lightsout's own deploy ramdisk (ramdisk*.go): Debian's
// generic kernel (the host's, or fetched with apt-get download and cached),
// and a reproducible gzip newc initramfs whose /init is the static lightsout
// binary, with the kernel modules the agent needs in load order.
package image
