---@meta agent
-- LuaLS annotations for the Go module `agent` (bindings/agent): the
-- ironic-python-agent ramdisk's call-back (heartbeat) and its /v1/commands API.
--
-- Typical deploy flow:
--   local agent = require("agent")
--   local params = { ["ipa-api-url"] = agent.callback_url(), ["ipa-agent-token"] = agent.token() }
--   -- ... floppy with params, deploy ISO as CDROM, one-time CDROM, power on ...
--   agent.wait_heartbeat(nil, { timeout = 600 })
--   agent.command(nil, "standby.prepare_image", { image_info = info }, { wait = false })
--   agent.wait_command(nil, "standby.prepare_image", { timeout = 1800 })
--   agent.forget()
--
-- Conventions of every binding (ilo, vmedia, swift, image, agent): a
-- function acting on a node takes it as an optional first argument `node?`:
-- nil or absent is the run's node; the run's node table, UUID or name are
-- accepted; any other node raises "forbidden". Options are a trailing table
-- (`opts?`); an option of the wrong type raises "invalid_argument" naming it
-- ("opts.expires must be ..."). Errors are raised as {code, message,
-- operation}, operation always "<module>.<function>" (e.g. "vmedia.resolve",
-- "ilo.set_host_power").

---@class agent
local agent = {}

---@class agent.Heartbeat
---@field node string            node UUID
---@field agent_url string       the agent's callback URL (http://ip:9999)
---@field agent_version string   IPA version reported by the agent
---@field agent_status string    agent_status (newer IPAs), often ""
---@field last_heartbeat number  Unix time (seconds, fractional) of the heartbeat
---@field count integer          heartbeats since agent.token()

---@class agent.Error
---@field type string     IPA error class, e.g. "ImageChecksumError"
---@field code integer    HTTP-like code
---@field message string
---@field details string

---@class agent.CommandResult
---@field id string
---@field command_name string              e.g. "prepare_image"
---@field command_status "RUNNING"|"SUCCEEDED"|"FAILED"|"CLEAN_VERSION_MISMATCH"
---@field command_result table|nil         e.g. {result="..."}, {clean_steps=..., hardware_manager_version=...}
---@field command_error agent.Error|nil

---@class agent.WaitHeartbeatOpts
---@field timeout? number   seconds (default [conductor] deploy_callback_timeout, else 1800)
---@field after? number     only accept a heartbeat later than this Unix time (e.g. a previous last_heartbeat)

---@class agent.CommandOpts
---@field wait? boolean     wait for the command to finish (default true)
---@field check? boolean    raise when a waited command FAILED (default true)
---@field timeout? number   seconds bound of this call (default: with wait = false [agent] command_timeout, else 60; with wait the run's deadline)

---@class agent.WaitCommandOpts
---@field timeout? number   seconds (default: the run's deadline)
---@field interval? number  seconds between command list polls when no heartbeat arrives (default 2; each poll bounded by [agent] command_timeout)
---@field check? boolean    raise when the command FAILED (default true)

---The URL the ramdisk calls back, for the `ipa-api-url` parameter:
---`[deploy] external_callback_url`, else `[conductor] api_url`, else the
---callback server's own address.
---@return string
function agent.callback_url() end

---Generate a fresh agent token for the node, register it with the callback
---server (replacing any earlier one and forgetting the earlier agent) and
---mark it secret for this run. Pass it to the ramdisk as `ipa-agent-token`.
---@param node? Node|string the run's node (table, UUID or name; nil: the run's node)
---@return string token
function agent.token(node) end

---Withdraw the node's token: further heartbeats are refused.
---@param node? Node|string the run's node (table, UUID or name; nil: the run's node)
function agent.forget(node) end

---The node's last accepted heartbeat since agent.token(), or nil.
---@param node? Node|string the run's node (table, UUID or name; nil: the run's node)
---@return agent.Heartbeat|nil
function agent.info(node) end

---Block this script (not the process) until the node's agent heartbeats
---with the right token. Raises code "timeout" when none arrives in time,
---"cancelled" when the run is cancelled, "not_found" without agent.token().
---@param node? Node|string the run's node (table, UUID or name; nil: the run's node)
---@param opts? agent.WaitHeartbeatOpts
---@return agent.Heartbeat
function agent.wait_heartbeat(node, opts) end

---Run an agent command (POST <agent_url>/v1/commands): name is
---"<extension>.<command>", e.g. "standby.prepare_image",
---"standby.power_off", "standby.get_partition_uuids",
---"image.install_bootloader", "clean.get_clean_steps",
---"clean.execute_clean_step", "deploy.get_deploy_steps".
---Raises "not_supported" when the agent does not know the command,
---"transient" when it is busy or unreachable, "error" when a waited command
---FAILED (unless opts.check == false).
---@param node Node|string|nil the run's node (table, UUID or name; nil: the run's node)
---@param name string
---@param params? table command parameters (e.g. {image_info = {...}})
---@param opts? agent.CommandOpts
---@return agent.CommandResult
function agent.command(node, name, params, opts) end

---List the agent's commands (GET <agent_url>/v1/commands), oldest first.
---@param node? Node|string the run's node (table, UUID or name; nil: the run's node)
---@return agent.CommandResult[]
function agent.commands(node) end

---Wait until the last command called `name` (as IPA reports it, e.g.
---"prepare_image" or "standby.prepare_image") is no longer RUNNING.
---Raises "not_found" when the agent never ran it, "timeout", and "error"
---when it FAILED (unless opts.check == false).
---@param node Node|string|nil the run's node (table, UUID or name; nil: the run's node)
---@param name string
---@param opts? agent.WaitCommandOpts
---@return agent.CommandResult
function agent.wait_command(node, name, opts) end

return agent
