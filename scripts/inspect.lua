-- inspect.lua: out-of-band inspection through the iLO
-- (Ironic IloInspect, ironic-ilo-behaviour §7).
--
--   lightsout inspect NODE
--
-- manageable (or inspect failed) → inspecting → manageable | inspect failed.
-- Powers the server on when needed, reads memory, CPUs, disk and NIC MACs,
-- merges the capabilities (plus the licence tier, ilo_license_type, and
-- nic_capacity from IPMI FRU data when IPMI answers), adds a port per MAC and powers it back off.
local inspection = require("inspection")
local playbook = require("playbook")
local power = require("power")

local M = {}

local function start(ctx)
  ctx.node:set_last_error("")
  ctx.node:transition("inspect")
end

local function power_on(ctx)
  if power.state(ctx.bmc) ~= "power on" then
    power.on(ctx.bmc)
    ctx.powered_on = true
  end
end

-- Quirk §12.10 (K/L overwrite local_gb with 0 on RAID-less servers):
-- an inspected 0 keeps a manually set local_gb, as Ironic M does.
local function essential_properties(ctx)
  local ep = ctx.bmc:get_essential_properties()
  inspection.check_essential(ctx.node, ep)
  for _, k in ipairs(inspection.ESSENTIAL) do
    local v = ep.properties[k]
    if k == "local_gb" and tonumber(v) == 0 and (tonumber(ctx.node.properties.local_gb) or 0) > 0 then
      run.log("warn", ("inspected local_gb is 0 (no logical drive); keeping %s"):format(tostring(ctx.node.properties.local_gb)))
    elseif ctx.node.properties[k] ~= v then
      ctx.node:set_property(k, v)
    end
  end
  ctx.macs = ep.macs
  ctx.nics = ep.nics
end

local function capabilities(ctx)
  local ok, caps = pcall(ctx.bmc.get_server_capabilities, ctx.bmc)
  if not ok then
    run.log("debug", "no server capabilities: " .. playbook.message(caps))
    return
  end
  local merged = inspection.merge_capabilities(ctx.node.properties.capabilities, caps)
  if merged ~= (ctx.node.properties.capabilities or "") then
    ctx.node:set_property("capabilities", merged)
  end
end

-- The iLO licence tier as capability ilo_license_type (advanced,
-- essentials, standard): an iLO 4 without Advanced has no virtual media
-- and deploys with pxe_ilo.
local function licence(ctx)
  local ok, lic = pcall(ctx.bmc.get_license, ctx.bmc)
  if not ok then
    run.log("warn", "no ilo_license_type: the licence cannot be read: " .. playbook.message(lic))
    return
  end
  local merged = inspection.merge_capabilities(ctx.node.properties.capabilities, { ilo_license_type = lic.tier })
  if merged ~= (ctx.node.properties.capabilities or "") then
    ctx.node:set_property("capabilities", merged)
  end
end

-- NIC capacity from the FRU data over IPMI, as proliantutils reads it
-- (capability nic_capacity). An iLO whose IPMI does not answer (disabled,
-- filtered) skips it with a warning: it is not worth failing inspection.
local function nic_capacity(ctx)
  local ok, cap = pcall(function()
    local b = require("ipmi").connect(nil, { retry_timeout = 10 })
    return b:nic_capacity()
  end)
  if not ok then
    run.log("warn", "no nic_capacity: IPMI did not answer: " .. playbook.message(cap))
    return
  end
  if cap == nil then
    run.log("info", "no nic_capacity: no FRU names a network adapter")
    return
  end
  local merged = inspection.merge_capabilities(ctx.node.properties.capabilities, { nic_capacity = cap })
  if merged ~= (ctx.node.properties.capabilities or "") then
    ctx.node:set_property("capabilities", merged)
  end
end

local function ports(ctx)
  local state = {}
  for _, nic in ipairs(ctx.nics or {}) do state[nic.mac] = nic.state end
  for _, name in ipairs(inspection.sorted_keys(ctx.macs)) do
    local mac = ctx.macs[name]
    local ok, err = pcall(ctx.node.add_port, ctx.node, mac, { name = name, state = state[mac] })
    if not ok then run.log("warn", ("skipping %s MAC %q: %s"):format(name, tostring(mac), playbook.message(err))) end
  end
  -- Every other port too, with its state (null-status or offline NICs are
  -- not in macs, but the agent may look the node up by any of them).
  for _, nic in ipairs(ctx.nics or {}) do
    local ok, err = pcall(ctx.node.add_port, ctx.node, nic.mac, { name = nic.port, state = nic.state ~= "" and nic.state or "unknown" })
    if not ok then run.log("warn", ("skipping %s MAC %q: %s"):format(nic.port, tostring(nic.mac), playbook.message(err))) end
  end
end

local function power_off(ctx)
  if ctx.powered_on then power.off(ctx.bmc) end
  ctx.node:transition("done")
end

M.phases = {
  { "power on", power_on },
  { "essential properties", essential_properties },
  { "capabilities", capabilities },
  { "licence", licence },
  { "nic capacity", nic_capacity },
  { "ports", ports },
  { "power off", power_off },
}

--- Inspects the run's node.
function M.run()
  local ctx = playbook.context()
  run.step("start", function() start(ctx) end)
  playbook.run(ctx, M.phases, { what = "inspection", states = { inspecting = true } })
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
