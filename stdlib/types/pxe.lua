---@meta pxe
-- LuaLS annotations for the Go module `pxe` (bindings/pxe): the per-node
-- PXE boot files of the pxe_ilo driver (ironic-ilo-behaviour §5.3).
--
-- Files go under [pxe] tftp_root (or [deploy] http_root with
-- [pxe] ipxe_enabled) in <root>/<node uuid>/: deploy_kernel and
-- deploy_ramdisk (hard links into a master cache keyed by SHA-256),
-- config (pxelinux for BIOS, GRUB for UEFI, an iPXE script with iPXE), the
-- MAC-named links boot loaders look for, and a dnsmasq hosts/options
-- snippet per node ([dnsmasq] dhcp_hostsdir, dhcp_optsdir) for the site's
-- DHCP server. Every file is written atomically; a failed prepare removes
-- what it wrote. `lightsout serve` with [pxe] builtin_server = true serves
-- the files over TFTP (and HTTP with [pxe] http_address).
--
--   local pxe = require("pxe")
--   pxe.prepare(nil, { kernel = k, ramdisk = r, boot_mode = "bios",
--                      macs = { "52:54:00:12:34:56" }, params = { ["ipa-api-url"] = url } })
--   -- ... the agent deploys ...
--   pxe.switch(nil, "local")   -- boot the disk: the config and links go
--   pxe.clean()                -- at teardown: nothing of the node is left
--
-- Errors: "invalid_argument" (no ports, a bad MAC, a bad boot mode, a
-- UEFI whole-disk netboot), "not_found" (a kernel or ramdisk file),
-- "forbidden" (a path outside the sandbox, another node), "error".

---@class pxe
local pxe = {}

---@class pxe.PrepareOpts
---@field kernel string                 deploy kernel (local path, through the sandbox)
---@field ramdisk string                deploy ramdisk (local path)
---@field macs string[]                 the node's port MACs (node.ports[].address); at least one
---@field boot_mode? "bios"|"uefi"      default "bios"
---@field params? string|table<string,string|number|boolean> the deploy's kernel parameters (ipa-api-url=...)
---@field instance_kernel? string       a partition image's kernel, for a netboot after the deploy
---@field instance_ramdisk? string      its ramdisk (with instance_kernel)

---@class pxe.Prepared
---@field dir string                    <root>/<node uuid>
---@field config string                 the config file
---@field links string[]                the MAC-named links
---@field dhcp_hosts string             the dnsmasq --dhcp-hostsdir file ("" when not configured)
---@field dhcp_opts string              the dnsmasq --dhcp-optsdir file
---@field bootfile string               the DHCP boot file the node is given (pxelinux.0, bootx64.efi, undionly.kpxe, ...)

---Write the node's PXE files (idempotent: a second call replaces them).
---@param node? string|table  nil: the run's node
---@param opts pxe.PrepareOpts
---@return pxe.Prepared
function pxe.prepare(node, opts) end

---@class pxe.SwitchOpts
---@field root_uuid? string             boot_partition: the root file system UUID
---@field disk_identifier? string       boot_whole_disk: the MBR signature (0x%08x)

---Switch what the config boots: "local" removes the config and its links
---(the node boots its disk); "boot_partition" / "boot_whole_disk" netboot
---the instance (Ironic's switch_pxe_config); "deploy" the ramdisk again.
---@param node? string|table
---@param to "local"|"boot_partition"|"boot_whole_disk"|"deploy"
---@param opts? pxe.SwitchOpts
function pxe.switch(node, to, opts) end

---Remove every PXE file, link and dnsmasq snippet of the node (and
---master cache entries no node uses). Cleaning a clean node is fine.
---@param node? string|table
function pxe.clean(node) end

return pxe
