-- node_power.lua: power actions on one node, as Ironic's iLO power
-- interface (`baremetal node power on|off|reboot|soft off`, §5.5).
--
--   lightsout node power on|off|reboot|soft-off|nmi|state NODE... | --all
--   lightsout run node_power --node NAME --param action=on
--
-- params.action: on, off (hard: hold the power button), reboot (reset when
-- on, power on when off), soft_off (press the button, wait up to
-- [conductor] soft_power_off_timeout seconds, then hard off), nmi, state
-- (read the power state and record it in the node's power_state).
-- Allowed in any provision state and in maintenance (as Ironic); a run
-- holding the node refuses it. Before on and reboot of an active iscsi_ilo
-- netboot instance, its boot ISO is built again, published under a new name
-- and inserted, and the previous one deleted (stdlib/netboot.lua, §5.5). The result is logged as power_state.
local netboot = require("netboot")
local playbook = require("playbook")
local power = require("power")

local M = {}

local ACTIONS = { on = true, off = true, reboot = true, soft_off = true, nmi = true, state = true }

-- The server generation ("Gen10") from the iLO's product name.
local function generation(bmc)
  local ok, model = pcall(bmc.get_product_name, bmc)
  if not ok then return "this server" end
  return tostring(model):match("[Gg]en%d+") or tostring(model)
end

-- The soft power off wait: [conductor] soft_power_off_timeout seconds
-- (Ironic's default 600) as polls [ilo] power_wait seconds apart.
local function soft_off_wait()
  local cond, ilo = config.conductor or {}, config.ilo or {}
  local timeout = tonumber(cond.soft_power_off_timeout) or 600
  local interval = tonumber(ilo.power_wait) or 2
  if interval <= 0 then interval = 1 end
  return { retries = math.max(1, math.ceil(timeout / interval)), interval = interval }
end

M.do_action = {
  on = function(ctx)
    -- an active netboot instance boots a freshly published boot ISO (§5.5); a node already on does not boot
    if power.state(ctx.bmc) ~= "power on" then netboot.reattach(ctx) end
    return power.on(ctx.bmc)
  end,
  off = function(ctx) return power.off(ctx.bmc) end,
  reboot = function(ctx)
    netboot.reattach(ctx)
    return power.reboot(ctx.bmc)
  end,
  soft_off = function(ctx) return power.soft_off(ctx.bmc, soft_off_wait()) end,
  state = function(ctx) return power.state(ctx.bmc) end,
  nmi = function(ctx)
    -- proliantutils has inject_nmi (Ironic M). When the ilo module offers
    -- it, it is used; otherwise the request is refused, never faked.
    local ok, fn = pcall(function() return ctx.bmc.inject_nmi end)
    if ok and type(fn) == "function" then
      fn(ctx.bmc)
      return
    end
    run.fail("not_supported", ("NMI is not supported for %s (%s): the ilo module has no inject_nmi operation"
      .. " (a site node_power.lua can add one)"):format(ctx.node.name, generation(ctx.bmc)))
  end,
}

--- Runs params.action on the run's node.
function M.run()
  local action = tostring(params.action or "")
  if not ACTIONS[action] then
    run.fail("invalid_argument", ("params.action %q: use on, off, reboot, soft_off, nmi or state"):format(action))
  end
  local ctx = playbook.context()
  local state = run.step("power " .. action:gsub("_", " "), function() return M.do_action[action](ctx) end)
  if action ~= "nmi" then
    state = state or power.state(ctx.bmc)
    run.log("info", ctx.node.name .. " is " .. state, { power_state = state })
  end
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
