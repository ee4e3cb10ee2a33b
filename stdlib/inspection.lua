-- inspection: the rules of Ironic's iLO inspection (ironic-ilo-behaviour §7):
-- which essential properties must be there and how capabilities merge into
-- properties.capabilities ("k1:v1,k2:v2").
local M = {}

--- The essential properties copied into node.properties.
M.ESSENTIAL = { "memory_mb", "local_gb", "cpus", "cpu_arch" }

--- Capability keys kept from get_server_capabilities (Ironic M's list);
--- boot_mode_bios / boot_mode_uefi (what the server supports) and
--- ilo_license_type (advanced, essentials, standard: the iLO licence) are
--- lightsout additions, and every key starting with gpu_ is kept as well.
M.KNOWN_CAPABILITIES = {}
for _, k in ipairs({ "secure_boot", "rom_firmware_version", "ilo_firmware_version", "server_model",
  "pci_gpu_devices", "sriov_enabled", "nic_capacity", "has_ssd", "has_rotational",
  "rotational_drive_4800_rpm", "rotational_drive_5400_rpm", "rotational_drive_7200_rpm",
  "rotational_drive_10000_rpm", "rotational_drive_15000_rpm", "logical_raid_level_0",
  "logical_raid_level_1", "logical_raid_level_2", "logical_raid_level_10", "logical_raid_level_5",
  "logical_raid_level_6", "logical_raid_level_50", "logical_raid_level_60", "cpu_vt",
  "hardware_supports_raid", "has_nvme_ssd", "nvdimm_n", "logical_nvdimm_n", "persistent_memory",
  "overall_security_status", "security_override_switch", "last_firmware_scan_result",
  "boot_mode_bios", "boot_mode_uefi", "ilo_license_type" }) do
  M.KNOWN_CAPABILITIES[k] = true
end

--- Keys of t, sorted.
function M.sorted_keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- Checks a get_essential_properties answer (Ironic's messages).
function M.check_essential(n, ep)
  if type(ep) ~= "table" or type(ep.properties) ~= "table" then
    run.fail("error", ("The node %s didn't return 'properties' as the key with inspection."):format(n.name))
  end
  local missing = {}
  for _, k in ipairs(M.ESSENTIAL) do
    if ep.properties[k] == nil then missing[#missing + 1] = k end
  end
  if #missing > 0 then
    run.fail("error", ("Server didn't return the key(s): %s"):format(table.concat(missing, ", ")))
  end
  if type(ep.macs) ~= "table" or next(ep.macs) == nil then
    run.fail("error", ("Node %s didn't return MACs in dictionary format."):format(n.name))
  end
end

--- Parses a capabilities string; malformed elements are dropped with a
--- warning (Ironic ignores them when reading).
function M.parse(s)
  local keys, vals = {}, {}
  for part in tostring(s or ""):gmatch("[^,]+") do
    local k, v = part:match("^%s*([^:%s][^:]*):(.+)$")
    if k and v and not v:find(":") then
      k, v = k:match("^(.-)%s*$"), v:match("^%s*(.-)%s*$")
      if vals[k] == nil then keys[#keys + 1] = k end
      vals[k] = v
    elseif part:match("%S") then
      run.log("warn", ("Ignoring malformed capability '%s'. Format should be 'key:val'."):format(part))
    end
  end
  return keys, vals
end

--- Merges inspected capabilities (a table) into the capabilities string:
--- existing keys are updated in place, new known keys appended (sorted),
--- other keys preserved.
function M.merge_capabilities(existing, caps)
  local keys, vals = M.parse(existing)
  for _, k in ipairs(M.sorted_keys(caps)) do
    if M.KNOWN_CAPABILITIES[k] or k:sub(1, 4) == "gpu_" then
      local v = tostring(caps[k])
      if v ~= "" then
        if vals[k] == nil then keys[#keys + 1] = k end
        vals[k] = (v:gsub("[,:]", " "))
      end
    end
  end
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. ":" .. vals[k] end
  return table.concat(out, ",")
end

return M
