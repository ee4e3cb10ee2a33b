---@meta swift
-- LuaLS annotations for the Go module `swift` (bindings/swift): OpenStack
-- Swift object storage for boot media, configured in the INI file:
--
--   [swift]  auth_url, auth_version (1 = tempauth "account:user", 2, 3),
--            username, password, project_name, user_domain_name,
--            project_domain_name, region_name (fallback [keystone_authtoken]),
--            temp_url_key (else the account's X-Account-Meta-Temp-Url-Key),
--            temp_url_digest (sha256 | sha1 | sha512), large_object_threshold
--            (1G: bigger files become SLOs), segment_size (256M), segment_workers (2)
--   [ilo]    swift_ilo_container (ironic_ilo_container), swift_object_expiry_timeout (900)
--   [glance] swift_endpoint_url, swift_api_version, swift_account, swift_container,
--            swift_store_multiple_containers_seed, swift_temp_url_key, swift_temp_url_duration
--
-- Every call is recorded as a run event; uploads are recorded as artifacts
-- ("swift", "swift:<container>/<object>") that vmedia.cleanup can delete.
-- Errors are raised as {code, message, operation}: "invalid_argument",
-- "not_found", "login_failed", "transient", "timeout", "cancelled", "error".
--
--   local swift = require("swift")
--   local url = swift.publish("deploy.iso", { name = "boot-" .. node.uuid .. ".iso" })
--
-- Conventions of every binding (ilo, vmedia, swift, image, agent): a
-- function acting on a node takes it as an optional first argument `node?`:
-- nil or absent is the run's node; the run's node table, UUID or name are
-- accepted; any other node raises "forbidden". Options are a trailing table
-- (`opts?`); an option of the wrong type raises "invalid_argument" naming it
-- ("opts.expires must be ..."). Errors are raised as {code, message,
-- operation}, operation always "<module>.<function>" (e.g. "vmedia.resolve",
-- "ilo.set_host_power").

---@class swift
local swift = {}

---@class swift.UploadOpts
---@field container? string  default [ilo] swift_ilo_container
---@field name? string       object name (default: the file's base name)
---@field expires? number    X-Delete-After in seconds (default: keep the object)

---@class swift.UploadResult
---@field container string
---@field object string
---@field bytes integer
---@field segments integer   number of SLO segments (0 for a plain object)

---@class swift.TempURLOpts
---@field container? string  default [ilo] swift_ilo_container
---@field expires? number    seconds (default [ilo] swift_object_expiry_timeout)
---@field method? string     "GET" (default), "HEAD", "PUT", ...
---@field digest? "sha256"|"sha1"|"sha512"  default [swift] temp_url_digest (sha256)
---@field filename? string   Swift's filename= download name (not signed)

---@class swift.PublishOpts: swift.TempURLOpts
---@field name? string       object name (default: the file's base name)

---@class swift.ObjectOpts
---@field container? string  default [ilo] swift_ilo_container

--- Uploads a local file (SLO segments above [swift] large_object_threshold),
--- creating the container if needed.
---@param file string local path
---@param opts? swift.UploadOpts
---@return swift.UploadResult
function swift.upload(file, opts) end

--- Uploads a file with X-Delete-After = expires and returns a GET temp URL
--- valid as long (Ironic's floppy/ISO publishing).
---@param file string local path
---@param opts? swift.PublishOpts
---@return string url
function swift.publish(file, opts) end

--- Returns a temp URL (temp_url_sig, temp_url_expires[, filename]) for an object.
---@param object string
---@param opts? swift.TempURLOpts
---@return string url
function swift.temp_url(object, opts) end

--- Deletes an object (and its SLO segments); a missing object is not an error.
---@param object string
---@param opts? swift.ObjectOpts
function swift.delete(object, opts) end

--- Returns an object's size in bytes; raises "not_found" when it is missing.
---@param object string
---@param opts? swift.ObjectOpts
---@return integer bytes
function swift.stat(object, opts) end

--- Returns Ironic's temp URL of a Glance image stored in Swift ([glance] swift_*).
---@param image_uuid string
---@return string url
function swift.glance_temp_url(image_uuid) end

return swift
