---@meta image
-- LuaLS annotations for the Go module `image` (bindings/image): build the
-- virtual media of a deploy — the FAT12 parameters floppy and bootable ISOs
-- (BIOS isolinux, UEFI GRUB, or both) — and inspect images.
--
-- Paths go through the run's sandbox (docs/playbooks.md, "Sandbox"):
-- relative paths are in the run's work directory (removed when the run
-- ends); inputs must be readable there, in [lightsout] script_paths or the
-- publish directories; outputs must be new files (or files this run
-- created). Errors are raised as {code, message, operation}: code
-- "invalid_argument" for bad parameters or options, "not_found" for a
-- missing input file, "forbidden" for a path outside the sandbox, a
-- protected file or an existing file, "error" otherwise.
--
--   local image = require("image")
--   local floppy = image.floppy("params.img", { ["ipa-api-url"] = url, boot_method = "vmedia" })
--   local iso = image.iso("boot.iso", { kernel = "deploy.kernel", ramdisk = "deploy.initramfs",
--                                       append = "nofb nomodeset vga=normal" })
--   print(image.inspect(iso).el_torito[2].platform)   -- "UEFI"
--
-- Conventions of every binding (ilo, vmedia, swift, image, agent): a
-- function acting on a node takes it as an optional first argument `node?`:
-- nil or absent is the run's node; the run's node table, UUID or name are
-- accepted; any other node raises "forbidden". Options are a trailing table
-- (`opts?`); an option of the wrong type raises "invalid_argument" naming it
-- ("opts.expires must be ..."). Errors are raised as {code, message,
-- operation}, operation always "<module>.<function>" (e.g. "vmedia.resolve",
-- "ilo.set_host_power").

---@class image
local image = {}

---@class image.FloppyOpts
---@field size? integer              image size in bytes, a multiple of 512 between 65536 and 12582912 (default 1474560 = 1.44 MB)
---@field label? string              volume label, at most 11 bytes (default "ir-vfd-dev")
---@field files? table<string,string> extra files: name on the floppy (may contain "/") -> local source path

---@class image.ISOOpts
---@field kernel string              local kernel image (stored as /vmlinuz)
---@field ramdisk string             local ramdisk (stored as /initrd)
---@field append? string             kernel command line (not recorded in run events: it may hold secrets)
---@field uefi_from? string          deploy ISO holding efiboot.img and grub.cfg to reuse for UEFI boot
---@field efi_loader? string         EFI loader (e.g. a GRUB BOOTX64.EFI) for efiboot.img; exclusive with uefi_from
---@field bios_only? boolean         only the BIOS (isolinux) boot entry
---@field uefi_only? boolean         only the UEFI boot entry
---@field volume_id? string          volume id (default "VMEDIA_BOOT_ISO", or "config-2" when files include openstack/…)
---@field files? table<string,string> extra files: ISO path -> local source path (each < 4 GiB)

---@class image.BootISOOpts: image.ISOOpts
---@field root_uuid string           UUID of the deployed root filesystem: the command line is root=UUID=<root_uuid> then append

---@class image.BootEntry
---@field platform "BIOS"|"UEFI"|"PPC"|"Mac"|string
---@field bootable boolean
---@field emulation string           "none", "floppy-1.44", "hard-disk", ...
---@field load_sectors integer       512-byte sectors the firmware loads
---@field lba integer                first 2048-byte block of the boot image
---@field file string                path of the boot image in the ISO ("" when hidden)

---@class image.File
---@field path string                path inside the image, no leading slash
---@field size integer               bytes (directory record size for directories)
---@field dir boolean

---@class image.Info
---@field path string
---@field kind "iso"|"fat"
---@field size integer               image size in bytes
---@field label string               ISO volume id or FAT volume label
---@field el_torito image.BootEntry[] El Torito boot entries (ISO; empty when not bootable)
---@field files image.File[]
---@field params? table<string,string> parameters.txt of a floppy
---@field kernel_cmdline? string     kernel command line of a boot ISO (isolinux APPEND or GRUB linux line)

---Write a FAT12 parameters floppy: `parameters.txt` with one `key=value` per
---line in sorted key order (values converted with tostring), plus opts.files.
---Parameter values are not recorded in run events (only the keys).
---@param path string                output image path
---@param params table<string,string|number|boolean> integral numbers are written without exponent, booleans as true/false
---@param opts? image.FloppyOpts
---@return string path               absolute path of the image
function image.floppy(path, params, opts) end

---Build a boot ISO from a kernel and ramdisk: BIOS (isolinux) + UEFI (GRUB in
---boot/grub/efiboot.img, from uefi_from, efi_loader, or the host's
---grub-mkstandalone) by default; Rock Ridge names; files of 4 GiB or more are
---refused.
---@param path string                output ISO path
---@param opts image.ISOOpts
---@return string path               absolute path of the ISO
function image.iso(path, opts) end

---Build an instance boot ISO (netboot of a partition image, Ironic §4.3):
---image.iso with the kernel command line root=UUID=<opts.root_uuid> followed
---by opts.append, in isolinux.cfg and grub.cfg. Reproducible: every date is
---$SOURCE_DATE_EPOCH or 1970, and the host GRUB loader is built once and
---cached, so the same kernel, ramdisk and command line give the same bytes.
---@param path string                output ISO path
---@param opts image.BootISOOpts
---@return string path               absolute path of the ISO
function image.boot_iso(path, opts) end

---Describe an ISO or FAT image: El Torito entries, files, floppy parameters,
---kernel command line.
---@param path string
---@return image.Info
function image.inspect(path) end

return image
