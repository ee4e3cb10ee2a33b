-- node_boot_device.lua: read or set a node's boot device, as Ironic's iLO
-- management interface (§1.3: pxe→NETWORK, disk→HDD, cdrom→CDROM).
--
--   lightsout node boot-device set NODE... pxe|disk|cdrom|bios [--persistent]
--   lightsout node boot-device show NODE... | --all
--
-- params.action: set or show; params.device (set); params.persistent
-- "true" for update_persistent_boot, else a one-time boot. "bios" (boot
-- into BIOS setup) is no iLO boot device: refused with not_supported.
-- Allowed in any provision state and in maintenance (as Ironic). The
-- result is logged with the fields boot_device and persistent.
local playbook = require("playbook")

local M = {}

M.TO_ILO = { pxe = "NETWORK", disk = "HDD", cdrom = "CDROM" }
M.FROM_ILO = { NETWORK = "pxe", HDD = "disk", CDROM = "cdrom" }

--- Ironic's get_boot_device: the one-time device when one is set, else the
--- persistent one. Returns the device (nil when unmapped) and persistent.
function M.get(bmc)
  local once = bmc:get_one_time_boot()
  if once ~= nil and once ~= "Normal" and once ~= "" then
    return M.FROM_ILO[once], false
  end
  local dev = M.FROM_ILO[bmc:get_persistent_boot_device()]
  if dev == nil then return nil, nil end
  return dev, true
end

--- Sets the boot device (one-time, or persistent when persistent is true).
function M.set(ctx, device, persistent)
  local dev = M.TO_ILO[device]
  if device == "bios" then
    run.fail("not_supported", ("boot device bios (BIOS setup) is not supported by the iLO of %s:"
      .. " its boot devices are pxe, disk and cdrom"):format(ctx.node.name))
  end
  if dev == nil then
    run.fail("invalid_argument", ("Invalid boot device %s specified: use pxe, disk or cdrom"):format(tostring(device)))
  end
  if persistent then
    ctx.bmc:update_persistent_boot({ dev })
  else
    ctx.bmc:set_one_time_boot(dev)
  end
end

--- Runs params.action on the run's node.
function M.run()
  local action = tostring(params.action or "show")
  if action ~= "set" and action ~= "show" then
    run.fail("invalid_argument", ("params.action %q: use set or show"):format(action))
  end
  local ctx = playbook.context()
  if action == "set" then
    local persistent = tostring(params.persistent or "false"):lower() == "true"
    run.step("set boot device", function() M.set(ctx, tostring(params.device or ""), persistent) end)
  end
  local dev, persistent = run.step("read boot device", function() return M.get(ctx.bmc) end)
  run.log("info", ("%s boots from %s"):format(ctx.node.name, dev or "an unmapped device"),
    { boot_device = dev or "none", persistent = persistent == true })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
