---@meta ipmi
-- LuaLS annotations for the Go module `ipmi` (bindings/ipmi): an IPMI v2.0
-- RMCP+ (lanplus) client for the node's BMC.
--
--   local b = require("ipmi").connect(node)   -- or connect() for the run's node
--   if b:power_status() == "off" then b:power_on() end
--   b:set_boot_device("pxe", {efi = true})     -- next boot only
--   for _, s in ipairs(b:sensors()) do print(s.name, s.reading, s.unit) end
--   local cap = b:nic_capacity()               -- "1Gb", "10Gb" or nil
--
-- driver_info keys as Ironic: ipmi_address, ipmi_port (623), ipmi_username,
-- ipmi_password (secret), ipmi_priv_level (ADMINISTRATOR), ipmi_cipher_suite
-- (17; 3 for older BMCs), ipmi_bridging (must be off), ipmi_retry_timeout
-- (seconds, default [ipmi] retry_timeout or 60). An iLO node without them
-- reuses ilo_address, ilo_username and ilo_password.
--
-- Every method opens a session, runs one command and closes it; it is
-- bounded by the run's context, retried on timeouts and busy answers until
-- the retry timeout, and recorded as a run event "ipmi.<method>" (never the
-- password; b:power(action) is recorded as "ipmi.power_<action>"). Errors
-- are raised as ipmi.Error tables naming the function called: use pcall and
-- err.code. A bad argument or option raises invalid_argument before the BMC
-- is contacted.

---@class ipmi
local ipmi = {}

---@class ipmi.Error
---@field code "login_failed"|"timeout"|"ipmi_error"|"invalid_argument"|"cancelled"|"forbidden"|"not_supported"
---@field message string     for ipmi_error: the completion code and its meaning
---@field operation string   the function called, e.g. "ipmi.power_on", "ipmi.connect"

---@class ipmi.ConnectOptions
---@field address string
---@field username string
---@field password string
---@field port? integer            UDP port (default 623)
---@field priv_level? "ADMINISTRATOR"|"OPERATOR"|"USER"
---@field cipher_suite? integer    17 (default) or 3
---@field retry_timeout? integer   seconds

---Connects to a BMC: the run's node (nil, its table, UUID or name; any other
---node is refused with "forbidden"), or a table of credentials. It does not
---contact the BMC.
---@param node? table|string|ipmi.ConnectOptions
---@param opts? {retry_timeout?: number}  caps the retry timeout (seconds, at most 3600; fractions round up): a shorter ipmi_retry_timeout or [ipmi] retry_timeout still wins
---@return ipmi.Client
function ipmi.connect(node, opts) end

---@class ipmi.ChassisStatus
---@field power "on"|"off"
---@field power_restore_policy string
---@field power_fault boolean
---@field power_overload boolean
---@field interlock boolean
---@field last_power_on_by_command boolean
---@field intrusion boolean
---@field fan_fault boolean
---@field drive_fault boolean
---@field front_panel_lockout boolean

---@class ipmi.BootDevice
---@field device "none"|"pxe"|"disk"|"cdrom"|"bios"|"safe"|"diag"|"floppy"
---@field persistent boolean
---@field efi boolean
---@field valid boolean

---@class ipmi.Sensor
---@field number integer
---@field name string
---@field type string          e.g. "Temperature", "Fan", "Current"
---@field reading number
---@field available boolean    false when the sensor gave no reading (then reading is 0)
---@field unit string          e.g. "degrees C", "RPM", "Watts"
---@field status string        ok, lnc, lcr, lnr, unc, ucr, unr or N/A
---@field thresholds? table<string, number>  lnr, lcr, lnc, unc, ucr, unr

---@class ipmi.FRUArea
---@field manufacturer? string
---@field name? string
---@field part_number? string
---@field version? string
---@field serial? string
---@field asset_tag? string
---@field extra? string[]

---@class ipmi.FRU
---@field id integer
---@field name string
---@field board ipmi.FRUArea
---@field product ipmi.FRUArea
---@field absent? boolean

---@class ipmi.SELEntry
---@field id integer
---@field id_hex string
---@field record_type integer
---@field time string          RFC 3339
---@field sensor_type string
---@field sensor_number integer
---@field event_type integer
---@field asserted boolean
---@field event string         e.g. "Power off/down", "Initiated by power up"
---@field data string          event data 1-3 in hex

---@class ipmi.BMCInfo
---@field device_id integer
---@field device_revision integer
---@field firmware_revision string
---@field ipmi_version string
---@field manufacturer_id integer
---@field product_id integer
---@field sel boolean
---@field sdr boolean
---@field fru boolean
---@field chassis boolean

---An ipmi.client userdata (tostring: "ipmi.client(host:port)"); call its
---methods with a colon.
---@class ipmi.Client
local Client = {}

---@return "on"|"off"
function Client:power_status() end

---Chassis control: "on", "off", "cycle", "reset", "soft" (ACPI shutdown) or "diag" (NMI).
---@param action "on"|"off"|"cycle"|"reset"|"soft"|"diag"
function Client:power(action) end

function Client:power_on() end
function Client:power_off() end
function Client:power_cycle() end
function Client:power_reset() end
---ACPI soft shutdown.
function Client:power_soft() end

---@return ipmi.ChassisStatus
function Client:chassis_status() end

---Sets the boot device for the next boot (or every boot with persistent).
---@param device "pxe"|"disk"|"cdrom"|"bios"|"safe"|"diag"|"floppy"|"none"
---@param opts? {persistent?: boolean, efi?: boolean}
function Client:set_boot_device(device, opts) end

---@return ipmi.BootDevice
function Client:get_boot_device() end

---Walks the SDR repository and reads every sensor.
---@return ipmi.Sensor[]
function Client:sensors() end

---@return ipmi.FRU[]
function Client:fru() end

---The NIC capacity as proliantutils derives it from FRU data ("1Gb",
---"10Gb"), or nil when no FRU is a network adapter.
---@return string|nil
function Client:nic_capacity() end

---@return ipmi.SELEntry[]
function Client:sel() end

function Client:clear_sel() end

---@return ipmi.BMCInfo
function Client:bmc_info() end
