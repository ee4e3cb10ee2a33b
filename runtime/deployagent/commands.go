package deployagent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Command statuses (IPA's AgentCommandStatus).
const (
	StatusRunning              = "RUNNING"
	StatusSucceeded            = "SUCCEEDED"
	StatusFailed               = "FAILED"
	StatusCleanVersionMismatch = "CLEAN_VERSION_MISMATCH"
)

// hardwareManagerVersion is the GenericHardwareManager version reported
// with clean steps and checked by clean.execute_clean_step.
const hardwareManagerVersion = "1.2"

// RESTError is IPA's RESTError serialisation (command_error).
type RESTError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

func (e *RESTError) Error() string { return e.Message + ": " + e.Details }

func execError(format string, args ...any) *RESTError {
	return &RESTError{Type: "CommandExecutionError", Code: 500, Message: "Command execution failed", Details: fmt.Sprintf(format, args...)}
}

// command is one entry of the agent's command list.
type command struct {
	id   string
	name string // short name as IPA reports it, e.g. "prepare_image"
	done chan struct{}

	// answered is closed once the HTTP answer starting the command was
	// sent (power_off waits for it: the caller must get its answer).
	answered     chan struct{}
	answeredOnce sync.Once

	mu     sync.Mutex
	status string
	result any
	err    *RESTError
}

func (c *command) finish(result any, err *RESTError, status string) {
	c.mu.Lock()
	c.result, c.err = result, err
	switch {
	case status != "":
		c.status = status
	case err != nil:
		c.status = StatusFailed
	default:
		c.status = StatusSucceeded
	}
	c.mu.Unlock()
	close(c.done)
}

func (c *command) markAnswered() { c.answeredOnce.Do(func() { close(c.answered) }) }

// answeredKey carries the command's answered channel in its context.
type answeredKey struct{}

// waitAnswered waits until the command's HTTP answer was sent, at most d.
func waitAnswered(ctx context.Context, d time.Duration) {
	ch, _ := ctx.Value(answeredKey{}).(chan struct{})
	if ch == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
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

type handlerFunc func(ctx context.Context, params map[string]any) (any, *RESTError)

type commandSpec struct {
	async    bool
	validate func(params map[string]any) error
	run      handlerFunc
}

func (a *Agent) commands() map[string]commandSpec {
	return map[string]commandSpec{
		"standby.prepare_image":       {async: true, validate: validateImageParams, run: a.prepareImage},
		"standby.power_off":           {async: true, run: a.powerOff},
		"standby.sync":                {run: a.syncCmd},
		"standby.get_partition_uuids": {run: a.getPartitionUUIDs},
		"image.install_bootloader":    {async: true, run: a.installBootloader},
		"iscsi.start_iscsi_target":    {run: a.startISCSITarget},
		"clean.get_clean_steps":       {run: a.getCleanSteps},
		"clean.execute_clean_step":    {async: true, run: a.executeCleanStep},
		"deploy.get_deploy_steps":     {run: a.getDeploySteps},
		"deploy.execute_deploy_step":  {async: true, run: a.executeDeployStep},
		"poll.get_hardware_info":      {run: a.getHardwareInfo},
	}
}

// execute starts a command the way IPA's ExecuteCommandMixin does. It
// returns an HTTP status and message when the command is refused.
func (a *Agent) execute(name string, params map[string]any) (*command, int, string) {
	ext, short, ok := strings.Cut(name, ".")
	if !ok || ext == "" || short == "" {
		return nil, http.StatusBadRequest, "Command name must be of the form <extension>.<name>"
	}
	cmds := a.commands()
	spec, known := cmds[name]
	if !known {
		for full := range cmds {
			if strings.HasPrefix(full, ext+".") {
				return nil, http.StatusBadRequest, fmt.Sprintf("Unknown command: %s", short)
			}
		}
		return nil, http.StatusNotFound, fmt.Sprintf("Extension with id %s not found.", ext)
	}
	if spec.validate != nil {
		if err := spec.validate(params); err != nil {
			return nil, http.StatusBadRequest, "Invalid command parameters: " + err.Error()
		}
	}
	if name != "iscsi.start_iscsi_target" {
		a.stopISCSITarget() // the deploy moved on (power off, another command): nothing stays exported
	}
	a.mu.Lock()
	if n := len(a.cmds); n > 0 {
		select {
		case <-a.cmds[n-1].done:
		default:
			a.mu.Unlock()
			return nil, http.StatusConflict, "Agent is busy: a previous asynchronous command is still running"
		}
	}
	c := &command{id: newID(), name: short, status: StatusRunning, done: make(chan struct{}), answered: make(chan struct{})}
	a.cmds = append(a.cmds, c)
	a.mu.Unlock()

	run := func(ctx context.Context) {
		res, err := spec.run(ctx, params)
		if err != nil {
			a.log.Error("command failed", "command", name, "error", a.redact(err.Error()))
		}
		if s, ok := res.(string); ok {
			if spec.async {
				s = short + ": " + s
			}
			res = map[string]any{"result": s}
		}
		if err != nil && err.Type == "CleanVersionMismatch" {
			c.finish(nil, err, StatusCleanVersionMismatch)
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
		run(context.WithValue(a.ctx, answeredKey{}, c.answered))
		a.forceHeartbeat()
	}()
	return c, 0, ""
}

func (a *Agent) syncCmd(context.Context, map[string]any) (any, *RESTError) {
	a.cfg.Sync()
	return "sync completed", nil
}

// powerOff answers (the command stays RUNNING, as the machine goes down),
// prints the console marker, syncs and powers off.
func (a *Agent) powerOff(ctx context.Context, _ map[string]any) (any, *RESTError) {
	// answer the caller first (IPA does too): a machine gone before its
	// answer looks like a failed command to the conductor
	waitAnswered(ctx, 5*time.Second)
	// the agent's peak memory, for the record (the ramdisk runs in RAM)
	if kib := maxRSSKiB(); kib > 0 {
		a.Console("%s max_rss_mib=%.1f", ConsolePowerOff, float64(kib)/1024)
	} else {
		a.Console("%s", ConsolePowerOff)
	}
	a.cfg.Sync()
	if err := a.cfg.PowerOff(context.WithoutCancel(ctx)); err != nil {
		return nil, execError("powering off failed: %v", err)
	}
	return nil, nil
}

func (a *Agent) getHardwareInfo(context.Context, map[string]any) (any, *RESTError) {
	inv, err := ReadInventory(a.cfg.Root)
	if err != nil {
		return nil, execError("reading the hardware inventory: %v", err)
	}
	if disks, err := a.cfg.Disks(); err == nil {
		inv.Disks = disks
	}
	return inv, nil
}

// ---- deploy steps ----

func hardwareManagerVersions() map[string]any {
	return map[string]any{"generic_hardware_manager": hardwareManagerVersion}
}

func (a *Agent) getDeploySteps(context.Context, map[string]any) (any, *RESTError) {
	return map[string]any{
		"deploy_steps": map[string]any{"GenericHardwareManager": []any{
			map[string]any{"step": "write_image", "priority": 0, "interface": "deploy", "reboot_requested": false,
				"argsinfo": map[string]any{"image_info": map[string]any{"description": "Image to write", "required": true}}},
		}},
		"hardware_manager_version": hardwareManagerVersions(),
	}, nil
}

func (a *Agent) executeDeployStep(ctx context.Context, params map[string]any) (any, *RESTError) {
	step, _ := params["step"].(map[string]any)
	name, _ := step["step"].(string)
	if name != "write_image" {
		return nil, &RESTError{Type: "DeploymentError", Code: 500, Message: "Deploy step failed",
			Details: fmt.Sprintf("Unknown deploy step %q: the lightsout agent has write_image only", name)}
	}
	args, _ := step["args"].(map[string]any)
	if err := validateImageParams(args); err != nil {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters", Details: err.Error()}
	}
	if _, err := a.prepareImage(ctx, args); err != nil {
		return nil, err
	}
	return map[string]any{"deploy_result": nil, "deploy_step": step}, nil
}
