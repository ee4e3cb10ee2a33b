-- clean.lua: automated and manual cleaning (ironic-ilo-behaviour §6).
--
--   lightsout node provide NODE                  automated: manageable → cleaning → available
--   lightsout undeploy NODE                      teardown, then automated cleaning
--   lightsout clean NODE --steps '[{"interface": "deploy", "step": "erase_devices"}]'
--                                                manual: manageable → cleaning → manageable
--
-- Out-of-band steps run through the iLO (steps.lua: priorities from [ilo]
-- clean_priority_*, 0 disables); in-band steps (erase_devices, ...) run in
-- the agent ramdisk, booted over virtual media (agent_ilo, iscsi_ilo) or,
-- for pxe_ilo, over PXE as deploy.lua boots it (stdlib/deploy_pxe.lua: the
-- node's PXE config and MAC links, one-time NETWORK boot, no virtual media
-- touched; the PXE files are removed when cleaning ends or fails). Automated cleaning runs every
-- step with priority > 0, highest first, management before deploy on ties.
-- A step the iLO does not support is skipped with a warning; any other
-- failure ends in clean failed with the node in maintenance.
--
-- params: mode = "automated" (default) | "manual"; steps = JSON list of
-- {interface, step, args} (manual; set by `lightsout clean --steps`).
-- A site clean.lua can wrap this one and must return the module:
--   local clean = require("bundled.clean")
--   clean.steps.register({ step = "site_check", priority = 25, fn = function(ctx) ... end })
--   if ... == nil then clean.run() end
--   return clean
local agent = require("agent")
local bootmode = require("bootmode")
local deploy_pxe = require("deploy_pxe")
local params_lib = require("params")
local playbook = require("playbook")
local power = require("power")
local steps = require("steps")
local util = require("util")
local vmedia = require("vmedia")

local M = { steps = steps }

-- Does the plan need the agent? Manual: when a requested step is not one
-- of the out-of-band steps. Automated: unless in-band cleaning is disabled.
local function needs_agent(ctx)
  if ctx.mode ~= "manual" then return steps.inband_enabled() end
  local oob = {}
  for _, d in ipairs(steps.all({})) do
    oob[d.interface .. "." .. d.step], oob[d.step] = true, true
  end
  for _, r in ipairs(ctx.requested) do
    local key = r.interface and (r.interface .. "." .. r.step) or r.step
    if not oob[key] then return true end
  end
  return false
end

local function pxe_ilo(ctx) return ctx.node.driver == "pxe_ilo" end

-- Power off, secure boot off, boot mode; then the agent ramdisk over
-- virtual media, or over PXE for pxe_ilo, as for a deploy (Ironic's
-- prepare_cleaning).
local function boot_ramdisk(ctx)
  if pxe_ilo(ctx) then -- refuse before the node is touched: no ports, no deploy kernel
    local problems = deploy_pxe.boot_problems(ctx.node)
    if problems[1] then run.fail("invalid_argument", problems[1]) end
  end
  ctx.agent_booted = true
  local mode = bootmode.prepare_node_for_deploy(ctx.bmc, ctx.node)
  if pxe_ilo(ctx) then
    ctx.boot_mode = mode -- pxelinux (bios) or GRUB (uefi) config
    deploy_pxe.boot_ramdisk(ctx)
  else
    playbook.boot_ramdisk(ctx, params_lib.ramdisk(ctx.node))
  end
  ctx.node:transition("wait")
  agent.wait_heartbeat(nil, { timeout = util.config_number("conductor", "clean_callback_timeout", 1800) })
  ctx.node:transition("resume")
end

-- The agent's steps (clean.get_clean_steps), interface deploy only.
local function get_agent_steps(ctx)
  local ports = {}
  for _, p in ipairs(ctx.node.ports) do ports[#ports + 1] = { address = p.address } end
  local res = agent.command(nil, "clean.get_clean_steps", { node = { uuid = ctx.node.uuid }, ports = ports })
  local r = res.command_result or {}
  if r.clean_steps == nil or r.hardware_manager_version == nil then
    run.fail("error", "the agent's clean.get_clean_steps answer has no clean_steps or hardware_manager_version")
  end
  ctx.hardware_manager_version = r.hardware_manager_version
  ctx.node:set_internal("hardware_manager_version", r.hardware_manager_version)
  return steps.from_agent(r)
end

local function prepare(ctx)
  local agent_steps = {}
  if needs_agent(ctx) then
    run.step("boot cleaning ramdisk", function() boot_ramdisk(ctx) end)
    ctx.agent = agent
    agent_steps = run.step("get agent clean steps", function() return get_agent_steps(ctx) end)
  end
  local all = steps.all(agent_steps)
  if ctx.mode == "manual" then
    ctx.plan = steps.manual(all, ctx.requested)
  else
    ctx.plan = steps.automated(all)
  end
  steps.record_plan(ctx.plan)
  local names = {}
  for _, s in ipairs(ctx.plan) do names[#names + 1] = ("%s.%s(%d)"):format(s.interface, s.step, s.priority) end
  run.log("info", ctx.mode .. " cleaning plan: " .. (#names > 0 and table.concat(names, ", ") or "no steps"))
end

local function run_steps(ctx)
  for _, s in ipairs(ctx.plan) do steps.execute(ctx, s) end
end

-- Ironic's tear_down_cleaning: power off, media (pxe_ilo: the PXE files)
-- removed, token withdrawn.
local function tear_down(ctx)
  ctx.node:set_internal("clean_step", nil)
  ctx.node:set_internal("clean_steps", nil)
  ctx.node:set_internal("manual_clean_steps", nil)
  if ctx.agent_booted then
    agent.forget()
    power.off(ctx.bmc)
    if pxe_ilo(ctx) then
      require("pxe").clean() -- raises: a file left behind fails the cleaning
    else
      vmedia.cleanup(ctx.node, ctx.bmc)
    end
  end
end

local function finish(ctx)
  ctx.node:transition(ctx.mode == "manual" and "manual_done" or "done")
end

M.phases = {
  { "prepare cleaning", prepare },
  { "run clean steps", run_steps },
  { "tear down cleaning", tear_down },
  { "finish", finish },
}

-- The manual step list: driver_internal_info.manual_clean_steps (set by
-- `lightsout clean --steps JSON`, with args) or params.steps
-- ("deploy.erase_devices,management.reset_bios_to_default", no args).
local function requested_steps(n)
  local out = {}
  for _, r in ipairs(n.driver_internal_info.manual_clean_steps or {}) do out[#out + 1] = r end
  if #out == 0 and params.steps and params.steps ~= "" then
    for item in params.steps:gmatch("[^,%s]+") do
      local itf, name = item:match("^(%w+)%.([%w_]+)$")
      out[#out + 1] = { interface = itf, step = name or item, args = {} }
    end
  end
  return out
end

--- Runs cleaning on the run's node. opts.mode = "automated" | "manual",
--- opts.steps = the manual step list (default: params.mode / params.steps).
function M.run(opts)
  opts = opts or {}
  local ctx = playbook.context()
  ctx.mode = opts.mode or params.mode or "automated"
  ctx.requested = opts.steps or requested_steps(ctx.node)
  run.step("start", function()
    local n = ctx.node
    if ctx.mode == "manual" and #ctx.requested == 0 then
      run.fail("invalid_argument", [[manual cleaning needs a step list: --steps '[{"interface": "deploy", "step": "erase_devices"}]']])
    end
    if n.provision_state == "manageable" then
      n:transition(ctx.mode == "manual" and "clean" or "provide")
    elseif n.provision_state ~= "cleaning" then
      run.fail("invalid_argument", ("node %s is %s: cleaning starts from manageable (or after undeploy)")
        :format(n.name, n.provision_state))
    end
    n:set_last_error("")
  end)
  if ctx.mode == "automated" and (config.conductor.clean_nodes or "true"):lower() == "false" then
    run.log("info", "automated cleaning is disabled ([conductor] clean_nodes = false)")
    run.step("finish", function() finish(ctx) end)
    return
  end
  playbook.run(ctx, M.phases, { what = "cleaning", maintenance = true,
    states = { cleaning = true, ["clean wait"] = true },
    on_fail = function(c) -- Ironic's cleaning_error_handler clears the current step
      if pxe_ilo(c) then deploy_pxe.clean(c) end -- playbook.fail ejects nothing for pxe_ilo
      c.node:set_internal("clean_step", nil)
      c.node:set_internal("manual_clean_steps", nil)
    end })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
