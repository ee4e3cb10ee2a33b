package agentapi

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the read-only configuration view (module.Config satisfies it).
type Config interface {
	Get(section, key string) (string, bool)
}

// CallbackURL is the API URL a ramdisk must call back (`ipa-api-url`):
// `[deploy] external_callback_url`, else `[conductor] api_url`, else
// serverURL (the listening address). A trailing "/" is removed.
func CallbackURL(cfg Config, serverURL string) string {
	if cfg != nil {
		for _, k := range [][2]string{{"deploy", "external_callback_url"}, {"conductor", "api_url"}} {
			if v, ok := cfg.Get(k[0], k[1]); ok && strings.TrimSpace(v) != "" {
				return strings.TrimRight(strings.TrimSpace(v), "/")
			}
		}
	}
	return strings.TrimRight(serverURL, "/")
}

// ListenAddr is the address to listen on: `[api] host_ip` (default
// 127.0.0.1) and `[api] port` (default 6385, Ironic's port).
func ListenAddr(cfg Config) (string, error) {
	host, port := "127.0.0.1", "6385"
	if cfg != nil {
		if v, ok := cfg.Get("api", "host_ip"); ok && strings.TrimSpace(v) != "" {
			host = strings.TrimSpace(v)
		}
		if v, ok := cfg.Get("api", "port"); ok && strings.TrimSpace(v) != "" {
			port = strings.TrimSpace(v)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("[api] port = %q: must be a TCP port number 0-65535", port)
	}
	if net.ParseIP(host) == nil && host != "localhost" {
		return "", fmt.Errorf("[api] host_ip = %q: must be an IP address such as 127.0.0.1", host)
	}
	return net.JoinHostPort(host, port), nil
}

// HeartbeatTimeout reads `[agent] heartbeat_timeout` (seconds, default 300).
func HeartbeatTimeout(cfg Config) (time.Duration, error) {
	if cfg == nil {
		return 300 * time.Second, nil
	}
	v, ok := cfg.Get("agent", "heartbeat_timeout")
	if !ok || strings.TrimSpace(v) == "" {
		return 300 * time.Second, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("[agent] heartbeat_timeout = %q: must be a positive number of seconds", v)
	}
	return time.Duration(n) * time.Second, nil
}
