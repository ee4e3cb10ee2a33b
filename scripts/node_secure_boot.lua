-- node_secure_boot.lua: turn UEFI secure boot on or off (effective at the
-- next boot), as Ironic's ilo set_secure_boot_mode (§3).
--
--   lightsout node secure-boot on|off NODE... | --all
--
-- params.enable: true or false. Servers without secure boot (Gen8 RIBCL,
-- legacy boot mode) fail with not_supported. Allowed in any provision
-- state and in maintenance. The result is logged with the field secure_boot.
local playbook = require("playbook")

local M = {}

--- Sets secure boot of the run's node to params.enable.
function M.run()
  local v = tostring(params.enable or ""):lower()
  if v ~= "true" and v ~= "false" then
    run.fail("invalid_argument", ("params.enable %q: use true or false"):format(v))
  end
  local enable = v == "true"
  local ctx = playbook.context()
  run.step(enable and "secure boot on" or "secure boot off", function() ctx.bmc:set_secure_boot_mode(enable) end)
  run.log("info", ("%s: secure boot %s from the next boot"):format(ctx.node.name, enable and "on" or "off"),
    { secure_boot = enable })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
