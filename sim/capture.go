package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Capture replay: a server whose Redfish answers come from a captured tree
// (the layout of `lightsout capture` and of ../shared/fixtures/captures: the
// resource at /redfish/v1/Systems/1/ is Systems/1/index.json, $metadata is
// $metadata/index.xml) with the simulator's state laid over it:
//
//   - power: Systems and Chassis PowerState, Oem.Hpe.PostState, changed by
//     ComputerSystem.Reset and the OEM power button;
//   - boot override: Boot.BootSourceOverrideEnabled/Target (PATCH Systems/1);
//   - virtual media: Image, ImageName, Inserted, ConnectedVia, WriteProtected,
//     Oem.Hpe.BootOnNextServerReset (standard and OEM actions, PATCH);
//   - BIOS: PATCH/PUT of the settings object is kept pending (shown there) and
//     applied to the current Attributes at the next power-on or reset; an
//     attribute the captured BIOS does not have is refused with
//     Base.1.4.PropertyUnknown, as an iLO does;
//   - secure boot: SecureBootEnable (PATCH), SecureBootCurrentBoot follows it
//     at the next boot in UEFI mode, ResetKeys;
//   - sessions: login, the Sessions collection, GET/DELETE of one session.
//
// Everything else is answered byte for byte from the tree; writes to other
// resources get the iLO's 405. A captured tree has no RIBCL: /ribcl is 404.

// captureTree is the index of one captured tree.
type captureTree struct {
	dir   string
	files map[string]string // canonical URI -> file
	// canonical URIs of the resources with an overlay
	system, chassis, bios, biosSettings, secureBoot, manager, sessions string
	vmedia                                                             map[string]string // canonical URI -> "CDROM" | "FLOPPY"
	biosAttrs                                                          map[string]any    // captured current BIOS attributes
}

// captureInfo is what a captured tree says about its machine.
type captureInfo struct {
	Generation Generation
	Hardware   Hardware
	Power      string // "ON" | "OFF"
	BootMode   string // "UEFI" | "LEGACY"
	SecureBoot bool
}

var captureNameRE = regexp.MustCompile(`[^a-z0-9-]+`)

// captureName is the server name of a captured tree: its folder name.
func captureName(dir string) string {
	n := captureNameRE.ReplaceAllString(strings.ToLower(filepath.Base(filepath.Clean(dir))), "-")
	if n = strings.Trim(n, "-"); n == "" {
		n = "capture"
	}
	return n
}

// loadCapture indexes the tree at dir and reads what the overlay needs.
func loadCapture(dir string) (*captureTree, captureInfo, error) {
	var info captureInfo
	t := &captureTree{dir: dir, files: map[string]string{}, vmedia: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (d.Name() != "index.json" && d.Name() != "index.xml") {
			return nil
		}
		rel, err := filepath.Rel(dir, filepath.Dir(p))
		if err != nil {
			return err
		}
		uri := rf
		if rel != "." {
			uri += "/" + filepath.ToSlash(rel)
		}
		t.files[canon(uri)] = p
		return nil
	})
	if err != nil {
		return nil, info, fmt.Errorf("sim: --capture %s: %w", dir, err)
	}
	root, err := t.read(canon(rf))
	if err != nil {
		return nil, info, fmt.Errorf("sim: --capture %s: no service root (index.json at the top of the tree): %w", dir, err)
	}
	mgrType := ""
	if o, ok := root["Oem"].(map[string]any); ok {
		for _, v := range o {
			if m, ok := v.(map[string]any); ok {
				if ms, ok := m["Manager"].([]any); ok && len(ms) > 0 {
					if m0, ok := ms[0].(map[string]any); ok {
						mgrType, _ = m0["ManagerType"].(string)
					}
				}
			}
		}
	}
	switch mgrType {
	case "iLO 4":
		info.Generation = Gen9
	case "iLO 5":
		info.Generation = Gen10
	case "iLO 6":
		info.Generation = Gen11
	case "iLO 7":
		info.Generation = Gen12
	default:
		info.Generation = Gen10
	}
	t.sessions = canon(rf + "/SessionService/Sessions")
	if l, ok := root["Links"].(map[string]any); ok {
		if u := odataID(l["Sessions"]); u != "" {
			t.sessions = canon(u)
		}
	}
	sys, err := t.firstMember(root, "Systems")
	if err != nil {
		return nil, info, fmt.Errorf("sim: --capture %s: %w", dir, err)
	}
	t.system = canon(odataIDOr(sys, ""))
	t.chassis = t.firstMemberURI(root, "Chassis")
	t.manager = t.firstMemberURI(root, "Managers")

	hw := DefaultHardware(info.Generation, 0)
	hw.Model, _ = sys["Model"].(string)
	if v, _ := sys["UUID"].(string); v != "" {
		hw.UUID = v
	}
	if v, _ := sys["SerialNumber"].(string); v != "" {
		hw.SerialNumber = v
	}
	if v, _ := sys["BiosVersion"].(string); v != "" {
		hw.ROMFirmware = v
	}
	if ms, ok := sys["MemorySummary"].(map[string]any); ok {
		if gib, ok := ms["TotalSystemMemoryGiB"].(float64); ok && gib >= 1 {
			hw.MemoryMB = int(math.Round(gib)) * 1024
		}
	}
	if ps, ok := sys["ProcessorSummary"].(map[string]any); ok {
		n, _ := ps["Count"].(float64)
		model, _ := ps["Model"].(string)
		if n >= 1 {
			c := hw.CPUs[0]
			c.Model = strings.TrimSpace(model)
			if procs, err := t.read(canon(odataID(sys["Processors"]))); err == nil {
				if ms := members(procs); len(ms) > 0 {
					if p0, err := t.read(canon(ms[0])); err == nil {
						if v, ok := p0["TotalCores"].(float64); ok && v >= 1 {
							c.Cores = int(v)
						}
						if v, ok := p0["TotalThreads"].(float64); ok && v >= 1 {
							c.Threads = int(v)
						}
						if v, ok := p0["MaxSpeedMHz"].(float64); ok && v >= 1 {
							c.SpeedMHz = int(v)
						}
					}
				}
			}
			hw.CPUs = make([]CPU, int(n))
			for i := range hw.CPUs {
				hw.CPUs[i] = c
			}
		}
	}
	hw.NICs = nil
	if eth, err := t.read(canon(odataID(sys["EthernetInterfaces"]))); err == nil {
		for _, m := range members(eth) {
			if e, err := t.read(canon(m)); err == nil {
				mac, _ := e["MACAddress"].(string)
				if len(mac) == 17 {
					hw.NICs = append(hw.NICs, NIC{MAC: strings.ToLower(mac), Embedded: true, SpeedGb: 1})
				}
			}
		}
	}
	hw.LogicalDrivesGB = []int{}
	if v, _ := sys["PowerState"].(string); v == "On" {
		info.Power = "ON"
	} else {
		info.Power = "OFF"
	}

	// BIOS: current attributes and the settings object.
	t.bios = canon(odataID(sys["Bios"]))
	uefiClass := 0
	if o, ok := sys["Oem"].(map[string]any); ok {
		for _, v := range o {
			if m, ok := v.(map[string]any); ok {
				if b, ok := m["Bios"].(map[string]any); ok {
					if c, ok := b["UefiClass"].(float64); ok {
						uefiClass = int(c)
					}
				}
			}
		}
	}
	info.BootMode = "UEFI"
	if b, err := t.read(t.bios); err == nil {
		t.biosAttrs, _ = b["Attributes"].(map[string]any)
		if st, ok := b["@Redfish.Settings"].(map[string]any); ok {
			t.biosSettings = canon(odataID(st["SettingsObject"]))
		}
	}
	if t.biosSettings == "" && t.bios != "" {
		t.biosSettings = t.bios + "/settings"
	}
	mode, hasMode := t.biosAttrs["BootMode"].(string)
	switch {
	case uefiClass == 3 || !hasMode:
		hw.SupportedBootModes = "UEFI_ONLY"
	default:
		hw.SupportedBootModes = "LEGACY_UEFI"
		if mode == "LegacyBios" {
			info.BootMode = "LEGACY"
		}
	}

	t.secureBoot = canon(odataID(sys["SecureBoot"]))
	if sb, err := t.read(t.secureBoot); err == nil {
		info.SecureBoot, _ = sb["SecureBootEnable"].(bool)
	}

	if mgr, err := t.read(t.manager); err == nil {
		if vm, err := t.read(canon(odataID(mgr["VirtualMedia"]))); err == nil {
			for _, m := range members(vm) {
				v, err := t.read(canon(m))
				if err != nil {
					continue
				}
				types, _ := v["MediaTypes"].([]any)
				for _, ty := range types {
					switch ty {
					case "CD", "DVD":
						t.vmedia[canon(m)] = "CDROM"
					case "Floppy", "USBStick":
						if t.vmedia[canon(m)] == "" {
							t.vmedia[canon(m)] = "FLOPPY"
						}
					}
				}
			}
		}
		if fw, ok := mgr["FirmwareVersion"].(string); ok && fw != "" {
			// "iLO 5 v2.70" / "iLO 6 v1.66" / "1.13.01": keep the version.
			if i := strings.LastIndex(fw, " v"); i >= 0 {
				fw = fw[i+2:]
			}
			hw.ILOFirmware = fw
		}
	}
	if hw.Model == "" {
		hw.Model = DefaultHardware(info.Generation, 0).Model
	}
	info.Hardware = hw
	return t, info, nil
}

func odataID(v any) string {
	if m, ok := v.(map[string]any); ok {
		s, _ := m["@odata.id"].(string)
		return s
	}
	return ""
}

func odataIDOr(m map[string]any, def string) string {
	if s, ok := m["@odata.id"].(string); ok {
		return s
	}
	return def
}

func members(coll map[string]any) []string {
	ms, _ := coll["Members"].([]any)
	var out []string
	for _, m := range ms {
		if u := odataID(m); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// read parses the captured resource at the canonical URI u.
func (t *captureTree) read(u string) (map[string]any, error) {
	p, ok := t.files[u]
	if !ok {
		return nil, fmt.Errorf("%s is not in the tree", u)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

func (t *captureTree) firstMember(root map[string]any, coll string) (map[string]any, error) {
	c, err := t.read(canon(odataID(root[coll])))
	if err != nil {
		return nil, fmt.Errorf("%s collection: %w", coll, err)
	}
	ms := members(c)
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s collection has no members", coll)
	}
	return t.read(canon(ms[0]))
}

func (t *captureTree) firstMemberURI(root map[string]any, coll string) string {
	c, err := t.read(canon(odataID(root[coll])))
	if err != nil {
		return ""
	}
	if ms := members(c); len(ms) > 0 {
		return canon(ms[0])
	}
	return ""
}

// applyCapture makes srv a replay of the tree. fresh: no saved state, so
// the state starts as captured.
func (s *Server) applyCapture(t *captureTree, info captureInfo, fresh bool) {
	s.capture = t
	s.hw = info.Hardware
	if !fresh {
		return
	}
	s.st.Power = info.Power
	s.st.BootMode = info.BootMode
	s.st.PendingBootMode = info.BootMode
	s.st.SecureBootEnable = info.SecureBoot
	s.st.SecureBootCurrent = info.SecureBoot && info.BootMode == "UEFI"
	s.st.PersistentBoot = []string{"CDROM", "HDD", "NETWORK", "USB"}
}

// applyBIOSLocked applies the pending BIOS settings of a captured tree at
// boot (called from bootLocked).
func (s *Server) applyBIOSLocked() {
	if len(s.st.BIOSPending) == 0 {
		return
	}
	if s.st.BIOSApplied == nil {
		s.st.BIOSApplied = map[string]any{}
	}
	for k, v := range s.st.BIOSPending {
		s.st.BIOSApplied[k] = v
	}
	s.st.BIOSPending = nil
}

// serveCapture answers a request to a capture replay server.
func (s *Server) serveCapture(w http.ResponseWriter, r *http.Request) {
	t := s.capture
	p := canon(r.URL.Path)
	switch {
	case p == "/redfish":
		writeJSON(w, http.StatusOK, obj{"v1": "/redfish/v1/"}, "GET, HEAD")
		return
	case !strings.HasPrefix(p, rf):
		http.NotFound(w, r)
		return
	}
	unauth := p == canon(rf) || strings.HasPrefix(p, rf+"/$metadata") || strings.HasPrefix(p, rf+"/odata")
	if unauth && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.captureGet(w, r, p)
		return
	}
	if p == t.sessions && r.Method == http.MethodPost {
		s.rfLogin(w, r)
		return
	}
	sess, ok := s.rfAuthorize(w, r)
	if !ok {
		return
	}
	if rest, ok := strings.CutPrefix(p, t.sessions+"/"); ok && !strings.Contains(rest, "/") {
		s.rfSession(w, r, rest, sess)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		s.captureGet(w, r, p)
		return
	}
	if s.takeBusy() {
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.InvalidOperationForSystemState", "The operation cannot be done in the current system state.")
		return
	}
	s.captureWrite(w, r, p)
}

// captureGet answers a GET from the tree with the state laid over it.
func (s *Server) captureGet(w http.ResponseWriter, r *http.Request, p string) {
	t := s.capture
	file, ok := t.files[p]
	if p == t.sessions {
		s.mu.Lock()
		var ms []string
		for _, se := range s.sessions {
			ms = append(ms, rf+"/SessionService/Sessions/"+se.id+"/")
		}
		s.mu.Unlock()
		writeJSON(w, 200, collection(rf+"/SessionService/Sessions/", "Session", ms), "GET, HEAD, POST")
		return
	}
	if !ok {
		rfNotFound(w)
		return
	}
	if strings.HasSuffix(file, ".xml") {
		b, err := os.ReadFile(file)
		if err != nil {
			rfMessage(w, 500, "Base.1.4.InternalError", "")
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		return
	}
	dev, isVM := t.vmedia[p]
	switch {
	case p == t.system, p == t.chassis, p == t.bios, p == t.biosSettings, p == t.secureBoot, isVM:
	default:
		b, err := os.ReadFile(file)
		if err != nil {
			rfMessage(w, 500, "Base.1.4.InternalError", "")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("OData-Version", "4.0")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		return
	}
	m, err := t.read(p)
	if err != nil {
		rfMessage(w, 500, "Base.1.4.InternalError", "")
		return
	}
	st, _ := s.snapshot()
	switch {
	case p == t.system:
		m["PowerState"] = powerState(&st)
		if b, ok := m["Boot"].(map[string]any); ok {
			en, tgt := bootOverride(&st)
			b["BootSourceOverrideEnabled"], b["BootSourceOverrideTarget"] = en, tgt
		}
		post := "FinishedPost"
		if st.Power != "ON" {
			post = "PowerOff"
		}
		setOem(m, "PostState", post)
	case p == t.chassis:
		if _, ok := m["PowerState"]; ok {
			m["PowerState"] = powerState(&st)
		}
	case p == t.bios, p == t.biosSettings:
		attrs, _ := m["Attributes"].(map[string]any)
		if attrs == nil {
			attrs = map[string]any{}
			m["Attributes"] = attrs
		}
		for k, v := range st.BIOSApplied {
			attrs[k] = v
		}
		mode := st.BootMode
		if p == t.biosSettings {
			for k, v := range st.BIOSPending {
				attrs[k] = v
			}
			mode = st.PendingBootMode
		}
		if _, ok := attrs["BootMode"]; ok {
			attrs["BootMode"] = biosMode(mode)
		}
		if _, ok := attrs["SecureBootStatus"]; ok && p == t.bios {
			attrs["SecureBootStatus"] = map[bool]string{true: "Enabled", false: "Disabled"}[st.SecureBootCurrent]
		}
	case p == t.secureBoot:
		m["SecureBootEnable"] = st.SecureBootEnable
		m["SecureBootCurrentBoot"] = map[bool]string{true: "Enabled", false: "Disabled"}[st.SecureBootCurrent]
		m["SecureBootMode"] = map[bool]string{true: "SetupMode", false: "UserMode"}[st.SecureBootKeys == "deleted"]
	case isVM:
		md := st.Media[dev]
		m["Inserted"] = md.Inserted
		m["WriteProtected"] = md.WriteProtect || !md.Inserted && m["WriteProtected"] == true
		if md.Inserted {
			m["Image"] = md.URL
			m["ImageName"] = md.URL[strings.LastIndex(md.URL, "/")+1:]
			m["ConnectedVia"] = "URI"
		} else {
			m["Image"] = ""
			m["ConnectedVia"] = "NotConnected"
			if _, ok := m["ImageName"]; ok {
				m["ImageName"] = ""
			}
		}
		if dev == "CDROM" {
			setOem(m, "BootOnNextServerReset", md.BootOption == "BOOT_ONCE")
		}
	}
	writeJSON(w, 200, m, "")
}

// setOem sets Oem.<vendor>.key, under the vendor key the resource uses.
func setOem(m map[string]any, key string, v any) {
	o, _ := m["Oem"].(map[string]any)
	if o == nil {
		o = map[string]any{}
		m["Oem"] = o
	}
	for _, vendor := range []string{"Hpe", "Hp"} {
		if sub, ok := o[vendor].(map[string]any); ok {
			sub[key] = v
			return
		}
	}
	o["Hpe"] = map[string]any{key: v}
}

// captureWrite serves PATCH, PUT, POST and DELETE on a capture replay.
func (s *Server) captureWrite(w http.ResponseWriter, r *http.Request, p string) {
	t := s.capture
	if dev, ok := t.vmedia[p]; ok && r.Method == http.MethodPatch {
		s.rfPatchVirtualMedia(w, r, dev)
		return
	}
	for u, dev := range t.vmedia {
		if rest, ok := strings.CutPrefix(p, u+"/actions/"); ok && r.Method == http.MethodPost {
			st, _ := s.snapshot()
			id := map[string]string{"FLOPPY": "1", "CDROM": "2"}[dev]
			s.rfVirtualMedia(w, r, append([]string{id, "actions"}, strings.Split(rest, "/")...), &st)
			return
		}
	}
	switch {
	case p == t.system && r.Method == http.MethodPatch:
		s.rfPatchSystem(w, r)
	case p == t.system+"/actions/computersystem.reset" && r.Method == http.MethodPost:
		withBody(w, r, func(body obj) error {
			rt, _ := body["ResetType"].(string)
			return s.systemReset(rt)
		})
	case strings.HasPrefix(p, t.system+"/actions/oem/") && strings.HasSuffix(p, "computersystemext.powerbutton") && r.Method == http.MethodPost:
		withBody(w, r, func(body obj) error {
			pt, _ := body["PushType"].(string)
			if pt != "Press" && pt != "PressAndHold" {
				return opErr("value", "PushType must be Press or PressAndHold")
			}
			return s.systemReset(pt)
		})
	case p == t.secureBoot && r.Method == http.MethodPatch:
		withBody(w, r, func(body obj) error {
			v, ok := body["SecureBootEnable"].(bool)
			if !ok {
				return opErr("value", "only SecureBootEnable can be changed")
			}
			return s.setSecureBoot(v)
		})
	case p == t.secureBoot+"/actions/secureboot.resetkeys" && r.Method == http.MethodPost:
		withBody(w, r, func(body obj) error {
			k, _ := body["ResetKeysType"].(string)
			return s.resetKeys(k)
		})
	case p == t.biosSettings && (r.Method == http.MethodPatch || r.Method == http.MethodPut || r.Method == http.MethodPost):
		s.capturePatchBIOS(w, r)
	case p == t.manager+"/actions/manager.reset" && r.Method == http.MethodPost:
		rfSuccess(w)
		s.resetILO()
	default:
		if _, ok := t.files[p]; ok {
			rfUnsupported(w, r)
			return
		}
		rfNotFound(w)
	}
}

// capturePatchBIOS keeps BIOS attribute changes pending until the next boot.
func (s *Server) capturePatchBIOS(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
		return
	}
	attrs, ok := body["Attributes"].(map[string]any)
	if !ok {
		rfMessage(w, 400, "Base.1.4.PropertyMissing", "Attributes is required")
		return
	}
	for k := range attrs {
		if _, ok := s.capture.biosAttrs[k]; !ok {
			rfMessage(w, 400, "Base.1.4.PropertyUnknown", "The property "+k+" is not in the list of valid properties for the resource.")
			return
		}
	}
	if m, ok := attrs["BootMode"].(string); ok {
		if err := s.setPendingMode(m); err != nil {
			rfOpError(w, err)
			return
		}
	}
	_ = s.do(func(st *State) error {
		if st.BIOSPending == nil {
			st.BIOSPending = map[string]any{}
		}
		for k, v := range attrs {
			if k != "BootMode" {
				st.BIOSPending[k] = v
			}
		}
		return nil
	})
	rfSuccess(w)
}

// errNoCapture is returned for an empty --capture value.
var errNoCapture = errors.New("sim: --capture: empty directory name; give the folder of a captured tree")
