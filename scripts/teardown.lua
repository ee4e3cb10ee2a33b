-- teardown.lua: undeploy an instance, then clean the node
-- (Ironic's clean_up + tear_down, ironic-ilo-behaviour §5.2, §9).
--
--   lightsout undeploy NODE
--
-- active (or deploy failed, wait call-back, error) → deleting → cleaning →
-- automated cleaning (clean.lua) → available. A failure before cleaning
-- ends in error; a cleaning failure in clean failed + maintenance.
local agent = require("agent")
local bootmode = require("bootmode")
local playbook = require("playbook")
local power = require("power")
local vmedia = require("vmedia")

local M = {}

local function start(ctx)
  ctx.node:set_last_error("")
  ctx.node:transition("delete")
end

local function power_off(ctx)
  power.off(ctx.bmc)
end

-- After power off: disabling secure boot fails while the server is in POST.
local function secure_boot_off(ctx)
  bootmode.deconfigure_secure_boot(ctx.bmc, ctx.node)
end

local function clean_up_media(ctx)
  agent.forget()
  if ctx.node.driver == "pxe_ilo" then return require("deploy_pxe").clean(ctx) end -- PXE files, no virtual media
  require("netboot").cleanup(ctx.node) -- an iscsi_ilo netboot instance's boot ISOs; forgets the root UUID
  vmedia.cleanup(ctx.node, ctx.bmc) -- everything else published for the node; ejects FLOPPY and CDROM
end

local function clear_instance(ctx)
  ctx.node:clear_instance_info()
  ctx.node:set_internal("deploy_boot_mode", nil)
  ctx.node:transition("clean")
end

M.phases = {
  { "power off", power_off },
  { "secure boot off", secure_boot_off },
  { "clean up media", clean_up_media },
  { "clear instance info", clear_instance },
}

--- Tears the instance down, then runs automated cleaning (the clean
--- playbook in effect: a site clean.lua is used when there is one).
function M.run()
  local ctx = playbook.context()
  run.step("start", function() start(ctx) end)
  playbook.run(ctx, M.phases, { what = "tear down", states = { deleting = true } })
  require("clean").run({ mode = "automated" })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
