-- deploy_pxe: the pxe_ilo phases of deploy.lua (ironic-ilo-behaviour §5.3,
-- with the agent deploy of §5.2/§5.4). No virtual media is touched, so an
-- iLO 4 without the Advanced licence can deploy:
--
--   1. validate: the node has ports (their MACs name the PXE config) and a
--      deploy kernel + ramdisk (driver_info deploy_kernel/deploy_ramdisk,
--      else [conductor] deploy_kernel/deploy_ramdisk);
--   2. boot ramdisk: pxe.prepare writes the node's PXE config, MAC links and
--      dnsmasq snippet with the agent's kernel parameters (ipa-api-url,
--      ipa-agent-token, BOOTIF, as agent_ilo passes them on its ISO); the
--      iLO boots NETWORK once, and the node powers on;
--   3. the agent deploys exactly as for agent_ilo (deploy.lua's phases);
--   4. switch to local boot: pxe.switch(node, "local") removes the config
--      and its links; deploy.lua sets the persistent HDD boot.
--
-- pxe.clean runs at teardown and on every failure path (deploy.lua's
-- on_fail), so no PXE file of the node is left behind. clean.lua boots the
-- cleaning ramdisk of a pxe_ilo node with the same boot_ramdisk and removes
-- the files with clean; recover.lua removes them after an interrupted run.
local params_lib = require("params")

local M = {}

local function set(v) return v ~= nil and v ~= "" end

-- The deploy kernel and ramdisk references: driver_info, else [conductor]
-- (taken together from one place, as Ironic).
local function deploy_images(n)
  local di, cond = n.driver_info, config.conductor or {}
  if set(di.deploy_kernel) and set(di.deploy_ramdisk) then return di.deploy_kernel, di.deploy_ramdisk end
  if set(cond.deploy_kernel) and set(cond.deploy_ramdisk) then return cond.deploy_kernel, cond.deploy_ramdisk end
  return nil
end

--- What a node lacks to boot the agent over PXE (deploy and cleaning):
--- a list of messages, each naming the field and the fix (empty: none).
function M.boot_problems(n)
  local out = {}
  if not n.ports[1] then
    out[#out + 1] = "node " .. n.name .. " has no ports: pxe_ilo names the PXE config after the port MACs;"
      .. " add the PXE NIC's MAC (`lightsout node set " .. n.name .. " --port MAC`) or inspect the node"
      .. " (`lightsout inspect " .. n.name .. "`)"
  end
  if not deploy_images(n) then
    out[#out + 1] = "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info."
      .. " Missing are: [deploy_kernel, deploy_ramdisk] (set them on node " .. n.name .. " or in [conductor])"
  end
  return out
end

--- Checks what pxe_ilo needs before the node changes (§5.3 validate).
function M.validate(ctx)
  local n = ctx.node
  local problems = M.boot_problems(n)
  if problems[1] then run.fail("invalid_argument", problems[1]) end
  require("netboot").validate(ctx) -- §5.3: UEFI netboot of a whole-disk image
end

--- Writes the PXE files for the deploy ramdisk, boots NETWORK once, powers on.
function M.boot_ramdisk(ctx)
  local n = ctx.node
  local pxe, vmedia, power = require("pxe"), require("vmedia"), require("power")
  local kernel, ramdisk = deploy_images(n)
  local dir = "deploy-pxe/" -- inside the run's work directory; pxe.prepare links them into its cache
  kernel = vmedia.fetch(kernel, dir .. n.uuid .. ".kernel")
  ramdisk = vmedia.fetch(ramdisk, dir .. n.uuid .. ".initramfs")
  local macs = {}
  for _, p in ipairs(n.ports) do macs[#macs + 1] = p.address end
  local params = params_lib.ramdisk(n, { boot_method = "pxe" })
  local res = pxe.prepare(nil, { kernel = kernel, ramdisk = ramdisk, macs = macs,
    boot_mode = ctx.boot_mode == "uefi" and "uefi" or "bios", params = params })
  run.log("info", "PXE config written", { config = res.config, bootfile = res.bootfile })
  ctx.bmc:set_one_time_boot("NETWORK")
  power.reboot(ctx.bmc)
end

--- After the image is written: remove the config and links (local boot).
function M.switch_to_local(_)
  require("pxe").switch(nil, "local")
end

--- Removes what a pxe_ilo run leaves for the node: every PXE file (config,
--- MAC links, dnsmasq snippets) and the objects it published (the image
--- the agent downloads); ejects nothing, as the driver never inserts.
--- Logs (never raises) so a failure path or teardown goes on; returns
--- false when something could not be removed.
function M.clean(ctx)
  local n = ctx and ctx.node or node
  local message = require("playbook").message
  local clean_ok = true
  local ok, err = pcall(require("pxe").clean, n)
  if not ok then
    clean_ok = false
    run.log("warn", "could not remove the PXE files: " .. message(err))
  end
  local okv, res = pcall(require("vmedia").cleanup, n)
  if not okv then
    clean_ok = false
    run.log("warn", "could not delete the published objects: " .. message(res))
  else
    for loc, e in pairs(res.errors or {}) do
      clean_ok = false
      run.log("warn", "could not delete " .. loc .. ": " .. e)
    end
  end
  return clean_ok
end

return M
