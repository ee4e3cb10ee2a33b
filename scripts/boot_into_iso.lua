-- boot_into_iso.lua: boot a node from an ISO over virtual media, e.g. a
-- firmware or diagnostics image (Ironic's vendor boot_into_iso, §5.1).
--
--   lightsout boot-iso NODE --iso REF      (REF: path, http(s) URL, swift:, glance://)
--
-- Only for manageable nodes or nodes in maintenance; the provision state
-- does not change. The ISO stays attached (and published) until the next
-- playbook cleans up the node's media.
local playbook = require("playbook")
local power = require("power")
local vmedia = require("vmedia")

local M = {}

local function check(ctx)
  local n = ctx.node
  if n.provision_state ~= "manageable" and not n.maintenance then
    run.fail("invalid_argument", ("The requested action 'boot_into_iso' can be performed only when node %s"
      .. " is in manageable state or in 'maintenance' mode (it is %s)"):format(n.name, n.provision_state))
  end
  if params.iso == nil or params.iso == "" then
    run.fail("invalid_argument", "boot_into_iso needs the ISO: --iso REF (or --param iso=REF)")
  end
end

local function attach(ctx)
  vmedia.eject_all(ctx.bmc)
  vmedia.setup_for_boot(ctx.bmc, params.iso)
end

local function reboot(ctx)
  power.reboot(ctx.bmc)
end

M.phases = {
  { "attach ISO", attach },
  { "reboot", reboot },
}

--- Boots the run's node into params.iso.
function M.run()
  local ctx = playbook.context()
  run.step("check", function() check(ctx) end)
  playbook.run(ctx, M.phases, { what = "boot into ISO", states = {} })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
