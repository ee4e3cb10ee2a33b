package redfish

import (
	"encoding/json"
	"strconv"
	"strings"
)

// get walks a decoded JSON object along keys (case-sensitive first, then
// case-insensitive, since iLO 4 mixes "links" and "Links").
func get(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		v, found := obj[k]
		if !found {
			for kk, vv := range obj {
				if strings.EqualFold(kk, k) {
					v, found = vv, true
					break
				}
			}
		}
		if !found {
			return nil
		}
		cur = v
	}
	return cur
}

// str returns the string at keys ("" when absent or not a string).
func str(m map[string]any, keys ...string) string {
	s, _ := get(m, keys...).(string)
	return s
}

// obj returns the object at keys (nil when absent).
func obj(m map[string]any, keys ...string) map[string]any {
	o, _ := get(m, keys...).(map[string]any)
	return o
}

// num returns the number at keys.
func num(m map[string]any, keys ...string) (float64, bool) {
	switch v := get(m, keys...).(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// boolean returns the bool at keys.
func boolean(m map[string]any, keys ...string) (bool, bool) {
	b, ok := get(m, keys...).(bool)
	return b, ok
}

// list returns the array at keys.
func list(m map[string]any, keys ...string) []any {
	l, _ := get(m, keys...).([]any)
	return l
}

// link returns the URI of a link object at keys: {"@odata.id": ...}
// (Redfish) or {"href": ...} (HP RIS style inside iLO 4 OEM sections).
func link(m map[string]any, keys ...string) string {
	switch v := get(m, keys...).(type) {
	case map[string]any:
		if s := str(v, "@odata.id"); s != "" {
			return s
		}
		return str(v, "href")
	case []any:
		// iLO 5 2.72 turned some OEM links into arrays.
		for _, e := range v {
			if o, ok := e.(map[string]any); ok {
				if s := str(o, "@odata.id"); s != "" {
					return s
				}
			}
		}
	case string:
		return v
	}
	return ""
}

// Oem returns the HPE OEM section of a resource: Oem.Hpe on iLO 5 and
// later, Oem.Hp on iLO 4, and which key held it.
func Oem(m map[string]any) (map[string]any, string) {
	if o := obj(m, "Oem", "Hpe"); o != nil {
		return o, "Hpe"
	}
	if o := obj(m, "Oem", "Hp"); o != nil {
		return o, "Hp"
	}
	return nil, ""
}

// oemLink finds a link in the OEM section under Links or links.
func oemLink(m map[string]any, name string) string {
	o, _ := Oem(m)
	if o == nil {
		return ""
	}
	if s := link(o, "Links", name); s != "" {
		return s
	}
	return link(o, "links", name)
}

// actionTarget returns Actions[name].target (name with or without "#").
func actionTarget(actions map[string]any, name string) string {
	if actions == nil {
		return ""
	}
	name = strings.TrimPrefix(name, "#")
	for k, v := range actions {
		if strings.TrimPrefix(k, "#") == name {
			if o, ok := v.(map[string]any); ok {
				return str(o, "target")
			}
		}
	}
	return ""
}

// oemAction finds an OEM action whose name ends with suffix (e.g.
// "ComputerSystemExt.PowerButton" matches both "#HpeComputerSystemExt.PowerButton"
// and "#HpComputerSystemExt.PowerButton").
func oemAction(m map[string]any, suffix string) string {
	o, _ := Oem(m)
	acts := obj(o, "Actions")
	for k, v := range acts {
		if strings.HasSuffix(k, suffix) {
			if a, ok := v.(map[string]any); ok {
				return str(a, "target")
			}
		}
	}
	return ""
}

// allowable returns the "<param>@Redfish.AllowableValues" list of an action.
func allowable(actions map[string]any, name, param string) []string {
	name = strings.TrimPrefix(name, "#")
	for k, v := range actions {
		if strings.TrimPrefix(k, "#") != name {
			continue
		}
		a, _ := v.(map[string]any)
		var out []string
		for _, e := range list(a, param+"@Redfish.AllowableValues") {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// members returns the member URIs of a collection (Members[] or, RIS
// style, links.Member[] / Items[].links.self).
func members(m map[string]any) []string {
	var out []string
	for _, e := range list(m, "Members") {
		if o, ok := e.(map[string]any); ok {
			if s := str(o, "@odata.id"); s != "" {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		for _, e := range list(m, "links", "Member") {
			if o, ok := e.(map[string]any); ok {
				if s := str(o, "href"); s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// VMState is the decoded OEM-relevant state of a VirtualMedia member.
type VMState struct {
	MediaTypes      []string
	Image           string
	Inserted        bool
	WriteProtected  bool
	ConnectedVia    string
	BootOnNextReset bool
	HasBootOnNext   bool
	InsertTarget    string // standard #VirtualMedia.InsertMedia
	EjectTarget     string // standard #VirtualMedia.EjectMedia
	OemInsertTarget string // #Hpe(iLO)VirtualMedia.InsertVirtualMedia
	OemEjectTarget  string
	OemKey          string // "Hpe" or "Hp"
}

// DecodeVirtualMedia reads a VirtualMedia member, standard and OEM parts.
func DecodeVirtualMedia(m map[string]any) VMState {
	var v VMState
	for _, t := range list(m, "MediaTypes") {
		if s, ok := t.(string); ok {
			v.MediaTypes = append(v.MediaTypes, s)
		}
	}
	v.Image = str(m, "Image")
	v.Inserted, _ = boolean(m, "Inserted")
	if !v.Inserted && v.Image != "" {
		if _, has := boolean(m, "Inserted"); !has {
			v.Inserted = true
		}
	}
	v.WriteProtected, _ = boolean(m, "WriteProtected")
	v.ConnectedVia = str(m, "ConnectedVia")
	o, key := Oem(m)
	v.OemKey = key
	v.BootOnNextReset, v.HasBootOnNext = boolean(o, "BootOnNextServerReset")
	acts := obj(m, "Actions")
	v.InsertTarget = actionTarget(acts, "VirtualMedia.InsertMedia")
	v.EjectTarget = actionTarget(acts, "VirtualMedia.EjectMedia")
	v.OemInsertTarget = oemAction(m, "VirtualMedia.InsertVirtualMedia")
	v.OemEjectTarget = oemAction(m, "VirtualMedia.EjectVirtualMedia")
	return v
}

// Serves reports whether the slot serves device FLOPPY or CDROM.
func (v VMState) Serves(device string) bool {
	for _, t := range v.MediaTypes {
		switch strings.ToUpper(t) {
		case "CD", "DVD":
			if device == "CDROM" {
				return true
			}
		case "FLOPPY", "USBSTICK":
			if device == "FLOPPY" {
				return true
			}
		}
	}
	return false
}

// SupportedBootMode maps Oem.Hp(e).Bios.UefiClass to proliantutils'
// strings: 2 both, 3 UEFI only, anything else legacy only.
func SupportedBootMode(system map[string]any) string {
	o, _ := Oem(system)
	c, _ := num(o, "Bios", "UefiClass")
	switch int(c) {
	case 2:
		return "legacy bios and uefi"
	case 3:
		return "uefi only"
	}
	return "legacy bios only"
}

// IsGPU reports a PCI device of display class (3) with subclass 0, 1, 2
// or 128.
func IsGPU(dev map[string]any) bool {
	cls, ok := num(dev, "ClassCode")
	if !ok || int(cls) != 3 {
		return false
	}
	sub, _ := num(dev, "SubclassCode")
	switch int(sub) {
	case 0, 1, 2, 128:
		return true
	}
	return false
}
