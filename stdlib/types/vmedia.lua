---@meta vmedia
-- LuaLS annotations for the Go module `vmedia` (bindings/vmedia): publish
-- boot media and attach them to a server's virtual media, as Ironic's iLO
-- virtual-media boot does.
--
-- The store is Swift when [swift] auth_url is set, else the built-in signed
-- web store; [ilo] use_web_server_for_images = true forces the web store.
-- The web store serves <[lightsout] state_dir>/published (override with
-- [lightsout] publish_dir) on [lightsout] publish_address (default
-- 127.0.0.1:0, a free loopback port; BMCs on the network need e.g.
-- 0.0.0.0:8088 plus [lightsout] publish_url = http://<this host>:8088), HTTPS
-- with publish_tls_cert/publish_tls_key. Published media expire after
-- [ilo] swift_object_expiry_timeout (900 s) unless `expires` says otherwise.
--
-- Local paths go through the run's sandbox (docs/playbooks.md, "Sandbox"):
-- readable only in the run's work directory, [lightsout] script_paths and
-- the publish directories; a node argument or a name carrying another
-- node's UUID raises "forbidden".
--
-- Image references (iso_ref, ref): a local path or file:// URL (published),
-- an http(s) URL (used verbatim), "swift:container/object" or
-- "swift:object" (in [ilo] swift_ilo_container; temp URL), "glance://UUID"
-- or a bare Glance image UUID (Glance's Swift temp URL).
--
-- Every call is recorded as a run event; each BMC call it makes is recorded once,
-- as the iLO call it is (ilo.insert_virtual_media, ilo.eject_virtual_media,
-- ilo.set_one_time_boot), so `runs show` and lightsout_ilo_calls_total count
-- it like a direct ilo call; every published object
-- is recorded as an artifact ("floppy", "iso" or "file"; location
-- "swift:<container>/<name>" or "web:<name>").
--
--   local ilo, vmedia, agent = require("ilo"), require("vmedia"), require("agent")
--   local bmc = ilo.connect(node)
--   vmedia.setup_for_boot(bmc, "deploy.iso", { ["ipa-api-url"] = agent.callback_url() })
--   bmc:power_on()   -- or reset
--   ...
--   vmedia.cleanup(node, bmc)
--
-- Conventions of every binding (ilo, vmedia, swift, image, agent): a
-- function acting on a node takes it as an optional first argument `node?`:
-- nil or absent is the run's node; the run's node table, UUID or name are
-- accepted; any other node raises "forbidden". Options are a trailing table
-- (`opts?`); an option of the wrong type raises "invalid_argument" naming it
-- ("opts.expires must be ..."). Errors are raised as {code, message,
-- operation}, operation always "<module>.<function>" (e.g. "vmedia.resolve",
-- "ilo.set_host_power").

---@class vmedia
local vmedia = {}

---@class vmedia.PublishOpts
---@field name? string     object name: letters, digits, '.', '_', '-' (default "<node uuid>-<file base name>")
---@field expires? number  lifetime in seconds (default [ilo] swift_object_expiry_timeout)
---@field kind? string     artifact kind (default from the extension: "iso", "floppy" or "file")

---@class vmedia.ResolveOpts
---@field name? string     name to publish a local file under
---@field expires? number  lifetime of a published file or temp URL, seconds

---@class vmedia.Setup
---@field floppy_url? string  URL of the parameters floppy (only when params were given)
---@field iso_url string      URL attached as CDROM

---@class vmedia.CleanupOpts
---@field kind? string  only the artifacts of this kind (e.g. "boot_iso")
---@field keep? string  spare the artifact at this location (e.g. the boot ISO just attached)

---@class vmedia.CleanupResult
---@field deleted string[]              artifact locations deleted
---@field errors table<string,string>   location -> error (logged; not fatal, as in Ironic)

--- Publishes a local file through the configured store and returns its
-- signed URL and its artifact location (recorded as a run artifact before
-- the file is stored).
---@param file string
---@param opts? vmedia.PublishOpts
---@return string url
---@return string location  "web:<name>" or "swift:<container>/<name>"
function vmedia.publish(file, opts) end

--- Turns an image reference into a URL a BMC can fetch (publishing local files).
---@param ref string
---@param opts? vmedia.ResolveOpts
---@return string url
function vmedia.resolve(ref, opts) end

--- Makes an image reference a local file: a local path is returned resolved
--- (it must be readable in the sandbox); an http(s) URL, swift: or Glance
--- reference is downloaded to path (relative: in the run's work directory;
--- a new file or one this run created; parent directories created; nothing
--- left at path when the download fails).
---@param ref string
---@param path string
---@return string path the local file
function vmedia.fetch(ref, path) end

--- Ironic's setup_vmedia_for_boot + one-time boot: with params, builds the
--- floppy image-<node uuid> (parameters.txt), publishes it and inserts it as
--- FLOPPY; inserts the ISO (a local ISO is published as boot-<node uuid>.iso)
--- as CDROM; sets one-time boot from CDROM. Does not power the server.
---@param bmc ilo.Client  a BMC from ilo.connect(node)
---@param iso_ref string
---@param params? table<string, string|number|boolean>  floppy parameters (none = no floppy)
---@return vmedia.Setup
function vmedia.setup_for_boot(bmc, iso_ref, params) end

--- Ejects FLOPPY then CDROM (no-op for an empty device); raises on the first error.
---@param bmc ilo.Client  a BMC from ilo.connect(node)
function vmedia.eject_all(bmc) end

--- Deletes every not-yet-deleted object this node's runs published, then
--- ejects both devices when a BMC is given: vmedia.cleanup(node, bmc),
--- vmedia.cleanup(nil, bmc), vmedia.cleanup().
---@param node? Node|string  the run's node (table, UUID or name; nil: the run's node)
---@param bmc? ilo.Client    its BMC, from ilo.connect(node)
---@param opts? vmedia.CleanupOpts
---@return vmedia.CleanupResult
function vmedia.cleanup(node, bmc, opts) end

--- The store in use: "swift" or "web".
---@return "swift"|"web"
function vmedia.store() end

return vmedia
