package iloapi

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults (Ironic's [ilo] defaults).
const (
	DefaultPort    = 443
	DefaultTimeout = 60 * time.Second
)

// Options is how to reach and trust one iLO.
type Options struct {
	// Host is the iLO host name or IP address (no port).
	Host string
	// Port is the HTTPS port (client_port, default 443).
	Port int
	// Username and Password are the iLO credentials.
	Username string
	Password string
	// Timeout bounds each call including its retries (client_timeout,
	// default 60 s).
	Timeout time.Duration
	// VerifyCA enables certificate chain verification (default true).
	VerifyCA bool
	// VerifyCASet is true when ilo_verify_ca was given explicitly.
	VerifyCASet bool
	// CAPath is a CA bundle file or a directory of PEM files; empty means
	// the system roots.
	CAPath string
	// CertPin is an expected SHA-256 fingerprint (lower-case hex, no
	// colons). With TOFU and an empty CertPin the first presented
	// certificate is recorded.
	CertPin string
	// TOFU enables trust-on-first-use pinning.
	TOFU bool
	// Insecure disables all certificate checks; only when set explicitly.
	Insecure bool
}

// Address returns host:port.
func (o Options) Address() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}

// Pinning reports whether certificate pinning is in force.
func (o Options) Pinning() bool { return o.TOFU || o.CertPin != "" }

// aliases returns the keys accepted for an option: Ironic's driver_info
// name first, then the short names of a plain Lua table.
func aliases(opt string) []string {
	switch opt {
	case "address":
		return []string{"ilo_address", "address", "host"}
	case "username":
		return []string{"ilo_username", "username", "user"}
	case "password":
		return []string{"ilo_password", "password"}
	case "port":
		return []string{"client_port", "port"}
	case "timeout":
		return []string{"client_timeout", "timeout"}
	case "verify_ca":
		return []string{"ilo_verify_ca", "verify_ca", "ca_file"}
	case "cert_pin":
		return []string{"ilo_cert_pin", "cert_pin"}
	case "insecure":
		return []string{"ilo_insecure", "insecure"}
	}
	return []string{opt}
}

func lookup(info map[string]any, opt string) (string, any, bool) {
	for _, k := range aliases(opt) {
		if v, ok := info[k]; ok && v != nil {
			if s, isStr := v.(string); isStr && strings.TrimSpace(s) == "" {
				continue
			}
			return k, v, true
		}
	}
	return aliases(opt)[0], nil, false
}

// ParseDriverInfo builds Options from a node's driver_info (ilo_address,
// ilo_username, ilo_password, client_port, client_timeout, ilo_verify_ca,
// ilo_cert_pin, ilo_insecure) or from a plain table with the short names
// (address, username, password, port, timeout, verify_ca, cert_pin,
// insecure). Errors name the field and the fix and never contain the
// password.
func ParseDriverInfo(info map[string]any) (Options, error) {
	o := Options{Port: DefaultPort, Timeout: DefaultTimeout, VerifyCA: true}
	var missing []string
	str := func(opt string) string {
		k, v, ok := lookup(info, opt)
		if !ok {
			missing = append(missing, k)
			return ""
		}
		return strings.TrimSpace(fmt.Sprint(v))
	}
	addr := str("address")
	o.Username = str("username")
	if k, v, ok := lookup(info, "password"); ok {
		s, isStr := v.(string)
		if !isStr {
			return o, fmt.Errorf("driver_info %s must be a string", k)
		}
		o.Password = s
	} else {
		missing = append(missing, k)
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("missing required iLO parameters in driver_info: %s (set them with `node set`)", strings.Join(missing, ", "))
	}

	host, port, err := splitAddress(addr)
	if err != nil {
		return o, fmt.Errorf("driver_info ilo_address %q: %w", addr, err)
	}
	o.Host = host
	if k, v, ok := lookup(info, "port"); ok {
		p, err := toInt(v)
		if err != nil || p < 1 || p > 65535 {
			return o, fmt.Errorf("driver_info %s %q is not a valid port: give an integer 1..65535", k, fmt.Sprint(v))
		}
		o.Port = p
	}
	if port != 0 {
		o.Port = port
	}
	if k, v, ok := lookup(info, "timeout"); ok {
		s, err := toFloat(v)
		if err != nil || s <= 0 || s > 86400 {
			return o, fmt.Errorf("driver_info %s %q is not valid: give a positive number of seconds", k, fmt.Sprint(v))
		}
		o.Timeout = time.Duration(s * float64(time.Second))
	}
	if k, v, ok := lookup(info, "verify_ca"); ok {
		o.VerifyCASet = true
		if b, isBool := parseBool(v); isBool {
			o.VerifyCA = b
		} else {
			path := fmt.Sprint(v)
			if _, err := os.Stat(path); err != nil {
				return o, fmt.Errorf("driver_info %s %q should be a Boolean or the path to a CA file/directory: %v", k, path, err)
			}
			o.CAPath = path
		}
	}
	if k, v, ok := lookup(info, "insecure"); ok {
		b, isBool := parseBool(v)
		if !isBool {
			return o, fmt.Errorf("driver_info %s %q must be a Boolean", k, fmt.Sprint(v))
		}
		o.Insecure = b
	}
	if k, v, ok := lookup(info, "cert_pin"); ok {
		if b, isBool := parseBool(v); isBool {
			o.TOFU = b
		} else {
			s := strings.ToLower(strings.TrimSpace(fmt.Sprint(v)))
			if s == "tofu" {
				o.TOFU = true
			} else {
				fp, err := NormalizeFingerprint(s)
				if err != nil {
					return o, fmt.Errorf("driver_info %s: %w (give true/\"tofu\" for trust on first use, or a SHA-256 fingerprint)", k, err)
				}
				o.CertPin = fp
			}
		}
	}
	return o, nil
}

// NormalizeFingerprint accepts a SHA-256 fingerprint as hex with optional
// colons and an optional "sha256:" prefix and returns lower-case hex.
func NormalizeFingerprint(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return s, nil
}

func splitAddress(addr string) (string, int, error) {
	addr = strings.TrimSpace(addr)
	for _, p := range []string{"https://", "http://"} {
		addr = strings.TrimPrefix(addr, p)
	}
	addr = strings.TrimSuffix(addr, "/")
	if addr == "" {
		return "", 0, fmt.Errorf("empty address")
	}
	if h, p, err := net.SplitHostPort(addr); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("bad port %q", p)
		}
		return h, n, nil
	}
	return strings.Trim(addr, "[]"), 0, nil
}

func toInt(v any) (int, error) {
	f, err := toFloat(v)
	if err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("not an integer")
	}
	return int(f), nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	}
	return strconv.ParseFloat(fmt.Sprint(v), 64)
}

// parseBool accepts bools and the strict boolean strings of oslo.
func parseBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}
