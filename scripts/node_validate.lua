-- node_validate.lua: Ironic's `baremetal node validate` for one node: one
-- result per interface (power, management, boot, deploy, console, inspect)
-- with its reason, changing nothing (only reads from the iLO).
--
--   lightsout node validate NODE... [--json]
--
-- Each interface is logged (debug) with the fields interface, result (true|false)
-- and reason. `lightsout node validate` adds whether the deploy ramdisk and
-- image references resolve (checked by the CLI, outside the sandbox).
local playbook = require("playbook")

local M = {}

local function set(v) return v ~= nil and v ~= "" end

local function msg(err) return playbook.message(err) end

-- Licence types that include virtual media (iLO Advanced and up).
local function licence_allows_vmedia(lics)
  for _, l in ipairs(lics or {}) do
    local t = tostring(l.type or ""):lower()
    if t:find("advanced", 1, true) or t:find("scale", 1, true) or t:find("premium", 1, true)
      or t:find("essentials", 1, true) then
      return true, l.type
    end
  end
  local names = {}
  for _, l in ipairs(lics or {}) do names[#names + 1] = tostring(l.type) end
  return false, table.concat(names, ", ")
end

--- Validates the run's node; returns the results in interface order.
function M.validate(n)
  local out = {}
  local function add(iface, ok, reason)
    out[#out + 1] = { interface = iface, result = ok, reason = reason or "" }
    run.log("debug", ("validate %s: %s"):format(iface, ok and "ok" or reason),
      { interface = iface, result = ok, reason = reason or "" })
  end
  local di = n.driver_info
  local missing = {}
  for _, k in ipairs({ "ilo_address", "ilo_username", "ilo_password" }) do
    if not set(di[k]) then missing[#missing + 1] = "'" .. k .. "'" end
  end
  local ilo_ok, ilo_reason, model = false, nil, nil
  local ctx
  if #missing > 0 then
    ilo_reason = "Missing the following iLO credentials in node's driver_info: [" .. table.concat(missing, ", ") .. "]"
  else
    local ok, err = pcall(function()
      ctx = playbook.context(n)
      model = ctx.bmc:get_product_name()
      ctx.bmc:get_host_power_status()
    end)
    if ok then
      ilo_ok = true
    elseif type(err) == "table" and err.code == "login_failed" then
      ilo_reason = "the iLO refused the credentials: " .. msg(err)
    else
      ilo_reason = "the iLO does not answer: " .. msg(err)
    end
  end
  add("power", ilo_ok, ilo_reason)

  if ilo_ok then
    local ok, err = pcall(function() ctx.bmc:get_one_time_boot() end)
    add("management", ok, ok and ("iLO of " .. tostring(model)) or msg(err))
  else
    add("management", false, ilo_reason)
  end

  -- boot: the deploy ramdisk is named, and the licence allows virtual media
  local boot_ok, boot_reason = true, nil
  local iso = di.ilo_deploy_iso or di.deploy_iso
  local cond = config.conductor or {}
  if not set(iso) and not ((set(di.deploy_kernel) and set(di.deploy_ramdisk))
      or (set(cond.deploy_kernel) and set(cond.deploy_ramdisk))) then
    boot_ok, boot_reason = false, "Missing 'ilo_deploy_iso' parameter in node's driver_info"
      .. " (or deploy_kernel and deploy_ramdisk)"
  elseif not ilo_ok then
    boot_ok, boot_reason = false, ilo_reason
  else
    local ok, lics = pcall(ctx.bmc.get_all_licenses, ctx.bmc)
    if not ok then
      if not (type(lics) == "table" and lics.code == "not_supported") then
        boot_ok, boot_reason = false, "licences cannot be read: " .. msg(lics)
      end
    else
      local allows, names = licence_allows_vmedia(lics)
      if not allows then
        boot_ok, boot_reason = false, ("the iLO licence (%s) does not allow virtual media: install iLO Advanced")
          :format(names ~= "" and names or "none")
      end
    end
  end
  add("boot", boot_ok, boot_reason)

  -- deploy: an image with a checksum and a port for the agent's lookup
  local ii = n.instance_info
  local problems = {}
  if not set(ii.image_source) then problems[#problems + 1] = "instance_info.image_source is not set" end
  if set(ii.image_source) and not (set(ii.image_checksum) or set(ii.image_os_hash_value)) then
    problems[#problems + 1] = "instance_info.image_checksum is not set"
  end
  if #n.ports == 0 then
    problems[#problems + 1] = ("Node %s does not have any port associated with it"):format(n.name)
  end
  if not boot_ok then problems[#problems + 1] = "boot: " .. boot_reason end
  add("deploy", #problems == 0, table.concat(problems, "; "))

  if set(di.console_port) then
    add("console", ilo_ok, ilo_reason)
  else
    add("console", false, "Missing 'console_port' parameter in node's driver_info.")
  end
  add("inspect", ilo_ok, ilo_reason)
  return out
end

--- Validates the run's node.
function M.run()
  run.step("validate", function() return M.validate(node) end)
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
