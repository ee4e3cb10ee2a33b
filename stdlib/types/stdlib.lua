---@meta
-- LuaLS annotations for the bundled helper modules in stdlib/ (power,
-- bootmode, params, steps, playbook, inspection) that the bundled
-- playbooks are built from. Site scripts can require them too.

---@class power
local power = {}

---Reads the power state and records it on the node.
---@param bmc ilo.Client
---@return "power on"|"power off"|"error"
function power.state(bmc) end

---Polls until the power state is target ([ilo] power_retry polls, [ilo] power_wait s apart); raises "timeout".
---@param bmc ilo.Client
---@param target "power on"|"power off"
---@param opts? {retries?: integer, interval?: number}
---@return string
function power.wait(bmc, target, opts) end

---Powers on (no-op when on) and waits.
---@param bmc ilo.Client
function power.on(bmc) end

---Hard power off (hold the power button; no-op when off) and waits.
---@param bmc ilo.Client
function power.off(bmc) end

---Soft power off (press the button), falling back to a hard off.
---@param bmc ilo.Client
function power.soft_off(bmc) end

---Reset when on, power on when off; waits until on.
---@param bmc ilo.Client
function power.reboot(bmc) end

---standby.power_off through the agent, polled per [agent] post_deploy_get_power_state_*; hard off as fall-back.
---@param bmc ilo.Client
---@param agent agent
function power.off_via_agent(bmc, agent) end

---@class bootmode
---@field TO_ILO table<string, string>   bios→LEGACY, uefi→UEFI
---@field FROM_ILO table<string, string> LEGACY→bios, UEFI→uefi
local bootmode = {}

---instance_info.capabilities as a table (dict, JSON string or "k:v,k2:v2").
---@param n? Node
---@return table<string, string>
function bootmode.instance_caps(n) end

---Whether instance_info.capabilities.secure_boot is "true".
---@param n? Node
---@return boolean
function bootmode.secure_boot_requested(n) end

---The deploy boot mode ("bios"|"uefi"), or nil to preserve the current one (Ironic M rules).
---@param n? Node
---@return "bios"|"uefi"|nil
function bootmode.for_deploy(n) end

---Sets the pending boot mode unless already pending.
---@param bmc ilo.Client
---@param mode "bios"|"uefi"
---@return string
function bootmode.set(bmc, mode) end

---Ironic's update_boot_mode; records driver_internal_info.deploy_boot_mode.
---@param bmc ilo.Client
---@param n? Node
---@return "bios"|"uefi"
function bootmode.update(bmc, n) end

---The current boot mode.
---@param bmc ilo.Client
---@return "bios"|"uefi"
function bootmode.current(bmc) end

---Whether secure boot is on (false without asking in legacy mode).
---@param bmc ilo.Client
---@return boolean
function bootmode.get_secure_boot(bmc) end

---Turns secure boot off when on; returns true when it was on. Not supported counts as off.
---@param bmc ilo.Client
---@return boolean
function bootmode.disable_secure_boot(bmc) end

---Power off, secure boot off, then the boot mode (Ironic's prepare_node_for_deploy).
---@param bmc ilo.Client
---@param n? Node
---@return "bios"|"uefi"
function bootmode.prepare_node_for_deploy(bmc, n) end

---Turns secure boot on when the instance requests it; returns whether it did.
---@param bmc ilo.Client
---@param n? Node
---@return boolean
function bootmode.configure_secure_boot(bmc, n) end

---Turns secure boot off at tear-down; not supported is logged and skipped.
---@param bmc ilo.Client
---@param n? Node
---@return boolean
function bootmode.deconfigure_secure_boot(bmc, n) end

---@class params
local params_lib = {}

---Flattens root device hints to "k=v,k2=v2" (values URL-quoted), nil without hints.
---@param hints table|string|nil
---@return string|nil
function params_lib.root_device(hints) end

---Floppy parameters of an agent ramdisk boot: ipa-api-url, a fresh ipa-agent-token, boot_method=vmedia, BOOTIF, root_device.
---@param n? Node
---@param extra? table<string, string>
---@return table<string, string>
function params_lib.ramdisk(n, extra) end

---image_info for standby.prepare_image from instance_info (publishes a local image).
---@param n? Node
---@return table
function params_lib.image_info(n) end

---Validates the image fields of instance_info; returns source, id, checksum, hash algorithm, hash value.
---@param n? Node
---@return string, string, string|nil, string|nil, string|nil
function params_lib.check_image(n) end

---Whether the image is a partition image (instance_info.kernel and ramdisk both set, as Ironic).
---@param n? Node
---@return boolean
function params_lib.partition_image(n) end

---Raises not_supported for a partition image on a driver other than iscsi_ilo.
---@param n? Node
function params_lib.check_whole_disk(n) end

---@class CleanStep
---@field step string
---@field interface? "power"|"management"|"deploy"|"bios"|"raid"  default management
---@field priority? integer   automated cleaning priority (0: manual only)
---@field option? string      [ilo] option overriding priority
---@field inband? boolean     runs in the agent (clean.execute_clean_step)
---@field fn? fun(ctx: table, args: table)

---@class PlannedStep
---@field def CleanStep
---@field step string
---@field interface string
---@field priority integer
---@field args table

---@class steps
---@field INTERFACE_PRIORITY table<string, integer>
---@field oob CleanStep[]        the iLO out-of-band steps
---@field registered CleanStep[] steps added with steps.register
local steps = {}

---Adds a site clean step.
---@param def CleanStep
---@return CleanStep
function steps.register(def) end

---The effective priority of a step ([ilo] option, else its own).
---@param def CleanStep
---@return integer
function steps.priority(def) end

---The configured priority of an agent step (erase_devices, erase_devices_metadata), nil to keep the agent's.
---@param name string
---@return integer|nil
function steps.inband_override(name) end

---Whether automated cleaning may run an in-band step (so the agent must boot).
---@return boolean
function steps.inband_enabled() end

---In-band steps from a clean.get_clean_steps result (interface deploy, priorities overridden).
---@param result table
---@return CleanStep[]
function steps.from_agent(result) end

---Every known step: iLO, agent, site_steps.lua and registered ones.
---@param agent_steps? CleanStep[]
---@return CleanStep[]
function steps.all(agent_steps) end

---Automated order: priority > 0, highest first, then by interface.
---@param all CleanStep[]
---@return PlannedStep[]
function steps.automated(all) end

---Manual order: exactly the requested steps.
---@param all CleanStep[]
---@param requested table[]
---@return PlannedStep[]
function steps.manual(all, requested) end

---Records the plan in driver_internal_info.clean_steps.
---@param plan PlannedStep[]
function steps.record_plan(plan) end

---Runs one planned step as a recorded step; not_supported is skipped with a warning.
---@param ctx table
---@param s PlannedStep
---@return "done"|"skipped"
function steps.execute(ctx, s) end

---Runs an in-band step through the agent and waits for it.
---@param ctx table
---@param s PlannedStep
---@return agent.CommandResult
function steps.execute_inband(ctx, s) end

---@class PlaybookContext
---@field node Node
---@field bmc ilo.Client
---@field phase? string
---@field reconnect fun()

---@class playbook
local playbook = {}

---A context for the run's node with its BMC.
---@param n? Node
---@return PlaybookContext
function playbook.context(n) end

---Renders an error value as text.
---@param err any
---@return string
function playbook.message(err) end

---Runs phases as recorded steps; on failure runs playbook.fail and raises again.
---@param ctx PlaybookContext
---@param phases table[] { {name, fn(ctx)}, ... }
---With opts.start (a phase name), an error in that phase or before it leaves the node as it is (no failure path).
---@param opts? {what?: string, start?: string, event?: string, states?: table<string, boolean>, maintenance?: boolean, on_fail?: fun(ctx: PlaybookContext)}
function playbook.run(ctx, phases, opts) end

---Inserts the phase {name, fn} after the phase called where.after or before the one called where.before.
---@param phases table[] { {name, fn(ctx)}, ... }
---@param where {after?: string, before?: string}
---@param name string
---@param fn fun(ctx: PlaybookContext)
---@param what? string  the caller, for the error naming a missing phase
function playbook.add_phase(phases, where, name, fn, what) end

---The failure path: last_error, token withdrawn, power off, media removed, fail event, maintenance.
---@param ctx PlaybookContext
---@param err any
---@param opts? {what?: string, event?: string, states?: table<string, boolean>, maintenance?: boolean, on_fail?: fun(ctx: PlaybookContext)}
function playbook.fail(ctx, err, opts) end

---The node's deploy ISO: driver_info ilo_deploy_iso (or deploy_iso), else one built from
---deploy_kernel + deploy_ramdisk (driver_info, else [conductor]); BIOS-only when boot_mode is "bios".
---@param ctx PlaybookContext
---@param boot_mode? "bios"|"uefi"
---@return string iso a reference vmedia.setup_for_boot accepts
function playbook.deploy_iso(ctx, boot_mode) end

---Boots the deploy ramdisk: eject, floppy with params, the deploy ISO as CDROM, one-time CDROM, power on.
---@param ctx PlaybookContext
---@param params table<string, string>
function playbook.boot_ramdisk(ctx, params) end

---@class inspection
---@field ESSENTIAL string[]
---@field KNOWN_CAPABILITIES table<string, boolean>
local inspection = {}

---Keys of t, sorted.
---@param t table
---@return string[]
function inspection.sorted_keys(t) end

---Checks a get_essential_properties answer.
---@param n Node
---@param ep ilo.EssentialProperties
function inspection.check_essential(n, ep) end

---Parses a capabilities string into ordered keys and values.
---@param s string
---@return string[], table<string, string>
function inspection.parse(s) end

---Merges inspected capabilities into a capabilities string.
---@param existing string|nil
---@param caps table
---@return string
function inspection.merge_capabilities(existing, caps) end

---@class util
local util = {}

---A shallow copy of t.
---@param t? table
---@return table
function util.copy(t) end

---The keys of t, sorted.
---@param t? table
---@return any[]
function util.keys(t) end

---Whether list contains v.
---@param list? any[]
---@param v any
---@return boolean
function util.contains(list, v) end

---The number in config[section][key] (seconds, counts), or default when it is unset or not a number.
---@param section string
---@param key string
---@param default number
---@return number
function util.config_number(section, key, default) end

---@class license
---The iLO licence rule of the drivers: agent_ilo and iscsi_ilo boot from
---virtual media (iLO Advanced on iLO 4), pxe_ilo needs no licence.
local license = {}

---@type table<string, boolean>
license.VMEDIA_DRIVERS = {}

---The reason driver cannot boot with lic (nil when it can).
---@param driver string
---@param lic ilo.LicenseInfo
---@return string|nil
function license.problem(driver, lic) end

---Reads the licence through bmc: the reason the driver cannot boot with it
---(nil when it can or the iLO cannot say; other read errors are raised).
---@param bmc ilo.Client
---@param driver string
---@return string|nil
function license.check(bmc, driver) end

---@class netboot
---iscsi_ilo netboot of a partition image from a per-instance boot ISO
---(stdlib/netboot.lua; ironic-ilo-behaviour §4.3, §5.1, §5.5).
local netboot = {}

---Whether the instance asks to netboot (instance_info.capabilities.boot_option).
---@param n? Node
---@return boolean
function netboot.requested(n) end

---Whether n is an active iscsi_ilo netboot instance (the power path re-attaches its ISO).
---@param n? Node
---@return boolean
function netboot.active(n) end

---§5.3: UEFI netboot of a whole-disk image is a conflict; a partition image needs kernel and ramdisk.
---@param ctx table playbook context (ctx.node, ctx.boot_mode)
function netboot.validate(ctx) end

---After the partition image is written: records root_uuid_or_disk_id and builds the boot ISO.
---@param ctx table
---@param result {root_uuid: string, partitions?: table, disk_label?: string}
---@return boolean netboots
function netboot.configure(ctx, result) end

---Persistent boot CDROM for a netboot instance (false: the caller sets the disk).
---@param ctx table
---@return boolean
function netboot.configure_boot(ctx) end

---Deploy: publish the built ISO, insert it as CDROM, boot CD (persistent and once).
---@param ctx table
---@return boolean
function netboot.attach(ctx) end

---Power path: a fresh boot ISO and URL before a power on or reboot of an active netboot node.
---@param ctx table playbook context (ctx.node, ctx.bmc)
---@return boolean reattached
function netboot.reattach(ctx) end

---Teardown: delete the node's published boot ISOs, eject given bmc.
---@param n? Node
---@param bmc? ilo.Client
---@return vmedia.CleanupResult
function netboot.cleanup(n, bmc) end
