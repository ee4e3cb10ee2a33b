package runtime

import (
	"context"
	"fmt"
	"io"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// AgentCleanSteps are the in-band (interface deploy) clean steps of
// ironic-python-agent's generic hardware manager: the steps a manual
// cleaning may request before the ramdisk reports its own. A ramdisk with
// other steps declares them in site_steps.lua with inband = true.
var AgentCleanSteps = []string{
	"erase_devices", "erase_devices_metadata", "erase_devices_express", "erase_pstore",
	"burnin_cpu", "burnin_disk", "burnin_memory", "burnin_network",
}

// cleanStepsProbe lists steps.all() as "interface.step" strings after the
// clean playbook (bundled or site, which may register steps) is required
// with every binding replaced by an empty table, so nothing is contacted.
const cleanStepsProbe = `
local agent_steps = ...
local steps = require("steps")
pcall(require, "clean")
local out = {}
for _, d in ipairs(steps.all(agent_steps)) do
  out[#out + 1] = (d.interface or "management") .. "." .. d.step
end
return out
`

// CleanSteps returns every clean step a manual cleaning may name, as
// "interface.step", sorted: the bundled iLO steps, the agent's generic
// steps, a site's site_steps.lua and steps a site clean.lua registers. No
// run is recorded and no binding is opened. An error in site_steps.lua is
// returned.
func (e *Engine) CleanSteps(ctx context.Context) ([]string, error) {
	r := &Run{eng: e, ctx: ctx, script: &Script{Name: "clean-steps"}, params: map[string]string{"mode": "manual"},
		stdout: io.Discard, probe: true}
	L := e.newState(r)
	defer L.Close()
	for _, m := range e.mods {
		L.PreloadModule(m.Name(), func(L *lua.LState) int {
			L.Push(L.NewTable())
			return 1
		})
	}
	fn, err := L.LoadString(cleanStepsProbe)
	if err != nil {
		return nil, err
	}
	agent := L.NewTable()
	for _, s := range AgentCleanSteps {
		t := L.NewTable()
		t.RawSetString("step", lua.LString(s))
		t.RawSetString("interface", lua.LString("deploy"))
		t.RawSetString("inband", lua.LTrue)
		agent.Append(t)
	}
	L.Push(fn)
	L.Push(agent)
	if err := L.PCall(1, 1, nil); err != nil {
		return nil, fmt.Errorf("listing the clean steps: %w", err)
	}
	list, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("listing the clean steps: got %s", L.Get(-1).Type())
	}
	var out []string
	list.ForEach(func(_, v lua.LValue) { out = append(out, v.String()) })
	sort.Strings(out)
	return out, nil
}
