-- steps: clean steps with priorities, ordering and recording (Ironic's
-- conductor cleaning, ironic-ilo-behaviour §6).
--
-- A step is a table:
--   { step = "reset_bios_to_default",   -- name
--     interface = "management",         -- power | management | deploy | bios | raid
--     priority = 10,                    -- automated cleaning priority (0 = manual only)
--     option = "clean_priority_...",    -- optional [ilo] option overriding priority
--     fn = function(ctx, args) end }    -- out-of-band steps; in-band steps have inband = true
--
-- Automated cleaning runs every step with priority > 0, highest first; on a
-- tie the interface decides (power > management > deploy > bios > raid), so
-- management steps run before the agent's deploy steps. Manual cleaning runs
-- exactly the requested steps, in the given order. A step the BMC does not
-- support (error code not_supported) is skipped with a warning; any other
-- error fails cleaning.
--
-- Sites add steps in a site `site_steps.lua` (returning a list of steps) or
-- with steps.register(step) from a site clean.lua; see docs/playbooks.md.
local M = {}

--- Tie-break order of interfaces (Ironic M): higher runs first.
M.INTERFACE_PRIORITY = { power = 5, management = 4, deploy = 3, bios = 2, raid = 1 }

local function num(v)
  if v == nil or v == "" then return nil end
  local n = tonumber(v)
  if n == nil then run.fail("invalid_argument", ("clean step priority %q is not a number"):format(tostring(v))) end
  return math.floor(n)
end

-- ---------------------------------------------------------------------------
-- The iLO out-of-band steps (management interface). All synchronous.

--- reset_ilo_credential: changes the iLO password to
--- driver_info.ilo_change_password (or args.change_password) and stores it
--- as ilo_password. Quirk §12.9 (the step mutates driver_info): kept — the
--- new password must be stored or the node is lost, and ilo_change_password
--- is removed so the next cleaning does not change it again. Both are
--- secrets, encrypted at rest and redacted from every output.
local function reset_ilo_credential(ctx, args)
  local new = (args and args.change_password) or ctx.node.driver_info.ilo_change_password
  if new == nil or new == "" then
    run.log("info", "no driver_info.ilo_change_password: the iLO credential is left unchanged")
    return
  end
  ctx.bmc:reset_ilo_credential(new)
  ctx.node:set_driver_info("ilo_password", new)
  ctx.node:set_driver_info("ilo_change_password", nil)
  ctx.reconnect()
end

M.oob = {
  { step = "reset_ilo_credential", interface = "management", priority = 30,
    option = "clean_priority_reset_ilo_credential", fn = reset_ilo_credential },
  { step = "reset_secure_boot_keys_to_default", interface = "management", priority = 20,
    option = "clean_priority_reset_secure_boot_keys_to_default",
    fn = function(ctx) ctx.bmc:reset_secure_boot_keys() end },
  { step = "reset_bios_to_default", interface = "management", priority = 10,
    option = "clean_priority_reset_bios_to_default",
    fn = function(ctx) ctx.bmc:reset_bios_to_default() end },
  -- An iLO reset drops its virtual media connections; the agent keeps
  -- running from RAM and cleaning does not reboot it afterwards, so unlike
  -- Ironic M the media are not re-attached here.
  { step = "reset_ilo", interface = "management", priority = 1,
    option = "clean_priority_reset_ilo",
    fn = function(ctx) ctx.bmc:reset_ilo() end },
  { step = "clear_secure_boot_keys", interface = "management", priority = 0,
    option = "clean_priority_clear_secure_boot_keys",
    fn = function(ctx) ctx.bmc:clear_secure_boot_keys() end },
}

M.registered = {}

--- Adds a site step (see the format above). interface defaults to
--- "management"; a step with the name of a built-in one replaces it.
function M.register(def)
  if type(def) ~= "table" or type(def.step) ~= "string" or def.step == "" then
    run.fail("invalid_argument", "steps.register: want a table with step = NAME, priority = N and fn = function(ctx, args)")
  end
  if not def.inband and type(def.fn) ~= "function" then
    run.fail("invalid_argument", ("steps.register %s: fn must be a function(ctx, args)"):format(def.step))
  end
  def.interface = def.interface or "management"
  if M.INTERFACE_PRIORITY[def.interface] == nil then
    run.fail("invalid_argument", ("steps.register %s: interface %q: use power, management, deploy, bios or raid")
      :format(def.step, tostring(def.interface)))
  end
  M.registered[#M.registered + 1] = def
  return def
end

--- The effective priority of a step: [ilo] <option> when set, else its own.
--- Quirk §12.11 (priorities bound at import time): lightsout reads the
--- configuration at every run.
function M.priority(def)
  if def.option and config.ilo[def.option] ~= nil and config.ilo[def.option] ~= "" then
    return num(config.ilo[def.option])
  end
  return num(def.priority) or 0
end

--- The priority override of an in-band step reported by the agent:
--- erase_devices from [ilo] clean_priority_erase_devices, else
--- [deploy] erase_devices_priority; erase_devices_metadata from
--- [deploy] erase_devices_metadata_priority. nil keeps the agent's value.
function M.inband_override(name)
  if name == "erase_devices" then
    return num(config.ilo.clean_priority_erase_devices) or num(config.deploy.erase_devices_priority)
  elseif name == "erase_devices_metadata" then
    return num(config.deploy.erase_devices_metadata_priority)
  end
  return nil
end

--- Whether automated cleaning can run an in-band step at all (so the agent
--- must be booted): false only when both of the agent's default steps are
--- disabled by configuration and no site step is in-band.
function M.inband_enabled()
  for _, d in ipairs(M.registered) do
    if d.inband and M.priority(d) > 0 then return true end
  end
  local e, m = M.inband_override("erase_devices"), M.inband_override("erase_devices_metadata")
  return not (e == 0 and m == 0)
end

--- Turns the agent's clean.get_clean_steps result into in-band steps
--- (interface deploy only, priorities overridden from configuration).
function M.from_agent(result)
  local out = {}
  local managers = {}
  for mgr in pairs(result.clean_steps or {}) do managers[#managers + 1] = mgr end
  table.sort(managers)
  for _, mgr in ipairs(managers) do
    for _, s in ipairs(result.clean_steps[mgr]) do
      if s.interface == "deploy" then
        local p = M.inband_override(s.step)
        if p == nil then p = s.priority or 0 end
        out[#out + 1] = { step = s.step, interface = "deploy", priority = p, inband = true,
          abortable = s.abortable, reboot_requested = s.reboot_requested }
      end
    end
  end
  return out
end

--- Every known step: the iLO ones, site_steps.lua, registered ones and the
--- agent's (later entries with the same interface and name replace earlier).
function M.all(agent_steps)
  local by, order = {}, {}
  local function add(d)
    d.interface = d.interface or "management"
    local key = d.interface .. "." .. d.step
    if by[key] == nil then order[#order + 1] = key end
    by[key] = d
  end
  for _, d in ipairs(M.oob) do add(d) end
  for _, d in ipairs(agent_steps or {}) do add(d) end
  local ok, site = pcall(require, "site_steps")
  if not ok then run.fail("invalid_argument", "site_steps.lua: " .. tostring(site)) end
  for _, d in ipairs(type(site) == "table" and site or {}) do add(d) end
  for _, d in ipairs(M.registered) do add(d) end
  local out = {}
  for _, k in ipairs(order) do out[#out + 1] = by[k] end
  return out
end

--- Automated cleaning order: priority > 0, highest first, then by interface.
function M.automated(all)
  local list = {}
  for i, d in ipairs(all) do
    local p = d.inband and d.priority or M.priority(d)
    if p > 0 then list[#list + 1] = { def = d, priority = p, idx = i } end
  end
  table.sort(list, function(a, b)
    if a.priority ~= b.priority then return a.priority > b.priority end
    local ia, ib = M.INTERFACE_PRIORITY[a.def.interface] or 0, M.INTERFACE_PRIORITY[b.def.interface] or 0
    if ia ~= ib then return ia > ib end
    return a.idx < b.idx
  end)
  local out = {}
  for _, e in ipairs(list) do
    out[#out + 1] = { def = e.def, step = e.def.step, interface = e.def.interface, priority = e.priority, args = {} }
  end
  return out
end

--- Manual cleaning: the requested steps ({interface=..., step=..., args=...}
--- or "interface.step" strings), in order. Unknown steps are refused.
function M.manual(all, requested)
  local by = {}
  for _, d in ipairs(all) do by[d.interface .. "." .. d.step] = d end
  local out = {}
  for i, r in ipairs(requested or {}) do
    if type(r) == "string" then
      local itf, name = r:match("^(%w+)%.([%w_]+)$")
      r = { interface = itf or "management", step = itf and name or r }
    end
    if type(r) ~= "table" or type(r.step) ~= "string" then
      run.fail("invalid_argument", ("clean step #%d: want {interface = ..., step = ..., args = {...}}"):format(i))
    end
    local itf = r.interface
    if itf == nil then
      for _, cand in ipairs({ "management", "deploy", "power", "bios", "raid" }) do
        if by[cand .. "." .. r.step] then itf = cand break end
      end
    end
    local d = itf and by[itf .. "." .. r.step]
    if d == nil then
      local known = {}
      for k in pairs(by) do known[#known + 1] = k end
      table.sort(known)
      run.fail("invalid_argument", ("clean step %s.%s is not known on node %s; known steps: %s")
        :format(tostring(itf or "?"), r.step, node.name, table.concat(known, ", ")))
    end
    out[#out + 1] = { def = d, step = d.step, interface = d.interface,
      priority = d.inband and d.priority or M.priority(d), args = r.args or {} }
  end
  return out
end

--- Records the plan in driver_internal_info.clean_steps.
function M.record_plan(plan)
  local rec = {}
  for _, s in ipairs(plan) do
    rec[#rec + 1] = { step = s.step, interface = s.interface, priority = s.priority }
  end
  node:set_internal("clean_steps", rec)
end

--- Runs one planned step as a recorded run step, with ctx = {node, bmc,
--- agent, reconnect, ...}. In-band steps go to the agent
--- (clean.execute_clean_step, then wait). Returns "done" or "skipped".
function M.execute(ctx, s)
  return run.step("clean step " .. s.interface .. "." .. s.step, function()
    node:set_internal("clean_step", { step = s.step, interface = s.interface, priority = s.priority })
    if s.def.inband and not s.def.fn then
      M.execute_inband(ctx, s)
      return "done"
    end
    local ok, err = pcall(s.def.fn, ctx, s.args)
    if ok then return "done" end
    if type(err) == "table" and err.code == "not_supported" then
      run.log("warn", ("'%s' clean step is not supported on node %s. Skipping the clean step.")
        :format(s.step, node.name), { error = err.message })
      return "skipped"
    end
    error(err, 0)
  end)
end

--- Runs an in-band step through the agent and waits for it.
function M.execute_inband(ctx, s)
  local agent = ctx.agent
  if agent == nil then run.fail("error", "in-band clean step " .. s.step .. " needs the agent ramdisk") end
  local ports = {}
  for _, p in ipairs(node.ports) do ports[#ports + 1] = { address = p.address } end
  agent.command(nil, "clean.execute_clean_step", {
    step = { step = s.step, interface = s.interface, priority = s.priority, args = s.args, abortable = s.def.abortable },
    node = { uuid = node.uuid, driver_internal_info = { hardware_manager_version = ctx.hardware_manager_version } },
    ports = ports,
    clean_version = ctx.hardware_manager_version,
  }, { wait = false })
  return agent.wait_command(nil, "clean.execute_clean_step", { timeout = ctx.step_timeout })
end

return M
