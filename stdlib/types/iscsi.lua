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
