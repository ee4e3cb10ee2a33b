-- util: small table, string and configuration helpers shared by the
-- bundled playbooks.
local M = {}

--- Returns a shallow copy of t.
function M.copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- Returns the keys of t, sorted.
function M.keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

--- Reports whether list contains v.
function M.contains(list, v)
  for _, x in ipairs(list or {}) do
    if x == v then return true end
  end
  return false
end

--- The number in config[section][key] (seconds, counts), or default when it
--- is unset or not a number: util.config_number("conductor", "deploy_callback_timeout", 1800).
function M.config_number(section, key, default)
  local v = tonumber(config[section] and config[section][key])
  if v == nil then return default end
  return v
end

return M
