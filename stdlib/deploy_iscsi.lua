-- deploy_iscsi: the iscsi_ilo phases of deploy.lua (ironic-ilo-behaviour
-- §5.1, IPA flavour). The deploy ramdisk boots over virtual media as for
-- agent_ilo; then, instead of the agent downloading the image:
--
--   1. the conductor fetches the image into the run's work directory and
--      checks it fits (instance_info.root_gb, then the disk itself);
--   2. the agent exports the root disk chosen by the root device hints as
--      LUN 1 of iSCSI target iqn.2008-10.org.openstack:<node uuid>
--      (iscsi.start_iscsi_target), with a fresh per-deploy CHAP secret when
--      driver_info.iscsi_chap (or [iscsi] chap) is true;
--   3. lightsout writes the image there (bindings/iscsi: qemu-img over
--      libiscsi, raw or qcow2);
--   4. deploy.lua goes on as for agent_ilo: boot from disk (persistent),
--      power off the ramdisk (which ends the target), power on.
--
-- On any failure the playbook's failure path powers the node off (the
-- ramdisk and its target with it), removes the media and fails the deploy
-- with the reason.
--
-- driver_info keys: iscsi_chap (bool), iscsi_chap_user (default "ironic"),
-- iscsi_port (the port the ramdisk listens on, default [iscsi] port or
-- 3260), iscsi_portal (host:port the conductor connects to when it differs
-- from the agent's address, e.g. behind NAT or a qemu port forward).
-- [iscsi] stall_timeout: seconds without write progress after which a
-- target that vanished mid-write fails the deploy (default 120).
--
-- Partition images (§5.1, as Ironic: the image is a partition image when
-- instance_info.kernel and instance_info.ramdisk are both set): lightsout
-- partitions the disk over iSCSI (iscsi.write_partition_image: root_gb,
-- swap_mb, ephemeral_gb, ephemeral_format, configdrive; disk_label and
-- boot_option from instance_info.capabilities; ESP for UEFI local boot),
-- writes the image into the root partition and records the root
-- filesystem's UUID as driver_internal_info.root_uuid_or_disk_id. Then:
--   * boot_option local: the agent installs the boot loader
--     (image.install_bootloader, as Ironic's IPA path) and deploy.lua sets
--     the boot device to disk;
--   * boot_option netboot (Ironic K/L's default): require("netboot")
--     .configure(ctx, result) builds and attaches the instance's boot ISO
--     (stdlib/netboot.lua; result is iscsi.PartitionResult, ctx.partition
--     holds it too).
local params_lib = require("params")
local util = require("util")

local M = {}

local function truthy(v)
  if type(v) == "string" then v = v:lower() end
  return v == true or v == 1 or v == "true" or v == "1" or v == "yes" or v == "on"
end

local function num(v, field)
  if v == nil or v == "" then return 0 end
  local x = tonumber(v)
  if x == nil or x < 0 then
    run.fail("invalid_argument", "instance_info." .. field .. " must be a non-negative number, got " .. tostring(v))
  end
  return x
end

local function set(v) return v ~= nil and v ~= "" end

--- Checks what iscsi_ilo needs before the node changes (§5.1 validate).
function M.validate(ctx)
  local ii = ctx.node.instance_info
  local swap, eph, root = num(ii.swap_mb, "swap_mb"), num(ii.ephemeral_gb, "ephemeral_gb"), num(ii.root_gb, "root_gb")
  ctx.root_gb = root
  local partition = params_lib.partition_image(ctx.node)
  if set(ii.kernel) ~= set(ii.ramdisk) then
    run.fail("invalid_argument", "Image " .. tostring(ii.image_source) .. " is missing the following properties: ['"
      .. (set(ii.kernel) and "ramdisk" or "kernel") .. "'] (a partition image needs both instance_info.kernel and"
      .. " instance_info.ramdisk; a whole-disk image neither)")
  end
  if ii.image_type == "partition" and not partition then
    run.fail("invalid_argument", "instance_info.image_type is partition but instance_info.kernel and"
      .. " instance_info.ramdisk are not set: iscsi_ilo, as Ironic, tells partition images by them")
  end
  ctx.partition_image = partition
  if type(ii.configdrive) == "table" then
    run.fail("not_supported", "instance_info.configdrive as a table (meta_data/user_data for Ironic to build the ISO)"
      .. " is not supported: give the base64 of the gzipped config drive image, or an http(s) URL to it")
  end
  if not partition then
    if set(ii.configdrive) then
      run.fail("not_supported", "iscsi_ilo does not write instance_info.configdrive with a whole-disk image (as Ironic"
        .. " K/L): deploy a partition image (instance_info.kernel and ramdisk), use agent_ilo, or unset configdrive")
    end
    if swap > 0 or eph > 0 then
      local field = swap > 0 and ("instance_info.swap_mb=" .. tostring(ii.swap_mb))
        or ("instance_info.ephemeral_gb=" .. tostring(ii.ephemeral_gb))
      run.fail("invalid_argument", "Cannot deploy whole disk image with swap or ephemeral size set (" .. field
        .. ": unset it, or deploy a partition image with instance_info.kernel and ramdisk)")
    end
  else
    if root <= 0 then
      run.fail("invalid_argument", "Cannot validate iSCSI deploy. Some parameters were missing in node's instance_info."
        .. " Missing are: ['root_gb'] (the size of the root partition of a partition image, in GiB)")
    end
    if ii.preserve_ephemeral == true or ii.preserve_ephemeral == "true" then
      run.fail("not_supported", "instance_info.preserve_ephemeral is not supported by iscsi_ilo in lightsout:"
        .. " the disk is always partitioned afresh (unset it)")
    end
    local caps = require("bootmode").instance_caps(ctx.node)
    local option = tostring(caps.boot_option or "netboot"):lower()
    if option ~= "local" and option ~= "netboot" then
      run.fail("invalid_argument", "The parameter 'boot_option' from instance_info has an invalid value: '"
        .. tostring(caps.boot_option) .. "'. Acceptable values are: local, netboot.")
    end
    local label = caps.disk_label and tostring(caps.disk_label):lower()
    if label and label ~= "msdos" and label ~= "gpt" then
      run.fail("invalid_argument", "The parameter 'disk_label' from instance_info has an invalid value: '"
        .. tostring(caps.disk_label) .. "'. Acceptable values are: msdos, gpt.")
    end
    ctx.boot_option, ctx.disk_label = option, label
  end
  local di = ctx.node.driver_info
  if di.iscsi_port ~= nil and not tonumber(di.iscsi_port) then
    run.fail("invalid_argument", "driver_info.iscsi_port must be a port number, got " .. tostring(di.iscsi_port))
  end
end

-- host of an agent URL (http://host:port, http://[v6]:port).
local function url_host(u)
  local h = tostring(u or ""):match("^%a+://%[([^%]]+)%]") or tostring(u or ""):match("^%a+://([^:/]+)")
  if not h then run.fail("error", "cannot tell the agent's address from agent_url " .. tostring(u)) end
  if h:find(":") then h = "[" .. h .. "]" end
  return h
end

--- Fetches the image, has the agent export the disk, writes the image.
function M.write_image(ctx)
  local n = ctx.node
  local iscsi, agent, vmedia = require("iscsi"), require("agent"), require("vmedia")
  local ii, di = n.instance_info, n.driver_info
  local src, _, checksum, algo, value = params_lib.check_image(n)
  if (checksum == nil or checksum == "") and algo and value then checksum = algo .. ":" .. value end
  local path = vmedia.fetch(src, "iscsi/" .. n.uuid .. ".image")
  local info = iscsi.image_info(path, ii.image_disk_format)
  if (ctx.root_gb or 0) > 0 and info.virtual_mb > ctx.root_gb * 1024 then
    run.fail("invalid_argument", ("Root partition is too small for requested image. Image size: %d MB, Root size: %d MB"
      .. " (instance_info.root_gb is %s: raise it or use a smaller image)"):format(info.virtual_mb, ctx.root_gb * 1024,
      tostring(ctx.root_gb)))
  end

  local iqn = iscsi.iqn()
  local port = tonumber(di.iscsi_port) or util.config_number("iscsi", "port", 3260)
  local cmd = { iqn = iqn, portal_port = port, wipe_disk_metadata = true }
  local chap_user, chap_secret
  if truthy(di.iscsi_chap) or truthy((config.iscsi or {}).chap) then
    chap_user, chap_secret = di.iscsi_chap_user or "ironic", iscsi.chap_secret()
    cmd.chap_user, cmd.chap_secret = chap_user, chap_secret
  end
  -- IPA's start_iscsi_target(iqn, wipe_disk_metadata, portal_port) answers
  -- {"iscsi_target_iqn": iqn}; chap_user/chap_secret are lightsout agent
  -- extensions, which the agent module refuses (not_supported) for an
  -- unmodified IPA ramdisk (docs/agent.md "Using an IPA ramdisk instead").
  local ok, res = pcall(agent.command, nil, "iscsi.start_iscsi_target", cmd)
  if not ok then
    local msg = require("playbook").message(res)
    if chap_user and type(res) == "table" and res.code == "not_supported" and msg:find("chap_", 1, true) then
      msg = msg .. " (CHAP is on: set driver_info.iscsi_chap=false and [iscsi] chap=false to deploy with an unmodified"
        .. " ironic-python-agent ramdisk, which has no CHAP on its iSCSI target)"
    end
    run.fail(type(res) == "table" and res.code or "error", "Failed to start the iSCSI target to deploy the node "
      .. n.uuid .. ". Error: " .. msg)
  end
  local got = type(res) == "table" and type(res.command_result) == "table" and res.command_result.iscsi_target_iqn
  if type(got) == "string" and got ~= "" then iqn = got end
  local portal = di.iscsi_portal
  if portal == nil or portal == "" then portal = url_host(ctx.agent_url) .. ":" .. port end
  run.log("info", "iSCSI target started", { iqn = iqn, portal = portal, chap = chap_user ~= nil })
  local opts = { portal = portal, iqn = iqn, lun = 1, chap_user = chap_user,
    chap_secret = chap_secret, format = info.format, checksum = checksum,
    stall = util.config_number("iscsi", "stall_timeout", nil) }
  if not ctx.partition_image then
    n:set_internal("root_uuid_or_disk_id", nil) -- a previous partition deploy's
    iscsi.write(path, opts) -- logs "image written over iSCSI"
    return
  end
  M.write_partition_image(ctx, path, opts)
end

--- The partition-image branch of write_image: partitions the disk and
--- writes the image (iscsi.write_partition_image, opts as iscsi.write),
--- records the root UUID, then installs the boot loader (local boot) or
--- hands the result to netboot.configure (netboot).
function M.write_partition_image(ctx, path, opts)
  local n, iscsi = ctx.node, require("iscsi")
  local ii = n.instance_info
  opts.boot_mode = ctx.boot_mode or "bios"
  opts.boot_option = ctx.boot_option
  opts.disk_label = ctx.disk_label
  opts.root_mb = math.floor(num(ii.root_gb, "root_gb") * 1024)
  opts.swap_mb = math.floor(num(ii.swap_mb, "swap_mb"))
  opts.ephemeral_mb = math.floor(num(ii.ephemeral_gb, "ephemeral_gb") * 1024)
  opts.ephemeral_format = ii.ephemeral_format or ((config.pxe or {}).default_ephemeral_format)
  if opts.ephemeral_mb > 0 and not set(opts.ephemeral_format) then
    opts.ephemeral_format = nil
    run.log("info", "the ephemeral partition is left unformatted (set instance_info.ephemeral_format to format it)")
  end
  local cd = ii.configdrive
  if type(cd) == "string" and cd:match("^https?://") then
    opts.configdrive_file = require("vmedia").fetch(cd, "iscsi/" .. n.uuid .. ".configdrive")
  elseif set(cd) then
    opts.configdrive = cd
  end
  local res = iscsi.write_partition_image(path, opts) -- logs "partition image written over iSCSI"
  if not set(res.root_uuid) then
    run.fail("error", "Couldn't determine the UUID of the root partition or the disk identifier after deploying node " .. n.uuid)
  end
  n:set_internal("root_uuid_or_disk_id", res.root_uuid)
  ctx.partition = res
  if res.boot_option == "local" then
    -- Ironic's IPA path (configure_local_boot): the agent installs GRUB,
    -- then deploy.lua sets the boot device to disk
    local agent = require("agent")
    agent.command(nil, "image.install_bootloader", { root_uuid = res.root_uuid,
      efi_system_part_uuid = res.efi_system_partition_uuid, target_boot_mode = res.boot_mode }, { wait = false })
    agent.wait_command(nil, "image.install_bootloader")
  else
    require("netboot").configure(ctx, res)
  end
end

return M
