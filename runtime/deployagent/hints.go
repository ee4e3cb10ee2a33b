package deployagent

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// GiB is 2^30 bytes (size hints are in GiB).
const GiB = 1 << 30

// MinRootSize is the smallest disk picked without hints (IPA's 4 GiB).
const MinRootSize = 4 * GiB

// hintTypes are the root device hints Ironic supports and their types.
var hintTypes = map[string]string{
	"size": "int", "model": "str", "wwn": "str", "serial": "str", "vendor": "str",
	"wwn_with_extension": "str", "wwn_vendor_extension": "str", "name": "str",
	"rotational": "bool", "hctl": "str", "by_path": "str",
}

// operators of oslo's specs_matcher, longest first so "s==" wins over "==".
var hintOps = []string{"<all-in>", "<in>", "<or>", "s!=", "s<=", "s>=", "s==", "s<", "s>", "!=", "<=", ">=", "==", "<", ">", "="}

// Hint is one parsed root device hint.
type Hint struct {
	Name   string
	Op     string   // "" for booleans
	Values []string // normalised (lower-case, URL-quoted) for strings
	Bool   bool
}

// ParseHintString parses the root_device kernel/floppy parameter
// ("serial=ABC,size=>= 100", values URL-quoted) into a hint map.
func ParseHintString(s string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("root_device %q: %q is not key=value", s, kv)
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			uv = v
		}
		out[strings.TrimSpace(k)] = uv
	}
	return out, nil
}

// splitOp returns the expression's operator ("" when none) and values,
// lower-cased and trimmed, as ironic-lib's _extract_hint_operator_and_values.
func splitOp(expr string) (string, []string) {
	expr = strings.ToLower(strings.TrimSpace(expr))
	for _, op := range hintOps {
		if strings.HasPrefix(expr, op) {
			var vals []string
			for _, v := range strings.Split(expr[len(op):], op) {
				if v = strings.TrimSpace(v); v != "" {
					vals = append(vals, v)
				}
			}
			return op, vals
		}
	}
	return "", []string{expr}
}

// normalizeStr is ironic-lib's _normalize_hint_expression values part.
func normalizeStr(v string) string {
	return strings.ReplaceAll(url.PathEscape(v), "%2F", "/")
}

// ParseHints validates hints (a node's properties.root_device, or
// ParseHintString's result) as ironic-lib's parse_root_device_hints does.
func ParseHints(raw map[string]any) ([]Hint, error) {
	var names []string
	for k := range raw {
		if _, ok := hintTypes[k]; !ok {
			valid := make([]string, 0, len(hintTypes))
			for n := range hintTypes {
				valid = append(valid, n)
			}
			sort.Strings(valid)
			return nil, fmt.Errorf("root device hint %q is invalid; valid hints are: %s", k, strings.Join(valid, ", "))
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Hint
	for _, name := range names {
		expr := fmt.Sprint(raw[name])
		if f, ok := raw[name].(float64); ok && f == float64(int64(f)) {
			expr = strconv.FormatInt(int64(f), 10)
		}
		if strings.TrimSpace(expr) == "" {
			return nil, fmt.Errorf("root device hint %q expression is empty", name)
		}
		h := Hint{Name: name}
		switch hintTypes[name] {
		case "bool":
			b, err := strictBool(expr)
			if err != nil {
				return nil, fmt.Errorf("root device hint %q is not a Boolean value: %q", name, expr)
			}
			h.Bool = b
		case "int":
			h.Op, h.Values = splitOp(expr)
			for _, v := range h.Values {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("root device hint %q is not an integer value: %q (size is in GiB)", name, expr)
				}
				if n <= 0 {
					return nil, fmt.Errorf("root device hint %q should be a positive integer: %q", name, expr)
				}
			}
			if h.Op == "" {
				h.Op = "=="
			}
		case "str":
			if _, isStr := raw[name].(string); !isStr {
				return nil, fmt.Errorf("root device hint %q is not a string value: %v", name, raw[name])
			}
			h.Op, h.Values = splitOp(expr)
			for i, v := range h.Values {
				if name == "name" && !strings.HasPrefix(v, "/dev/") {
					v = "/dev/" + v
				}
				h.Values[i] = normalizeStr(v)
			}
			if h.Op == "" {
				h.Op = "s=="
			}
		}
		out = append(out, h)
	}
	return out, nil
}

func strictBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, nil
	case "0", "f", "false", "off", "n", "no":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

func (d Disk) hintValue(name string) string {
	switch name {
	case "name":
		return d.Name
	case "model":
		return d.Model
	case "wwn":
		return d.WWN
	case "serial":
		return d.Serial
	case "vendor":
		return d.Vendor
	case "wwn_with_extension":
		return d.WWNWithExtension
	case "wwn_vendor_extension":
		return d.WWNVendorExtension
	case "hctl":
		return d.HCTL
	case "by_path":
		return d.ByPath
	}
	return ""
}

// Matches reports whether the disk satisfies every hint.
func (d Disk) Matches(hints []Hint) bool {
	for _, h := range hints {
		switch hintTypes[h.Name] {
		case "bool":
			if d.Rotational != h.Bool {
				return false
			}
		case "int":
			if !matchOp(h.Op, strconv.FormatInt(d.Size/GiB, 10), h.Values) {
				return false
			}
		default:
			v := strings.ToLower(strings.TrimSpace(d.hintValue(h.Name)))
			if v == "" {
				return false // IPA skips devices with an empty attribute
			}
			if !matchOp(h.Op, normalizeStr(v), h.Values) {
				return false
			}
		}
	}
	return true
}

// matchOp is oslo's specs_matcher.match for one operator.
func matchOp(op, x string, ys []string) bool {
	if len(ys) == 0 {
		return false
	}
	num := func(f func(a, b float64) bool) bool {
		a, err1 := strconv.ParseFloat(x, 64)
		b, err2 := strconv.ParseFloat(ys[0], 64)
		return err1 == nil && err2 == nil && f(a, b)
	}
	y := ys[0]
	switch op {
	case "=", ">=":
		return num(func(a, b float64) bool { return a >= b })
	case "==":
		return num(func(a, b float64) bool { return a == b })
	case "!=":
		return num(func(a, b float64) bool { return a != b })
	case "<=":
		return num(func(a, b float64) bool { return a <= b })
	case "<":
		return num(func(a, b float64) bool { return a < b })
	case ">":
		return num(func(a, b float64) bool { return a > b })
	case "s==":
		return x == y
	case "s!=":
		return x != y
	case "s<":
		return x < y
	case "s<=":
		return x <= y
	case "s>":
		return x > y
	case "s>=":
		return x >= y
	case "<in>":
		return strings.Contains(x, y)
	case "<all-in>":
		for _, v := range ys {
			if !strings.Contains(x, v) {
				return false
			}
		}
		return true
	case "<or>":
		for _, v := range ys {
			if x == v {
				return true
			}
		}
	}
	return false
}

// ErrNoRootDevice is wrapped when no disk fits.
var ErrNoRootDevice = errors.New("no suitable root device")

// PickRootDevice chooses the disk to write the image to, as IPA's
// get_os_install_device: the first disk (by name) matching the hints; with
// no hints the smallest writable disk of at least 4 GiB, or, when every
// disk is smaller (small test VMs), the largest one.
func PickRootDevice(disks []Disk, raw map[string]any) (Disk, error) {
	var usable []Disk
	for _, d := range disks {
		if !d.ReadOnly {
			usable = append(usable, d)
		}
	}
	if len(usable) == 0 {
		return Disk{}, fmt.Errorf("%w: the machine has no writable disk (check the storage driver modules in the ramdisk)", ErrNoRootDevice)
	}
	if len(raw) > 0 {
		hints, err := ParseHints(raw)
		if err != nil {
			return Disk{}, err
		}
		for _, d := range usable {
			if d.Matches(hints) {
				return d, nil
			}
		}
		return Disk{}, fmt.Errorf("%w: no disk matches the root device hints %v (disks: %s)", ErrNoRootDevice, raw, diskNames(usable))
	}
	sorted := append([]Disk(nil), usable...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Size < sorted[j].Size })
	for _, d := range sorted {
		if d.Size >= MinRootSize {
			return d, nil
		}
	}
	return sorted[len(sorted)-1], nil
}

func diskNames(ds []Disk) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s %d GiB", d.Name, d.Size/GiB))
	}
	return strings.Join(s, ", ")
}
