package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDatabaseConnection: [database] connection accepts sqlite:/// and
// postgresql:// URLs, refuses others naming the option and the fix, and its
// password is never shown (errors, config show) but is a secret value for
// the redactor.
func TestDatabaseConnection(t *testing.T) {
	tests := []struct {
		name, value, want string // want "" = refused
	}{
		{"postgresql", "postgresql://lo:Db-Pw-77@127.0.0.1:5432/lightsout", "postgresql://lo:Db-Pw-77@127.0.0.1:5432/lightsout"},
		{"postgres alias", "postgres://lo@db.example/lightsout?sslmode=require", "postgres://lo@db.example/lightsout?sslmode=require"},
		{"sqlite", "sqlite:///var/lib/lightsout/x.db", "sqlite:///var/lib/lightsout/x.db"},
		{"sqlite relative", "sqlite://x.db", ""},
		{"mysql", "mysql://lo:Db-Pw-77@h/db", ""},
		{"bad port", "postgresql://lo:Db-Pw-77@h:99999/db", ""},
		{"no host", "postgresql:///db", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConf(t, "[database]\nconnection = "+tt.value+"\n"))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("accepted %q", tt.value)
				}
				if !strings.Contains(err.Error(), "[database] connection") || !strings.Contains(err.Error(), "postgresql://user:password@host:5432/lightsout") {
					t.Errorf("error %q does not name the option and the fix", err)
				}
				if strings.Contains(err.Error(), "Db-Pw-77") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.DatabaseConnection(); got != tt.want {
				t.Fatalf("DatabaseConnection() = %q, want %q", got, tt.want)
			}
			for _, v := range c.Values() {
				if strings.Contains(v.Value, "Db-Pw-77") {
					t.Errorf("Values() shows the password: %s.%s = %q", v.Section, v.Key, v.Value)
				}
			}
			if strings.Contains(tt.value, "Db-Pw-77") && !slices.Contains(c.SecretValues(), "Db-Pw-77") {
				t.Error("the connection password is not a secret value (the redactor would not mask it)")
			}
		})
	}
	c, err := Load(writeConf(t, "[lightsout]\ndatabase = /srv/lo.db\n"))
	if err != nil || c.DatabaseConnection() != "sqlite:///srv/lo.db" {
		t.Fatalf("unset connection: %v %v", c, err)
	}
}

// TestRunRetentionDays: retention options take days; run_retention_failed
// is read as given.
func TestRunRetentionDays(t *testing.T) {
	c, err := Load(writeConf(t, "[lightsout]\nrun_retention = 30d\nrun_retention_failed = 2160h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Duration("lightsout", "run_retention", 0); d != 30*24*time.Hour {
		t.Fatalf("run_retention = %v", d)
	}
	if d := c.Duration("lightsout", "run_retention_failed", 0); d != 90*24*time.Hour {
		t.Fatalf("run_retention_failed = %v", d)
	}
	if _, err := Load(writeConf(t, "[lightsout]\nrun_retention = 5m\n")); err == nil || !strings.Contains(err.Error(), "30d") {
		t.Fatalf("5m (below an hour): %v", err)
	}
}
