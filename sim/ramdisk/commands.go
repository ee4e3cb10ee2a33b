package ramdisk

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Command statuses (IPA's AgentCommandStatus).
const (
	statusRunning              = "RUNNING"
	statusSucceeded            = "SUCCEEDED"
	statusFailed               = "FAILED"
	statusCleanVersionMismatch = "CLEAN_VERSION_MISMATCH"
)

// restError is IPA's RESTError serialisation.
type restError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

func (e *restError) Error() string { return e.Message + ": " + e.Details }

func execError(format string, args ...any) *restError {
	return &restError{Type: "CommandExecutionError", Code: 500, Message: "Command execution failed", Details: fmt.Sprintf(format, args...)}
}

// command is one entry of the agent's command list.
type command struct {
	id   string
	name string // short name as IPA reports it, e.g. "prepare_image"
	done chan struct{}

	mu     sync.Mutex
	status string
	result any
	err    *restError
}

func (c *command) finish(result any, err *restError, status string) {
	c.mu.Lock()
	c.result, c.err = result, err
	switch {
	case status != "":
		c.status = status
	case err != nil:
		c.status = statusFailed
	default:
		c.status = statusSucceeded
	}
	c.mu.Unlock()
	close(c.done)
}

func (c *command) serialize() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]any{"id": c.id, "command_name": c.name, "command_status": c.status,
		"command_result": c.result, "command_error": nil}
	if c.err != nil {
		m["command_error"] = c.err
	}
	return m
}

// handlerFunc runs a command; a string result becomes {"result": ...}.
type handlerFunc func(ctx context.Context, params map[string]any) (any, *restError)

type commandSpec struct {
	async    bool
	validate func(params map[string]any) error
	run      handlerFunc
}

func (a *Agent) commands() map[string]commandSpec {
	return map[string]commandSpec{
		"standby.prepare_image":       {async: true, validate: validateImageInfo, run: a.prepareImage},
		"standby.power_off":           {async: true, run: a.powerOff},
		"standby.sync":                {run: func(context.Context, map[string]any) (any, *restError) { return "sync completed", nil }},
		"standby.get_partition_uuids": {run: a.getPartitionUUIDs},
		"image.install_bootloader":    {async: true, run: a.installBootloader},
		"clean.get_clean_steps":       {run: a.getCleanSteps},
		"clean.execute_clean_step":    {async: true, run: a.executeCleanStep},
		"deploy.get_deploy_steps":     {run: a.getDeploySteps},
		"deploy.execute_deploy_step":  {async: true, run: a.executeDeployStep},
		"iscsi.start_iscsi_target":    {run: a.startISCSITarget},
	}
}

// execute starts a command the way IPA's ExecuteCommandMixin does. It
// returns an HTTP status and message when the command is refused.
func (a *Agent) execute(name string, params map[string]any) (*command, int, string) {
	ext, short, ok := strings.Cut(name, ".")
	if !ok || ext == "" || short == "" {
		return nil, http.StatusBadRequest, "Command name must be of the form <extension>.<name>"
	}
	spec, known := a.commands()[name]
	if !known {
		for full := range a.commands() {
			if strings.HasPrefix(full, ext+".") {
				return nil, http.StatusBadRequest, fmt.Sprintf("Unknown command: %s", short)
			}
		}
		return nil, http.StatusNotFound, fmt.Sprintf("Extension with id %s not found.", ext)
	}
	unexpected := ""
	if a.cfg.Failures.UnmodifiedIPA {
		unexpected = ipaUnexpected(name, params)
		if unexpected != "" && !spec.async {
			// IPA's execute_command records the TypeError as the result's
			// command_error, which its JSON encoder cannot serialise.
			return nil, http.StatusInternalServerError, "Object of type TypeError is not JSON serializable"
		}
	}
	if spec.validate != nil {
		if err := spec.validate(params); err != nil {
			return nil, http.StatusBadRequest, "Invalid command parameters: " + err.Error()
		}
	}
	if name != "iscsi.start_iscsi_target" {
		a.stopISCSITarget() // the deploy moved on: nothing stays exported
	}
	a.mu.Lock()
	if n := len(a.cmds); n > 0 {
		last := a.cmds[n-1]
		select {
		case <-last.done:
		default:
			a.mu.Unlock()
			return nil, http.StatusConflict, "Agent is busy: a previous asynchronous command is still running"
		}
	}
	c := &command{id: newID(), name: short, status: statusRunning, done: make(chan struct{})}
	a.cmds = append(a.cmds, c)
	a.mu.Unlock()

	fail := a.injectedFailure(name)
	run := func(ctx context.Context) {
		if unexpected != "" { // AsyncCommandResult.run: CommandExecutionError(str(TypeError))
			c.finish(nil, execError("%s() got an unexpected keyword argument '%s'", short, unexpected), "")
			return
		}
		if fail {
			err := execError("injected failure of %s", name)
			a.log.Error("command failed", "command", name, "error", err.Error())
			c.finish(nil, err, "")
			return
		}
		res, err := spec.run(ctx, params)
		if err != nil {
			// as IPA, a failed command is in the agent's log (the console)
			a.log.Error("command failed", "command", name, "error", err.Error())
		}
		if s, ok := res.(string); ok {
			if spec.async {
				s = short + ": " + s
			}
			res = map[string]any{"result": s}
		}
		if err != nil && err.Type == "CleanVersionMismatch" {
			c.finish(nil, err, statusCleanVersionMismatch)
			return
		}
		c.finish(res, err, "")
	}
	if !spec.async {
		run(a.ctx)
		return c, 0, ""
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		run(a.ctx)
		a.forceHeartbeat()
	}()
	return c, 0, ""
}

// ipaUnexpected returns the first parameter (sorted) of a call to name that
// unmodified ironic-python-agent 7.1.0 does not take ("" when none), from
// its ironic_python_agent/extensions/{iscsi,image,standby}.py.
func ipaUnexpected(name string, params map[string]any) string {
	var known []string
	switch name {
	case "iscsi.start_iscsi_target":
		known = []string{"iqn", "wipe_disk_metadata", "portal_port"}
	case "image.install_bootloader":
		known = []string{"root_uuid", "efi_system_part_uuid", "prep_boot_part_uuid", "target_boot_mode", "ignore_bootloader_failure"}
	case "standby.prepare_image":
		known = []string{"image_info", "configdrive"}
	case "standby.get_partition_uuids", "standby.power_off", "standby.sync":
	default:
		return "" // **kwargs, or not a command IPA 7.1.0 checks here
	}
	var extra []string
	for k := range params {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return ""
	}
	slices.Sort(extra)
	return extra[0]
}

func (a *Agent) injectedFailure(name string) bool {
	_, short, _ := strings.Cut(name, ".")
	return slices.Contains(a.cfg.Failures.FailCommands, name) || slices.Contains(a.cfg.Failures.FailCommands, short)
}

// ---- standby ----

func validateImageInfo(params map[string]any) error {
	info, ok := params["image_info"].(map[string]any)
	if !ok {
		return fmt.Errorf("image_info must be an object with id, urls and a checksum")
	}
	if id, _ := info["id"].(string); id == "" {
		return fmt.Errorf("image_info.id is missing")
	}
	urls, _ := info["urls"].([]any)
	if len(urls) == 0 {
		return fmt.Errorf("image_info.urls must list at least one URL")
	}
	if u, _ := urls[0].(string); u == "" {
		return fmt.Errorf("image_info.urls[0] must be a URL string")
	}
	cs, _ := info["checksum"].(string)
	algo, _ := info["os_hash_algo"].(string)
	val, _ := info["os_hash_value"].(string)
	if cs == "" && (algo == "" || val == "") {
		return fmt.Errorf("image_info needs checksum (md5) or os_hash_algo and os_hash_value")
	}
	return nil
}

func (a *Agent) prepareImage(ctx context.Context, params map[string]any) (any, *restError) {
	info := params["image_info"].(map[string]any)
	if err := a.writeImage(ctx, info); err != nil {
		return nil, err
	}
	id, _ := info["id"].(string)
	return fmt.Sprintf("image (%s) written to device %s", id, a.cfg.DiskPath), nil
}

func (a *Agent) powerOff(ctx context.Context, _ map[string]any) (any, *restError) {
	// Answer first, then power off as the OS shutdown would.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if a.cfg.PowerOff != nil {
			if err := a.cfg.PowerOff(context.WithoutCancel(ctx), a.cfg.Server); err != nil {
				a.log.Error("power off failed", "err", err)
				return
			}
		}
		a.cancel() // the ramdisk is gone
	}()
	return nil, nil
}

func (a *Agent) getPartitionUUIDs(context.Context, map[string]any) (any, *restError) {
	ids, err := partitionUUIDs(a.cfg.DiskPath)
	if err != nil {
		return nil, execError("reading partition table of %s: %v", a.cfg.DiskPath, err)
	}
	return ids, nil
}

func (a *Agent) installBootloader(_ context.Context, params map[string]any) (any, *restError) {
	ids, err := partitionUUIDs(a.cfg.DiskPath)
	if err != nil {
		return nil, &restError{Type: "CommandExecutionError", Code: 500, Message: "Command execution failed",
			Details: fmt.Sprintf("Installing GRUB2 boot loader to device %s failed with %v.", a.cfg.DiskPath, err)}
	}
	if mode, _ := params["target_boot_mode"].(string); mode == "uefi" {
		want, _ := params["efi_system_part_uuid"].(string)
		if want != "" && ids["efi system partition uuid"] != want {
			return nil, execError("Installing GRUB2 boot loader to device %s failed: no EFI system partition %s", a.cfg.DiskPath, want)
		}
	}
	return nil, nil
}

// ---- clean / deploy steps ----

func (a *Agent) cleanSteps() []any {
	return []any{
		map[string]any{"step": "erase_devices", "priority": 10, "interface": "deploy", "reboot_requested": false, "abortable": true},
		map[string]any{"step": "erase_devices_metadata", "priority": 99, "interface": "deploy", "reboot_requested": false, "abortable": true},
	}
}

func hardwareManagerVersions() map[string]any {
	return map[string]any{"generic_hardware_manager": hardwareManagerVersion}
}

func (a *Agent) getCleanSteps(context.Context, map[string]any) (any, *restError) {
	return map[string]any{
		"clean_steps":              map[string]any{"GenericHardwareManager": a.cleanSteps()},
		"hardware_manager_version": hardwareManagerVersions(),
	}, nil
}

func (a *Agent) executeCleanStep(ctx context.Context, params map[string]any) (any, *restError) {
	step, _ := params["step"].(map[string]any)
	name, _ := step["step"].(string)
	if cv, ok := params["clean_version"].(map[string]any); ok && len(cv) > 0 {
		if v, _ := cv["generic_hardware_manager"].(string); v != hardwareManagerVersion {
			return nil, &restError{Type: "CleanVersionMismatch", Code: 409, Message: "Clean version mismatch, reload agent",
				Details: fmt.Sprintf("Agent clean version: %v, node clean version: %v", hardwareManagerVersions(), cv)}
		}
	}
	var err error
	switch name {
	case "erase_devices":
		err = eraseDisk(ctx, a.cfg.DiskPath)
	case "erase_devices_metadata":
		err = eraseMetadata(a.cfg.DiskPath)
	default:
		return nil, &restError{Type: "CleaningError", Code: 500, Message: "Clean step failed",
			Details: fmt.Sprintf("Unknown clean step %q: no hardware manager supports it", name)}
	}
	if err != nil {
		return nil, &restError{Type: "BlockDeviceEraseError", Code: 500, Message: "Error erasing block device",
			Details: fmt.Sprintf("Failed to erase block device %s: %v", a.cfg.DiskPath, err)}
	}
	return map[string]any{"clean_result": nil, "clean_step": step}, nil
}

func (a *Agent) getDeploySteps(context.Context, map[string]any) (any, *restError) {
	return map[string]any{
		"deploy_steps": map[string]any{"GenericHardwareManager": []any{
			map[string]any{"step": "write_image", "priority": 0, "interface": "deploy", "reboot_requested": false,
				"argsinfo": map[string]any{"image_info": map[string]any{"description": "Image to write", "required": true}}},
		}},
		"hardware_manager_version": hardwareManagerVersions(),
	}, nil
}

func (a *Agent) executeDeployStep(ctx context.Context, params map[string]any) (any, *restError) {
	step, _ := params["step"].(map[string]any)
	name, _ := step["step"].(string)
	if name != "write_image" {
		return nil, &restError{Type: "DeploymentError", Code: 500, Message: "Deploy step failed",
			Details: fmt.Sprintf("Unknown deploy step %q", name)}
	}
	args, _ := step["args"].(map[string]any)
	if err := validateImageInfo(args); err != nil {
		return nil, &restError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters", Details: err.Error()}
	}
	if _, err := a.prepareImage(ctx, args); err != nil {
		return nil, err
	}
	return map[string]any{"deploy_result": nil, "deploy_step": step}, nil
}
