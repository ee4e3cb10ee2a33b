-- deploy.lua: deploy an image with the agent ramdisk over iLO virtual media
-- (Ironic agent_ilo / ilo-virtual-media + direct, ironic-ilo-behaviour
-- §5.2, §5.4, Appendix B).
--
--   lightsout deploy NODE --image-source REF --image-checksum SUM
--
-- available (or deploy failed; active = rebuild) → deploying → wait call-back
-- → deploying → active. On any failure: deploy failed, last_error set,
-- powered off, published media removed.
--
-- Wrap it from a site deploy.lua:
--   local deploy = require("bundled.deploy")
--   deploy.add_step("write image", "register in CMDB", function(ctx) ... end)
--   deploy.add_step_before("validate", "site checks", function(ctx) ... end)
--   deploy.run()
-- A failure in "validate", "start" or a step before them leaves the node as
-- it was (nothing has changed yet); after "start", the failure path runs.
--
-- The node's driver picks how the ramdisk boots and how the image reaches
-- the disk: agent_ilo boots it over virtual media and the agent downloads
-- and writes the image; pxe_ilo boots it over PXE (stdlib/deploy_pxe.lua,
-- §5.3: PXE config, one-time NETWORK boot, no virtual media, config removed
-- once the image is written, cleaned on failure) and the agent writes as
-- for agent_ilo; iscsi_ilo has the agent export the disk over iSCSI and
-- lightsout write it (stdlib/deploy_iscsi.lua, §5.1). Everything else is the
-- same runbook.
--
-- Decisions on Ironic's quirks (§12): no take-over exists, so nothing runs
-- on an ACTIVE node unless asked (§12.1: a rebuild is explicit); instances
-- boot from the local disk, except iscsi_ilo partition images with
-- boot_option netboot, which boot from a per-instance boot ISO
-- (stdlib/netboot.lua); a deploy that cannot build that ISO fails rather
-- than leave the boot device unchanged (§12.2, §12.6); all deploy media are
-- removed once the image is written.
local agent = require("agent")
local bootmode = require("bootmode")
local license = require("license")
local deploy_iscsi = require("deploy_iscsi")
local netboot = require("netboot")
local deploy_pxe = require("deploy_pxe")
local params_lib = require("params")
local playbook = require("playbook")
local power = require("power")
local util = require("util")
local vmedia = require("vmedia")

local M = {}

-- Refuse bad requests before the node changes state.
local function validate(ctx)
  local n = ctx.node
  local di, cond = n.driver_info, config.conductor or {}
  local pxe_ilo = n.driver == "pxe_ilo"
  if not pxe_ilo and not (di.ilo_deploy_iso or di.deploy_iso or (di.deploy_kernel and di.deploy_ramdisk)
      or (cond.deploy_kernel ~= "" and cond.deploy_ramdisk ~= "")) then
    run.fail("invalid_argument", "node " .. n.name .. " has no deploy ramdisk: set driver_info.ilo_deploy_iso,"
      .. " or deploy_kernel and deploy_ramdisk")
  end
  params_lib.check_image(n)
  params_lib.check_whole_disk(n)
  -- virtual media needs iLO Advanced on iLO 4: say so (and name pxe_ilo) before anything changes
  local ok, problem = pcall(license.check, ctx.bmc, n.driver)
  if not ok then
    run.log("warn", "the iLO licence cannot be read: " .. playbook.message(problem))
  elseif problem then
    run.fail("invalid_argument", "node " .. n.name .. ": " .. problem)
  end
  if n.driver == "iscsi_ilo" then deploy_iscsi.validate(ctx) end
  ctx.boot_mode = bootmode.for_deploy(n)
  if n.driver == "iscsi_ilo" then netboot.validate(ctx) end -- §5.3 conflict, when the boot mode is known now
  if pxe_ilo then deploy_pxe.validate(ctx) end
  ctx.secure_boot = bootmode.secure_boot_requested(n)
  run.log("info", "deploying " .. tostring(n.instance_info.image_source), {
    boot_mode = ctx.boot_mode or "preserve current", secure_boot = ctx.secure_boot })
end

local function start(ctx)
  local event = ctx.node.provision_state == "active" and "rebuild" or "deploy"
  ctx.node:set_last_error("")
  ctx.node:transition(event)
end

-- Power off, secure boot off, boot mode from the request or the current one.
local function prepare_node(ctx)
  bootmode.remember_secure_boot(ctx.bmc, ctx.node)
  ctx.boot_mode = bootmode.prepare_node_for_deploy(ctx.bmc, ctx.node)
  if ctx.node.driver == "iscsi_ilo" then netboot.validate(ctx) end -- the boot mode may only be known now (§5.3)
end

-- Floppy with the ramdisk parameters, deploy ISO as CDROM, one-time CDROM, power on
-- (pxe_ilo: PXE config with the parameters, one-time NETWORK, power on).
local function boot_ramdisk(ctx)
  if ctx.node.driver == "pxe_ilo" then
    deploy_pxe.boot_ramdisk(ctx)
  else
    playbook.boot_ramdisk(ctx, params_lib.ramdisk(ctx.node))
  end
  ctx.node:transition("wait")
end

local function wait_for_agent(ctx)
  local hb = agent.wait_heartbeat(nil, { timeout = util.config_number("conductor", "deploy_callback_timeout", 1800) })
  run.log("info", "agent is up", { agent_url = hb.agent_url, agent_version = hb.agent_version })
  ctx.agent_url = hb.agent_url
  ctx.node:transition("resume")
end

-- The agent downloads the image, checks its checksum and writes it to disk
-- (iscsi_ilo: the agent exports the disk and lightsout writes it).
local function write_image(ctx)
  if ctx.node.driver == "iscsi_ilo" then return deploy_iscsi.write_image(ctx) end
  local info = params_lib.image_info(ctx.node)
  agent.command(nil, "standby.prepare_image", {
    image_info = info, configdrive = ctx.node.instance_info.configdrive }, { wait = false })
  local res = agent.wait_command(nil, "standby.prepare_image")
  run.log("info", "image written", { result = res.command_result and res.command_result.result })
  if ctx.node.instance_info.image_type == "partition" then
    local ids = agent.command(nil, "standby.get_partition_uuids", {}).command_result or {}
    agent.command(nil, "image.install_bootloader", {
      root_uuid = ids["root uuid"], efi_system_part_uuid = ids["efi system partition uuid"],
      target_boot_mode = ctx.boot_mode }, { wait = false })
    agent.wait_command(nil, "image.install_bootloader")
  end
end

-- Boot from disk from now on, in the deploy boot mode, with secure boot when asked
-- (pxe_ilo: the PXE config and its links go first; an iscsi_ilo netboot
-- instance boots from CD instead: stdlib/netboot.lua).
local function configure_boot(ctx)
  if ctx.node.driver == "pxe_ilo" then deploy_pxe.switch_to_local(ctx) end
  if not netboot.configure_boot(ctx) then ctx.bmc:update_persistent_boot({ "HDD" }) end
  ctx.boot_mode = bootmode.update(ctx.bmc, ctx.node)
  bootmode.configure_secure_boot(ctx.bmc, ctx.node)
end

local function power_off_ramdisk(ctx)
  power.off_via_agent(ctx.bmc, agent)
  agent.forget()
end

local function clean_up_media(ctx)
  if ctx.node.driver == "pxe_ilo" then return deploy_pxe.clean(ctx) end -- no virtual media to eject
  local res = vmedia.cleanup(ctx.node, ctx.bmc)
  for loc, err in pairs(res.errors or {}) do run.log("warn", "could not delete " .. loc .. ": " .. err) end
  netboot.attach(ctx) -- iscsi_ilo netboot: the instance's boot ISO replaces the deploy media
end

local function boot_instance(ctx)
  ctx.node:set_internal("secure_boot_before", nil)
  power.on(ctx.bmc)
  ctx.node:transition("done")
end

M.phases = {
  { "validate", validate },
  { "start", start },
  { "prepare node", prepare_node },
  { "boot deploy ramdisk", boot_ramdisk },
  { "wait for agent", wait_for_agent },
  { "write image", write_image },
  { "configure boot", configure_boot },
  { "power off ramdisk", power_off_ramdisk },
  { "clean up media", clean_up_media },
  { "boot instance", boot_instance },
}

--- Inserts a phase named name running fn(ctx) after the phase called after.
function M.add_step(after, name, fn)
  playbook.add_phase(M.phases, { after = after }, name, fn, "deploy.add_step")
end

--- Inserts a phase named name running fn(ctx) before the phase called before.
function M.add_step_before(before, name, fn)
  playbook.add_phase(M.phases, { before = before }, name, fn, "deploy.add_step_before")
end

--- Runs the deploy on the run's node.
function M.run()
  local ctx = playbook.context()
  playbook.run(ctx, M.phases, { what = "deploy", start = "start", states = { deploying = true, ["wait call-back"] = true },
    on_fail = function(c)
      if c.node.driver == "pxe_ilo" then deploy_pxe.clean(c) end
      bootmode.restore_secure_boot(c.bmc, c.node)
    end })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
