package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the type and range of an option. Check returns the canonical
// form of a (trimmed, non-empty) value, or an error; Fix says what is
// allowed ("an integer from 1 to 10000") and is shown with every error.
//
// To declare an option's type, add its "section.key" to optionTypes below
// with one of the constructors (Int, Seconds, Number, Duration, Bool,
// Enum, Digest, Size, Path, URL, Address, FileMode, Priority, BoolOrPath,
// Text, NonEmpty). A test fails for a Known option without a type.
type Type struct {
	Fix   string
	Check func(v string) (string, error)
}

// errBad is returned by checks whose Fix says it all.
var errBad = errors.New("invalid")

// Int is an integer in [min, max].
func Int(min, max int64) Type {
	fix := fmt.Sprintf("an integer from %d to %d", min, max)
	if max == math.MaxInt32 {
		fix = fmt.Sprintf("an integer >= %d", min)
	}
	return Type{Fix: fix, Check: func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min || n > max {
			return "", errBad
		}
		return strconv.FormatInt(n, 10), nil
	}}
}

// Seconds is a whole number of seconds in [min, max] (Ironic's IntOpt
// timeouts).
func Seconds(min, max int64) Type {
	t := Int(min, max)
	t.Fix = fmt.Sprintf("a whole number of seconds from %d to %d", min, max)
	return t
}

// Number is a decimal number in (0, max] when positive, else [0, max].
func Number(positive bool, max float64) Type {
	fix := fmt.Sprintf("a number from 0 to %g", max)
	if positive {
		fix = fmt.Sprintf("a number greater than 0 and at most %g", max)
	}
	return Type{Fix: fix, Check: func(v string) (string, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || f < 0 || (positive && f == 0) || f > max {
			return "", errBad
		}
		return v, nil
	}}
}

// Duration is a positive duration: a Go duration ("90s", "1h30m") or a bare
// number of seconds, as Config.Duration reads it.
func Duration(min, max time.Duration) Type {
	return Type{Fix: fmt.Sprintf("a duration from %s to %s such as 90s, 30m, 2h or 30d (a bare number is seconds)", min, max),
		Check: func(v string) (string, error) {
			d, err := parseDuration(v)
			if err != nil || d < min || d > max {
				return "", errBad
			}
			return v, nil
		}}
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(n) || math.Abs(n) > float64(math.MaxInt64)/float64(time.Second) {
			return 0, errBad
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok { // 30d: time.ParseDuration stops at hours
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || math.IsNaN(n) || n < 0 || n > 100*366 {
			return 0, errBad
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	return time.ParseDuration(v)
}

// Bool is a boolean in oslo.config's spellings (true/false, yes/no, on/off,
// 1/0, any case); the canonical form is "true" or "false".
func Bool() Type {
	return Type{Fix: "true or false (also yes/no, on/off, 1/0)", Check: func(v string) (string, error) {
		b, ok := parseBool(v)
		if !ok {
			return "", errBad
		}
		return strconv.FormatBool(b), nil
	}}
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1", "t", "y":
		return true, true
	case "false", "no", "off", "0", "f", "n":
		return false, true
	}
	return false, false
}

// BoolOrPath is a boolean (see Bool) or a file/directory path (verify_ca).
func BoolOrPath() Type {
	return Type{Fix: "true, false or the path of a CA bundle file or directory", Check: func(v string) (string, error) {
		if b, ok := parseBool(v); ok {
			return strconv.FormatBool(b), nil
		}
		return Path().Check(v)
	}}
}

// Enum is one of values (case-insensitive); the canonical form is the
// listed spelling.
func Enum(values ...string) Type {
	return Type{Fix: "one of " + strings.Join(values, ", "), Check: func(v string) (string, error) {
		for _, a := range values {
			if strings.EqualFold(v, a) {
				return a, nil
			}
		}
		return "", errBad
	}}
}

// Digest is a temp URL HMAC digest.
func Digest() Type { return Enum("sha1", "sha256", "sha512") }

// Size is a positive byte count with an optional binary suffix (K, M, G,
// KiB, MiB, GiB), as bindings/swift.ParseSize reads it.
func Size() Type {
	return Type{Fix: "a positive byte count such as 268435456, 256M or 1GiB", Check: func(v string) (string, error) {
		t := strings.ToUpper(v)
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
			return "", errBad
		}
		return v, nil
	}}
}

// Path is a file system path (or a ':'-separated list of them).
func Path() Type {
	return Type{Fix: "a file system path (valid UTF-8, no control characters)", Check: func(v string) (string, error) {
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", errBad
		}
		return v, nil
	}}
}

// URL is an absolute http or https URL.
func URL() Type {
	return Type{Fix: "an absolute http:// or https:// URL such as http://192.0.2.1:8080/", Check: func(v string) (string, error) {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errBad
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return "", errBad
			}
		}
		return v, nil
	}}
}

// DatabaseURL is a store connection URL: sqlite:///absolute/path or
// postgresql://[user[:password]@]host[:port]/database[?params].
func DatabaseURL() Type {
	return Type{Fix: "sqlite:///path/to/lightsout.db (three slashes: an absolute path) or postgresql://user:password@host:5432/lightsout", Check: func(v string) (string, error) {
		u, err := url.Parse(v)
		if err != nil {
			return "", errBad
		}
		switch u.Scheme {
		case "sqlite":
			if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
				return "", errBad
			}
		case "postgresql", "postgres":
			if u.Host == "" {
				return "", errBad
			}
			if p := u.Port(); p != "" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					return "", errBad
				}
			}
		default:
			return "", errBad
		}
		return v, nil
	}}
}

// Address is a listen address host:port (port 0..65535; 0 picks a free port;
// an empty host listens on every interface).
func Address() Type {
	return Type{Fix: "host:port such as 127.0.0.1:8080 or [::1]:0 (port 0 to 65535)", Check: func(v string) (string, error) {
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			return "", errBad
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return "", errBad
		}
		if strings.ContainsAny(host, " /") {
			return "", errBad
		}
		return v, nil
	}}
}

// IP is an IPv4 or IPv6 address (no port).
func IP() Type {
	return Type{Fix: "an IP address such as 192.0.2.1", Check: func(v string) (string, error) {
		ip := net.ParseIP(v)
		if ip == nil {
			return "", errBad
		}
		return ip.String(), nil
	}}
}

// FileMode is an octal permission such as 0644.
func FileMode() Type {
	return Type{Fix: "an octal file mode from 0000 to 0777 such as 0644", Check: func(v string) (string, error) {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o777 {
			return "", errBad
		}
		return v, nil
	}}
}

// Priority is a clean step priority: a non-negative integer, 0 disables.
func Priority() Type {
	t := Int(0, math.MaxInt32)
	t.Fix = "a clean step priority: an integer >= 0 (0 disables the step)"
	return t
}

// Text is any single-line UTF-8 text.
func Text() Type {
	return Type{Fix: "text (valid UTF-8, no control characters)", Check: Path().Check}
}

// NonEmpty is text that must not be empty.
func NonEmpty() Type {
	return Type{Fix: "non-empty text", Check: Text().Check}
}

// authVersion is a Swift/Keystone auth version: 1, 2 or 3 (v3, 3.0, …).
func authVersion() Type {
	return Type{Fix: "1 (tempauth), 2 or 3 (Keystone)", Check: func(v string) (string, error) {
		s := strings.TrimPrefix(strings.ToLower(v), "v")
		s, _, _ = strings.Cut(s, ".")
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3 {
			return "", errBad
		}
		return v, nil
	}}
}

const day = 86400

// optionTypes maps "section.key" to the option's type. Every Known option
// has one (TestEveryOptionHasAType).
func optionTypes() map[string]Type {
	return map[string]Type{
		"lightsout.state_dir":            Path(),
		"lightsout.database":             Path(),
		"lightsout.scripts_path":         Path(),
		"lightsout.script_paths":         Path(),
		"lightsout.max_parallel":         Int(1, 10000),
		"lightsout.run_timeout":          Duration(time.Second, 30*24*time.Hour),
		"lightsout.run_memory_limit":     Size(),
		"lightsout.run_max_coroutines":   Int(1, 1000000),
		"lightsout.abort_grace":          Duration(time.Second, 24*time.Hour),
		"lightsout.sensor_interval":      Duration(time.Second, 24*time.Hour),
		"lightsout.run_retention":        Duration(time.Hour, 100*365*24*time.Hour),
		"lightsout.run_retention_failed": Duration(time.Hour, 100*365*24*time.Hour),
		"lightsout.publish_address":      Address(),
		"lightsout.publish_url":          URL(),
		"lightsout.publish_tls_cert":     Path(),
		"lightsout.publish_tls_key":      Path(),
		"lightsout.publish_dir":          Path(),
		"lightsout.publish_digest":       Digest(),
		"lightsout.agent_address":        Address(),
		"lightsout.metrics_address":      Address(),
		"lightsout.watch_dir":            Path(),
		"database.connection":            DatabaseURL(),
		"conductor.heartbeat_timeout":    Seconds(2, day),
		"conductor.heartbeat_interval":   Seconds(1, 3600),

		"ilo.client_timeout":                                   Seconds(1, day),
		"ipmi.retry_timeout":                                   Seconds(1, 3600),
		"ilo.client_port":                                      Int(1, 65535),
		"ilo.swift_ilo_container":                              NonEmpty(),
		"ilo.swift_object_expiry_timeout":                      Seconds(1, 7*day),
		"ilo.use_web_server_for_images":                        Bool(),
		"ilo.power_retry":                                      Int(1, 10000),
		"ilo.power_wait":                                       Number(false, 3600),
		"ilo.clean_priority_reset_ilo":                         Priority(),
		"ilo.clean_priority_reset_bios_to_default":             Priority(),
		"ilo.clean_priority_reset_secure_boot_keys_to_default": Priority(),
		"ilo.clean_priority_clear_secure_boot_keys":            Priority(),
		"ilo.clean_priority_reset_ilo_credential":              Priority(),
		"ilo.clean_priority_erase_devices":                     Priority(),
		"ilo.ca_file":                                          Path(),
		"ilo.verify_ca":                                        BoolOrPath(),
		"ilo.default_boot_mode":                                Enum("auto", "bios", "uefi"),
		"ilo.file_permission":                                  FileMode(),
		"ilo.kernel_append_params":                             Text(),
		"ilo.max_requests_per_ilo":                             Int(1, 1000),
		"ilo.max_connections":                                  Int(1, 1000000),
		"ilo.max_sessions":                                     Int(1, 1000000),
		"ilo.reset_ilo_settle":                                 Number(true, 3600),
		"ilo.session_idle":                                     Number(true, 86400),
		"ilo.swift_segment_size":                               Size(),

		"deploy.http_url":                        URL(),
		"deploy.http_root":                       Path(),
		"deploy.external_http_url":               URL(),
		"deploy.external_callback_url":           URL(),
		"deploy.erase_devices_priority":          Priority(),
		"deploy.erase_devices_metadata_priority": Priority(),
		"deploy.default_boot_mode":               Enum("auto", "bios", "uefi"),
		"deploy.efi_system_partition_size":       Int(1, 1<<20),

		"conductor.api_url":                 URL(),
		"conductor.deploy_callback_timeout": Seconds(1, 7*day),
		"conductor.clean_callback_timeout":  Seconds(1, 7*day),
		"conductor.inspect_timeout":         Seconds(1, 7*day),
		"conductor.soft_power_off_timeout":  Seconds(1, day),
		"conductor.clean_nodes":             Bool(),
		"conductor.deploy_kernel":           Text(),
		"conductor.deploy_ramdisk":          Text(),
		"conductor.bootloader":              Text(),

		"agent.heartbeat_timeout":                          Seconds(1, day),
		"agent.command_timeout":                            Number(true, 3600),
		"agent.post_deploy_get_power_state_retries":        Int(0, 10000),
		"agent.post_deploy_get_power_state_retry_interval": Number(false, 3600),

		"pxe.pxe_append_params":        Text(),
		"pxe.default_ephemeral_format": NonEmpty(),
		"pxe.tftp_root":                Path(),
		"pxe.tftp_master_path":         Path(),
		"pxe.tftp_server":              IP(),
		"pxe.ipxe_enabled":             Bool(),
		"pxe.pxe_bootfile_name":        NonEmpty(),
		"pxe.uefi_pxe_bootfile_name":   NonEmpty(),
		"pxe.ipxe_bootfile_name":       NonEmpty(),
		"pxe.uefi_ipxe_bootfile_name":  NonEmpty(),
		"pxe.pxe_config_template":      Path(),
		"pxe.uefi_pxe_config_template": Path(),
		"pxe.ipxe_config_template":     Path(),
		"pxe.builtin_server":           Bool(),
		"pxe.tftp_address":             Address(),
		"pxe.http_address":             Address(),

		"iscsi.chap":          Bool(),
		"iscsi.port":          Int(1, 65535),
		"iscsi.stall_timeout": Seconds(1, day),

		"dnsmasq.dhcp_hostsdir": Path(),
		"dnsmasq.dhcp_optsdir":  Path(),

		"swift.auth_url":               URL(),
		"swift.auth_version":           authVersion(),
		"swift.username":               Text(),
		"swift.password":               Text(),
		"swift.project_name":           Text(),
		"swift.user_domain_name":       Text(),
		"swift.project_domain_name":    Text(),
		"swift.region_name":            Text(),
		"swift.temp_url_key":           Text(),
		"swift.temp_url_digest":        Digest(),
		"swift.swift_max_retries":      Int(0, 100),
		"swift.large_object_threshold": Size(),
		"swift.segment_size":           Size(),
		"swift.segment_workers":        Int(1, 64),

		"keystone_authtoken.auth_url":             URL(),
		"keystone_authtoken.auth_uri":             URL(),
		"keystone_authtoken.auth_version":         authVersion(),
		"keystone_authtoken.username":             Text(),
		"keystone_authtoken.password":             Text(),
		"keystone_authtoken.project_name":         Text(),
		"keystone_authtoken.admin_user":           Text(),
		"keystone_authtoken.admin_password":       Text(),
		"keystone_authtoken.admin_tenant_name":    Text(),
		"keystone_authtoken.user_domain_name":     Text(),
		"keystone_authtoken.project_domain_name":  Text(),
		"keystone_authtoken.insecure":             Bool(),
		"keystone_authtoken.www_authenticate_uri": URL(),
		"keystone_authtoken.region_name":          Text(),

		"glance.swift_temp_url_key":                   Text(),
		"glance.swift_temp_url_duration":              Seconds(1, 7*day),
		"glance.swift_endpoint_url":                   URL(),
		"glance.swift_api_version":                    NonEmpty(),
		"glance.swift_account":                        Text(),
		"glance.swift_account_prefix":                 Text(),
		"glance.swift_container":                      NonEmpty(),
		"glance.swift_store_multiple_containers_seed": Int(0, 32),
		"glance.swift_temp_url_digest":                Digest(),
	}
}
