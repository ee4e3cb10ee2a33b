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
-- Partition images (netboot from a boot ISO, local boot with a bootloader)
-- are not supported by this driver yet.
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

--- Checks what iscsi_ilo needs before the node changes (§5.1 validate).
function M.validate(ctx)
  local ii = ctx.node.instance_info
  local swap, eph, root = num(ii.swap_mb, "swap_mb"), num(ii.ephemeral_gb, "ephemeral_gb"), num(ii.root_gb, "root_gb")
  ctx.root_gb = root
  if ii.image_type == "partition" then
    run.fail("not_supported", "iscsi_ilo: partition images (netboot from a boot ISO, or local boot with a bootloader)"
      .. " are not supported yet: deploy a whole-disk image (instance_info.image_type) or use agent_ilo")
  end
  if swap > 0 or eph > 0 then
    run.fail("invalid_argument", "Cannot deploy whole disk image with swap or ephemeral size set"
      .. " (unset instance_info.swap_mb and instance_info.ephemeral_gb)")
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
    run.fail("invalid_argument", ("Root partition is too small for requested image. Image size: %d MB, Root size: %d MB"):format(
      info.virtual_mb, ctx.root_gb * 1024))
  end

  local iqn = iscsi.iqn()
  local port = tonumber(di.iscsi_port) or util.config_number("iscsi", "port", 3260)
  local cmd = { iqn = iqn, portal_port = port, wipe_disk_metadata = true }
  local chap_user, chap_secret
  if truthy(di.iscsi_chap) or truthy((config.iscsi or {}).chap) then
    chap_user, chap_secret = di.iscsi_chap_user or "ironic", iscsi.chap_secret()
    cmd.chap_user, cmd.chap_secret = chap_user, chap_secret
  end
  local ok, err = pcall(agent.command, nil, "iscsi.start_iscsi_target", cmd)
  if not ok then
    run.fail(type(err) == "table" and err.code or "error", "Failed to start the iSCSI target to deploy the node "
      .. n.uuid .. ". Error: " .. require("playbook").message(err))
  end
  local portal = di.iscsi_portal
  if portal == nil or portal == "" then portal = url_host(ctx.agent_url) .. ":" .. port end
  run.log("info", "iSCSI target started", { iqn = iqn, portal = portal, chap = chap_user ~= nil })
  iscsi.write(path, { portal = portal, iqn = iqn, lun = 1, chap_user = chap_user,
    chap_secret = chap_secret, format = info.format, checksum = checksum,
    stall = util.config_number("iscsi", "stall_timeout", nil) }) -- logs "image written over iSCSI"
end

return M
