package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/jsonstrict"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
)

// The playbooks behind the verbs. A site script of the same name replaces
// the bundled one (and can wrap it with require("bundled.<name>")).
const (
	ScriptInspect  = "inspect"
	ScriptDeploy   = "deploy"
	ScriptTeardown = "teardown"
	ScriptClean    = "clean"
	ScriptBootISO  = "boot_into_iso"
	// ScriptNodePower runs a power action (params.action).
	ScriptNodePower = "node_power"
	// ScriptNodeBootDevice reads or sets the boot device.
	ScriptNodeBootDevice = "node_boot_device"
	// ScriptNodeBootMode sets the pending boot mode.
	ScriptNodeBootMode = "node_boot_mode"
	// ScriptNodeSecureBoot turns secure boot on or off.
	ScriptNodeSecureBoot = "node_secure_boot"
	// ScriptNodeValidate checks a node per interface, changing nothing.
	ScriptNodeValidate  = "node_validate"
	internalManualClean = "manual_clean_steps"
)

// DeployOptions are what `lightsout deploy` sets in instance_info before
// the deploy playbook runs. Empty fields keep the node's current values.
type DeployOptions struct {
	// ImageSource is any image reference vmedia resolves: a local path, an
	// http(s) URL, swift:container/object, glance://UUID.
	ImageSource string
	// ImageChecksum is an md5 hex digest, or "<algo>:<hex>" (sha256, sha512).
	ImageChecksum string
	// ImageDiskFormat is raw (default) or qcow2.
	ImageDiskFormat string
	// Capabilities go to instance_info.capabilities (boot_mode, secure_boot).
	Capabilities map[string]string
}

const hexDigits = "0123456789abcdefABCDEF"

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(hexDigits, r) {
			return false
		}
	}
	return s != ""
}

// checkChecksum validates --image-checksum.
func checkChecksum(c string) error {
	algo, val, ok := strings.Cut(c, ":")
	if !ok {
		algo, val = "md5", c
	}
	want := map[string]int{"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}[strings.ToLower(algo)]
	if want == 0 {
		return fmt.Errorf("--image-checksum %q: algorithm %q is not md5, sha1, sha256 or sha512 (use a bare md5 or ALGO:HEX)", c, algo)
	}
	if len(val) != want || !isHex(val) {
		return fmt.Errorf("--image-checksum %q: a %s digest is %d hex digits", c, strings.ToLower(algo), want)
	}
	return nil
}

// PrepareDeploy validates o and stores it in the node's instance_info, so
// the deploy playbook (and a later rebuild) finds it there. The node must
// be available, deploy failed or active (rebuild).
func (a *App) PrepareDeploy(ctx context.Context, ref string, o DeployOptions) (*store.Node, error) {
	if o.ImageChecksum != "" {
		if err := checkChecksum(o.ImageChecksum); err != nil {
			return nil, &ValidationError{err}
		}
	}
	switch strings.ToLower(o.ImageDiskFormat) {
	case "", "raw", "qcow2":
	default:
		return nil, invalid("--image-disk-format %q: use raw or qcow2", o.ImageDiskFormat)
	}
	for k, v := range o.Capabilities {
		switch k {
		case "boot_mode":
			if v != "bios" && v != "uefi" {
				return nil, invalid("capability boot_mode=%q: use bios or uefi", v)
			}
		case "secure_boot":
			if v != "true" && v != "false" {
				return nil, invalid("capability secure_boot=%q: use true or false", v)
			}
		}
	}
	n, err := a.Store.UpdateNode(ctx, ref, func(n *store.Node) error {
		switch n.ProvisionState {
		case states.Available, states.DeployFailed, states.Active:
		default:
			return invalid("node %s is %s: deploy needs an available node (run `lightsout node provide %s` first)",
				n.Name, n.ProvisionState, n.Name)
		}
		if n.Reservation != 0 {
			return invalid("node %s is locked by run %d", n.Name, n.Reservation)
		}
		if o.ImageSource != "" {
			if o.ImageSource != n.InstanceInfo["image_source"] {
				// a new image: its old checksum must not be reused
				delete(n.InstanceInfo, "image_checksum")
				delete(n.InstanceInfo, "image_os_hash_algo")
				delete(n.InstanceInfo, "image_os_hash_value")
			}
			n.InstanceInfo["image_source"] = o.ImageSource
		}
		if o.ImageChecksum != "" {
			n.InstanceInfo["image_checksum"] = o.ImageChecksum
		}
		if o.ImageDiskFormat != "" {
			n.InstanceInfo["image_disk_format"] = strings.ToLower(o.ImageDiskFormat)
		}
		if len(o.Capabilities) > 0 {
			caps := map[string]any{}
			if old, ok := n.InstanceInfo["capabilities"].(map[string]any); ok {
				for k, v := range old {
					caps[k] = v
				}
			}
			for k, v := range o.Capabilities {
				caps[k] = v
			}
			n.InstanceInfo["capabilities"] = caps
		}
		if n.InstanceInfo["image_source"] == nil {
			return invalid("node %s has no instance_info.image_source: pass --image-source REF", n.Name)
		}
		if n.InstanceInfo["image_checksum"] == nil && n.InstanceInfo["image_os_hash_value"] == nil {
			return invalid("node %s has no image checksum: pass --image-checksum MD5 or ALGO:HEX", n.Name)
		}
		return nil
	})
	if err != nil {
		return nil, asValidation(err)
	}
	return n, nil
}

// CleanStep is one step of a manual cleaning request (Ironic's shape).
type CleanStep struct {
	Interface string         `json:"interface"`
	Step      string         `json:"step"`
	Args      map[string]any `json:"args,omitempty"`
}

// ParseCleanSteps parses `--steps JSON`: a list of {"interface", "step",
// "args"} objects, as Ironic's manual cleaning takes.
func ParseCleanSteps(js string) ([]CleanStep, error) {
	var steps []CleanStep
	if err := jsonstrict.Check([]byte(js)); err != nil {
		return nil, invalid(`--steps: %v; expected a JSON list such as [{"interface": "deploy", "step": "erase_devices"}]`, err)
	}
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&steps); err != nil {
		return nil, invalid(`--steps: %v; expected a JSON list such as [{"interface": "deploy", "step": "erase_devices"}]`, err)
	}
	if len(steps) == 0 {
		return nil, invalid(`--steps: the list is empty; name at least one step, e.g. [{"interface": "deploy", "step": "erase_devices"}]`)
	}
	for i, s := range steps {
		switch s.Interface {
		case "power", "management", "deploy", "bios", "raid":
		default:
			return nil, invalid("--steps[%d].interface %q: use power, management, deploy, bios or raid", i, s.Interface)
		}
		if s.Step == "" {
			return nil, invalid("--steps[%d].step is empty: name the step, e.g. erase_devices", i)
		}
	}
	return steps, nil
}

// CheckCleanSteps refuses a step that is not known (runtime.Engine.CleanSteps:
// the bundled iLO steps, the agent's, site_steps.lua and steps a site
// clean.lua registers), naming it and listing the known ones.
func (a *App) CheckCleanSteps(ctx context.Context, steps []CleanStep) error {
	known, err := a.Engine.CleanSteps(ctx)
	if err != nil {
		return &ValidationError{fmt.Errorf("clean steps cannot be checked: %w (fix site_steps.lua or the site clean.lua)", err)}
	}
	set := make(map[string]bool, len(known))
	for _, k := range known {
		set[k] = true
	}
	for i, s := range steps {
		if !set[s.Interface+"."+s.Step] {
			return invalid("clean step #%d %s.%s is not known; known steps: %s (a site adds steps in site_steps.lua, see docs/playbooks.md)",
				i+1, s.Interface, s.Step, strings.Join(known, ", "))
		}
	}
	return nil
}

// PrepareClean records a manual cleaning request in the node's
// driver_internal_info.manual_clean_steps (the clean playbook reads and
// clears it). The node must be manageable.
func (a *App) PrepareClean(ctx context.Context, ref string, steps []CleanStep) (*store.Node, error) {
	if err := a.CheckCleanSteps(ctx, steps); err != nil {
		return nil, err
	}
	list := make([]any, len(steps))
	for i, s := range steps {
		m := map[string]any{"interface": s.Interface, "step": s.Step}
		if len(s.Args) > 0 {
			m["args"] = s.Args
		}
		list[i] = m
	}
	n, err := a.Store.UpdateNode(ctx, ref, func(n *store.Node) error {
		if n.ProvisionState != states.Manageable {
			return invalid("node %s is %s: manual cleaning needs a manageable node (`lightsout node manage %s`)",
				n.Name, n.ProvisionState, n.Name)
		}
		n.DriverInternalInfo[internalManualClean] = list
		return nil
	})
	return n, asValidation(err)
}

// RunFailedError reports a playbook run that did not succeed.
type RunFailedError struct{ Result runtime.Result }

func (e *RunFailedError) Error() string {
	msg := e.Result.Error
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("run %d (%s on %s) %s: %s (see `lightsout runs show %d`)",
		e.Result.RunID, e.Result.Script, e.Result.Node, e.Result.Status, msg, e.Result.RunID)
}

// RunPlaybook runs one playbook on one node and turns a failed run into a
// *RunFailedError.
func (a *App) RunPlaybook(ctx context.Context, script, ref string, params map[string]string) (runtime.Result, error) {
	res, err := a.Engine.Run(ctx, runtime.RunRequest{Script: script, Node: ref, Params: params})
	if err != nil && res.RunID == 0 {
		var ue *runtime.UsageError
		if errors.As(err, &ue) {
			return res, &ValidationError{err}
		}
		return res, err
	}
	if !res.Succeeded() {
		return res, &RunFailedError{Result: res}
	}
	return res, err
}

// anyState lists the playbooks that act on a node in any provision state
// and in maintenance, as Ironic's power and management calls do.
var anyState = map[string]bool{ScriptNodePower: true, ScriptNodeBootDevice: true, ScriptNodeBootMode: true,
	ScriptNodeSecureBoot: true, ScriptNodeValidate: true}

// maintenanceOK lists the playbooks Ironic allows on a node in maintenance
// (boot_into_iso: "manageable state or 'maintenance' mode"); the other
// provisioning verbs refuse such a node.
var maintenanceOK = map[string]bool{ScriptBootISO: true}

// verbStates lists the provision states each verb starts from (boot-iso
// also accepts any node in maintenance).
var verbStates = map[string][]string{
	ScriptInspect:  {states.Manageable, states.InspectFailed},
	ScriptDeploy:   {states.Available, states.DeployFailed, states.Active},
	ScriptTeardown: {states.Active, states.DeployFailed, states.WaitCallBack, states.Error},
	ScriptClean:    {states.Manageable},
	ScriptBootISO:  {states.Manageable},
}

// NodesFor resolves the nodes a verb acts on: the named ones (each must be
// in a state the verb starts from), or with all every node in such a state
// (none is not an error: the caller reports it).
func (a *App) NodesFor(ctx context.Context, script string, names []string, all bool) ([]string, error) {
	allowed := verbStates[script]
	ok := func(n *store.Node) bool {
		if anyState[script] || (maintenanceOK[script] && n.Maintenance) {
			return true
		}
		if n.Maintenance {
			return false
		}
		for _, s := range allowed {
			if n.ProvisionState == s {
				return true
			}
		}
		return false
	}
	if all {
		ns, err := a.Store.ListNodes(ctx)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, n := range ns {
			if ok(n) && n.Reservation == 0 {
				out = append(out, n.Name)
			}
		}
		return out, nil
	}
	for _, name := range names {
		n, err := a.Store.GetNode(ctx, name)
		if err != nil {
			return nil, &ValidationError{err}
		}
		if n.Maintenance && !ok(n) {
			return nil, invalid("node %s is in maintenance (%s): %s refuses it; `lightsout node maintenance unset %s` first",
				n.Name, orNone(n.MaintenanceReason), verbName(script), n.Name)
		}
		if !ok(n) {
			return nil, invalid("node %s is %s: %s starts from %s", n.Name, n.ProvisionState, verbName(script),
				strings.Join(allowed, ", "))
		}
	}
	return names, nil
}

// CheckMaintenance refuses, for a provisioning playbook (inspect, deploy,
// teardown, clean), a node in maintenance — also when the playbook is run
// by name (`lightsout run deploy --node N`) rather than by its verb.
func (a *App) CheckMaintenance(ctx context.Context, script string, nodes []string) error {
	if _, ok := verbStates[script]; !ok || maintenanceOK[script] {
		return nil
	}
	for _, name := range nodes {
		n, err := a.Store.GetNode(ctx, name)
		if err != nil {
			return &ValidationError{err}
		}
		if n.Maintenance {
			return invalid("node %s is in maintenance (%s): %s refuses it; `lightsout node maintenance unset %s` first",
				n.Name, orNone(n.MaintenanceReason), verbName(script), n.Name)
		}
	}
	return nil
}

// SkipMaintenance drops, for a provisioning playbook, the nodes in
// maintenance (`lightsout run SCRIPT --all`, as the verbs' --all).
func (a *App) SkipMaintenance(ctx context.Context, script string, nodes []string) ([]string, error) {
	if _, ok := verbStates[script]; !ok || maintenanceOK[script] {
		return nodes, nil
	}
	var out []string
	for _, name := range nodes {
		n, err := a.Store.GetNode(ctx, name)
		if err != nil {
			return nil, err
		}
		if !n.Maintenance {
			out = append(out, name)
		}
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// verbName is the CLI verb of a playbook.
func verbName(script string) string {
	switch script {
	case ScriptTeardown:
		return "undeploy"
	case ScriptBootISO:
		return "boot-iso"
	}
	return script
}
