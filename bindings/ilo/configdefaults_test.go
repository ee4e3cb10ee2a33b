package ilo

import (
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

type mapConfig map[string]string

func (m mapConfig) Get(section, key string) (string, bool) {
	v, ok := m[section+"."+key]
	return v, ok
}

// TestConfigDefaultsDriverInfo: [ilo] client_timeout / client_port are the
// defaults of driver_info's, which win when set.
func TestConfigDefaultsDriverInfo(t *testing.T) {
	cfg := mapConfig{"ilo.client_timeout": "7", "ilo.client_port": "8443"}
	base := map[string]any{"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}
	tests := []struct {
		name        string
		extra       map[string]any
		wantTimeout time.Duration
		wantPort    int
	}{
		{"config", nil, 7 * time.Second, 8443},
		{"driver_info wins", map[string]any{"client_timeout": int64(3), "client_port": int64(443)}, 3 * time.Second, 443},
		{"short names win", map[string]any{"timeout": int64(4), "port": int64(444)}, 4 * time.Second, 444},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := map[string]any{}
			for k, v := range base {
				info[k] = v
			}
			for k, v := range tt.extra {
				info[k] = v
			}
			o, err := iloapi.ParseDriverInfo(withConfigDefaults(info, cfg))
			if err != nil {
				t.Fatal(err)
			}
			if o.Timeout != tt.wantTimeout || o.Port != tt.wantPort {
				t.Errorf("timeout %s port %d, want %s %d", o.Timeout, o.Port, tt.wantTimeout, tt.wantPort)
			}
			if _, set := info["client_timeout"]; set != (tt.extra["client_timeout"] != nil) {
				t.Error("withConfigDefaults modified the caller's map")
			}
		})
	}
}
