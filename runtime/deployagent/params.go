package deployagent

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultListenPort is IPA's agent API port (ipa-listen-port).
const DefaultListenPort = 9999

// Params are the agent's boot parameters, read from the kernel command
// line and the virtual floppy's parameters.txt with IPA's key names.
type Params struct {
	// APIURLs are the callback API URLs (ipa-api-url, comma separated);
	// the first that answers a lookup is used.
	APIURLs []string
	// Token is the pre-generated agent token (ipa-agent-token). Secret.
	Token string
	// BootIF is the boot interface MAC (BOOTIF, "01-aa-bb-…" or a plain MAC), normalised.
	BootIF string
	// AdvertiseHost and AdvertisePort form the callback_url the agent
	// advertises (ipa-advertise-host, ipa-advertise-port); an empty host
	// means the local address that reaches the API.
	AdvertiseHost string
	AdvertisePort int
	// ListenPort is the port the agent API listens on (ipa-listen-port, default 9999).
	ListenPort int
	// Debug turns on debug logging (ipa-debug).
	Debug bool
	// BootMethod is "vmedia" when booted from virtual media (boot_method).
	BootMethod string
	// Static is the address from ip=…; nil means DHCP on every NIC with link.
	Static *StaticIP
	// RootDevice are root device hints from the parameters (root_device).
	RootDevice string
	// Insecure skips TLS verification of image downloads and the API (ipa-insecure).
	Insecure bool
	// CAFile is a PEM bundle trusted for https (ipa-cafile).
	CAFile string
	// Raw holds every parameter as given.
	Raw map[string]string
}

// ParseCmdline splits a kernel command line into key=value pairs as the
// kernel does: whitespace separated words, double quotes group a value
// with spaces (`key="a b"`), bare words are kept with an empty value under
// their own name only if they contain no '=' (they are ignored here).
func ParseCmdline(cmdline string) map[string]string {
	out := map[string]string{}
	var word strings.Builder
	inQuote := false
	flush := func() {
		w := word.String()
		word.Reset()
		// a quoted key holding blanks ("a b"=1) names no parameter: dropped
		if k, v, ok := strings.Cut(w, "="); ok && k != "" && !strings.ContainsAny(k, " \t\n\r") {
			out[k] = v
		}
	}
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if word.Len() > 0 {
				flush()
			}
		default:
			word.WriteRune(r)
		}
	}
	if word.Len() > 0 {
		flush()
	}
	return out
}

// ParseParametersTxt parses the floppy's parameters.txt: key=value pairs
// separated by newlines or spaces (IPA accepts both; Ironic writes one line
// per key), CRs ignored.
func ParseParametersTxt(data []byte) map[string]string {
	return ParseCmdline(strings.ReplaceAll(string(data), "\r", ""))
}

// MergeParams merges the kernel command line and the floppy's parameters
// as IPA's get_agent_params does: floppy values win.
func MergeParams(cmdline, floppy map[string]string) map[string]string {
	out := make(map[string]string, len(cmdline)+len(floppy))
	for k, v := range cmdline {
		out[k] = v
	}
	for k, v := range floppy {
		out[k] = v
	}
	return out
}

// WantsFloppy reports whether the floppy must be read: IPA reads it when
// booted from virtual media or when the command line has no ipa-api-url.
func WantsFloppy(cmdline map[string]string) bool {
	return cmdline["boot_method"] == "vmedia" || cmdline["ipa-api-url"] == ""
}

func boolParam(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on", "y", "t":
		return true
	}
	return false
}

// ParseParams validates raw parameters into Params. Errors name the
// parameter and the expected form.
func ParseParams(raw map[string]string) (Params, error) {
	p := Params{Raw: raw, AdvertisePort: 0, ListenPort: DefaultListenPort}
	for _, u := range strings.Split(raw["ipa-api-url"], ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return Params{}, fmt.Errorf("ipa-api-url %q: must be an http(s) URL such as http://10.0.0.1:6385", u)
		}
		p.APIURLs = append(p.APIURLs, strings.TrimRight(u, "/"))
	}
	if len(p.APIURLs) == 0 {
		return Params{}, fmt.Errorf("ipa-api-url is missing: the kernel command line or the virtual floppy's parameters.txt must give the lightsout callback URL")
	}
	p.Token = raw["ipa-agent-token"]
	if b := strings.TrimSpace(raw["BOOTIF"]); b != "" {
		mac := NormalizeBootIF(b)
		if mac == "" {
			return Params{}, fmt.Errorf("BOOTIF %q: must be a MAC address (aa:bb:cc:dd:ee:ff or 01-aa-bb-cc-dd-ee-ff)", b)
		}
		p.BootIF = mac
	}
	p.AdvertiseHost = strings.TrimSpace(raw["ipa-advertise-host"])
	for _, kp := range []struct {
		key string
		dst *int
	}{{"ipa-listen-port", &p.ListenPort}, {"ipa-advertise-port", &p.AdvertisePort}} {
		if v := strings.TrimSpace(raw[kp.key]); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return Params{}, fmt.Errorf("%s %q: must be a TCP port 1-65535", kp.key, v)
			}
			*kp.dst = n
		}
	}
	if p.AdvertisePort == 0 {
		p.AdvertisePort = p.ListenPort
	}
	p.Debug = boolParam(raw["ipa-debug"])
	p.Insecure = boolParam(raw["ipa-insecure"])
	p.CAFile = raw["ipa-cafile"]
	p.BootMethod = raw["boot_method"]
	p.RootDevice = raw["root_device"]
	if v := strings.TrimSpace(raw["ip"]); v != "" {
		st, err := ParseStaticIP(v)
		if err != nil {
			return Params{}, err
		}
		p.Static = st
	}
	return p, nil
}

// NormalizeBootIF returns the MAC of a BOOTIF value (pxelinux's
// "01-aa-bb-cc-dd-ee-ff" or a plain MAC) in lower-case colon form, or "".
func NormalizeBootIF(v string) string {
	v = strings.TrimSpace(v)
	if len(v) == 20 && strings.HasPrefix(v, "01-") {
		v = v[3:]
	}
	hw, err := net.ParseMAC(strings.ReplaceAll(v, "-", ":"))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// StaticIP is a static address from the Linux ip= syntax
// ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>[:<dns0>[:<dns1>]].
type StaticIP struct {
	Address  net.IP
	Mask     net.IPMask
	Gateway  net.IP
	Hostname string
	Device   string // "" means the boot interface, else every NIC with link
	DNS      []net.IP
}

// ParseStaticIP parses the ip= parameter. "dhcp", "on", "any" (and empty)
// mean DHCP and return nil.
func ParseStaticIP(v string) (*StaticIP, error) {
	switch strings.ToLower(v) {
	case "", "dhcp", "on", "any", "both", "bootp", "rarp":
		return nil, nil
	}
	f := strings.Split(v, ":")
	bad := func(field, why string) error {
		return fmt.Errorf("ip=%s: %s %s; expected ip=<client>::<gateway>:<netmask>:<hostname>:<device>:off", v, field, why)
	}
	if len(f) < 4 {
		return nil, bad("value", "has too few fields")
	}
	st := &StaticIP{Address: net.ParseIP(f[0])}
	if st.Address == nil || st.Address.To4() == nil {
		return nil, bad("client address", "is not an IPv4 address")
	}
	if f[2] != "" {
		if st.Gateway = net.ParseIP(f[2]); st.Gateway == nil || st.Gateway.To4() == nil {
			return nil, bad("gateway", "is not an IPv4 address")
		}
	}
	switch m := f[3]; {
	case m == "":
		st.Mask = net.CIDRMask(24, 32)
	case !strings.Contains(m, "."):
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > 32 {
			return nil, bad("netmask", "is not a prefix length 0-32")
		}
		st.Mask = net.CIDRMask(n, 32)
	default:
		ip := net.ParseIP(m).To4()
		if ip == nil {
			return nil, bad("netmask", "is not a dotted netmask")
		}
		st.Mask = net.IPMask(ip)
		if ones, bits := st.Mask.Size(); ones == 0 && bits == 0 {
			return nil, bad("netmask", "is not contiguous")
		}
	}
	if len(f) > 4 {
		st.Hostname = f[4]
	}
	if len(f) > 5 {
		st.Device = f[5]
	}
	if len(f) > 6 {
		switch strings.ToLower(f[6]) {
		case "", "off", "none", "static":
		default:
			return nil, bad("autoconf", "must be off for a static address")
		}
	}
	for _, d := range f[min(len(f), 7):] {
		if d == "" {
			continue
		}
		ip := net.ParseIP(d)
		if ip == nil {
			return nil, bad("DNS server", "is not an IP address")
		}
		st.DNS = append(st.DNS, ip)
	}
	return st, nil
}
