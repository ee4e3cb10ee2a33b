package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSourcesAndWarnings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "l.conf")
	os.WriteFile(p, []byte("# comment\n[ilo]\nclient_timeout = 30\nnot_an_option = x\n\n[swift]\npassword = Secr3t!\n[lightsout]\nstate_dir = "+dir+"\n"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Int("ilo", "client_timeout", 0) != 30 || c.Int("ilo", "client_port", 0) != 443 {
		t.Fatalf("values: %v %v", c.Int("ilo", "client_timeout", 0), c.Int("ilo", "client_port", 0))
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], p+":4") || !strings.Contains(c.Warnings[0], "not_an_option") {
		t.Fatalf("warnings = %v", c.Warnings)
	}
	if c.Database() != filepath.Join(dir, "lightsout.db") {
		t.Fatalf("database = %s", c.Database())
	}
	for _, v := range c.Values() {
		if v.Key == "client_timeout" && v.Section == "ilo" && v.Source != p+":3" {
			t.Errorf("source = %s", v.Source)
		}
		if v.Value == "Secr3t!" {
			t.Error("secret not masked in Values")
		}
	}
	if got := c.SecretValues(); len(got) != 1 || got[0] != "Secr3t!" {
		t.Fatalf("SecretValues = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("[ilo]\nclient_port = https\n"), 0o644)
	tests := []struct{ path, want string }{
		{filepath.Join(dir, "missing.conf"), "missing.conf"},
		{bad, "client_port"},
	}
	for _, tt := range tests {
		if _, err := Load(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) = %v, want error with %q", tt.path, err, tt.want)
		}
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	t.Setenv(EnvConfig, "")
	t.Setenv("XDG_STATE_HOME", "/tmp/xdg")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir() != "/tmp/xdg/lightsout" || c.String("ilo", "swift_ilo_container") != "ironic_ilo_container" {
		t.Fatalf("state %s", c.StateDir())
	}
}
