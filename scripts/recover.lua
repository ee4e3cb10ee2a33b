-- recover.lua: finish the cleanup of a run that was interrupted (its
-- process killed: kill -9, crash, power loss) on the run's node.
--
--   lightsout node recover NODE     (the verbs run it first when needed)
--
-- When a lightsout process starts, runs of dead processes are marked
-- interrupted and their nodes moved to a failure state (deploy failed,
-- clean failed, inspect failed, error) with
-- driver_internal_info.recovery_pending = the interrupted run. This
-- playbook does what that run's failure path would have done: withdraw
-- the agent token, power off, delete what the node has published and eject
-- the virtual media, put secure boot back as it was before a deploy, and
-- clear recovery_pending. Per driver:
--
--   pxe_ilo    its PXE config, MAC links and dnsmasq snippets are removed
--              (pxe.clean); its virtual media are not touched (the iLO may
--              lack the licence for them), only published objects deleted;
--   iscsi_ilo  the power off ends the ramdisk and with it the iSCSI target
--              it exported (IPA has no command to stop a target: the agent
--              is not asked, its token is withdrawn first anyway);
--   agent_ilo  nothing more. The provision state stays the failure state (a
-- node still in a transient state — its run aborted without a process —
-- takes its "fail" event).
local bootmode = require("bootmode")
local playbook = require("playbook")
local power = require("power")
local vmedia = require("vmedia")

local M = {}

local FAIL_FROM = {
  ["deploying"] = true, ["wait call-back"] = true, ["cleaning"] = true, ["clean wait"] = true,
  ["inspecting"] = true, ["inspect wait"] = true, ["deleting"] = true, ["verifying"] = true,
}

--- Runs the recovery on the run's node; raises when a cleanup action failed
--- (recovery_pending then stays set, and the next attempt retries it).
function M.run()
  local ctx = playbook.context()
  local n = ctx.node
  local pending = n.driver_internal_info.recovery_pending
  local failed = {}
  local function try(what, fn, ...)
    local ok, err = pcall(fn, ...)
    if not ok then
      failed[#failed + 1] = what .. ": " .. playbook.message(err)
      run.log("warn", what .. " failed: " .. playbook.message(err))
    end
    return ok
  end
  run.step("recover", function()
    run.log("info", "finishing the cleanup of interrupted run " .. tostring(pending or "?"))
    local ok_agent, agent = pcall(require, "agent")
    if ok_agent then try("withdraw the agent token", agent.forget, n.uuid) end
    try("power off", power.off, ctx.bmc) -- iscsi_ilo: ends the ramdisk's target
    if n.driver == "pxe_ilo" then
      try("remove published media", vmedia.cleanup, n)
      try("remove the PXE files", require("pxe").clean)
    else
      try("remove published media and eject", vmedia.cleanup, n, ctx.bmc)
    end
    try("restore secure boot", bootmode.restore_secure_boot, ctx.bmc, n)
    if FAIL_FROM[n.provision_state] then try("provision state fail", n.transition, n, "fail") end
    if #failed > 0 then
      run.fail("recovery_failed", "recovery of node " .. n.name .. " is incomplete: " .. table.concat(failed, "; ")
        .. " (fix the cause, then `lightsout node recover " .. n.name .. "`)")
    end
    n:set_internal("recovery_pending", nil)
  end)
end

if ... == nil then M.run() end -- run as a playbook, not required
return M
