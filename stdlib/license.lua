-- license: the iLO licence rule of the drivers. agent_ilo and iscsi_ilo
-- boot the deploy ramdisk from virtual media, which an iLO 4 (and older)
-- only allows with the iLO Advanced licence (Essentials on entry servers);
-- pxe_ilo boots it over PXE and needs no licence.
local M = {}

--- Drivers that boot the ramdisk from virtual media.
M.VMEDIA_DRIVERS = { agent_ilo = true, iscsi_ilo = true }

--- Returns nil when the node's driver can boot with the licence lic
--- (bmc:get_license()), else the reason, naming the licence and pxe_ilo.
function M.problem(driver, lic)
  if not M.VMEDIA_DRIVERS[driver] or lic.tier == "advanced" or lic.tier == "essentials" then
    return nil
  end
  local ilo = (lic.ilo or 0) > 0 and ("iLO " .. lic.ilo) or "iLO"
  return ("the %s licence %q does not allow virtual media, which the %s driver boots the deploy ramdisk from:"
    .. " install iLO Advanced, or use the pxe_ilo driver (PXE boot, no licence needed)"):format(ilo, lic.name, driver)
end

--- Reads the licence through bmc and returns the reason the node's driver
--- cannot boot with it (nil when it can, or when the iLO cannot say).
function M.check(bmc, driver)
  if not M.VMEDIA_DRIVERS[driver] then return nil end
  local ok, lic = pcall(bmc.get_license, bmc)
  if not ok then
    if type(lic) == "table" and lic.code == "not_supported" then return nil end
    error(lic, 0)
  end
  return M.problem(driver, lic)
end

return M
