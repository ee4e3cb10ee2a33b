package swift

import (
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

func TestConfigFrom(t *testing.T) {
	tests := []struct {
		name    string
		cfg     moduletest.MapConfig
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{"defaults", moduletest.MapConfig{}, func(t *testing.T, c Config) {
			if c.Configured() || c.Container != "ironic_ilo_container" || c.Expiry != 900*time.Second ||
				c.TempURLDigest != tempurl.SHA256 || c.Threshold != 1<<30 || c.SegmentSize != 256<<20 || c.Retries != 2 {
				t.Fatalf("defaults: %+v", c)
			}
			if c.Glance.Container != "glance" || c.Glance.APIVersion != "v1" || c.Glance.Duration != 1200*time.Second {
				t.Fatalf("glance defaults: %+v", c.Glance)
			}
		}, ""},
		{"swift section v3", moduletest.MapConfig{
			"swift.auth_url": "http://127.0.0.1:5000/v3", "swift.username": "ironic", "swift.password": "pw",
			"swift.project_name": "service", "swift.user_domain_name": "Default", "swift.project_domain_name": "Other",
			"swift.region_name": "R1", "swift.auth_version": "3", "ilo.swift_ilo_container": "c1",
			"ilo.swift_object_expiry_timeout": "60", "swift.temp_url_digest": "sha512", "swift.segment_size": "64M",
		}, func(t *testing.T, c Config) {
			if !c.Configured() || c.AuthVersion != 3 || c.Username != "ironic" || c.ProjectName != "service" ||
				c.ProjectDomainName != "Other" || c.RegionName != "R1" || c.Container != "c1" ||
				c.Expiry != time.Minute || c.TempURLDigest != tempurl.SHA512 || c.SegmentSize != 64<<20 {
				t.Fatalf("got %+v", c)
			}
		}, ""},
		{"keystone_authtoken fallback (Kilo names)", moduletest.MapConfig{
			"keystone_authtoken.auth_uri": "http://127.0.0.1:5000/v2.0", "keystone_authtoken.admin_user": "ironic",
			"keystone_authtoken.admin_password": "pw", "keystone_authtoken.admin_tenant_name": "service",
			"keystone_authtoken.auth_version": "v2.0",
		}, func(t *testing.T, c Config) {
			if c.AuthURL != "http://127.0.0.1:5000/v2.0" || c.Username != "ironic" || c.Password != "pw" ||
				c.ProjectName != "service" || c.AuthVersion != 2 {
				t.Fatalf("got %+v", c)
			}
		}, ""},
		{"swift wins over keystone_authtoken", moduletest.MapConfig{
			"swift.auth_url": "http://a/auth/v1.0", "keystone_authtoken.auth_url": "http://b/v3",
		}, func(t *testing.T, c Config) {
			if c.AuthURL != "http://a/auth/v1.0" {
				t.Fatalf("got %q", c.AuthURL)
			}
		}, ""},
		{"ilo swift_segment_size alias", moduletest.MapConfig{"ilo.swift_segment_size": "1073741824"}, func(t *testing.T, c Config) {
			if c.SegmentSize != 1<<30 {
				t.Fatalf("segment size %d", c.SegmentSize)
			}
		}, ""},
		{"bad auth_version", moduletest.MapConfig{"swift.auth_version": "4"}, nil, "[swift] auth_version"},
		{"bad expiry", moduletest.MapConfig{"ilo.swift_object_expiry_timeout": "-1"}, nil, "swift_object_expiry_timeout"},
		{"bad digest", moduletest.MapConfig{"swift.temp_url_digest": "md5"}, nil, "[swift] temp_url_digest"},
		{"bad segment size", moduletest.MapConfig{"swift.segment_size": "lots"}, nil, "[swift] segment_size"},
		{"bad seed", moduletest.MapConfig{"glance.swift_store_multiple_containers_seed": "33"}, nil, "swift_store_multiple_containers_seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFrom(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "256M": 256 << 20, "1GiB": 1 << 30, "4k": 4096, "10MB": 10 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-5", "M", "1.5G", "99999999999G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "[swift] auth_url"},
		{Config{AuthURL: "not a url"}, "is not a URL"},
		{Config{AuthURL: "http://127.0.0.1/auth/v1.0", Username: "a:b"}, "username and password"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// Vectors from `swift tempurl --absolute GET 1700001200 PATH gkey`
// (python3-swiftclient), with Ironic's Glance URL layout.
func TestGlanceTempURL(t *testing.T) {
	const id = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	now := time.Unix(1700000000, 0)
	base := GlanceConfig{EndpointURL: "http://127.0.0.1:8080", APIVersion: "v1", Account: "AUTH_glance",
		Container: "glance", TempURLKey: "gkey", Duration: 1200 * time.Second}
	seeded := base
	seeded.Seed = 3
	withV1 := base
	withV1.EndpointURL = "http://127.0.0.1:8080/v1/"
	tests := []struct {
		name string
		g    GlanceConfig
		want string
	}{
		{"plain", base, "http://127.0.0.1:8080/v1/AUTH_glance/glance/" + id + "?temp_url_sig=87f0ff770e823b357b910f85e244db432ae10feb326aef58a41429298fb1bb1d&temp_url_expires=1700001200"},
		{"endpoint with version", withV1, "http://127.0.0.1:8080/v1/AUTH_glance/glance/" + id + "?temp_url_sig=87f0ff770e823b357b910f85e244db432ae10feb326aef58a41429298fb1bb1d&temp_url_expires=1700001200"},
		{"multiple containers", seeded, "http://127.0.0.1:8080/v1/AUTH_glance/glance_1be/" + id + "?temp_url_sig=91eec7d0bb1b55ee4c41602d2741e1eddc10c08f234e93e09aa915e26378e085&temp_url_expires=1700001200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GlanceTempURL(tt.g, id, now)
			if err != nil || got != tt.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
	// Ironic's container seed cases: dashes inside the prefix extend it.
	for seed, want := range map[int]string{0: "glance", 2: "glance_1b", 9: "glance_1be26c0b-0", 32: "glance_" + id} {
		g := base
		g.Seed = seed
		if got := g.GlanceContainer(id); got != want {
			t.Errorf("seed %d: %s, want %s", seed, got, want)
		}
	}
	_, err := GlanceTempURL(GlanceConfig{}, id, now)
	if err == nil || !strings.Contains(err.Error(), "swift_endpoint_url, swift_account, swift_temp_url_key") {
		t.Errorf("missing options error = %v", err)
	}
	if _, err := GlanceTempURL(base, "not-a-uuid", now); err == nil {
		t.Error("non-UUID accepted")
	}
}
