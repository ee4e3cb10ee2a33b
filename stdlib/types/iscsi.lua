---@meta iscsi
-- LuaLS annotations for the Go module `iscsi` (bindings/iscsi): the conductor
-- side of the iscsi_ilo deploy. The deploy ramdisk exports the node's root
-- disk as LUN 1 of an iSCSI target (agent command iscsi.start_iscsi_target);
-- iscsi.write copies the image there with Debian's qemu-img (iscsi://,
-- packages qemu-utils + qemu-block-extra). The CHAP secret goes to qemu-img
-- through a 0600 file in the run's work directory, never on a command line,
-- and is redacted from every output of the run.
--
-- Errors: login_failed (CHAP refused: names driver_info.iscsi_chap),
-- not_found (no such IQN), invalid_argument (image larger than the disk:
-- "Root partition is too small for requested image. Image size: N MB, Root
-- size: M MB"; bad image), transient (connection lost mid-write, nothing at
-- the portal), timeout/cancelled.

---@class iscsi
local iscsi = {}

---@class iscsi.WriteResult
---@field format string      "raw" or "qcow2"
---@field image_size integer the image's virtual size in bytes
---@field disk_size integer  the LUN's size in bytes
---@field seconds number     duration of the copy

---@class iscsi.ImageInfo
---@field format string
---@field virtual_size integer bytes
---@field virtual_mb integer   MiB, rounded up

--- Writes a local image (raw or qcow2, in the run's sandbox) to an iSCSI LUN.
--- Checks the LUN is large enough first; progress is recorded as events.
---@param image string path
--- opts.checksum ("algo:hex" or md5 hex, as instance_info.image_checksum) is verified first.
---@param opts {portal: string, iqn: string, lun?: integer, chap_user?: string, chap_secret?: string, format?: string, checksum?: string, stall?: number}
---@return iscsi.WriteResult
function iscsi.write(image, opts) end

---@class iscsi.PartitionInfo
---@field number integer    1-based partition number
---@field start integer     byte offset on the disk
---@field size integer      bytes
---@field partuuid string   PARTUUID (GPT partition GUID, or <msdos disk signature>-<nn>)
---@field fs_type? string   "ext4", "xfs", "vfat", "swap", ... (nil: unformatted)
---@field fs_uuid? string   filesystem UUID (root: the image's)
---@field fs_label? string

---@class iscsi.PartitionResult
---@field root_uuid string        the root filesystem's UUID read from the image (Ironic's "root uuid": root=UUID=...)
---@field root_partuuid string    the root partition's PARTUUID (root=PARTUUID=...)
---@field root_fs_type string     "ext4", "ext3", "ext2", "xfs", "btrfs" or "vfat"
---@field efi_system_partition_uuid? string the ESP's PARTUUID (UEFI local boot only)
---@field disk_identifier string  GPT disk GUID, or the MBR signature as 0x%08x
---@field disk_label string       "msdos" or "gpt"
---@field boot_mode string        "bios" or "uefi" (defaults applied)
---@field boot_option string      "local" or "netboot" (defaults applied)
---@field format string           "raw" or "qcow2"
---@field image_size integer
---@field disk_size integer
---@field seconds number
---@field partitions table<string, iscsi.PartitionInfo> keyed by role: root, swap, ephemeral, configdrive, efi, bios_boot

--- Partitions the LUN as ironic-ilo-behaviour §5.1 and writes a partition
--- image (one filesystem, raw or qcow2) into the root partition: label msdos
--- for BIOS and gpt for UEFI unless disk_label says; an ESP (200 MiB, vfat
--- "efi-part") first for UEFI local boot, a 1 MiB BIOS boot partition for
--- BIOS local boot on gpt; then ephemeral (mkfs.<ephemeral_format> -L
--- ephemeral0, or left unformatted with its first MiB zeroed), swap (mkswap
--- signature, label swap1), configdrive (base64+gzip content or the file
--- holding it, at most 64 MiB, in a partition of its size rounded up to a
--- MiB), and root last (root_mb). Nothing is written until the image, its
--- filesystem UUID, the login and the layout are checked. Errors as
--- iscsi.write, plus invalid_argument naming the instance_info field
--- (root_gb when the image or the partitions do not fit).
---@param image string path
---@param opts {portal: string, iqn: string, lun?: integer, chap_user?: string, chap_secret?: string, format?: string, checksum?: string, stall?: number, boot_mode?: string, boot_option?: string, disk_label?: string, root_mb: integer, swap_mb?: integer, ephemeral_mb?: integer, ephemeral_format?: string, configdrive?: string, configdrive_file?: string}
---@return iscsi.PartitionResult
function iscsi.write_partition_image(image, opts) end

--- Format and virtual size of a local image (qemu-img info).
---@param image string path
---@param format? string "raw" or "qcow2" (default: probed)
---@return iscsi.ImageInfo
function iscsi.image_info(image, format) end

--- The IQN Ironic gives a node's deploy target: iqn.2008-10.org.openstack:<uuid>.
---@param node? any nil: the run's node
---@return string
function iscsi.iqn(node) end

--- A fresh random CHAP secret for one deploy, redacted from every output of the run.
---@return string
function iscsi.chap_secret() end

return iscsi
