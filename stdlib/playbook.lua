-- playbook: what every bundled playbook shares — a context with the node's
-- BMC, phases run as recorded steps, and the failure path that leaves the
-- node in its documented failed state (last_error set, powered off,
-- published media removed, agent token withdrawn).
--
--   local playbook = require("playbook")
--   local ctx = playbook.context()
--   playbook.run(ctx, phases, { event = "fail", what = "deploy" })
local M = {}

--- A context for the run's node: ctx.node, ctx.bmc (ilo.connect; no
--- traffic until the first call) and ctx.reconnect() after a credential change.
function M.context(n)
  local ilo = require("ilo")
  local ctx = { node = n or node }
  ctx.bmc = ilo.connect(ctx.node)
  function ctx.reconnect() ctx.bmc = ilo.connect(ctx.node) end
  return ctx
end

--- Renders an error value (a lightsout error table or a string) as text.
function M.message(err)
  if type(err) == "table" then
    local s = tostring(err.message or "error")
    if err.operation and err.operation ~= "" then s = err.operation .. ": " .. s end
    if err.code and err.code ~= "" then s = s .. " (" .. err.code .. ")" end
    return s
  end
  return tostring(err)
end

-- The position of the phase called name in phases (nil when none is).
local function find(phases, name)
  for i, p in ipairs(phases) do
    if p[1] == name then return i end
  end
end

-- The phases' names, for error messages: "validate, start, ...".
local function names(phases)
  local out = {}
  for _, p in ipairs(phases) do out[#out + 1] = p[1] end
  return table.concat(out, ", ")
end

--- Inserts the phase {name, fn} into phases after the phase called
--- where.after, or before the one called where.before; raises
--- invalid_argument naming the missing phase. what names the playbook.
function M.add_phase(phases, where, name, fn, what)
  local anchor = where.after or where.before
  local i = find(phases, anchor)
  if i == nil then
    run.fail("invalid_argument", ("%s: no phase %q (phases: %s)"):format(what or run.script, tostring(anchor), names(phases)))
  end
  table.insert(phases, where.after and i + 1 or i, { name, fn })
end

--- Runs phases ({ {name, fn(ctx)}, ... }) top to bottom, each as a recorded
--- step. On the first error: M.fail(ctx, err, opts), then the error is
--- raised again so the run fails. With opts.start (the name of the phase
--- that moves the node into its transient state), an error in that phase
--- or before it (validation) leaves the node as it is: no failure path.
function M.run(ctx, phases, opts)
  opts = opts or {}
  if opts.start and not find(phases, opts.start) then
    run.fail("invalid_argument", ("%s: no phase %q starts it"):format(opts.what or run.script, opts.start))
  end
  -- armed is a table field, not a local: gopher-lua closes the upvalues of
  -- outer frames when a pcall inside a step catches an error, after which
  -- a plain local set in arm() would no longer be the one read below.
  local state = { armed = false }
  local function arm()
    state.armed = true
    -- Cancelled (signal, node abort, timeout): the engine calls this with a
    -- fresh context, as no call of the cancelled run can succeed.
    run.on_abort(function(cause) M.fail(ctx, cause, opts) end)
  end
  if not opts.start then arm() end
  local ok, err = pcall(function()
    for _, p in ipairs(phases) do
      ctx.phase = p[1]
      run.step(p[1], function() return p[2](ctx) end)
      if p[1] == opts.start then arm() end
    end
  end)
  run.on_abort(nil)
  if not ok then
    if state.armed then M.fail(ctx, err, opts) end
    error(err, 0)
  end
end

-- Runs fn, logging (not raising) its error: the failure path must go on.
local function try(what, fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then run.log("warn", what .. " failed: " .. M.message(err)) end
  return ok
end

--- Quirk §12.8 (L/M eject raises on the first failure, K only logs): the
--- normal path raises (vmedia.eject_all), the failure path logs and goes on.
---
--- The failure path (Ironic's set_failed_state / cleaning_error_handler):
--- last_error, agent token withdrawn, hard power off, published media
--- deleted and ejected, opts.on_fail(ctx), maintenance when
--- opts.maintenance, then opts.event (default "fail") when the node is in
--- one of opts.states (any state when opts.states is nil). Every action is
--- attempted even when an earlier one fails (e.g. an unreachable iLO).
function M.fail(ctx, err, opts)
  opts = opts or {}
  local n = ctx.node
  local what = opts.what or run.script
  local msg = ("%s failed in step %q: %s"):format(what, tostring(ctx.phase or "?"), M.message(err))
  run.step("handle failure", function()
    run.log("error", msg)
    try("set last_error", n.set_last_error, n, msg)
    local ok_agent, agent = pcall(require, "agent")
    if ok_agent then try("withdraw the agent token", agent.forget, n.uuid) end
    try("power off", require("power").off, ctx.bmc)
    local vmedia = require("vmedia")
    if n.driver == "pxe_ilo" then -- booted over PXE: no virtual media to eject (opts.on_fail cleans PXE)
      try("remove published media", vmedia.cleanup, n)
    elseif not try("remove published media and eject", vmedia.cleanup, n, ctx.bmc) then
      try("remove published media", vmedia.cleanup, n)
    end
    if opts.on_fail then try("on_fail", opts.on_fail, ctx) end
    if opts.maintenance then try("set maintenance", n.set_maintenance, n, true, msg) end
    local event = opts.event or "fail"
    if opts.states == nil or opts.states[n.provision_state] then
      try("provision state " .. event, n.transition, n, event)
    end
  end)
end

local function set(v) return v ~= nil and v ~= "" end

--- The deploy ramdisk ISO of a node: driver_info ilo_deploy_iso (or
--- deploy_iso), else — as Ironic's ilo-virtual-media boot interface — one
--- built from deploy_kernel + deploy_ramdisk (driver_info, else [conductor]
--- deploy_kernel/deploy_ramdisk; any image reference: local paths, http(s),
--- swift:, Glance — downloaded into the run's work directory), BIOS-only when the deploy
--- boot mode is bios, hybrid BIOS+UEFI otherwise (the EFI loader from
--- driver_info bootloader or [conductor] bootloader when it is an EFI
--- binary, else the host's GRUB), its kernel command line driver_info
--- kernel_append_params when set, else [ilo] kernel_append_params (as
--- Ironic). Without either it raises
--- invalid_argument naming what to set.
function M.deploy_iso(ctx, boot_mode)
  local di, cond = ctx.node.driver_info, config.conductor or {}
  local iso = di.ilo_deploy_iso or di.deploy_iso
  if set(iso) then return iso end
  local kernel, ramdisk = di.deploy_kernel, di.deploy_ramdisk
  if not (set(kernel) and set(ramdisk)) then kernel, ramdisk = cond.deploy_kernel, cond.deploy_ramdisk end
  if not (set(kernel) and set(ramdisk)) then
    run.fail("invalid_argument", "node " .. ctx.node.name .. " has no deploy ramdisk: set driver_info.ilo_deploy_iso"
      .. " (`lightsout node set " .. ctx.node.name .. " -i ilo_deploy_iso=REF`), or deploy_kernel and deploy_ramdisk")
  end
  local vmedia = require("vmedia")
  local dir = "deploy-iso/" -- relative: inside the run's work directory (removed when the run ends)
  kernel = vmedia.fetch(kernel, dir .. ctx.node.uuid .. ".kernel")
  ramdisk = vmedia.fetch(ramdisk, dir .. ctx.node.uuid .. ".initramfs")
  local loader = di.bootloader
  if not set(loader) then loader = cond.bootloader end
  local out = dir .. "deploy-" .. ctx.node.uuid .. ".iso"
  -- Ironic's per-node driver_info kernel_append_params wins over [ilo] kernel_append_params
  local kernel_append = di.kernel_append_params
  if not set(kernel_append) then kernel_append = config.ilo.kernel_append_params or "" end
  return require("image").iso(out, {
    kernel = kernel, ramdisk = ramdisk,
    append = kernel_append .. " boot_method=vmedia",
    bios_only = boot_mode == "bios",
    efi_loader = (boot_mode ~= "bios" and set(loader) and loader:match("%.[Ee][Ff][Ii]$")) and loader or nil,
  })
end

--- Boots the deploy ramdisk from virtual media: ejects what is attached,
--- publishes and inserts the floppy with params, inserts the deploy ISO
--- (M.deploy_iso) as CDROM, sets one-time CDROM boot and powers on (resets
--- when on).
function M.boot_ramdisk(ctx, params)
  local vmedia, power = require("vmedia"), require("power")
  local iso = M.deploy_iso(ctx, ctx.boot_mode)
  vmedia.eject_all(ctx.bmc)
  vmedia.setup_for_boot(ctx.bmc, iso, params)
  power.reboot(ctx.bmc)
end

return M
