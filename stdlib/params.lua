-- params: what the deploy ramdisk is told — the virtual floppy's
-- parameters.txt (ironic-ilo-behaviour §4.2, M ilo-virtual-media) — and the
-- image_info of standby.prepare_image (§5.2, §5.4).
--
--   local params = require("params")
--   local p = params.ramdisk(node)             -- ipa-api-url, ipa-agent-token, boot_method, BOOTIF, root_device
--   local info = params.image_info(node)       -- from instance_info (publishes a local image)
--
-- Quirk §12.4 (parameters.txt without trailing newline, unordered keys):
-- the floppy writer (bindings/image) writes the keys sorted, one per line;
-- IPA reads either form. Quirk §12.5 (urljoin needs a trailing slash on
-- http_url) is handled where URLs are built (bindings/vmedia), not here.
local agent = require("agent")

local M = {}

-- Percent-encodes a root device hint value as Ironic's urllib quote does.
local function quote(s)
  return (tostring(s):gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Flattens properties.root_device hints ({size=100, serial="X"}) to
--- "serial=X,size=100" (string values stripped and URL-quoted, keys sorted).
--- A string is passed through. Returns nil when there are no hints.
function M.root_device(hints)
  if hints == nil or hints == "" then return nil end
  if type(hints) == "string" then return hints end
  local keys = {}
  for k in pairs(hints) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = hints[k]
    if type(v) == "string" then v = v:match("^%s*(.-)%s*$") end
    out[#out + 1] = k .. "=" .. quote(v)
  end
  if #out == 0 then return nil end
  return table.concat(out, ",")
end

--- The floppy parameters of an agent ramdisk boot (Ironic M
--- ilo-virtual-media with a prebuilt deploy ISO): ipa-api-url, a fresh
--- pre-generated ipa-agent-token (registered with the callback API),
--- boot_method=vmedia, BOOTIF and root_device when known.
---
--- Quirk §12.3 (K/L write BOOTIF=None without a port): BOOTIF is written
--- only when the node has a port; lightsout has no Neutron VIFs, so the
--- first port is the boot interface.
function M.ramdisk(n, extra)
  n = n or node
  local p = {
    ["ipa-api-url"] = agent.callback_url(),
    ["ipa-agent-token"] = agent.token(n.uuid),
    boot_method = "vmedia",
  }
  if n.ports[1] then
    p.BOOTIF = n.ports[1].address
  end
  p.root_device = M.root_device(n.properties.root_device)
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- The last path segment of an image reference (Ironic's image id).
local function image_id(ref)
  local s = tostring(ref):gsub("[?#].*$", ""):gsub("/+$", "")
  return s:match("([^/:]+)$") or s
end

--- image_info for standby.prepare_image, from instance_info: image_source
--- (any vmedia reference: path, http(s) URL, swift:, glance://; a local file
--- is published as <node uuid>-<name> and removed with the node's media),
--- image_checksum (md5) or image_os_hash_algo + image_os_hash_value,
--- image_disk_format (default raw), image_container_format (default bare).
function M.image_info(n)
  n = n or node
  local src, id, checksum, algo, value = M.check_image(n)
  local url = require("vmedia").resolve(src, { name = n.uuid .. "-" .. (id:gsub("[^%w%._%-]", "_")) })
  local ii = n.instance_info
  local info = {
    id = id,
    urls = { url },
    disk_format = ii.image_disk_format or "raw",
    container_format = ii.image_container_format or "bare",
    stream_raw_images = true,
    node_uuid = n.uuid,
  }
  if checksum and checksum ~= "" then
    -- "algo:value" selects an algorithm, as Ironic's image_checksum does
    local a, v = tostring(checksum):match("^(%w+):(%x+)$")
    if a then algo, value = a, v else info.checksum = checksum end
  end
  if algo and algo ~= "" and value and value ~= "" then
    info.os_hash_algo, info.os_hash_value = algo, value
  end
  return info
end

--- Reports whether the node's image is a partition image: as Ironic tells
--- them apart, instance_info.kernel and instance_info.ramdisk are both set.
function M.partition_image(n)
  local ii = (n or node).instance_info
  local function set(v) return v ~= nil and v ~= "" end
  return set(ii.kernel) and set(ii.ramdisk)
end

--- Refuses a partition image (M.partition_image) for a driver whose agent
--- writes whole disks only (agent_ilo, pxe_ilo): only iscsi_ilo partitions
--- the disk.
function M.check_whole_disk(n)
  n = n or node
  if n.driver ~= "iscsi_ilo" and M.partition_image(n) then
    run.fail("not_supported", ("node %s: instance_info.kernel and instance_info.ramdisk make this a partition image,"
      .. " which %s cannot deploy (its agent writes whole-disk images): set the node's driver to iscsi_ilo"
      .. " (lightsout partitions the disk), or unset instance_info.kernel and ramdisk to deploy a whole-disk image")
      :format(n.name, n.driver))
  end
end

--- Validates the image fields of instance_info without publishing anything;
--- returns image_source, the image id, checksum, hash algorithm and value.
function M.check_image(n)
  n = n or node
  local ii = n.instance_info
  local src = ii.image_source
  if src == nil or src == "" then
    run.fail("invalid_argument", "instance_info.image_source is not set: pass --image-source REF to `lightsout deploy`")
  end
  local algo, value = ii.image_os_hash_algo, ii.image_os_hash_value
  local checksum = ii.image_checksum
  if (checksum == nil or checksum == "") and (algo == nil or algo == "" or value == nil or value == "") then
    run.fail("invalid_argument", "instance_info.image_checksum (or image_os_hash_algo and image_os_hash_value)"
      .. " is not set: pass --image-checksum to `lightsout deploy`")
  end
  return src, image_id(src), checksum, algo, value
end

return M
