// Package inventory validates nodes as Ironic does (driver_info keys,
// capabilities, ports) and reads node lists to import (lightsout's own
// `node show --json` shape, and Ironic/Bifrost node lists).
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lightsout/lightsout/runtime/store"
)

// Drivers are the supported node drivers.
var drivers = []string{"agent_ilo", "iscsi_ilo", "pxe_ilo"}

// Drivers returns the supported driver names.
func Drivers() []string { return append([]string(nil), drivers...) }

// ValidateDriver checks a driver name.
func ValidateDriver(d string) error {
	for _, x := range drivers {
		if d == x {
			return nil
		}
	}
	return fmt.Errorf("unknown driver %q: use one of %s", d, strings.Join(drivers, ", "))
}

// ValidationError lists every problem found in one field.
type ValidationError struct {
	Field    string
	Problems []string
}

func (e *ValidationError) Error() string {
	return strings.Join(e.Problems, "; ")
}

// pyList renders keys like Ironic's Python list: ['a', 'b'].
func pyList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ValidateDriverInfo checks driver_info as Ironic's parse_driver_info: all
// missing required keys in one error, then all non-integer values in one
// error. With deploy set it also checks the driver's deploy keys.
func ValidateDriverInfo(driver string, info map[string]any, deploy bool) error {
	if err := ValidateDriver(driver); err != nil {
		return err
	}
	var missing []string
	for _, k := range []string{"ilo_address", "ilo_username", "ilo_password"} {
		if isEmpty(info[k]) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return &ValidationError{Field: "driver_info", Problems: []string{fmt.Sprintf(
			"The following required iLO parameters are missing from the node's driver_info: %s (set them with `lightsout node set NAME -i KEY=VALUE`)", pyList(missing))}}
	}
	var notInt []string
	for _, k := range []string{"client_port", "client_timeout", "console_port"} {
		v, ok := info[k]
		if !ok || isEmpty(v) {
			continue
		}
		if _, err := toInt(v); err != nil {
			notInt = append(notInt, k)
		}
	}
	if len(notInt) > 0 {
		return &ValidationError{Field: "driver_info", Problems: []string{fmt.Sprintf(
			"The following iLO parameters from the node's driver_info should be integers: %s", pyList(notInt))}}
	}
	if v, ok := info["client_port"]; ok && !isEmpty(v) {
		if p, _ := toInt(v); p < 1 || p > 65535 {
			return &ValidationError{Field: "driver_info", Problems: []string{fmt.Sprintf("client_port \"%v\" is not a valid port: use 1-65535", v)}}
		}
	}
	if v, ok := info["ilo_verify_ca"]; ok {
		if err := validateVerifyCA(v); err != nil {
			return err
		}
	}
	if !deploy {
		return nil
	}
	var need []string
	switch driver {
	case "agent_ilo", "iscsi_ilo":
		need = []string{"ilo_deploy_iso"}
		if !isEmpty(info["deploy_kernel"]) && !isEmpty(info["deploy_ramdisk"]) {
			need = nil // the deploy ISO is built from them (ilo-virtual-media)
		}
	case "pxe_ilo":
		need = []string{"deploy_kernel", "deploy_ramdisk"}
	}
	missing = nil
	for _, k := range need {
		if isEmpty(info[k]) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		what := "iLO virtual media deploy"
		if driver == "pxe_ilo" {
			what = "PXE bootloader"
		}
		return &ValidationError{Field: "driver_info", Problems: []string{fmt.Sprintf(
			"Error validating %s. Some parameters were missing in node's driver_info. Missing are: %s", what, pyList(missing))}}
	}
	return nil
}

func validateVerifyCA(v any) error {
	switch x := v.(type) {
	case bool:
		return nil
	case string:
		switch strings.ToLower(x) {
		case "true", "false", "yes", "no", "1", "0", "on", "off":
			return nil
		}
		if _, err := os.Stat(x); err == nil {
			return nil
		}
		return &ValidationError{Field: "driver_info", Problems: []string{fmt.Sprintf(
			"ilo_verify_ca %q should be a Boolean or the path to a file/directory of CA certificates (it is neither)", x)}}
	}
	return &ValidationError{Field: "driver_info", Problems: []string{"ilo_verify_ca should be a Boolean or the path to a file/directory of CA certificates"}}
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s) == ""
	}
	return false
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x != float64(int(x)) {
			return 0, errors.New("not an integer")
		}
		return int(x), nil
	case string:
		return strconv.Atoi(strings.TrimSpace(x))
	}
	return 0, errors.New("not an integer")
}

// capabilityRules are the allowed values of checked capabilities.
var capabilityRules = map[string][]string{
	"boot_mode":    {"bios", "uefi"},
	"secure_boot":  {"true", "false"},
	"boot_option":  {"local", "netboot"},
	"trusted_boot": {"true", "false"},
	"disk_label":   {"msdos", "gpt"},
}

// ParseCapabilities parses properties.capabilities ("k:v,k2:v2", or a map)
// into a map. Malformed elements are skipped and reported in the error
// (which is informational: the map is still usable).
func ParseCapabilities(v any) (map[string]string, error) {
	out := map[string]string{}
	switch x := v.(type) {
	case nil:
		return out, nil
	case map[string]any:
		for k, e := range x {
			out[k] = fmt.Sprint(e)
		}
		return out, nil
	case string:
		var bad []string
		for _, el := range strings.Split(x, ",") {
			el = strings.TrimSpace(el)
			if el == "" {
				continue
			}
			kv := strings.Split(el, ":")
			if len(kv) != 2 || strings.TrimSpace(kv[0]) == "" || strings.TrimSpace(kv[1]) == "" {
				bad = append(bad, el)
				continue
			}
			out[strings.TrimSpace(kv[0])] = strings.TrimSpace(kv[1])
		}
		if len(bad) > 0 {
			return out, fmt.Errorf("malformed capability %s: format should be 'key:val'", pyList(bad))
		}
		return out, nil
	}
	return out, fmt.Errorf("capabilities must be a string \"k:v,k2:v2\", got %T", v)
}

// ValidateCapabilities parses and checks capabilities from field (e.g.
// "properties/capabilities").
func ValidateCapabilities(field string, v any) error {
	caps, err := ParseCapabilities(v)
	if err != nil {
		return &ValidationError{Field: field, Problems: []string{err.Error()}}
	}
	var problems []string
	for _, k := range sortedKeys(capabilityRules) {
		val, ok := caps[k]
		if !ok {
			continue
		}
		allowed := capabilityRules[k]
		okv := false
		for _, a := range allowed {
			if strings.EqualFold(val, a) {
				okv = true
			}
		}
		if !okv {
			problems = append(problems, fmt.Sprintf("The parameter '%s' from %s has an invalid value: '%s'. Acceptable values are: %s.",
				k, field, val, strings.Join(allowed, ", ")))
		}
	}
	if len(problems) > 0 {
		return &ValidationError{Field: field, Problems: problems}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ValidateMAC checks a MAC address.
func ValidateMAC(mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("invalid MAC address %q: use the form 52:54:00:12:34:56", mac)
	}
	return nil
}

// ValidateNode checks a whole node for create/import/set: name, driver,
// driver_info (without deploy keys), capabilities, ports.
func ValidateNode(n *store.Node) error {
	if strings.TrimSpace(n.Name) == "" {
		return &ValidationError{Field: "name", Problems: []string{"the node name is empty: give every node a unique name"}}
	}
	if !utf8.ValidString(n.Name) || strings.ContainsFunc(n.Name, unicode.IsControl) {
		return &ValidationError{Field: "name", Problems: []string{fmt.Sprintf("node name %q is not valid UTF-8 text (or holds control characters): use letters, digits, '-', '_' and '.'", strings.ToValidUTF8(n.Name, "?"))}}
	}
	if strings.ContainsAny(n.Name, " \t\n/") {
		return &ValidationError{Field: "name", Problems: []string{fmt.Sprintf("node name %q must not contain spaces or '/'", n.Name)}}
	}
	for _, f := range []struct {
		name string
		m    map[string]any
	}{{"driver_info", n.DriverInfo}, {"properties", n.Properties}, {"instance_info", n.InstanceInfo}} {
		if path := invalidUTF8(f.m, f.name); path != "" {
			return &ValidationError{Field: path, Problems: []string{path + " is not valid UTF-8: give the value (and key) as UTF-8 text"}}
		}
	}
	if err := ValidateDriverInfo(n.Driver, n.DriverInfo, false); err != nil {
		return err
	}
	if err := ValidateCapabilities("properties/capabilities", n.Properties["capabilities"]); err != nil {
		return err
	}
	if c, ok := n.InstanceInfo["capabilities"]; ok {
		if err := ValidateCapabilities("instance_info/capabilities", instanceCaps(c)); err != nil {
			return err
		}
	}
	for _, p := range n.Ports {
		if err := ValidateMAC(p.Address); err != nil {
			return &ValidationError{Field: "ports", Problems: []string{err.Error()}}
		}
	}
	return nil
}

// instanceCaps turns instance_info.capabilities (map or JSON string) into
// the "k:v" form or map ValidateCapabilities takes.
func instanceCaps(v any) any {
	if s, ok := v.(string); ok && strings.HasPrefix(strings.TrimSpace(s), "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err == nil {
			return m
		}
	}
	return v
}

// invalidUTF8 returns the path of the first key or string value of v that
// is not valid UTF-8 ("" when all are), so it is refused instead of stored
// mangled (JSON replaces invalid bytes with U+FFFD).
func invalidUTF8(v any, path string) string {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return path
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if !utf8.ValidString(k) {
				return path + "/" + strings.ToValidUTF8(k, "?")
			}
			if p := invalidUTF8(x[k], path+"/"+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := invalidUTF8(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}
