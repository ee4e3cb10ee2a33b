package agent

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/runtime/module"
)

// IPA compatibility. lightsout's own agent (runtime/deployagent) takes a
// few parameters ironic-python-agent never had (chap_user and chap_secret
// on iscsi.start_iscsi_target). An unmodified IPA refuses them in a way
// that says little: a synchronous command's TypeError cannot be
// serialised, so IPA ≤ 7.1.0 answers HTTP 500 "Object of type TypeError is
// not JSON serializable"; an asynchronous one fails with "… got an
// unexpected keyword argument …". The module recognises those answers and
// raises not_supported naming the parameters, so that the playbook can name
// the option that added them.

// IPAISCSIRelease is the last ironic-python-agent release with the iscsi
// extension (stable/wallaby, tag 7.1.0; the extension was removed by
// commit be388216 "Remove the iscsi extension", first released in 8.0.0).
const IPAISCSIRelease = "7.1.0"

// IPAParams returns the parameters ironic-python-agent's command name
// accepts and whether lightsout knows its signature. The lists are IPA
// 7.1.0's (ironic_python_agent/extensions/iscsi.py, image.py, standby.py,
// clean.py); IPA's master has the same ones for the commands it still has.
func IPAParams(name string) ([]string, bool) {
	switch name {
	case "iscsi.start_iscsi_target":
		// start_iscsi_target(self, iqn=None, wipe_disk_metadata=False, portal_port=None)
		return []string{"iqn", "wipe_disk_metadata", "portal_port"}, true
	case "image.install_bootloader":
		// install_bootloader(self, root_uuid, efi_system_part_uuid=None,
		// prep_boot_part_uuid=None, target_boot_mode='bios', ignore_bootloader_failure=None)
		return []string{"root_uuid", "efi_system_part_uuid", "prep_boot_part_uuid", "target_boot_mode", "ignore_bootloader_failure"}, true
	case "standby.prepare_image":
		return []string{"image_info", "configdrive"}, true
	case "standby.cache_image":
		return []string{"image_info", "force"}, true
	case "standby.get_partition_uuids", "standby.power_off", "standby.run_image", "standby.sync", "poll.get_hardware_info":
		return nil, true
	case "clean.get_clean_steps":
		return []string{"node", "ports"}, true
	}
	// clean.execute_clean_step and deploy.execute_deploy_step take **kwargs.
	return nil, false
}

// ExtensionParams returns, sorted, the parameters of a call to name that
// ironic-python-agent's command does not take (nil when lightsout does not
// know the command's signature).
func ExtensionParams(name string, params map[string]any) []string {
	known, ok := IPAParams(name)
	if !ok {
		return nil
	}
	var ext []string
	for k := range params {
		if !slices.Contains(known, k) {
			ext = append(ext, k)
		}
	}
	slices.Sort(ext)
	return ext
}

// IPARelease parses an agent_version as ironic-python-agent reports it
// (pbr's release string: "7.1.0", "9.4.1.dev12") and returns its major
// version; ok is false for anything else, such as lightsout's own agent
// ("lightsout-agent-1.0").
func IPARelease(agentVersion string) (major int, ok bool) {
	parts := strings.Split(strings.TrimSpace(agentVersion), ".")
	if len(parts) < 3 {
		return 0, false
	}
	for _, p := range parts[:3] {
		if _, err := strconv.Atoi(p); err != nil {
			return 0, false
		}
	}
	major, _ = strconv.Atoi(parts[0])
	return major, true
}

// unexpectedParams reports whether an agent's answer is IPA refusing
// parameters its command does not take.
func unexpectedParams(err error, res CommandResult) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		// IPA ≤ 7.1.0 (Python 3): the sync command's TypeError lands in
		// SyncCommandResult.command_error and the JSON encoder fails on it.
		return he.Status == http.StatusInternalServerError &&
			((strings.Contains(he.Message, "TypeError") && strings.Contains(he.Message, "is not JSON serializable")) ||
				strings.Contains(he.Message, "unexpected keyword argument"))
	}
	if err != nil || res.CommandStatus != StatusFailed {
		return false
	}
	return strings.Contains(res.ErrorMessage(), "unexpected keyword argument")
}

// extensionError explains a refusal of lightsout-only parameters; nil when
// the call carried none or the answer is not such a refusal.
func extensionError(op, name string, params map[string]any, err error, res CommandResult) error {
	ext := ExtensionParams(name, params)
	if len(ext) == 0 || !unexpectedParams(err, res) {
		return nil
	}
	known, _ := IPAParams(name)
	answer := res.ErrorMessage()
	if err != nil {
		answer = err.Error()
	}
	return &module.Error{Code: module.CodeNotSupported, Operation: op, Err: err, Message: fmt.Sprintf(
		"agent command %s: the agent does not take %s (lightsout agent extensions; ironic-python-agent's %s takes only %s), as an unmodified ironic-python-agent ramdisk: leave them out or boot lightsout's ramdisk (the agent answered: %s)",
		name, strings.Join(ext, ", "), name, strings.Join(known, ", "), answer)}
}

// preflightExtensions refuses, before sending, lightsout-only parameters to
// an agent that reports an ironic-python-agent release of the iscsi era
// (≤ 7.x, whose signatures IPAParams lists); nil otherwise.
func preflightExtensions(op, node, agentVersion, name string, params map[string]any) error {
	major, ok := IPARelease(agentVersion)
	if !ok || major > 7 {
		return nil
	}
	ext := ExtensionParams(name, params)
	if len(ext) == 0 {
		return nil
	}
	known, _ := IPAParams(name)
	return module.Errorf(module.CodeNotSupported, op,
		"agent command %s: node %s runs ironic-python-agent %s, whose %s takes only %s, not %s (lightsout agent extensions): leave them out or boot lightsout's ramdisk",
		name, node, agentVersion, name, strings.Join(known, ", "), strings.Join(ext, ", "))
}

// missingExtension explains IPA's 404 for an extension it does not have
// (RequestedObjectNotFoundError "Not found: Extension with id iscsi not
// found."); nil for any other answer.
func missingExtension(op, name string, err error) error {
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(he.Message, "Extension with id") {
		return nil
	}
	msg := fmt.Sprintf("agent command %s: the agent has no such extension (%s)", name, he.Message)
	if strings.HasPrefix(name, "iscsi.") {
		msg += "; ironic-python-agent removed its iscsi extension in 8.0.0: for iscsi_ilo boot an ironic-python-agent " +
			IPAISCSIRelease + " (or older) ramdisk or lightsout's ramdisk, or deploy with agent_ilo"
	}
	return &module.Error{Code: module.CodeNotSupported, Operation: op, Message: msg, Err: err}
}
