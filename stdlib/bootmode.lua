-- bootmode: boot mode and secure boot rules of Ironic's iLO drivers
-- (ironic-ilo-behaviour §3). Generic modes are "bios" and "uefi"; the iLO
-- speaks "LEGACY" and "UEFI".
--
--   local bootmode = require("bootmode")
--   local mode = bootmode.for_deploy(node)          -- nil: preserve the current one
--   bootmode.prepare_node_for_deploy(bmc, node)     -- power off, secure boot off, boot mode
--   bootmode.update(bmc, node)                      -- set (or preserve) the deploy boot mode
--   bootmode.configure_secure_boot(bmc, node)       -- on at the end of deploy when requested
local power = require("power")

local M = {}

local TO_ILO = { bios = "LEGACY", uefi = "UEFI" }
local FROM_ILO = { LEGACY = "bios", UEFI = "uefi" }

M.TO_ILO, M.FROM_ILO = TO_ILO, FROM_ILO

-- Parses instance_info.capabilities: a table, a JSON object string
-- ({"boot_mode": "uefi", "secure_boot": "true"}) or a "k:v,k2:v2" string.
local function parse_caps(v)
  if type(v) == "table" then return v end
  if type(v) ~= "string" or v == "" then return {} end
  local out = {}
  if v:match("^%s*{") then
    for k, val in v:gmatch('"([%w_%-]+)"%s*:%s*"?([%w_%-%.]+)"?') do out[k] = val end
    return out
  end
  for part in v:gmatch("[^,]+") do
    local k, val = part:match("^%s*([^:]+):(.+)%s*$")
    if k and val ~= "" then out[k] = val end
  end
  return out
end

--- instance_info.capabilities as a table (dict, JSON string or k:v string).
function M.instance_caps(n)
  return parse_caps((n or node).instance_info.capabilities)
end

--- Reports whether the instance asks for secure boot
--- (instance_info.capabilities.secure_boot == "true"). The node property
--- secure_boot:true only advertises support; the request comes from the instance.
function M.secure_boot_requested(n)
  return tostring(M.instance_caps(n).secure_boot or "false"):lower() == "true"
end

local function check_mode(v, where)
  if v == nil or v == "" then return nil end
  local m = tostring(v):lower()
  if m ~= "bios" and m ~= "uefi" then
    run.fail("invalid_argument", ("%s boot_mode %q: use bios or uefi"):format(where, tostring(v)))
  end
  return m
end

--- The boot mode to deploy with (Ironic M get_boot_mode_for_deploy): "uefi"
--- when secure boot is requested, else the first of
--- instance_info.capabilities.boot_mode, instance_info.deploy_boot_mode,
--- properties.capabilities.boot_mode, driver_internal_info.deploy_boot_mode,
--- [ilo] default_boot_mode (bios|uefi; auto gives nil = preserve the current
--- mode). A request that contradicts properties.capabilities.boot_mode is
--- refused, as in Ironic M.
function M.for_deploy(n)
  n = n or node
  local prop = check_mode(n.capabilities.boot_mode, "properties.capabilities")
  local mode
  if M.secure_boot_requested(n) then
    mode = "uefi"
  else
    mode = check_mode(M.instance_caps(n).boot_mode, "instance_info.capabilities")
      or check_mode(n.instance_info.deploy_boot_mode, "instance_info.deploy_boot_mode")
      or prop
      or check_mode(n.driver_internal_info.deploy_boot_mode, "driver_internal_info.deploy_boot_mode")
  end
  if mode and prop and mode ~= prop then
    run.fail("invalid_argument", ("node %s boot mode %s violates node properties/capabilities boot_mode:%s"
      .. " (change properties.capabilities or the request)"):format(n.name, mode, prop))
  end
  if mode == nil then
    local def = (config.ilo.default_boot_mode or "auto"):lower()
    if def == "auto" and config.deploy.default_boot_mode and config.deploy.default_boot_mode ~= "" then
      def = config.deploy.default_boot_mode:lower()
    end
    if def == "bios" or def == "uefi" then mode = def end
  end
  return mode
end

--- Sets the pending boot mode ("bios"|"uefi") unless it already is pending.
--- A BMC that cannot tell the pending mode is taken to be in legacy mode.
function M.set(bmc, mode)
  local want = TO_ILO[mode]
  if want == nil then run.fail("invalid_argument", ("boot mode %q: use bios or uefi"):format(tostring(mode))) end
  local ok, pending = pcall(bmc.get_pending_boot_mode, bmc)
  if not ok then
    if type(pending) == "table" and pending.code == "not_supported" then
      pending = "LEGACY"
    else
      error(pending, 0)
    end
  end
  if pending == want then
    run.log("debug", "boot mode " .. mode .. " already pending")
    return mode
  end
  bmc:set_pending_boot_mode(want)
  run.log("info", "pending boot mode set to " .. mode)
  return mode
end

--- Ironic's update_boot_mode: set the deploy boot mode when one is known,
--- else preserve the pending one (UNKNOWN on UEFI-capable systems becomes
--- UEFI). Returns the mode.
---
--- Quirk §12.12 (K/L/M store the discovered mode only in the "preserve
--- current mode" branch): lightsout records the mode in
--- driver_internal_info.deploy_boot_mode in both branches, so teardown and
--- cleaning always know how the instance boots.
function M.update(bmc, n)
  n = n or node
  local mode = M.for_deploy(n)
  if mode then
    M.set(bmc, mode)
  else
    local ok, pending = pcall(bmc.get_pending_boot_mode, bmc)
    if not ok then
      if type(pending) == "table" and pending.code == "not_supported" then pending = "LEGACY" else error(pending, 0) end
    end
    if pending == "UNKNOWN" then
      bmc:set_pending_boot_mode("UEFI")
      pending = "UEFI"
    end
    mode = FROM_ILO[pending] or "bios"
    run.log("info", "preserving the current boot mode " .. mode)
  end
  if n.driver_internal_info.deploy_boot_mode ~= mode then
    n:set_internal("deploy_boot_mode", mode)
  end
  return mode
end

--- Current boot mode ("bios" | "uefi").
function M.current(bmc)
  return FROM_ILO[bmc:get_current_boot_mode()] or "bios"
end

--- Whether secure boot is enabled. Quirk §12.7 (no query in BIOS mode):
--- kept — a server in legacy mode cannot run secure boot, and iLOs refuse
--- the question there. Raises not_supported where the iLO has no secure boot.
function M.get_secure_boot(bmc)
  if bmc:get_current_boot_mode() ~= "UEFI" then return false end
  return bmc:get_secure_boot_mode()
end

--- Turns secure boot off when it is on. Returns true when it was on.
--- Not supported (Gen8 RIBCL, legacy mode) counts as off.
function M.disable_secure_boot(bmc)
  local ok, on = pcall(M.get_secure_boot, bmc)
  if not ok then
    if type(on) == "table" and on.code == "not_supported" then return false end
    error(on, 0)
  end
  if not on then return false end
  bmc:set_secure_boot_mode(false)
  run.log("info", "secure boot disabled")
  return true
end

--- Ironic's prepare_node_for_deploy: power off, disable secure boot, then
--- set the boot mode — except when secure boot was on: boot mode and
--- secure boot cannot change together, the node is known to be UEFI, and
--- "uefi" is recorded when no deploy boot mode is set.
function M.prepare_node_for_deploy(bmc, n)
  n = n or node
  power.off(bmc)
  if M.disable_secure_boot(bmc) then
    if not n.driver_internal_info.deploy_boot_mode then n:set_internal("deploy_boot_mode", "uefi") end
    return "uefi"
  end
  return M.update(bmc, n)
end

--- Turns secure boot on when the instance requests it (end of deploy, before
--- the final boot). A node that cannot do secure boot fails the deploy:
--- the request would otherwise be silently ignored.
function M.configure_secure_boot(bmc, n)
  if not M.secure_boot_requested(n) then return false end
  bmc:set_secure_boot_mode(true)
  run.log("info", "secure boot enabled")
  return true
end

--- Records the secure boot state before a deploy changes it
--- (driver_internal_info.secure_boot_before), for M.restore_secure_boot.
--- Not supported (Gen8 RIBCL, legacy mode) records off.
function M.remember_secure_boot(bmc, n)
  n = n or node
  if n.driver_internal_info.secure_boot_before ~= nil then return end -- kept from an interrupted deploy
  local ok, on = pcall(M.get_secure_boot, bmc)
  if not ok then
    if type(on) == "table" and on.code == "not_supported" then on = false else error(on, 0) end
  end
  n:set_internal("secure_boot_before", on == true)
end

--- Puts secure boot back as M.remember_secure_boot found it (after a failed
--- or interrupted deploy), by its pending setting: the setting is written
--- whatever the current boot reports, as a pending change is invisible
--- there until the next boot. Call it powered off.
function M.restore_secure_boot(bmc, n)
  n = n or node
  local before = n.driver_internal_info.secure_boot_before
  if before == nil then return end
  local ok, err = pcall(bmc.set_secure_boot_mode, bmc, before == true)
  if not ok and not (before == false and type(err) == "table" and err.code == "not_supported") then
    error(err, 0)
  end
  run.log("info", "secure boot restored to " .. (before and "on" or "off"))
  n:set_internal("secure_boot_before", nil)
end

--- Turns secure boot off at tear-down when the instance requested it;
--- not supported is logged and skipped. A requested secure boot is turned
--- off by its pending setting (written even when the current boot reads
--- off: enabling it at the end of a deploy only takes effect at the next
--- boot).
function M.deconfigure_secure_boot(bmc, n)
  n = n or node
  local ok, err
  if M.secure_boot_requested(n) then
    ok, err = pcall(bmc.set_secure_boot_mode, bmc, false)
    if ok then err = true; run.log("info", "secure boot disabled") end
  else
    ok, err = pcall(M.disable_secure_boot, bmc)
  end
  if not ok then
    if type(err) == "table" and err.code == "not_supported" then
      run.log("warn", "secure boot mode is not supported for node " .. (n or node).name)
      return false
    end
    error(err, 0)
  end
  return err
end

return M
