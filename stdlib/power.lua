-- power: power actions with waits, as Ironic's iLO power interface
-- (ironic-ilo-behaviour §5.5). Every action records node.power_state.
--
--   local power = require("power")
--   power.off(bmc)            -- hard off (hold the power button), wait until off
--   power.on(bmc)             -- power on, wait until on
--   power.reboot(bmc)         -- reset when on, power on when off
--   power.off_via_agent(bmc, agent)  -- standby.power_off through require("agent"), hard off as fall-back
local M = {}

local function num(section, key, default)
  local sec = config[section]
  local v = sec and tonumber(sec[key])
  if v == nil then return default end
  return v
end

-- Maps the iLO answer to Ironic's power state names.
local function ironic_state(ilo_state)
  if ilo_state == "ON" then return "power on" end
  if ilo_state == "OFF" then return "power off" end
  return "error"
end

--- Reads the power state ("power on", "power off" or "error") and records it.
function M.state(bmc)
  local s = ironic_state(bmc:get_host_power_status())
  if node and node.power_state ~= s then node:set_power_state(s) end
  return s
end

--- Polls the power state until it is target ("power on" | "power off"):
--- [ilo] power_retry polls, [ilo] power_wait seconds apart. Raises code
--- "timeout" when the state is not reached.
function M.wait(bmc, target, opts)
  opts = opts or {}
  local retries = opts.retries or num("ilo", "power_retry", 6)
  local interval = opts.interval or num("ilo", "power_wait", 2)
  local s
  for i = 0, retries do
    s = M.state(bmc)
    if s == target then return s end
    if i < retries then run.sleep(interval) end
  end
  run.fail("timeout", ("power state did not become %q after %d polls %gs apart (last: %q)")
    :format(target, retries, interval, s))
end

--- Powers on (no-op when on) and waits.
function M.on(bmc)
  if M.state(bmc) ~= "power on" then bmc:set_host_power("ON") end
  return M.wait(bmc, "power on")
end

--- Hard power off: presses and holds the power button (Ironic's "power
--- off"), no-op when already off, and waits.
function M.off(bmc)
  if M.state(bmc) ~= "power off" then bmc:hold_pwr_btn() end
  return M.wait(bmc, "power off")
end

--- Soft power off (press the button) and wait, falling back to a hard off.
--- opts (retries, interval) bound the wait as in M.wait.
function M.soft_off(bmc, opts)
  if M.state(bmc) == "power off" then return "power off" end
  bmc:press_pwr_btn()
  local ok = pcall(M.wait, bmc, "power off", opts)
  if not ok then
    run.log("warn", "soft power off did not complete; holding the power button")
    return M.off(bmc)
  end
  return "power off"
end

--- Reboots: reset when on, power on when off (Ironic's reboot()).
function M.reboot(bmc)
  if M.state(bmc) == "power on" then
    bmc:reset_server()
  else
    bmc:set_host_power("ON")
  end
  return M.wait(bmc, "power on")
end

--- Powers the node off through its agent (standby.power_off) and polls
--- [agent] post_deploy_get_power_state_retries times,
--- post_deploy_get_power_state_retry_interval seconds apart; when the agent
--- fails or the node stays on, holds the power button (Ironic L's
--- reboot_and_finish_deploy fall-back).
function M.off_via_agent(bmc, agent)
  local ok, err = pcall(agent.command, nil, "standby.power_off", {}, { wait = false })
  if ok then
    local waited = pcall(M.wait, bmc, "power off", {
      retries = num("agent", "post_deploy_get_power_state_retries", 6),
      interval = num("agent", "post_deploy_get_power_state_retry_interval", 5),
    })
    if waited then return "power off" end
    run.log("warn", "the agent did not power the node off in time; hard power off")
  else
    run.log("warn", "agent power off failed; hard power off", { error = tostring(err and err.message or err) })
  end
  return M.off(bmc)
end

return M
