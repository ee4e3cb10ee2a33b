-- ilo_lifecycle.lua: power-cycles the node, changes the pending boot mode,
-- toggles secure boot and inserts/ejects virtual media, on any generation.
--   lightsout run testdata/scripts/ilo_lifecycle.lua --all --param image=URL
local ilo = require("ilo")
local bmc = ilo.connect(node)

run.step("power cycle", function()
  bmc:set_host_power("ON")
  assert(bmc:get_host_power_status() == "ON")
  bmc:set_host_power("OFF")
  assert(bmc:get_host_power_status() == "OFF")
  bmc:set_host_power("ON")
end)

run.step("pending boot mode", function()
  local supported = bmc:get_supported_boot_mode()
  local cur = bmc:get_current_boot_mode()
  local want = (cur == "UEFI") and "LEGACY" or "UEFI"
  local ok, err = pcall(bmc.set_pending_boot_mode, bmc, want)
  if supported == "legacy bios and uefi" then
    assert(ok, tostring(err))
    bmc:reset_server()
    assert(bmc:get_current_boot_mode() == want, "pending boot mode not applied at reset")
  else
    run.log("info", "single boot mode server refused " .. want, {code = err.code})
  end
end)

run.step("secure boot", function()
  if bmc:get_current_boot_mode() ~= "UEFI" then
    local ok, err = pcall(bmc.set_pending_boot_mode, bmc, "UEFI")
    if ok then bmc:reset_server() end
  end
  local ok, err = pcall(bmc.set_secure_boot_mode, bmc, true)
  if not ok then
    assert(err.code == "not_supported", tostring(err))
    run.log("warn", "secure boot not supported: " .. err.message)
    return
  end
  bmc:reset_server()
  assert(bmc:get_secure_boot_mode() == true)
  bmc:set_secure_boot_mode(false)
  bmc:reset_server()
  assert(bmc:get_secure_boot_mode() == false)
end)

run.step("virtual media", function()
  bmc:insert_virtual_media(params.image, "CDROM")
  assert(bmc:get_vm_status("CDROM").inserted)
  bmc:eject_virtual_media("CDROM")
  assert(not bmc:get_vm_status("CDROM").inserted)
  bmc:set_host_power("OFF")
end)
