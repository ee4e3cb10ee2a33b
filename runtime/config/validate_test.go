package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "l.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEveryOptionHasAType(t *testing.T) {
	types := optionTypes()
	known := map[string]bool{}
	for _, o := range Known() {
		id := o.Section + "." + o.Key
		known[id] = true
		ty, ok := types[id]
		if !ok {
			t.Errorf("option [%s] %s has no type: declare it in optionTypes (runtime/config/types.go)", o.Section, o.Key)
			continue
		}
		if o.Default != "" {
			if _, err := ty.Check(o.Default); err != nil {
				t.Errorf("default of [%s] %s = %q is invalid for its own type (%s)", o.Section, o.Key, o.Default, ty.Fix)
			}
		}
	}
	for id := range types {
		if !known[id] {
			t.Errorf("optionTypes has %s, which is not in Known()", id)
		}
	}
}

// TestInvalidValues: each bad value is refused with the file, line,
// section.option, the value and the fix.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		section, key, value string
		fix                 string // part of the fix
	}{
		{"lightsout", "max_parallel", "0", "from 1 to 10000"},
		{"lightsout", "max_parallel", "-3", "from 1 to 10000"},
		{"lightsout", "max_parallel", "many", "an integer"},
		{"lightsout", "run_timeout", "-1h", "a duration"},
		{"lightsout", "run_timeout", "0", "a duration"},
		{"lightsout", "run_timeout", "soon", "a duration"},
		{"lightsout", "publish_digest", "md5", "sha1, sha256, sha512"},
		{"lightsout", "publish_address", "localhost", "host:port"},
		{"lightsout", "agent_address", "127.0.0.1:99999", "port 0 to 65535"},
		{"lightsout", "publish_url", "ftp://x/", "http:// or https://"},
		{"lightsout", "publish_url", "not a url", "http:// or https://"},
		{"ilo", "client_timeout", "-5", "seconds from 1"},
		{"ilo", "client_port", "https", "from 1 to 65535"},
		{"ilo", "client_port", "0", "from 1 to 65535"},
		{"ilo", "clean_priority_reset_ilo", "high", "priority"},
		{"ilo", "clean_priority_reset_ilo", "-1", "priority"},
		{"ilo", "clean_priority_erase_devices", "1.5", "priority"},
		{"ilo", "use_web_server_for_images", "maybe", "true or false"},
		{"ilo", "verify_ca", "ma\x01ybe", "CA bundle"},
		{"ilo", "default_boot_mode", "legacy", "auto, bios, uefi"},
		{"ilo", "file_permission", "0999", "octal"},
		{"ilo", "file_permission", "1777", "octal"},
		{"ilo", "reset_ilo_settle", "0", "greater than 0"},
		{"ilo", "swift_segment_size", "-1M", "byte count"},
		{"ilo", "swift_segment_size", "lots", "byte count"},
		{"ilo", "swift_ilo_container", "", "remove the line"},
		{"deploy", "default_boot_mode", "efi", "auto, bios, uefi"},
		{"deploy", "erase_devices_priority", "x", "priority"},
		{"conductor", "clean_nodes", "perhaps", "true or false"},
		{"conductor", "deploy_callback_timeout", "0", "seconds from 1"},
		{"swift", "auth_version", "4", "1 (tempauth)"},
		{"swift", "segment_workers", "0", "from 1 to 64"},
		{"swift", "temp_url_digest", "crc32", "sha1, sha256, sha512"},
		{"glance", "swift_store_multiple_containers_seed", "33", "from 0 to 32"},
	}
	for _, tt := range tests {
		t.Run(tt.section+"."+tt.key+"="+tt.value, func(t *testing.T) {
			p := writeConf(t, "# site config\n\n["+tt.section+"]\n"+tt.key+" = "+tt.value+"\n")
			_, err := Load(p)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Load = %v, want *InvalidError", err)
			}
			msg := err.Error()
			for _, want := range []string{p + ":4", "[" + tt.section + "] " + tt.key, tt.fix} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if tt.value != "" && !strings.Contains(msg, tt.value) && !strings.ContainsRune(tt.value, 1) {
				t.Errorf("error %q does not show the value %q", msg, tt.value)
			}
		})
	}
}

func TestValidValuesAreCanonical(t *testing.T) {
	p := writeConf(t, `[lightsout]
max_parallel = 8
run_timeout = 90
publish_digest = SHA512
publish_address = :8080
agent_address = [::1]:0
[ilo]
use_web_server_for_images = Yes
verify_ca = /etc/ssl/certs
default_boot_mode = UEFI
file_permission = 0640
swift_segment_size = 64MiB
reset_ilo_settle = 2.5
[conductor]
clean_nodes = off
[swift]
auth_version = v3
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ section, key, want string }{
		{"lightsout", "publish_digest", "sha512"},
		{"ilo", "use_web_server_for_images", "true"},
		{"ilo", "default_boot_mode", "uefi"},
		{"conductor", "clean_nodes", "false"},
		{"ilo", "verify_ca", "/etc/ssl/certs"},
		{"lightsout", "run_timeout", "90"},
	} {
		if got := c.String(tt.section, tt.key); got != tt.want {
			t.Errorf("[%s] %s = %q, want %q", tt.section, tt.key, got, tt.want)
		}
	}
	if c.Bool("conductor", "clean_nodes", true) {
		t.Error("clean_nodes = off read as true")
	}
}

// TestAllProblemsAtOnce: every invalid option is reported, in line order,
// and a secret option's value is never echoed.
func TestAllProblemsAtOnce(t *testing.T) {
	p := writeConf(t, "[lightsout]\nmax_parallel = 0\nrun_timeout = -1h\n[ilo]\nclient_timeout = -5\n[swift]\npassword = S3cr\x01t\n")
	_, err := Load(p)
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Load = %v", err)
	}
	if len(ie.Problems) != 4 {
		t.Fatalf("problems = %v", ie.Problems)
	}
	for i, want := range []string{":2", ":3", ":5", ":7"} {
		if !strings.HasSuffix(ie.Problems[i].Source, want) {
			t.Errorf("problem %d source = %s, want line %s", i, ie.Problems[i].Source, want)
		}
	}
	if strings.Contains(err.Error(), "S3cr") {
		t.Errorf("secret echoed: %s", err)
	}
}

func TestUnknownOptionSuggestsNearest(t *testing.T) {
	p := writeConf(t, "[lightsout]\nmax_paralel = 4\n[ilo]\nclient_timout = 9\nzzz_qqq = 1\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"did you mean [lightsout] max_parallel?", "did you mean [ilo] client_timeout?", ""}
	if len(c.Warnings) != 3 {
		t.Fatalf("warnings = %q", c.Warnings)
	}
	for i, w := range want {
		if w == "" {
			if strings.Contains(c.Warnings[i], "did you mean") {
				t.Errorf("warning %q suggests an unrelated option", c.Warnings[i])
			}
			continue
		}
		if !strings.Contains(c.Warnings[i], w) {
			t.Errorf("warning %q lacks %q", c.Warnings[i], w)
		}
	}
}

// TestDecimalSecondsAccepted: options read as decimal seconds (tests and
// fast simulators use fractions) accept them.
func TestDecimalSecondsAccepted(t *testing.T) {
	p := writeConf(t, "[ilo]\npower_wait = 0.02\nreset_ilo_settle = 0.1\n[agent]\npost_deploy_get_power_state_retry_interval = 0.02\n")
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	p = writeConf(t, "[ilo]\npower_wait = -1\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "a number from 0 to 3600") {
		t.Fatalf("Load = %v", err)
	}
}
