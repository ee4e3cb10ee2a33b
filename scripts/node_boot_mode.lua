-- node_boot_mode.lua: set a node's boot mode (the iLO's pending boot mode,
-- effective at the next boot), as Ironic's ilo set_boot_mode (§3).
--
--   lightsout node boot-mode set NODE... uefi|bios
--
-- params.mode: uefi or bios. A mode the server does not support is
-- refused (not_supported). Allowed in any provision state and in
-- maintenance. The result is logged with the field boot_mode.
local playbook = require("playbook")
local bootmode = require("bootmode")

local M = {}

--- Sets the pending boot mode of the run's node to params.mode.
function M.run()
  local mode = tostring(params.mode or ""):lower()
  if mode ~= "uefi" and mode ~= "bios" then
    run.fail("invalid_argument", ("params.mode %q: use uefi or bios"):format(mode))
  end
  local ctx = playbook.context()
  run.step("check supported boot modes", function()
    local ok, supported = pcall(ctx.bmc.get_supported_boot_mode, ctx.bmc)
    if ok and type(supported) == "string" then
      local want = mode == "uefi" and "uefi" or "legacy bios"
      if not supported:find(want, 1, true) then
        run.fail("not_supported", ("%s supports %s, not boot mode %s"):format(ctx.node.name, supported, mode))
      end
    end
  end)
  run.step("set boot mode " .. mode, function() bootmode.set(ctx.bmc, mode) end)
  run.log("info", ("%s boots in %s mode from the next boot"):format(ctx.node.name, mode), { boot_mode = mode })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
