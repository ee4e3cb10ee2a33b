---@meta
-- LuaLS definitions for the globals every lightsout script sees.
-- Point your editor's Lua language server at this directory
-- (`lightsout scripts export DIR` writes it to DIR/types).

---@class Port
---@field address string MAC address

---@class Node
---@field name string
---@field uuid string
---@field driver string agent_ilo | iscsi_ilo | pxe_ilo
---@field driver_info table<string, any> iLO access (secrets are readable but redacted from every output)
---@field properties table<string, any>
---@field capabilities table<string, string> properties.capabilities parsed from "k:v,k2:v2"
---@field instance_info table<string, any>
---@field driver_internal_info table<string, any>
---@field provision_state string
---@field power_state string
---@field last_error string
---@field maintenance boolean
---@field ports Port[]
local Node = {}

--- Persists properties[key] = value (nil removes it).
---@param key string
---@param value any
function Node:set_property(key, value) end

--- Persists driver_info[key] = value (secret keys are encrypted at rest).
---@param key string
---@param value any
function Node:set_driver_info(key, value) end

--- Persists instance_info[key] = value.
---@param key string
---@param value any
function Node:set_instance_info(key, value) end

--- Persists driver_internal_info[key] = value.
---@param key string
---@param value any
function Node:set_internal(key, value) end

--- Adds a port (NIC) by MAC address; a known MAC is not added twice (its
--- name and state are updated when given).
---@param mac string
---@param opts? {name?: string, state?: string}  e.g. {name = "Port 3", state = "UnavailableOffline"}
function Node:add_port(mac, opts) end

--- Applies a provision state machine event ("done", "fail", "wait", ...).
--- Raises an error naming the state and the allowed events when invalid.
---@param event string
---@return string new_state
function Node:transition(event) end

--- Sets last_error ("" clears it).
---@param message string
function Node:set_last_error(message) end

--- Records the power state ("power on" | "power off").
---@param state string
function Node:set_power_state(state) end

--- Puts the node in or out of maintenance.
---@param on boolean
---@param reason? string
function Node:set_maintenance(on, reason) end

--- Clears instance_info.
function Node:clear_instance_info() end

--- Re-reads the node from the store.
function Node:refresh() end

---@type Node|nil The node this run acts on (nil for node-less runs).
node = nil

---@type table<string, string> Job parameters (--param K=V).
params = {}

---@type table<string, table<string, string>> Read-only configuration: config.ilo.client_timeout.
config = {}

---@class LightsoutError
---@field code string not_supported | login_failed | transient | ilo_error | invalid_argument | timeout | cancelled | not_found | error
---@field message string
---@field operation? string

---@class Run
---@field id integer Run id (see `lightsout runs show ID`).
---@field script string Script name.
run = {}

--- Records a log event and writes it to the process log.
---@param level "debug"|"info"|"warn"|"error"
---@param msg string
---@param fields? table<string, any>
function run.log(level, msg, fields) end

--- Runs fn as a recorded step (start, end, duration, error) and returns its results.
---@generic T
---@param name string
---@param fn fun(): T
---@return T
function run.step(name, fn) end

--- Records an artifact (a published object) of this run.
---@param kind string
---@param location string
function run.artifact(kind, location) end

--- Sleeps, returning early with an error when the run is cancelled or times out.
---@param seconds number
function run.sleep(seconds) end

--- Registers the failure path run when the run is cancelled (signal, `lightsout
--- node abort`, timeout): fn(cause) then runs with a fresh context bounded by
--- [lightsout] abort_grace. nil unregisters it.
---@param fn fun(cause: string)|nil
function run.on_abort(fn) end

--- Raises a lightsout error with a code.
---@param code string
---@param message string
function run.fail(code, message) end
