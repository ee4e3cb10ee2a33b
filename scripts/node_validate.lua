-- node_validate.lua: Ironic's `baremetal node validate` for one node: one
-- result per interface (power, management, boot, deploy, console, inspect)
-- with its reason, changing nothing (only reads from the iLO).
--
--   lightsout node validate NODE... [--json]
--
-- Each interface is logged (debug) with the fields interface, result (true|false)
-- and reason. `lightsout node validate` adds whether the deploy ramdisk and
-- image references resolve (checked by the CLI, outside the sandbox).
--
-- Per driver, boot and deploy carry what the driver's deploy checks before
-- the node changes (the same functions deploy.lua calls):
--   pxe_ilo    boot: ports with MACs, deploy_kernel + deploy_ramdisk, the
--              [pxe] settings (ipxe_enabled needs [deploy] http_url); no
--              licence (no virtual media); deploy: the UEFI netboot conflict;
--   iscsi_ilo  boot: as agent_ilo (deploy ramdisk, virtual media licence);
--              deploy: stdlib/deploy_iscsi.lua's validate (image type,
--              swap/ephemeral on a whole-disk image, root_gb, iscsi_port).
local bootmode = require("bootmode")
local deploy_iscsi = require("deploy_iscsi")
local deploy_pxe = require("deploy_pxe")
local license = require("license")
local playbook = require("playbook")

local M = {}

local function set(v) return v ~= nil and v ~= "" end

local function msg(err) return playbook.message(err) end

-- The message of a validate function that raises (run.fail), or nil.
local function raised(fn, ctx)
  local ok, err = pcall(fn, ctx)
  if ok then return nil end
  return type(err) == "table" and tostring(err.message or err) or tostring(err)
end

-- What the [pxe] settings lack for pxe_ilo (nil when nothing).
local function pxe_settings_problem()
  local pxe, deploy = config.pxe or {}, config.deploy or {}
  local ipxe = tostring(pxe.ipxe_enabled or "false"):lower()
  if ipxe ~= "true" and ipxe ~= "false" and ipxe ~= "1" and ipxe ~= "0" and ipxe ~= "yes" and ipxe ~= "no" then
    return "[pxe] ipxe_enabled must be true or false, got " .. tostring(pxe.ipxe_enabled)
  end
  if (ipxe == "true" or ipxe == "1" or ipxe == "yes") and not set(deploy.http_url) and not set(pxe.http_address) then
    return "[pxe] ipxe_enabled needs [deploy] http_url (the URL nodes reach [deploy] http_root at)"
  end
  return nil
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

  -- boot: the deploy ramdisk is named, and the licence allows the driver's boot path
  local boot_ok, boot_reason = true, nil
  local iso = di.ilo_deploy_iso or di.deploy_iso
  local cond = config.conductor or {}
  local kernels = (set(di.deploy_kernel) and set(di.deploy_ramdisk)) or (set(cond.deploy_kernel) and set(cond.deploy_ramdisk))
  local pxe_problems = n.driver == "pxe_ilo" and deploy_pxe.boot_problems(n) or {}
  if n.driver == "pxe_ilo" then pxe_problems[#pxe_problems + 1] = pxe_settings_problem() end
  if pxe_problems[1] then
    boot_ok, boot_reason = false, table.concat(pxe_problems, "; ")
  elseif not set(iso) and not kernels then
    boot_ok, boot_reason = false, "Missing 'ilo_deploy_iso' parameter in node's driver_info"
      .. " (or deploy_kernel and deploy_ramdisk)"
  elseif not ilo_ok then
    boot_ok, boot_reason = false, ilo_reason
  else
    local ok, problem = pcall(license.check, ctx.bmc, n.driver)
    if not ok then
      boot_ok, boot_reason = false, "the licence cannot be read: " .. msg(problem)
    elseif problem then
      boot_ok, boot_reason = false, problem
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
  local vctx = { node = n }
  problems[#problems + 1] = raised(require("params").check_whole_disk, n)
  if n.driver == "iscsi_ilo" then
    problems[#problems + 1] = raised(deploy_iscsi.validate, vctx)
  elseif n.driver == "pxe_ilo" and not pxe_problems[1] then -- else boot already says what is missing
    problems[#problems + 1] = raised(function(c)
      c.boot_mode = bootmode.for_deploy(n) -- raises on a request the node's capabilities refuse
      deploy_pxe.validate(c)
    end, vctx)
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
