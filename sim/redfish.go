package sim

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

type obj = map[string]any

func link(path string) obj { return obj{"@odata.id": path} }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON answers v as JSON with the iLO's headers.
func writeJSON(w http.ResponseWriter, status int, v any, allow string) {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	defer bufPool.Put(b)
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("OData-Version", "4.0")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	if allow != "" {
		h.Set("Allow", allow)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// rfMessage answers the iLO 5 style extended-info envelope (iLO uses it for
// successes too).
func rfMessage(w http.ResponseWriter, status int, messageID, msg string) {
	info := obj{"MessageId": messageID}
	if msg != "" {
		info["Message"] = msg
	}
	writeJSON(w, status, obj{"error": obj{
		"code":                  "iLO.0.10.ExtendedInfo",
		"message":               "See @Message.ExtendedInfo for more information.",
		"@Message.ExtendedInfo": []obj{info},
	}}, "")
}

func rfSuccess(w http.ResponseWriter) { rfMessage(w, http.StatusOK, "Base.1.4.Success", "") }

// rfOpError renders an opError.
func rfOpError(w http.ResponseWriter, err error) {
	switch opKind(err) {
	case "state":
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.InvalidOperationForSystemState", err.Error())
	case "legacy":
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.UnsupportedOperationInLegacyBootMode", err.Error())
	case "media":
		rfMessage(w, http.StatusBadRequest, "Base.1.4.CouldNotEstablishConnection", err.Error())
	case "notinserted":
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.NoVirtualMediaInserted", err.Error())
	case "license":
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.LicenseKeyNotValid", err.Error())
	case "password":
		rfMessage(w, http.StatusBadRequest, "iLO.2.15.PasswordLengthViolation", err.Error())
	case "value":
		rfMessage(w, http.StatusBadRequest, "Base.1.4.PropertyValueNotInList", err.Error())
	default:
		rfMessage(w, http.StatusBadRequest, "Base.1.4.GeneralError", err.Error())
	}
}

func readJSONBody(r *http.Request) (obj, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return obj{}, nil
	}
	var m obj
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = obj{}
	}
	return m, nil
}

// basicAuth parses "Basic xxx" (any case, RIS sends "BASIC").
func basicAuth(r *http.Request) (string, string, bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	u, p, ok := strings.Cut(string(raw), ":")
	return u, p, ok
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// canon lower-cases a path and drops the trailing slash.
func canon(p string) string {
	p = strings.ToLower(p)
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

func (s *Server) oem() string { return s.gen.oem() }

const rf = "/redfish/v1"

func (s *Server) serveRedfish(w http.ResponseWriter, r *http.Request) {
	p := canon(r.URL.Path)
	if p == "/redfish" {
		// The version document (DSP0266): unauthenticated, like the root.
		writeJSON(w, http.StatusOK, obj{"v1": rf + "/"}, "GET, HEAD")
		return
	}
	if !strings.HasPrefix(p, rf) {
		http.NotFound(w, r)
		return
	}
	rel := strings.TrimPrefix(p, rf)
	// Unauthenticated resources.
	switch {
	case rel == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		writeJSON(w, http.StatusOK, s.rfRoot(), "GET, HEAD")
		return
	case rel == "/sessionservice/sessions" && r.Method == http.MethodPost:
		s.rfLogin(w, r)
		return
	}
	sess, ok := s.rfAuthorize(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !(r.Method == http.MethodDelete && strings.HasPrefix(rel, "/sessionservice/sessions/")) && s.takeBusy() {
			if strings.Contains(rel, "/bios") || strings.HasSuffix(rel, "/systems/1") {
				rfMessage(w, http.StatusBadRequest, "iLO.2.15.UnableToModifyDuringSystemPOST", "The system is in POST; try again later.")
			} else {
				rfMessage(w, http.StatusBadRequest, "iLO.2.15.InvalidOperationForSystemState", "The operation cannot be done in the current system state.")
			}
			return
		}
	}
	s.routeRedfish(w, r, p, sess)
}

// sessionLimitMsg is the iLO's message when every session slot is taken.
const sessionLimitMsg = "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation."

// rfAuthorize authenticates a Redfish request; when it fails it answers as
// an iLO does (503 SessionLimitExceeded when every session slot is taken,
// else 401 with a Basic challenge) and reports false.
func (s *Server) rfAuthorize(w http.ResponseWriter, r *http.Request) (*session, bool) {
	_, sess, ok, full := s.rfAuth(r)
	if full {
		rfMessage(w, http.StatusServiceUnavailable, "Base.1.4.SessionLimitExceeded", sessionLimitMsg)
		return nil, false
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="iLO"`)
		rfMessage(w, http.StatusUnauthorized, "Base.1.4.NoValidSession", "")
		return nil, false
	}
	return sess, true
}

// rfAuth accepts a session token or basic credentials. Like a real iLO, a
// basic-auth request needs a (short-lived) session slot too: full reports
// that the session limit refuses it.
func (s *Server) rfAuth(r *http.Request) (user string, se *session, ok, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		if se, ok := s.sessions[tok]; ok {
			return se.user, se, true, false
		}
		return "", nil, false, false
	}
	if u, p, ok := basicAuth(r); ok && s.checkLoginLocked(u, p) {
		if lim := s.faults.SessionLimit; lim > 0 && len(s.sessions) >= lim {
			return "", nil, false, true
		}
		return u, nil, true, false
	}
	return "", nil, false, false
}

func (s *Server) rfLogin(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, http.StatusBadRequest, "Base.1.4.MalformedJSON", "")
		return
	}
	u, _ := body["UserName"].(string)
	p, _ := body["Password"].(string)
	s.mu.Lock()
	if !s.checkLoginLocked(u, p) {
		s.mu.Unlock()
		rfMessage(w, http.StatusUnauthorized, "Base.1.4.NoValidSession", "")
		return
	}
	if lim := s.faults.SessionLimit; lim > 0 && len(s.sessions) >= lim {
		s.mu.Unlock()
		rfMessage(w, http.StatusServiceUnavailable, "Base.1.4.SessionLimitExceeded", sessionLimitMsg)
		return
	}
	s.nextSession++
	se := &session{id: fmt.Sprintf("%s%016x", strings.ToLower(u), s.nextSession), token: randomToken(), user: u}
	s.sessions[se.token] = se
	s.mu.Unlock()
	loc := rf + "/SessionService/Sessions/" + se.id + "/"
	w.Header().Set("X-Auth-Token", se.token)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, obj{
		"@odata.id": loc, "@odata.type": "#Session.v1_0_0.Session", "Id": se.id, "Name": "User Session", "UserName": u,
		"Oem": obj{s.oem(): obj{"AccessTime": "", "LoginName": u, "MySession": true, "Privileges": obj{"LoginPriv": true}}},
	}, "")
}

func (s *Server) rfRoot() obj {
	mgr := s.gen.iloName()
	return obj{
		"@odata.id": rf + "/", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "Id": "RootService",
		"Name": "HPE RESTful Root Service", "RedfishVersion": "1.6.0", "UUID": s.hw.UUID,
		"AccountService": link(rf + "/AccountService/"), "Chassis": link(rf + "/Chassis/"),
		"Managers": link(rf + "/Managers/"), "Systems": link(rf + "/Systems/"),
		"SessionService": link(rf + "/SessionService/"), "UpdateService": link(rf + "/UpdateService/"),
		"Registries": link(rf + "/Registries/"), "JsonSchemas": link(rf + "/JsonSchemas/"),
		"Links":  obj{"Sessions": link(rf + "/SessionService/Sessions/")},
		"Oem":    obj{s.oem(): obj{"Manager": []obj{{"ManagerType": mgr, "ManagerFirmwareVersion": s.hw.iloVersion()}}}},
		"Vendor": "HPE", "Product": s.hw.Model,
	}
}

func collection(path, typ string, members []string) obj {
	ms := make([]obj, len(members))
	for i, m := range members {
		ms[i] = link(m)
	}
	return obj{"@odata.id": path, "@odata.type": "#" + typ + "Collection." + typ + "Collection", "Name": typ + " Collection",
		"Members": ms, "Members@odata.count": len(ms)}
}

func rfNotFound(w http.ResponseWriter) {
	rfMessage(w, http.StatusNotFound, "Base.1.4.ResourceMissingAtURI", "")
}

func (s *Server) rfSession(w http.ResponseWriter, r *http.Request, id string, cur *session) {
	s.mu.Lock()
	var found *session
	for _, se := range s.sessions {
		if strings.EqualFold(se.id, id) {
			found = se
			break
		}
	}
	if found == nil {
		s.mu.Unlock()
		rfNotFound(w)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.mu.Unlock()
		writeJSON(w, 200, obj{"@odata.id": rf + "/SessionService/Sessions/" + found.id + "/", "@odata.type": "#Session.v1_0_0.Session",
			"Id": found.id, "Name": "User Session", "UserName": found.user,
			"Oem": obj{s.oem(): obj{"MySession": cur == found}}}, "GET, HEAD, DELETE")
	case http.MethodDelete:
		delete(s.sessions, found.token)
		s.mu.Unlock()
		rfSuccess(w)
	default:
		s.mu.Unlock()
		rfMessage(w, 405, "iLO.2.15.UnsupportedOperation", "")
	}
}

func powerState(st *State) string {
	if st.Power == "ON" {
		return "On"
	}
	return "Off"
}

func (s *Server) rfSystem(st *State, hw *Hardware) obj {
	sys := rf + "/Systems/1/"
	en, tgt := bootOverride(st)
	mode := "UEFI"
	if st.BootMode == "LEGACY" {
		mode = "Legacy"
	}
	post := "FinishedPost"
	if st.Power != "ON" {
		post = "PowerOff"
	}
	oem := s.oem()
	state := "Enabled"
	if st.Power != "ON" {
		state = "Disabled"
	}
	var uefiTargets []string
	for _, d := range st.PersistentBoot {
		if e, ok := uefiEntry(d, hw); ok {
			uefiTargets = append(uefiTargets, e.desc)
		}
	}
	return obj{
		"@odata.id": sys, "@odata.type": "#ComputerSystem.v1_4_0.ComputerSystem", "@odata.etag": fmt.Sprintf("W/\"%08X\"", st.BootCount),
		"Id": "1", "Name": "Computer System", "Manufacturer": map[bool]string{true: "HP", false: "HPE"}[oem == "Hp"],
		"Model": hw.Model, "SerialNumber": hw.SerialNumber, "UUID": hw.UUID, "SKU": "867959-B21", "SystemType": "Physical",
		"PowerState": powerState(st), "BiosVersion": hw.ROMFirmware, "HostName": "", "IndicatorLED": indicatorLED(st),
		"AssetTag": assetTag(st, hw),
		"Status":   obj{"Health": hw.Health, "HealthRollup": hw.Health, "State": state},
		"Boot": obj{
			"BootSourceOverrideEnabled": en, "BootSourceOverrideTarget": tgt, "BootSourceOverrideMode": mode,
			"BootSourceOverrideTarget@Redfish.AllowableValues":     allowableTargets,
			"UefiTargetBootSourceOverride":                         "None",
			"UefiTargetBootSourceOverride@Redfish.AllowableValues": uefiTargets,
		},
		"MemorySummary":    obj{"TotalSystemMemoryGiB": hw.MemoryMB / 1024, "Status": obj{"HealthRollup": hw.Health}},
		"ProcessorSummary": obj{"Count": len(hw.CPUs), "Model": hw.CPUs[0].Model, "Status": obj{"HealthRollup": hw.Health}},
		"Processors":       link(sys + "Processors/"), "Memory": link(sys + "Memory/"),
		"EthernetInterfaces": link(sys + "EthernetInterfaces/"), "Storage": link(sys + "Storage/"),
		"SecureBoot": link(sys + "SecureBoot/"), "Bios": link(sys + "bios/"),
		"TrustedModules": []obj{{"Status": obj{"State": "Enabled"}, "InterfaceType": "TPM2_0"}},
		"Links":          obj{"Chassis": []obj{link(rf + "/Chassis/1/")}, "ManagedBy": []obj{link(rf + "/Managers/1/")}},
		"Actions": obj{"#ComputerSystem.Reset": obj{
			"target":                            sys + "Actions/ComputerSystem.Reset/",
			"ResetType@Redfish.AllowableValues": s.gen.resetTypes(),
		}},
		"Oem": obj{oem: obj{
			"@odata.type": "#" + oem + "ComputerSystemExt.v2_0_0." + oem + "ComputerSystemExt",
			"Actions": obj{"#" + oem + "ComputerSystemExt.PowerButton": obj{
				"target":                           sys + "Actions/Oem/" + oem + "/" + oem + "ComputerSystemExt.PowerButton/",
				"PushType@Redfish.AllowableValues": []string{"Press", "PressAndHold"},
			}},
			"Bios":      obj{"Current": obj{"VersionString": hw.ROMFirmware}, "Backup": obj{"VersionString": hw.ROMFirmware}, "UefiClass": hw.uefiClass()},
			"PostState": post, "PowerAutoOn": "Restore",
			"Links": obj{"PCIDevices": link(sys + "PCIDevices/"), "SmartStorage": link(sys + "SmartStorage/"),
				"NetworkAdapters": link(sys + "NetworkAdapters/"), "EthernetInterfaces": link(sys + "EthernetInterfaces/")},
		}},
	}
}

func (s *Server) rfPatchSystem(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
		return
	}
	for k := range body {
		if k != "Boot" && k != "AssetTag" && k != "IndicatorLED" {
			rfMessage(w, 400, "Base.1.4.PropertyNotWritable", "only Boot, AssetTag and IndicatorLED can be changed, not "+k)
			return
		}
	}
	if err := s.patchSystemMisc(body); err != nil {
		rfOpError(w, err)
		return
	}
	boot, ok := body["Boot"].(map[string]any)
	if !ok {
		rfSuccess(w)
		return
	}
	if m, ok := boot["BootSourceOverrideMode"]; ok {
		// iLO 4/5: read-only, the whole PATCH is refused. UEFI-only iLO 6/7
		// show it as "UEFI" and take that (and only that) value.
		st, _ := s.snapshot()
		if !(s.gen == Gen11 || s.gen == Gen12) || m != "UEFI" || st.BootMode != "UEFI" {
			rfMessage(w, 400, "Base.1.4.PropertyNotWritable", "BootSourceOverrideMode is read-only")
			return
		}
		delete(boot, "BootSourceOverrideMode")
		if len(boot) == 0 {
			rfSuccess(w)
			return
		}
	}
	en, _ := boot["BootSourceOverrideEnabled"].(string)
	tgt, _ := boot["BootSourceOverrideTarget"].(string)
	if _, ok := boot["UefiTargetBootSourceOverride"]; ok && en == "" && tgt == "" {
		rfSuccess(w)
		return
	}
	if en == "" && tgt == "" {
		rfMessage(w, 400, "Base.1.4.PropertyUnknown", "unsupported Boot property")
		return
	}
	if err := s.setOverride(en, tgt); err != nil {
		rfOpError(w, err)
		return
	}
	rfSuccess(w)
}

func biosMode(mode string) string {
	if mode == "LEGACY" {
		return "LegacyBios"
	}
	return "Uefi"
}

func (s *Server) defaultBiosAttrs(hw *Hardware) obj {
	mode := "Uefi"
	if hw.SupportedBootModes == "LEGACY_ONLY" {
		mode = "LegacyBios"
	}
	a := obj{"BootMode": mode, "UefiOptimizedBoot": "Enabled", "ProcVirtualization": "Enabled", "Sriov": "Enabled",
		"TpmState": "PresentEnabled", "CustomPostMessage": "", "PreBootNetwork": "Auto", "UrlBootFile": "", "Dhcpv4": "Enabled",
		"NvDimmNMemFunctionality": "Disabled", "SecureBootStatus": "Disabled", "UefiShellStartupUrl": "",
		"WorkloadProfile": "GeneralPowerEfficientCompute", "ServerAssetTag": hw.AssetTag}
	if !hw.biosBootModeAttr(s.gen) {
		// UEFI-only iLO 6/7 BIOS (the DL380a Gen11/Gen12 captures): neither
		// BootMode nor UefiOptimizedBoot exists.
		delete(a, "BootMode")
		delete(a, "UefiOptimizedBoot")
	}
	return a
}

func (s *Server) rfBios(st *State, hw *Hardware, pending bool) obj {
	sys := rf + "/Systems/1/"
	attrs := s.defaultBiosAttrs(hw)
	mode := st.BootMode
	if pending {
		mode = st.PendingBootMode
	}
	if _, ok := attrs["BootMode"]; ok {
		attrs["BootMode"] = biosMode(mode)
	}
	for k, v := range st.BIOSApplied {
		attrs[k] = v
	}
	if pending {
		for k, v := range st.BIOSPending {
			attrs[k] = v
		}
	}
	attrs["CustomPostMessage"] = st.CustomPostMessage
	attrs["SecureBootStatus"] = map[bool]string{true: "Enabled", false: "Disabled"}[st.SecureBootCurrent]
	id := sys + "bios/"
	if pending {
		id = sys + "bios/settings/"
	}
	b := obj{"@odata.id": id, "@odata.type": "#Bios.v1_0_0.Bios", "Id": "bios", "Name": "BIOS Current Settings",
		"AttributeRegistry": "BiosAttributeRegistryU32.v1_2_68", "Attributes": attrs}
	if !pending {
		b["@Redfish.Settings"] = obj{"SettingsObject": link(sys + "bios/settings/")}
		b["Oem"] = obj{s.oem(): obj{"Links": obj{"Boot": link(sys + "bios/boot/"), "BaseConfigs": link(sys + "bios/baseconfigs/"),
			"iScsi": link(sys + "bios/iscsi/"), "TlsConfig": link(sys + "bios/tlsconfig/")}}}
	}
	return b
}

func (s *Server) rfPatchBios(w http.ResponseWriter, r *http.Request, replace bool) {
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
	_, hw := s.snapshot()
	known := s.defaultBiosAttrs(&hw)
	for k := range attrs {
		if _, ok := known[k]; !ok {
			// An iLO refuses an attribute its BIOS registry does not have.
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
		if v, ok := attrs["CustomPostMessage"].(string); ok {
			st.CustomPostMessage = v
		}
		for k, v := range attrs {
			switch k {
			case "BootMode", "CustomPostMessage", "SecureBootStatus":
			default:
				if st.BIOSPending == nil {
					st.BIOSPending = map[string]any{}
				}
				st.BIOSPending[k] = v
			}
		}
		if replace {
			st.BIOSResets++
		}
		return nil
	})
	rfSuccess(w)
}

// bootStrings returns the BootString a device class shows under bios/boot.
func (s *Server) bootString(class string, hw *Hardware) (structured, str string, ok bool) {
	switch class {
	case "CDROM":
		if s.gen == Gen9 {
			return "HD.Virtual.2.1", "iLO Virtual USB 2 : HP iLO Virtual USB CD/DVD ROM", true
		}
		return "HD.Virtual.2.1", "iLO Virtual USB 2 : HPE Virtual CD-ROM", true
	case "HDD":
		if len(hw.LogicalDrivesGB) == 0 {
			return "", "", false
		}
		return "HD.Slot.1.1", "Embedded RAID 1 : Smart Array - RAID 1 Logical Drive 1 (Target:0, Lun:0)", true
	case "NETWORK":
		return "NIC.LOM.1.1.IPv4", "Embedded LOM 1 Port 1 : Ethernet 1Gb 4-port 331i Adapter - NIC (PXE IPv4)", true
	case "USB":
		return "HD.Virtual.1.1", "iLO Virtual USB 1 : HPE iLO Virtual USB Key", true
	}
	return "", "", false
}

func (s *Server) rfBiosBoot(st *State, hw *Hardware) obj {
	var sources []obj
	var order []string
	n := 1
	for _, d := range st.PersistentBoot {
		structured, str, ok := s.bootString(d, hw)
		if !ok {
			continue
		}
		sources = append(sources, obj{"BootOptionNumber": fmt.Sprintf("%04X", n), "BootString": str,
			"StructuredBootString": structured, "CorrelatableID": "", "UEFIDevicePath": "PciRoot(0x0)"})
		order = append(order, structured)
		n++
	}
	return obj{"@odata.id": rf + "/Systems/1/bios/boot/", "Id": "boot", "BootSources": sources,
		"PersistentBootConfigOrder": order, "DefaultBootOrder": []string{"Cd", "Usb", "EmbeddedStorage", "PcieSlotStorage", "EmbeddedFlexLOM", "PcieSlotNic", "UefiShell"}}
}

func (s *Server) rfSecureBoot(st *State) obj {
	mode := "UserMode"
	if st.SecureBootKeys == "deleted" {
		mode = "SetupMode"
	}
	sb := rf + "/Systems/1/SecureBoot/"
	return obj{"@odata.id": sb, "@odata.type": "#SecureBoot.v1_0_0.SecureBoot", "Id": "SecureBoot", "Name": "UEFI Secure Boot",
		"SecureBootEnable":      st.SecureBootEnable,
		"SecureBootCurrentBoot": map[bool]string{true: "Enabled", false: "Disabled"}[st.SecureBootCurrent],
		"SecureBootMode":        mode,
		"Actions": obj{"#SecureBoot.ResetKeys": obj{
			"target":                                sb + "Actions/SecureBoot.ResetKeys/",
			"ResetKeysType@Redfish.AllowableValues": []string{"ResetAllKeysToDefault", "DeleteAllKeys", "DeletePK"},
		}}}
}

func (s *Server) pciDevice(hw *Hardware, i int, sys string) obj {
	d := obj{"@odata.id": fmt.Sprintf("%sPCIDevices/%d/", sys, i), "Id": strconv.Itoa(i), "Status": obj{"Health": "OK", "State": "Enabled"}}
	if i <= len(hw.NICs) {
		n := hw.NICs[i-1]
		d["Name"] = fmt.Sprintf("HPE Ethernet %dGb 4-port 331i Adapter - NIC", max(n.SpeedGb, 1))
		d["ClassCode"], d["SubclassCode"] = 2, 0
		d["DeviceType"] = "Embedded LOM"
		d["LocationString"] = "Embedded LOM 1"
		d["VendorID"], d["DeviceID"] = 5348, 5719
		return d
	}
	g := hw.GPUs[i-len(hw.NICs)-1]
	d["Name"] = g.Vendor + " " + g.Name
	d["ClassCode"], d["SubclassCode"] = 3, 2
	d["DeviceType"] = "Other PCI Device"
	d["LocationString"] = fmt.Sprintf("PCI-E Slot %d", i-len(hw.NICs))
	d["VendorID"], d["DeviceID"] = 4318, 7604
	return d
}

func (s *Server) rfManager(st *State, hw *Hardware) obj {
	mgr := rf + "/Managers/1/"
	model := s.gen.iloName()
	fw := model + " v" + hw.iloVersion()
	if s.gen == Gen12 {
		// iLO 7 firmware strings do not say "iLO 7" ("1.13.01 May 13 2025").
		fw = hw.ILOFirmware
	}
	l := st.Licenses[len(st.Licenses)-1]
	return obj{
		"@odata.id": mgr, "@odata.type": "#Manager.v1_5_1.Manager", "Id": "1", "Name": "Manager", "ManagerType": "BMC",
		"Model": model, "FirmwareVersion": fw, "UUID": hw.UUID, "Status": obj{"Health": "OK", "State": "Enabled"},
		"VirtualMedia": link(mgr + "VirtualMedia/"), "EthernetInterfaces": link(mgr + "EthernetInterfaces/"),
		"Links":   obj{"ManagerForServers": []obj{link(rf + "/Systems/1/")}, "ManagerForChassis": []obj{link(rf + "/Chassis/1/")}},
		"Actions": obj{"#Manager.Reset": obj{"target": mgr + "Actions/Manager.Reset/"}},
		"Oem": obj{s.oem(): obj{
			"Firmware": obj{"Current": obj{"VersionString": fw, "Date": strings.SplitN(hw.ILOFirmware, " ", 2)[len(strings.SplitN(hw.ILOFirmware, " ", 2))-1]}},
			"License":  obj{"LicenseKey": l.Key, "LicenseString": l.Type, "LicenseType": map[bool]string{true: "Perpetual", false: "Unlicensed"}[l.Class != ""]},
			"Links": obj{"LicenseService": link(mgr + "LicenseService/"), "SecurityService": link(mgr + "SecurityService/"),
				"ActiveHealthSystem": link(mgr + "ActiveHealthSystem/")},
		}},
	}
}

func (s *Server) rfChassis(st *State, hw *Hardware) obj {
	ch := rf + "/Chassis/1/"
	return obj{"@odata.id": ch, "@odata.type": "#Chassis.v1_6_0.Chassis", "Id": "1", "Name": "Computer System Chassis",
		"ChassisType": "RackMount", "Model": hw.Model, "SerialNumber": hw.SerialNumber, "Manufacturer": "HPE",
		"PowerState": powerState(st), "Status": obj{"Health": hw.Health, "State": "Enabled"},
		"Thermal": link(ch + "Thermal/"), "Power": link(ch + "Power/"),
		"Links": obj{"ComputerSystems": []obj{link(rf + "/Systems/1/")}, "ManagedBy": []obj{link(rf + "/Managers/1/")}},
		"Oem":   obj{s.oem(): obj{"Links": obj{"Devices": link(ch + "Devices/")}}}}
}

func (s *Server) rfThermal(st *State, hw *Hardware) obj {
	on := st.Power == "ON"
	var fans, temps []obj
	for i := 1; i <= hw.Fans; i++ {
		rd := 0
		if on {
			rd = 23
		}
		fans = append(fans, obj{"MemberId": strconv.Itoa(i - 1), "Name": fmt.Sprintf("Fan %d", i), "Reading": rd, "ReadingUnits": "Percent",
			"Status": obj{"Health": hw.Health, "State": "Enabled"}})
	}
	labels := []string{"01-Inlet Ambient"}
	for i := range hw.CPUs {
		labels = append(labels, fmt.Sprintf("%02d-CPU %d", len(labels)+1, i+1))
	}
	for i := range hw.GPUs {
		labels = append(labels, fmt.Sprintf("%02d-GPU %d", len(labels)+1, i+1))
	}
	for i, l := range labels {
		var rd any
		if on {
			rd = 21 + 7*min(i, 3)
		}
		temps = append(temps, obj{"MemberId": strconv.Itoa(i), "Name": l, "ReadingCelsius": rd, "UpperThresholdCritical": 70,
			"UpperThresholdFatal": 80, "Status": obj{"Health": hw.Health, "State": "Enabled"}})
	}
	return obj{"@odata.id": rf + "/Chassis/1/Thermal/", "@odata.type": "#Thermal.v1_1_0.Thermal", "Id": "Thermal", "Name": "Thermal",
		"Fans": fans, "Temperatures": temps}
}

func (s *Server) rfPower(st *State, hw *Hardware) obj {
	watts := 0
	if st.Power == "ON" {
		watts = hw.PowerWatts
	}
	var psus []obj
	for i := 1; i <= hw.PowerSupplies; i++ {
		psus = append(psus, obj{"MemberId": strconv.Itoa(i - 1), "Name": fmt.Sprintf("Power Supply %d", i), "PowerCapacityWatts": 800,
			"LastPowerOutputWatts": watts / max(hw.PowerSupplies, 1), "Status": obj{"Health": hw.Health, "State": "Enabled"}})
	}
	return obj{"@odata.id": rf + "/Chassis/1/Power/", "@odata.type": "#Power.v1_3_0.Power", "Id": "Power", "Name": "PowerMetrics",
		"PowerControl":  []obj{{"MemberId": "0", "PowerConsumedWatts": watts, "PowerCapacityWatts": 800 * hw.PowerSupplies}},
		"PowerSupplies": psus}
}
