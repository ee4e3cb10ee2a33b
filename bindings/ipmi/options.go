// Package ipmi is an IPMI v2.0 RMCP+ (lanplus) client for the BMCs lightsout
// manages: power, chassis status, boot device, sensors (SDR walk), FRU
// (including the NIC capacity proliantutils derives from it), SEL and BMC
// information. It wraps github.com/bougou/go-ipmi; every call is bounded by
// the caller's context and retried like Ironic's ipmi_retry_timeout, and its
// errors carry a kind (login_failed, timeout, ipmi_error, ...) and never the
// password. The Lua face (`require("ipmi")`) is in module.go and lua.go.
package ipmi

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults, as Ironic's ipmitool driver.
const (
	DefaultPort         = 623
	DefaultCipherSuite  = 17
	DefaultRetryTimeout = 60 * time.Second
	// DefaultAttemptTimeout bounds one UDP exchange (ipmitool's -N 1 -R 1
	// spirit: short attempts, retried until RetryTimeout).
	DefaultAttemptTimeout = 2 * time.Second
)

// Options is how to reach one BMC over IPMI lanplus.
type Options struct {
	Host     string
	Port     int
	Username string
	Password string
	// PrivLevel is ADMINISTRATOR (default), OPERATOR or USER.
	PrivLevel string
	// CipherSuite is 17 (default) or 3 (or another suite the BMC offers).
	CipherSuite int
	// RetryTimeout bounds a call with its retries (ipmi_retry_timeout).
	RetryTimeout time.Duration
	// AttemptTimeout bounds one exchange with the BMC.
	AttemptTimeout time.Duration
}

// Address is host:port.
func (o Options) Address() string { return net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) }

// String describes the options without the password.
func (o Options) String() string {
	return fmt.Sprintf("ipmi://%s@%s (priv %s, cipher suite %d)", o.Username, o.Address(), o.PrivLevel, o.CipherSuite)
}

// keys lists the driver_info names of an option, Ironic's first, then the
// iLO fallbacks (an iLO node without ipmi_* keys reuses its iLO account),
// then the short names of a plain Lua table.
func keys(opt string) []string {
	switch opt {
	case "address":
		return []string{"ipmi_address", "ilo_address", "address", "host"}
	case "port":
		return []string{"ipmi_port", "port"}
	case "username":
		return []string{"ipmi_username", "ilo_username", "username", "user"}
	case "password":
		return []string{"ipmi_password", "ilo_password", "password"}
	}
	return []string{"ipmi_" + opt, opt}
}

func lookup(info map[string]any, opt string) (any, string, bool) {
	for _, k := range keys(opt) {
		if v, ok := info[k]; ok && v != nil && v != "" {
			return v, k, true
		}
	}
	return nil, "", false
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		if x == math.Trunc(x) {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func intOpt(info map[string]any, opt string, def, lo, hi int) (int, error) {
	v, k, ok := lookup(info, opt)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(asString(v)))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("driver_info %s=%q: must be a whole number from %d to %d", k, asString(v), lo, hi)
	}
	return n, nil
}

// ParseDriverInfo reads Ironic's ipmi_* driver_info keys (ipmi_address,
// ipmi_port, ipmi_username, ipmi_password, ipmi_priv_level,
// ipmi_cipher_suite, ipmi_bridging, ipmi_retry_timeout), falling back to
// ilo_address/ilo_username/ilo_password. Errors name the key and the fix and
// never carry the password.
func ParseDriverInfo(info map[string]any) (Options, error) {
	o := Options{RetryTimeout: DefaultRetryTimeout, AttemptTimeout: DefaultAttemptTimeout}
	v, _, ok := lookup(info, "address")
	if !ok {
		return o, fmt.Errorf("driver_info has no ipmi_address (nor ilo_address): set ipmi_address to the BMC's host name or IP")
	}
	o.Host = strings.TrimSpace(asString(v))
	if h, p, err := net.SplitHostPort(o.Host); err == nil && (strings.Count(o.Host, ":") == 1 || strings.HasPrefix(o.Host, "[")) {
		o.Host = h
		if _, _, has := lookup(info, "port"); !has {
			info = withKey(info, "ipmi_port", p)
		}
	}
	var err error
	if o.Port, err = intOpt(info, "port", DefaultPort, 1, 65535); err != nil {
		return o, err
	}
	if u, _, ok := lookup(info, "username"); ok {
		o.Username = asString(u)
	}
	if len(o.Username) > 16 {
		return o, fmt.Errorf("driver_info ipmi_username: %d characters, IPMI allows at most 16: use a shorter BMC account", len(o.Username))
	}
	if p, _, ok := lookup(info, "password"); ok {
		o.Password = asString(p)
	}
	if len(o.Password) > 20 {
		return o, fmt.Errorf("driver_info ipmi_password: longer than the 20 bytes IPMI 2.0 allows: set a shorter BMC password")
	}
	o.PrivLevel = "ADMINISTRATOR"
	if p, k, ok := lookup(info, "priv_level"); ok {
		switch s := strings.ToUpper(strings.TrimSpace(asString(p))); s {
		case "ADMINISTRATOR", "OPERATOR", "USER", "CALLBACK":
			o.PrivLevel = s
		default:
			return o, fmt.Errorf("driver_info %s=%q: must be ADMINISTRATOR, OPERATOR, USER or CALLBACK", k, s)
		}
	}
	if o.CipherSuite, err = intOpt(info, "cipher_suite", DefaultCipherSuite, 0, 19); err != nil {
		return o, err
	}
	if b, k, ok := lookup(info, "bridging"); ok {
		if s := strings.ToLower(asString(b)); s != "no" && s != "false" && s != "off" {
			return o, fmt.Errorf("driver_info %s=%q: bridging is not supported: set it to \"no\" or remove it", k, s)
		}
	}
	secs, err := intOpt(info, "retry_timeout", int(DefaultRetryTimeout/time.Second), 1, 3600)
	if err != nil {
		return o, err
	}
	o.RetryTimeout = time.Duration(secs) * time.Second
	return o, nil
}

func withKey(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for a, b := range m {
		c[a] = b
	}
	c[k] = v
	return c
}
