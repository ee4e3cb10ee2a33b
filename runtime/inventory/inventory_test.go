package inventory

import (
	"strings"
	"testing"
)

func TestValidateDriverInfo(t *testing.T) {
	full := map[string]any{"ilo_address": "a", "ilo_username": "u", "ilo_password": "p"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range full {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name, driver string
		info         map[string]any
		deploy       bool
		want         string
	}{
		{"ok", "agent_ilo", full, false, ""},
		{"all missing named", "agent_ilo", map[string]any{}, false, "['ilo_address', 'ilo_username', 'ilo_password']"},
		{"ints named together", "iscsi_ilo", with("client_port", "x", "client_timeout", "1.5"), false, "['client_port', 'client_timeout']"},
		{"port range", "agent_ilo", with("client_port", 70000), false, "not a valid port"},
		{"int ok", "agent_ilo", with("client_port", "8443", "client_timeout", 30), false, ""},
		{"verify_ca bool string", "agent_ilo", with("ilo_verify_ca", "False"), false, ""},
		{"verify_ca bad", "agent_ilo", with("ilo_verify_ca", "/no/such/ca.pem"), false, "Boolean or the path"},
		{"agent deploy iso", "agent_ilo", full, true, "Missing are: ['ilo_deploy_iso']"},
		{"agent kernel+ramdisk instead of an ISO", "agent_ilo", with("deploy_kernel", "/k", "deploy_ramdisk", "/r"), true, ""},
		{"agent kernel alone is not enough", "agent_ilo", with("deploy_kernel", "/k"), true, "['ilo_deploy_iso']"},
		{"pxe deploy keys", "pxe_ilo", full, true, "['deploy_kernel', 'deploy_ramdisk']"},
		{"unknown driver", "ipmi", full, false, "unknown driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDriverInfo(tt.driver, tt.info, tt.deploy)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	caps, err := ParseCapabilities("boot_mode:uefi, secure_boot:true,bad,x:y:z")
	if caps["boot_mode"] != "uefi" || caps["secure_boot"] != "true" || len(caps) != 2 || err == nil {
		t.Fatalf("caps = %v err %v", caps, err)
	}
	tests := []struct{ in, want string }{
		{"boot_mode:bios,boot_option:local", ""},
		{"boot_mode:legacy", "Acceptable values are: bios, uefi"},
		{"secure_boot:yes", "secure_boot"},
		{"boot_option:pxe", "local, netboot"},
	}
	for _, tt := range tests {
		err := ValidateCapabilities("properties/capabilities", tt.in)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: err = %v, want %q", tt.in, err, tt.want)
		}
	}
}
