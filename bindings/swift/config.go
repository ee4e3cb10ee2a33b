package swift

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/runtime/module"
)

// Defaults (Ironic's where Ironic has one).
const (
	DefaultContainer         = "ironic_ilo_container"
	DefaultExpiry            = 900 * time.Second
	DefaultThreshold         = 1 << 30   // objects above 1 GiB become SLOs
	DefaultSegmentSize       = 256 << 20 // 256 MiB segments
	DefaultSegmentWorkers    = 2
	DefaultRetries           = 2
	DefaultGlanceTempURLTime = 1200 * time.Second
)

// Config is the Swift client configuration. Field comments give the INI
// option each one is read from by [ConfigFrom].
type Config struct {
	AuthURL           string // [swift] auth_url (fallback [keystone_authtoken] auth_url, auth_uri)
	AuthVersion       int    // [swift] auth_version: 1 (tempauth), 2, 3; 0 = from the URL
	Username          string // [swift] username; "account:user" for v1
	Password          string // [swift] password (secret)
	ProjectName       string // [swift] project_name
	UserDomainName    string // [swift] user_domain_name
	ProjectDomainName string // [swift] project_domain_name
	RegionName        string // [swift] region_name
	Retries           int    // [swift] swift_max_retries (2)

	Container string        // [ilo] swift_ilo_container (ironic_ilo_container)
	Expiry    time.Duration // [ilo] swift_object_expiry_timeout (900 s)

	TempURLKey    string         // [swift] temp_url_key; else read from the account (secret)
	TempURLDigest tempurl.Digest // [swift] temp_url_digest (sha256)

	Threshold      int64 // [swift] large_object_threshold: bigger files become SLOs (1 GiB)
	SegmentSize    int64 // [swift] segment_size, else [ilo] swift_segment_size (256 MiB)
	SegmentWorkers int   // [swift] segment_workers: parallel segment uploads (2)

	Glance GlanceConfig
}

// GlanceConfig locates images in Glance's Swift store ([glance] swift_*).
type GlanceConfig struct {
	EndpointURL   string         // [glance] swift_endpoint_url
	APIVersion    string         // [glance] swift_api_version (v1)
	Account       string         // [glance] swift_account, e.g. AUTH_<project id>
	Container     string         // [glance] swift_container (glance)
	Seed          int            // [glance] swift_store_multiple_containers_seed (0)
	TempURLKey    string         // [glance] swift_temp_url_key (secret)
	Duration      time.Duration  // [glance] swift_temp_url_duration (1200 s)
	TempURLDigest tempurl.Digest // [glance] swift_temp_url_digest (sha256)
}

// Configured reports whether a Swift endpoint is configured at all.
func (c Config) Configured() bool { return c.AuthURL != "" }

// first returns the first set value among (section, key) pairs.
func first(c module.Config, pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := c.Get(pairs[i], pairs[i+1]); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ConfigFrom reads the configuration from an INI view: [swift] with
// Ironic's keystoneauth names, falling back to [keystone_authtoken], plus
// [ilo] swift_ilo_container / swift_object_expiry_timeout and [glance]
// swift_*. Bad values give an error naming the option.
func ConfigFrom(c module.Config) (Config, error) {
	ka := "keystone_authtoken"
	cfg := Config{
		AuthURL:           first(c, "swift", "auth_url", ka, "auth_url", ka, "auth_uri", ka, "www_authenticate_uri"),
		Username:          first(c, "swift", "username", ka, "username", ka, "admin_user"),
		Password:          first(c, "swift", "password", ka, "password", ka, "admin_password"),
		ProjectName:       first(c, "swift", "project_name", ka, "project_name", ka, "admin_tenant_name"),
		UserDomainName:    first(c, "swift", "user_domain_name", ka, "user_domain_name"),
		ProjectDomainName: first(c, "swift", "project_domain_name", ka, "project_domain_name"),
		RegionName:        first(c, "swift", "region_name", ka, "region_name"),
		Container:         first(c, "ilo", "swift_ilo_container"),
		TempURLKey:        first(c, "swift", "temp_url_key"),
	}
	if cfg.Container == "" {
		cfg.Container = DefaultContainer
	}
	var err error
	if v := first(c, "swift", "auth_version", ka, "auth_version"); v != "" {
		s := strings.TrimPrefix(strings.ToLower(v), "v")
		s, _, _ = strings.Cut(s, ".")
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > 3 {
			return cfg, fmt.Errorf("[swift] auth_version = %q: use 1 (tempauth), 2 or 3 (Keystone)", v)
		}
		cfg.AuthVersion = n
	}
	if cfg.Expiry, err = seconds(c, "ilo", "swift_object_expiry_timeout", DefaultExpiry); err != nil {
		return cfg, err
	}
	if cfg.TempURLDigest, err = tempurl.ParseDigest(first(c, "swift", "temp_url_digest")); err != nil {
		return cfg, fmt.Errorf("[swift] temp_url_digest: %w", err)
	}
	if cfg.Threshold, err = size(c, "swift", "large_object_threshold", DefaultThreshold); err != nil {
		return cfg, err
	}
	if cfg.SegmentSize, err = size(c, "swift", "segment_size", 0); err != nil {
		return cfg, err
	}
	if cfg.SegmentSize == 0 {
		if cfg.SegmentSize, err = size(c, "ilo", "swift_segment_size", DefaultSegmentSize); err != nil {
			return cfg, err
		}
	}
	n, err := integer(c, "swift", "segment_workers", DefaultSegmentWorkers)
	if err != nil {
		return cfg, err
	}
	cfg.SegmentWorkers = n
	if cfg.Retries, err = integer(c, "swift", "swift_max_retries", DefaultRetries); err != nil {
		return cfg, err
	}

	g := GlanceConfig{
		EndpointURL: first(c, "glance", "swift_endpoint_url"),
		APIVersion:  first(c, "glance", "swift_api_version"),
		Account:     first(c, "glance", "swift_account"),
		Container:   first(c, "glance", "swift_container"),
		TempURLKey:  first(c, "glance", "swift_temp_url_key"),
	}
	if g.APIVersion == "" {
		g.APIVersion = "v1"
	}
	if g.Container == "" {
		g.Container = "glance"
	}
	if g.Seed, err = integer(c, "glance", "swift_store_multiple_containers_seed", 0); err != nil {
		return cfg, err
	}
	if g.Seed < 0 || g.Seed > 32 {
		return cfg, fmt.Errorf("[glance] swift_store_multiple_containers_seed = %d: must be 0..32", g.Seed)
	}
	if g.Duration, err = seconds(c, "glance", "swift_temp_url_duration", DefaultGlanceTempURLTime); err != nil {
		return cfg, err
	}
	if g.TempURLDigest, err = tempurl.ParseDigest(first(c, "glance", "swift_temp_url_digest")); err != nil {
		return cfg, fmt.Errorf("[glance] swift_temp_url_digest: %w", err)
	}
	cfg.Glance = g
	return cfg, nil
}

func integer(c module.Config, section, key string, def int) (int, error) {
	v := first(c, section, key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("[%s] %s = %q: want a non-negative integer", section, key, v)
	}
	return n, nil
}

func seconds(c module.Config, section, key string, def time.Duration) (time.Duration, error) {
	v := first(c, section, key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("[%s] %s = %q: want a positive number of seconds", section, key, v)
	}
	return time.Duration(n) * time.Second, nil
}

// ParseSize parses a byte count with an optional binary suffix
// (K, M, G, KiB, MiB, GiB; case-insensitive).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1 << 10
	case strings.HasSuffix(t, "M"):
		mult = 1 << 20
	case strings.HasSuffix(t, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q: want a positive byte count like 268435456 or 256M", s)
	}
	return n * mult, nil
}

func size(c module.Config, section, key string, def int64) (int64, error) {
	v := first(c, section, key)
	if v == "" {
		return def, nil
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("[%s] %s: %w", section, key, err)
	}
	return n, nil
}
