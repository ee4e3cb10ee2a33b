---@meta ilo
-- LuaLS annotations for the Go module `ilo` (bindings/ilo): one client for
-- HPE iLO 3..7 (RIBCL on G7/Gen8, Redfish on Gen9 with iLO 4 >= 2.30,
-- Gen10, Gen11, Gen12), method names as in proliantutils' IloClient.
--
--   local ilo = require("ilo")
--   local bmc = ilo.connect()               -- the run's node
--   bmc:set_host_power("OFF")
--   bmc:insert_virtual_media(url, "CDROM")
--   bmc:set_one_time_boot("CDROM")
--   local ok, err = pcall(function() bmc:set_secure_boot_mode(true) end)
--   if not ok and err.code == "not_supported" then ... end
--
-- Every method call is recorded as a run event "ilo.<method>" (duration,
-- outcome, protocol; never a password). Errors are raised as ilo.Error
-- tables: use pcall to branch on err.code.
--
-- Conventions of every binding (ilo, vmedia, swift, image, agent): a
-- function acting on a node takes it as an optional first argument `node?`:
-- nil or absent is the run's node; the run's node table, UUID or name are
-- accepted; any other node raises "forbidden". Options are a trailing table
-- (`opts?`); an option of the wrong type raises "invalid_argument" naming it
-- ("opts.expires must be ..."). Errors are raised as {code, message,
-- operation}, operation always "<module>.<function>" (e.g. "vmedia.resolve",
-- "ilo.set_host_power").

---@class ilo
local ilo = {}

---@class ilo.Error
---@field code "not_supported"|"login_failed"|"transient"|"ilo_error"|"invalid_argument"|"timeout"|"cancelled"|"error"
---@field message string     the iLO's own status and message for ilo_error
---@field operation string   "ilo.<method>", e.g. "ilo.set_host_power"

---@class ilo.ConnectOptions
---@field address string           iLO host or IP (may carry ":port")
---@field username string
---@field password string
---@field port? integer            HTTPS port (default 443)
---@field timeout? number          client_timeout in seconds, bounds each call with its retries (default 60)
---@field verify_ca? boolean|string  true (system roots, default), false, or a CA file/directory path
---@field cert_pin? boolean|string   true/"tofu" (trust on first use) or a SHA-256 fingerprint
---@field insecure? boolean          skip certificate checks (explicit only)

---@class ilo.NodeTable
---@field name string
---@field uuid string
---@field driver_info table   ilo_address, ilo_username, ilo_password, client_port, client_timeout, ilo_verify_ca, ilo_cert_pin, ilo_insecure

---Connect to an iLO. With no argument (or the run's node: its table, UUID or
---name) the node's driver_info is used and the generation probe and
---certificate pin are cached in its driver_internal_info; a table of
---ilo.ConnectOptions connects to a BMC that is not a node. No traffic
---happens until the first call.
---@param node? ilo.NodeTable|string|ilo.ConnectOptions
---@return ilo.Client
function ilo.connect(node) end

---@class ilo.VMStatus
---@field vm_applet string       "CONNECTED"|"DISCONNECTED"
---@field device string          "FLOPPY"|"CDROM"
---@field boot_option string     "BOOT_ONCE"|"BOOT_ALWAYS"|"NO_BOOT"
---@field write_protect string   "YES"|"NO"
---@field image_inserted string  "YES"|"NO"
---@field image_url string
---@field inserted boolean

---@class ilo.Properties
---@field memory_mb integer
---@field cpus integer      hardware threads
---@field cpu_arch string   "x86_64"
---@field local_gb integer  RIBCL: smallest logical drive - 1 (0 without RAID); Redfish: largest volume - 1

---@class ilo.EssentialProperties
---@field properties ilo.Properties
---@field macs table<string, string>   port name ("Port 1") -> MAC (proliantutils' rule: Redfish Health OK)
---@field nics ilo.NIC[]   every port with a MAC, whatever its state (Redfish; empty on RIBCL)

---@class ilo.NIC
---@field port string    "Port 1"
---@field mac string     lower case
---@field state string   Status.State ("Enabled", "UnavailableOffline", "" when null)
---@field health string  Status.Health ("OK", "" when null)

---@class ilo.Capabilities
---@field ilo_firmware_version? string
---@field rom_firmware_version? string
---@field server_model string
---@field secure_boot? string     "true" when the server has a SecureBoot resource (Redfish only)
---@field pci_gpu_devices string
---@field boot_mode_bios string   "true"|"false"
---@field boot_mode_uefi string   "true"|"false"

---@class ilo.Sensor
---@field name string
---@field location string
---@field status string
---@field reading string   value with unit, e.g. "21 Celsius"

---@class ilo.HealthData
---@field temperatures ilo.Sensor[]
---@field fans ilo.Sensor[]
---@field power_supplies ilo.Sensor[]
---@field power_reading string

---@class ilo.License
---@field type string
---@field key string
---@field install_date string
---@field class string

---@class ilo.LicenseInfo
---@field name string     the licence as the iLO names it ("iLO Advanced", "iLO 4 Advanced", "iLO Standard")
---@field tier "advanced"|"essentials"|"standard"  Ironic's get_ilo_license tiers
---@field ilo integer     the iLO generation (3, 4, 5, 6, 7); 0 when unknown

---@class ilo.Client
local Client = {}

---@return string model e.g. "ProLiant DL360 Gen10"
function Client:get_product_name() end

---@return "ON"|"OFF"
function Client:get_host_power_status() end

---Power ON or OFF (no-op when already there).
---@param power "ON"|"OFF"
function Client:set_host_power(power) end

---Press and hold the power button.
function Client:hold_pwr_btn() end

---Press the power button.
function Client:press_pwr_btn() end

---Hard reset (ForceRestart / RESET_SERVER).
function Client:reset_server() end

---@return string device "CDROM"|"HDD"|"NETWORK"|...|"Normal"
function Client:get_one_time_boot() end

---@param device "CDROM"|"HDD"|"NETWORK"|"Normal"
function Client:set_one_time_boot(device) end

---@return string device "CDROM"|"HDD"|"NETWORK"|"NONE"|...
function Client:get_persistent_boot_device() end

---@param devices string|string[]   e.g. {"CDROM"} (Redfish uses the first)
function Client:update_persistent_boot(devices) end

---@return "LEGACY"|"UEFI"|"UNKNOWN"
function Client:get_current_boot_mode() end

---@return "LEGACY"|"UEFI"|"UNKNOWN"
function Client:get_pending_boot_mode() end

---Boot mode applied at the next reset.
---@param mode "LEGACY"|"UEFI"
function Client:set_pending_boot_mode(mode) end

---@return "legacy bios only"|"uefi only"|"legacy bios and uefi"
function Client:get_supported_boot_mode() end

---@return boolean
function Client:get_secure_boot_mode() end

---UEFI only; raises not_supported on RIBCL-only servers or in legacy mode.
---@param enable boolean
function Client:set_secure_boot_mode(enable) end

function Client:reset_secure_boot_keys() end

function Client:clear_secure_boot_keys() end

---Insert an image (ejects what is there first).
---@param url string
---@param device? "FLOPPY"|"CDROM"   default "CDROM"
function Client:insert_virtual_media(url, device) end

---Eject; nothing happens when the slot is empty.
---@param device? "FLOPPY"|"CDROM"   default "CDROM"
function Client:eject_virtual_media(device) end

---@param device? "FLOPPY"|"CDROM"   default "FLOPPY"
---@return ilo.VMStatus
function Client:get_vm_status(device) end

---@param device? "FLOPPY"|"CDROM"   default "FLOPPY"
---@param boot_option? "BOOT_ONCE"|"BOOT_ALWAYS"|"NO_BOOT"|"CONNECT"|"DISCONNECT"   default "BOOT_ONCE"
---@param write_protect? "YES"|"NO"   default "YES"
function Client:set_vm_status(device, boot_option, write_protect) end

---Reset the iLO and wait until it answers again.
function Client:reset_ilo() end

function Client:reset_bios_to_default() end

---Change the login user's password (the new password is a run secret).
---@param new_password string
function Client:reset_ilo_credential(new_password) end

---@return ilo.EssentialProperties
function Client:get_essential_properties() end

---@return ilo.Capabilities
function Client:get_server_capabilities() end

---@return ilo.HealthData
function Client:get_host_health_data() end

---@return ilo.License[]
function Client:get_all_licenses() end

---The licence in force and the iLO generation, in one call (RIBCL
---GET_FW_VERSION, or the Redfish manager's Oem.Hpe.License). Virtual media
---needs the advanced tier on iLO 4 and older (essentials on entry servers).
---@return ilo.LicenseInfo
function Client:get_license() end

---@param key string
function Client:activate_license(key) end

return ilo
