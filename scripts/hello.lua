-- hello.lua: the smallest useful playbook. It shows what every script sees:
-- the node, its parsed capabilities, job parameters, steps and logs.
--   lightsout run hello --node NAME [--param greeting=Hi]

local greeting = params.greeting or "hello"

run.step("describe node", function()
  if node == nil then
    run.log("info", greeting .. " from a node-less run")
    return
  end
  run.log("info", greeting .. " " .. node.name, {
    driver = node.driver,
    provision_state = node.provision_state,
    ilo_address = node.driver_info.ilo_address,
  })
  for k, v in pairs(node.capabilities) do
    run.log("debug", "capability " .. k .. "=" .. tostring(v))
  end
end)

run.step("count ports", function()
  local n = node and #node.ports or 0
  run.log("info", ("%d port(s)"):format(n))
  return n
end)
