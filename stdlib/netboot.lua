-- netboot: iscsi_ilo instances that boot a partition image from a
-- per-instance boot ISO (instance_info.capabilities.boot_option = netboot;
-- ironic-ilo-behaviour §5.1 step 5, §4.3, §4.4, §5.5).
--
--   local netboot = require("netboot")
--   netboot.validate(ctx)           -- §5.3: UEFI + netboot + whole-disk image is a conflict
--   netboot.configure(ctx, result)  -- after the partition image is written: root UUID, boot ISO
--   netboot.attach(ctx)             -- deploy, once the deploy media are gone: publish, CDROM, CD boot
--   netboot.reattach(ctx)           -- power on / reboot of an active node: a fresh ISO and URL
--   netboot.cleanup(node, bmc)      -- teardown: delete the published boot ISOs, eject
--
-- The boot ISO is built from the instance's kernel and ramdisk
-- (instance_info.kernel, instance_info.ramdisk: any image reference) with
-- the kernel command line root=UUID=<root filesystem UUID> followed by
-- instance_info.kernel_append_params, else driver_info.kernel_append_params,
-- else [ilo] kernel_append_params; BIOS-only when the instance boots in BIOS
-- mode, else BIOS + UEFI (image.boot_iso, reproducible). It is published as
-- boot-<node uuid>-r<run id>.iso (artifact kind "boot_iso", recorded before
-- it is stored), so every attach has its own name and URL; the previous one
-- is deleted once the new one is inserted. The root UUID is kept in
-- driver_internal_info.root_uuid_or_disk_id (Ironic L), which is what a
-- later power on rebuilds the ISO from: nothing depends on a file of the
-- deploy run.
--
-- Decisions: Ironic K/L keeps one Swift object and mints a temp URL per
-- attach; lightsout rebuilds the ISO on every attach (the same bytes), so it
-- works the same with the built-in web store, whose files expire, and on a
-- conductor that did not deploy the node. A published ISO expires as any
-- published media ([swift] swift_object_expiry_timeout / the web store's
-- expiry): a reboot from inside the instance after that finds no CD; power
-- actions through lightsout (`lightsout node power on|reboot`) attach a
-- fresh one first.
local bootmode = require("bootmode")
local params_lib = require("params")

local M = {}

local KIND = "boot_iso"

local function set(v) return v ~= nil and v ~= "" end

--- Reports whether the node's instance netboots: instance_info.capabilities
--- .boot_option is netboot, or unset for a partition image (Ironic K/L's
--- default, as stdlib/deploy_iscsi.lua).
function M.requested(n)
  n = n or node
  local option = bootmode.instance_caps(n).boot_option
  if not set(option) then return params_lib.partition_image(n) end
  return tostring(option):lower() == "netboot"
end

--- Reports whether the node is an active iscsi_ilo netboot instance whose
--- boot ISO the power path must re-attach before a power on or reboot (§5.5).
function M.active(n)
  n = n or node
  return n.driver == "iscsi_ilo" and n.provision_state == "active" and params_lib.partition_image(n) and M.requested(n)
    and set(n.driver_internal_info.root_uuid_or_disk_id)
end

--- Checks a netboot request before (and, once the boot mode is known, after)
--- the node changes: UEFI netboot of a whole-disk image is a conflict (§5.3).
--- ctx.boot_mode is the deploy boot mode (nil: not known yet). (A BIOS
--- netboot request for a whole-disk image boots the disk, as Ironic.)
function M.validate(ctx)
  local n = ctx.node
  if params_lib.partition_image(n) or not M.requested(n) then return end
  if ctx.boot_mode == "uefi" then
    run.fail("invalid_argument", "Conflict: Whole disk image being used for deploy, but cannot be used with node "
      .. n.uuid .. " configured to use UEFI boot with netboot option: set instance_info.capabilities.boot_option"
      .. " to local (a whole-disk image boots from its own disk), or deploy a partition image"
      .. " (instance_info.kernel and instance_info.ramdisk set)")
  end
end

-- The instance's kernel parameters (Ironic M's kernel_append_params chain).
local function append_params(n)
  for _, v in ipairs({ n.instance_info.kernel_append_params, n.driver_info.kernel_append_params }) do
    if set(v) then return tostring(v) end
  end
  return (config.ilo or {}).kernel_append_params or ""
end

-- The boot mode the instance boots in: the deploy's (the partition
-- writer's result, else the playbook's), else the one recorded.
local function instance_boot_mode(ctx)
  return (ctx.partition and ctx.partition.boot_mode) or ctx.boot_mode
    or ctx.node.driver_internal_info.deploy_boot_mode
end

-- Builds the boot ISO in the run's work directory and returns its path.
local function build(ctx, root_uuid)
  local n, vmedia = ctx.node, require("vmedia")
  local ii, di, cond = n.instance_info, n.driver_info, config.conductor or {}
  local dir = "netboot/" -- relative: inside the run's work directory (removed when the run ends)
  local kernel = vmedia.fetch(ii.kernel, dir .. n.uuid .. ".kernel")
  local ramdisk = vmedia.fetch(ii.ramdisk, dir .. n.uuid .. ".ramdisk")
  local mode = instance_boot_mode(ctx)
  local loader = di.bootloader
  if not set(loader) then loader = cond.bootloader end
  return require("image").boot_iso(dir .. "boot-" .. n.uuid .. ".iso", {
    kernel = kernel, ramdisk = ramdisk, root_uuid = root_uuid, append = append_params(n),
    bios_only = mode == "bios",
    efi_loader = (mode ~= "bios" and set(loader) and loader:match("%.[Ee][Ff][Ii]$")) and loader or nil,
  })
end

--- After the partition image is written (result.root_uuid: the root
--- filesystem UUID): records driver_internal_info.root_uuid_or_disk_id and,
--- for a netboot instance, builds its boot ISO now (a failure fails the
--- deploy here, with the deploy ramdisk still up) for attach to publish.
--- Returns true when the instance netboots.
function M.configure(ctx, result)
  local n = ctx.node
  local uuid = result and result.root_uuid
  if not set(uuid) then
    run.fail("error", "Couldn't determine the UUID of the root partition or the disk identifier after deploying node "
      .. n.uuid)
  end
  n:set_internal("root_uuid_or_disk_id", uuid)
  if not M.requested(n) then return false end
  ctx.netboot = { root_uuid = uuid, iso = build(ctx, uuid) }
  run.log("info", "boot ISO built", { root_uuid = uuid, boot_mode = instance_boot_mode(ctx) or "hybrid" })
  return true
end

--- Sets the node's boot to CDROM, persistently (Ironic: "some cloud images
--- reboot during first boot"), for a netboot instance; returns false (and
--- does nothing) otherwise, when the caller sets the disk.
function M.configure_boot(ctx)
  if not ctx.netboot then return false end
  ctx.bmc:update_persistent_boot({ "CDROM" })
  return true
end

-- Publishes the ISO at path under a name of its own, inserts it as CDROM,
-- boots CDROM once (UEFI sees a freshly inserted CD only through a one-time
-- boot until a reset), then deletes the node's other boot ISOs.
local function publish_and_insert(ctx, path)
  local vmedia, n = require("vmedia"), ctx.node
  local url, location = vmedia.publish(path, { name = ("boot-%s-r%d.iso"):format(n.uuid, run.id), kind = KIND })
  ctx.bmc:insert_virtual_media(url, "CDROM")
  ctx.bmc:set_one_time_boot("CDROM")
  local res = vmedia.cleanup(n, nil, { kind = KIND, keep = location })
  for loc, err in pairs(res.errors or {}) do run.log("warn", "could not delete the old boot ISO " .. loc .. ": " .. err) end
  return location
end

--- Deploy: publishes the boot ISO configure built, inserts it as CDROM and
--- boots from CD (persistent, and once). Call it after the deploy media are
--- removed (vmedia.cleanup ejects every device). No-op unless configure
--- said the instance netboots.
function M.attach(ctx)
  if not ctx.netboot then return false end
  local loc = publish_and_insert(ctx, ctx.netboot.iso)
  ctx.bmc:update_persistent_boot({ "CDROM" })
  run.log("info", "boot ISO attached", { location = loc })
  return true
end

--- Power path (§5.5): before a power on or reboot of an active netboot
--- node, builds the boot ISO again from the instance's kernel and ramdisk
--- and driver_internal_info.root_uuid_or_disk_id, publishes it under a new
--- name (a fresh URL), inserts it, boots CDROM once and deletes the previous
--- one. No-op (false) for any other node.
function M.reattach(ctx)
  local n = ctx.node
  if not M.active(n) then return false end
  local iso = build(ctx, n.driver_internal_info.root_uuid_or_disk_id)
  local loc = publish_and_insert(ctx, iso)
  run.log("info", "boot ISO re-attached", { location = loc })
  return true
end

--- Teardown: deletes the node's published boot ISOs and ejects the CDROM
--- (and FLOPPY) given its BMC; forgets the root UUID. Delete errors are
--- logged (as in Ironic), an eject error raises.
function M.cleanup(n, bmc)
  n = n or node
  local res = require("vmedia").cleanup(n, nil, { kind = KIND })
  for loc, err in pairs(res.errors or {}) do run.log("warn", "could not delete the boot ISO " .. loc .. ": " .. err) end
  if bmc then require("vmedia").eject_all(bmc) end
  n:set_internal("root_uuid_or_disk_id", nil)
  return res
end

return M
