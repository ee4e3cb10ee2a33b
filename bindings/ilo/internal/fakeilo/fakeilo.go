// Package fakeilo is a small, stateful iLO stand-in for the unit tests of
// the ilo packages: RIBCL (POST /ribcl) and Redfish (/redfish/v1) on an
// httptest TLS server, shaped like Gen8 (RIBCL only), Gen9 (iLO 4: RIBCL +
// Redfish with Oem.Hp, virtual media by PATCH of Image only), Gen10 (iLO 5:
// Redfish with Oem.Hpe and the standard virtual media actions, plus RIBCL)
// and Gen11 (Redfish; RIBCL answers that it is disabled). It is not the
// product simulator (bindings/ilo/sim); it exists so the client tests speak
// the documented wire format without depending on it.
package fakeilo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is one fake iLO.
type Server struct {
	Gen      int
	User     string
	Password string

	mu           sync.Mutex
	power        string // On / Off
	bootEnabled  string // Disabled / Once / Continuous
	bootTarget   string
	bootMode     string // Uefi / LegacyBios
	pendingMode  string
	secureBoot   bool
	media        map[string]string // "1" floppy, "2" cd -> image
	bootOnNext   map[string]bool
	sessions     map[string]string // token -> location
	nextSession  int
	sessionLimit int
	fail503      int
	busy         int
	hang         time.Duration
	log          []string
	maxSessions  int
	inflight     int
	maxInflight  int

	HTTP *httptest.Server
}

// New starts a fake iLO of generation gen (8, 9, 10 or 11).
func New(gen int) *Server {
	s := &Server{Gen: gen, User: "Administrator", Password: "p4ss&word", power: "Off", bootEnabled: "Disabled",
		bootTarget: "None", bootMode: "Uefi", pendingMode: "Uefi", media: map[string]string{}, bootOnNext: map[string]bool{},
		sessions: map[string]string{}}
	s.HTTP = httptest.NewTLSServer(s)
	return s
}

// NewFresh is New with a freshly generated self-signed certificate for
// 127.0.0.1 (httptest's built-in certificate is the same for every server).
func NewFresh(gen int) *Server {
	s := &Server{Gen: gen, User: "Administrator", Password: "p4ss&word", power: "Off", bootEnabled: "Disabled",
		bootTarget: "None", bootMode: "Uefi", pendingMode: "Uefi", media: map[string]string{}, bootOnNext: map[string]bool{},
		sessions: map[string]string{}}
	s.HTTP = httptest.NewUnstartedServer(s)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "fake iLO"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	s.HTTP.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	s.HTTP.StartTLS()
	return s
}

// Close stops the server.
func (s *Server) Close() { s.HTTP.Close() }

// Host and Port of the server.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.HTTP.Listener.Addr().String())
	return h
}

// Port returns the TCP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.HTTP.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}

// DriverInfo returns a driver_info map for the server (insecure TLS).
func (s *Server) DriverInfo() map[string]any {
	return map[string]any{"ilo_address": s.Host(), "client_port": int64(s.Port()), "ilo_username": s.User,
		"ilo_password": s.Password, "ilo_insecure": true, "client_timeout": int64(5)}
}

// Model is the product name.
func (s *Server) Model() string {
	switch s.Gen {
	case 7:
		return "ProLiant ML110 G7"
	case 8:
		return "ProLiant DL380 Gen8"
	case 9:
		return "ProLiant DL360 Gen9"
	case 10:
		return "ProLiant DL360 Gen10"
	}
	return fmt.Sprintf("ProLiant DL380 Gen%d", s.Gen)
}

// Set changes state under the lock.
func (s *Server) Set(fn func(st *State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Power: s.power, BootEnabled: s.bootEnabled, BootTarget: s.bootTarget, BootMode: s.bootMode, PendingMode: s.pendingMode,
		SecureBoot: s.secureBoot, Fail503: s.fail503, Busy: s.busy, Hang: s.hang, SessionLimit: s.sessionLimit}
	fn(&st)
	s.power, s.bootEnabled, s.bootTarget, s.bootMode, s.pendingMode = st.Power, st.BootEnabled, st.BootTarget, st.BootMode, st.PendingMode
	s.secureBoot, s.fail503, s.busy, s.hang, s.sessionLimit = st.SecureBoot, st.Fail503, st.Busy, st.Hang, st.SessionLimit
}

// State is the mutable state exposed to tests.
type State struct {
	Power, BootEnabled, BootTarget, BootMode, PendingMode string
	SecureBoot                                            bool
	Fail503, Busy, SessionLimit                           int
	Hang                                                  time.Duration
}

// Get returns a copy of the state.
func (s *Server) Get() State {
	var out State
	s.Set(func(st *State) { out = *st })
	return out
}

// Media returns the image in slot "1" (floppy) or "2" (CD).
func (s *Server) Media(slot string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media[slot]
}

// Log returns the requests seen ("METHOD /path body").
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// MaxInflight returns the highest number of requests served at once.
func (s *Server) MaxInflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

// OpenSessions returns the number of open Redfish sessions.
func (s *Server) OpenSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// MaxSessions returns the highest number of sessions open at once.
func (s *Server) MaxSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSessions
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.inflight++
	if s.inflight > s.maxInflight {
		s.maxInflight = s.inflight
	}
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	s.log = append(s.log, r.Method+" "+r.URL.Path+" "+string(body))
	hang := s.hang
	fail := s.fail503 > 0
	if fail {
		s.fail503--
	}
	s.mu.Unlock()
	if hang > 0 {
		select {
		case <-time.After(hang):
		case <-r.Context().Done():
			return
		}
	}
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	p := strings.ToLower(strings.TrimSuffix(r.URL.Path, "/"))
	switch {
	case p == "/ribcl" && r.Method == http.MethodPost:
		s.ribcl(w, body)
	case strings.HasPrefix(p, "/redfish/v1") && s.Gen >= 9:
		s.redfish(w, r, p, body)
	default:
		http.NotFound(w, r)
	}
}

// --- RIBCL ------------------------------------------------------------------------

type ribReq struct {
	Login struct {
		User     string `xml:"USER_LOGIN,attr"`
		Password string `xml:"PASSWORD,attr"`
		Sections []struct {
			XMLName  xml.Name
			Commands []struct {
				XMLName xml.Name
				Attrs   []xml.Attr `xml:",any,attr"`
				Inner   []byte     `xml:",innerxml"`
			} `xml:",any"`
		} `xml:",any"`
	} `xml:"LOGIN"`
}

const okDoc = "<?xml version=\"1.0\"?>\r\n<RIBCL VERSION=\"2.23\">\r\n<RESPONSE\r\n    STATUS=\"0x0000\"\r\n    MESSAGE='No error'\r\n     />\r\n</RIBCL>\r\n"

func ribDoc(inner string) string {
	return "<?xml version=\"1.0\"?>\r\n<RIBCL VERSION=\"2.23\">\r\n<RESPONSE STATUS=\"0x0000\" MESSAGE='No error' />\r\n" + inner + "\r\n</RIBCL>\r\n"
}

func ribErr(status, msg string) string {
	return "<?xml version=\"1.0\"?>\r\n<RIBCL VERSION=\"2.23\">\r\n<RESPONSE STATUS=\"" + status + "\" MESSAGE='" + msg + "' />\r\n</RIBCL>\r\n"
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value
		}
	}
	return ""
}

func (s *Server) ribcl(w http.ResponseWriter, body []byte) {
	if s.Gen >= 11 {
		io.WriteString(w, ribErr("0x0001", "RIBCL is disabled on this iLO."))
		return
	}
	var req ribReq
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Login.Sections) != 1 || len(req.Login.Sections[0].Commands) != 1 {
		io.WriteString(w, ribErr("0x0001", "Syntax error: bad request"))
		return
	}
	if req.Login.User != s.User || req.Login.Password != s.Password {
		io.WriteString(w, okDoc+ribErr("0x005F", "Login failed."))
		return
	}
	c := req.Login.Sections[0].Commands[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	out := okDoc + okDoc
	power := map[string]string{"On": "ON", "Off": "OFF"}[s.power]
	switch c.XMLName.Local {
	case "GET_PRODUCT_NAME":
		out += ribDoc(`<GET_PRODUCT_NAME><PRODUCT_NAME VALUE ="` + s.Model() + `"/></GET_PRODUCT_NAME>`)
	case "GET_HOST_POWER_STATUS":
		out += ribDoc(`<GET_HOST_POWER HOST_POWER="` + power + `"/>`)
	case "SET_HOST_POWER":
		if v := attr(c.Attrs, "HOST_POWER"); v == "Yes" {
			s.power = "On"
		} else {
			s.power = "Off"
		}
		out += okDoc
	case "RESET_SERVER", "PRESS_PWR_BTN", "HOLD_PWR_BTN", "RESET_RIB":
		if c.XMLName.Local == "PRESS_PWR_BTN" {
			s.power = map[string]string{"On": "Off", "Off": "On"}[s.power]
		}
		out += okDoc
	case "GET_VM_STATUS":
		slot := map[string]string{"FLOPPY": "1", "CDROM": "2"}[attr(c.Attrs, "DEVICE")]
		ins := "NO"
		if s.media[slot] != "" {
			ins = "YES"
		}
		out += ribDoc(`<GET_VM_STATUS VM_APPLET="DISCONNECTED" DEVICE="` + attr(c.Attrs, "DEVICE") + `"
        BOOT_OPTION="BOOT_ALWAYS" WRITE_PROTECT="YES"
        IMAGE_INSERTED="` + ins + `" IMAGE_URL="` + s.media[slot] + `" />`)
	case "INSERT_VIRTUAL_MEDIA":
		slot := map[string]string{"FLOPPY": "1", "CDROM": "2"}[attr(c.Attrs, "DEVICE")]
		s.media[slot] = attr(c.Attrs, "IMAGE_URL")
		out += okDoc
	case "EJECT_VIRTUAL_MEDIA":
		slot := map[string]string{"FLOPPY": "1", "CDROM": "2"}[attr(c.Attrs, "DEVICE")]
		if s.media[slot] == "" {
			out += ribErr("0x0035", "No image present in the Virtual Media drive")
		} else {
			delete(s.media, slot)
			out += okDoc
		}
	case "GET_PENDING_BOOT_MODE", "GET_CURRENT_BOOT_MODE":
		m := s.pendingMode
		if c.XMLName.Local == "GET_CURRENT_BOOT_MODE" {
			m = s.bootMode
		}
		v := map[string]string{"Uefi": "UEFI", "LegacyBios": "LEGACY"}[m]
		out += ribDoc(`<` + c.XMLName.Local + `><BOOT_MODE VALUE="` + v + `"/></` + c.XMLName.Local + `>`)
	case "SET_PENDING_BOOT_MODE":
		s.pendingMode = map[string]string{"UEFI": "Uefi", "LEGACY": "LegacyBios"}[attr(c.Attrs, "value")]
		out += okDoc
	case "GET_ALL_LICENSES":
		out += ribDoc(`<GET_ALL_LICENSES><LICENSE><LICENSE_TYPE VALUE="iLO Advanced"/><LICENSE_KEY VALUE="XXXXX-XXXXX"/><LICENSE_INSTALL_DATE VALUE="Mon Dec  2 15:25:28 2013"/><LICENSE_CLASS VALUE="FQL"/></LICENSE></GET_ALL_LICENSES>`)
	case "GET_EMBEDDED_HEALTH":
		out += ribDoc(`<GET_EMBEDDED_HEALTH_DATA>
<PROCESSORS><PROCESSOR><EXECUTION_TECHNOLOGY VALUE="8/8 cores; 16 threads"/></PROCESSOR></PROCESSORS>
<MEMORY><MEMORY_DETAILS_SUMMARY><CPU_1><TOTAL_MEMORY_SIZE VALUE="32 GB"/></CPU_1></MEMORY_DETAILS_SUMMARY></MEMORY>
<NIC_INFORMATION><NIC><LOCATION VALUE="Embedded"/><NETWORK_PORT VALUE="Port 1"/><MAC_ADDRESS VALUE="52:54:00:00:00:01"/></NIC></NIC_INFORMATION>
<STORAGE><CONTROLLER><LOGICAL_DRIVE><CAPACITY VALUE="100 GB"/></LOGICAL_DRIVE></CONTROLLER></STORAGE>
<FIRMWARE_INFORMATION><INDEX_1><FIRMWARE_NAME VALUE="iLO"/><FIRMWARE_VERSION VALUE="2.55 Aug 16 2017"/></INDEX_1></FIRMWARE_INFORMATION>
<TEMPERATURE><TEMP><LABEL VALUE="01-Inlet Ambient"/><STATUS VALUE="OK"/><CURRENTREADING VALUE="20" UNIT="Celsius"/></TEMP></TEMPERATURE>
</GET_EMBEDDED_HEALTH_DATA>`)
	case "GET_SUPPORTED_BOOT_MODE":
		out += ribDoc(`<GET_SUPPORTED_BOOT_MODE><SUPPORTED_BOOT_MODE VALUE="LEGACY_UEFI"/></GET_SUPPORTED_BOOT_MODE>`)
	default:
		out += okDoc
	}
	io.WriteString(w, out)
}

// --- Redfish ----------------------------------------------------------------------

func (s *Server) oem() string {
	if s.Gen == 9 {
		return "Hp"
	}
	return "Hpe"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func redfishErr(w http.ResponseWriter, status int, id string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": "iLO.0.10.ExtendedInfo", "message": "See @Message.ExtendedInfo",
		"@Message.ExtendedInfo": []any{map[string]any{"MessageId": id}}}})
}

func ref(p string) map[string]any { return map[string]any{"@odata.id": p} }

func (s *Server) authorised(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		_, ok := s.sessions[tok]
		return ok
	}
	if a := r.Header.Get("Authorization"); strings.HasPrefix(strings.ToLower(a), "basic ") {
		b, _ := base64.StdEncoding.DecodeString(a[6:])
		return string(b) == s.User+":"+s.Password
	}
	return false
}

func (s *Server) redfish(w http.ResponseWriter, r *http.Request, p string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == "/redfish/v1" {
		writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/", "Links": map[string]any{"Sessions": ref("/redfish/v1/SessionService/Sessions/")},
			"Systems": ref("/redfish/v1/Systems/"), "Managers": ref("/redfish/v1/Managers/"), "Chassis": ref("/redfish/v1/Chassis/"),
			"AccountService": ref("/redfish/v1/AccountService/"), "Oem": map[string]any{s.oem(): map[string]any{}}})
		return
	}
	if p == "/redfish/v1/sessionservice/sessions" && r.Method == http.MethodPost {
		var cred struct{ UserName, Password string }
		_ = json.Unmarshal(body, &cred)
		if cred.UserName != s.User || cred.Password != s.Password {
			redfishErr(w, 401, "Base.1.0.NoValidSession")
			return
		}
		if s.sessionLimit != 0 && len(s.sessions) >= max(s.sessionLimit, 0) {
			redfishErr(w, 503, "Base.1.4.SessionLimitExceeded")
			return
		}
		s.nextSession++
		tok := fmt.Sprintf("tok%d", s.nextSession)
		loc := fmt.Sprintf("/redfish/v1/SessionService/Sessions/%d/", s.nextSession)
		s.sessions[tok] = strings.ToLower(strings.TrimSuffix(loc, "/"))
		if len(s.sessions) > s.maxSessions {
			s.maxSessions = len(s.sessions)
		}
		w.Header().Set("X-Auth-Token", tok)
		w.Header().Set("Location", "https://"+r.Host+loc)
		writeJSON(w, 201, ref(loc))
		return
	}
	if !s.authorised(r) {
		redfishErr(w, 401, "Base.1.0.NoValidSession")
		return
	}
	if strings.HasPrefix(p, "/redfish/v1/sessionservice/sessions/") && r.Method == http.MethodDelete {
		for tok, loc := range s.sessions {
			if loc == p {
				delete(s.sessions, tok)
			}
		}
		w.WriteHeader(204)
		return
	}
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	o := s.oem()
	sys := "/redfish/v1/Systems/1/"
	switch {
	case p == "/redfish/v1/systems":
		writeJSON(w, 200, map[string]any{"Members": []any{ref(sys)}})
	case p == "/redfish/v1/systems/1" && r.Method == http.MethodGet:
		w.Header().Set("ETag", `W/"abc"`)
		writeJSON(w, 200, map[string]any{"@odata.id": sys, "Id": "1", "Model": s.Model(), "PowerState": s.power,
			"Boot":               map[string]any{"BootSourceOverrideEnabled": s.bootEnabled, "BootSourceOverrideTarget": s.bootTarget},
			"Bios":               ref(sys + "Bios/"),
			"SecureBoot":         ref(sys + "SecureBoot/"),
			"Processors":         ref(sys + "Processors/"),
			"EthernetInterfaces": ref(sys + "EthernetInterfaces/"),
			"MemorySummary":      map[string]any{"TotalSystemMemoryGiB": 64},
			"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{"target": sys + "Actions/ComputerSystem.Reset/",
				"ResetType@Redfish.AllowableValues": []any{"On", "ForceOff", "ForceRestart", "Nmi", "PushPowerButton"}}},
			"Oem": map[string]any{o: map[string]any{
				"Bios":    map[string]any{"UefiClass": 2, "Current": map[string]any{"VersionString": "U32 v2.10 (05/21/2019)"}},
				"Actions": map[string]any{"#" + o + "ComputerSystemExt.PowerButton": map[string]any{"target": sys + "Actions/Oem/" + o + "/ComputerSystemExt.PowerButton/"}},
				"Links":   map[string]any{"PCIDevices": ref(sys + "PCIDevices/")},
			}}})
	case p == "/redfish/v1/systems/1" && r.Method == http.MethodPatch:
		boot, _ := in["Boot"].(map[string]any)
		if _, bad := boot["BootSourceOverrideMode"]; bad || len(in) != 1 {
			redfishErr(w, 400, "Base.1.4.PropertyNotWritable")
			return
		}
		if r.Header.Get("If-Match") != `W/"abc"` {
			redfishErr(w, 412, "Base.1.4.PreconditionFailed")
			return
		}
		if v, ok := boot["BootSourceOverrideEnabled"].(string); ok {
			s.bootEnabled = v
		}
		if v, ok := boot["BootSourceOverrideTarget"].(string); ok {
			s.bootTarget = v
		}
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/systems/1/actions/computersystem.reset":
		if s.busy > 0 {
			s.busy--
			redfishErr(w, 400, "iLO.2.15.InvalidOperationForSystemState")
			return
		}
		switch in["ResetType"] {
		case "On":
			if s.power == "On" {
				redfishErr(w, 400, "iLO.2.15.InvalidOperationForSystemState")
				return
			}
			s.power = "On"
		case "ForceOff":
			s.power = "Off"
		case "ForceRestart":
			s.power = "On"
			s.bootMode = s.pendingMode
		default:
			redfishErr(w, 400, "Base.1.4.ActionParameterValueNotInList")
			return
		}
		writeJSON(w, 200, map[string]any{})
	case strings.HasSuffix(p, "computersystemext.powerbutton"):
		if in["PushType"] == "Press" {
			s.power = map[string]string{"On": "Off", "Off": "On"}[s.power]
		} else {
			s.power = "Off"
		}
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/systems/1/bios":
		writeJSON(w, 200, map[string]any{"Attributes": map[string]any{"BootMode": s.bootMode},
			"@Redfish.Settings": map[string]any{"SettingsObject": ref(sys + "Bios/settings/")}})
	case p == "/redfish/v1/systems/1/bios/settings" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"Attributes": map[string]any{"BootMode": s.pendingMode}})
	case p == "/redfish/v1/systems/1/bios/settings" && r.Method == http.MethodPatch:
		attrs, _ := in["Attributes"].(map[string]any)
		if m, ok := attrs["BootMode"].(string); ok {
			s.pendingMode = m
		}
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/systems/1/secureboot" && r.Method == http.MethodGet:
		cur := "Disabled"
		if s.secureBoot {
			cur = "Enabled"
		}
		writeJSON(w, 200, map[string]any{"SecureBootEnable": s.secureBoot, "SecureBootCurrentBoot": cur,
			"Actions": map[string]any{"#SecureBoot.ResetKeys": map[string]any{"target": sys + "SecureBoot/Actions/SecureBoot.ResetKeys/"}}})
	case p == "/redfish/v1/systems/1/secureboot" && r.Method == http.MethodPatch:
		s.secureBoot, _ = in["SecureBootEnable"].(bool)
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/systems/1/secureboot/actions/secureboot.resetkeys":
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/systems/1/processors":
		writeJSON(w, 200, map[string]any{"Members": []any{ref(sys + "Processors/1/"), ref(sys + "Processors/2/")}})
	case strings.HasPrefix(p, "/redfish/v1/systems/1/processors/"):
		writeJSON(w, 200, map[string]any{"Id": p[len(p)-1:], "TotalThreads": 16, "ProcessorArchitecture": "x86"})
	case p == "/redfish/v1/systems/1/ethernetinterfaces":
		writeJSON(w, 200, map[string]any{"Members": []any{ref(sys + "EthernetInterfaces/1/"), ref(sys + "EthernetInterfaces/2/")}})
	case strings.HasPrefix(p, "/redfish/v1/systems/1/ethernetinterfaces/"):
		id := p[len(p)-1:]
		st := map[string]any{"State": "Enabled", "Health": "OK"}
		if id == "2" {
			st = map[string]any{"State": "Disabled"}
		}
		writeJSON(w, 200, map[string]any{"Id": id, "MACAddress": "52:54:00:AA:00:0" + id, "Status": st})
	case p == "/redfish/v1/systems/1/pcidevices":
		writeJSON(w, 200, map[string]any{"Members": []any{ref(sys + "PCIDevices/1/")}})
	case p == "/redfish/v1/systems/1/pcidevices/1":
		writeJSON(w, 200, map[string]any{"ClassCode": 3, "SubclassCode": 2, "Name": "NVIDIA Tesla"})
	case p == "/redfish/v1/managers":
		writeJSON(w, 200, map[string]any{"Members": []any{ref("/redfish/v1/Managers/1/")}})
	case p == "/redfish/v1/managers/1":
		fw := "iLO 5 v2.10"
		if s.Gen == 9 {
			fw = "iLO 4 v2.55"
		}
		writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Managers/1/", "Id": "1", "FirmwareVersion": fw,
			"VirtualMedia": ref("/redfish/v1/Managers/1/VirtualMedia/"),
			"Actions":      map[string]any{"#Manager.Reset": map[string]any{"target": "/redfish/v1/Managers/1/Actions/Manager.Reset/"}},
			"Oem":          map[string]any{o: map[string]any{"Links": map[string]any{"LicenseService": ref("/redfish/v1/Managers/1/LicenseService/")}}}})
	case p == "/redfish/v1/managers/1/actions/manager.reset":
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/managers/1/licenseservice" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"Members": []any{ref("/redfish/v1/Managers/1/LicenseService/1/")}})
	case p == "/redfish/v1/managers/1/licenseservice" && r.Method == http.MethodPost:
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/managers/1/licenseservice/1":
		writeJSON(w, 200, map[string]any{"License": "iLO Advanced", "LicenseKey": "XXXXX-XXXXX", "LicenseType": "Perpetual"})
	case p == "/redfish/v1/managers/1/virtualmedia":
		writeJSON(w, 200, map[string]any{"Members": []any{ref("/redfish/v1/Managers/1/VirtualMedia/1/"), ref("/redfish/v1/Managers/1/VirtualMedia/2/")}})
	case p == "/redfish/v1/managers/1/virtualmedia/1" || p == "/redfish/v1/managers/1/virtualmedia/2":
		s.vmedia(w, r, p[len(p)-1:], in)
	case strings.HasPrefix(p, "/redfish/v1/managers/1/virtualmedia/") && s.Gen >= 10:
		slot := strings.Split(p, "/")[6]
		switch {
		case strings.HasSuffix(p, "virtualmedia.insertmedia"):
			img, _ := in["Image"].(string)
			s.media[slot] = img
		case strings.HasSuffix(p, "virtualmedia.ejectmedia"):
			if s.media[slot] == "" {
				redfishErr(w, 400, "iLO.2.15.UnableToEject")
				return
			}
			delete(s.media, slot)
		}
		writeJSON(w, 200, map[string]any{})
	case p == "/redfish/v1/chassis":
		writeJSON(w, 200, map[string]any{"Members": []any{ref("/redfish/v1/Chassis/1/")}})
	case p == "/redfish/v1/chassis/1":
		writeJSON(w, 200, map[string]any{"Thermal": ref("/redfish/v1/Chassis/1/Thermal/"), "Power": ref("/redfish/v1/Chassis/1/Power/")})
	case p == "/redfish/v1/chassis/1/thermal":
		writeJSON(w, 200, map[string]any{"Temperatures": []any{map[string]any{"Name": "01-Inlet Ambient", "ReadingCelsius": 21, "Status": map[string]any{"Health": "OK"}}},
			"Fans": []any{map[string]any{"Name": "Fan 1", "Reading": 30, "ReadingUnits": "Percent", "Status": map[string]any{"Health": "OK"}}}})
	case p == "/redfish/v1/chassis/1/power":
		writeJSON(w, 200, map[string]any{"PowerSupplies": []any{map[string]any{"Name": "PS 1", "PowerCapacityWatts": 500, "Status": map[string]any{"Health": "OK"}}},
			"PowerControl": []any{map[string]any{"PowerConsumedWatts": 120}}})
	case p == "/redfish/v1/accountservice":
		writeJSON(w, 200, map[string]any{"Accounts": ref("/redfish/v1/AccountService/Accounts/")})
	case p == "/redfish/v1/accountservice/accounts":
		writeJSON(w, 200, map[string]any{"Members": []any{ref("/redfish/v1/AccountService/Accounts/1/")}})
	case p == "/redfish/v1/accountservice/accounts/1" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"UserName": s.User})
	case p == "/redfish/v1/accountservice/accounts/1" && r.Method == http.MethodPatch:
		if pw, ok := in["Password"].(string); ok {
			s.Password = pw
		}
		writeJSON(w, 200, map[string]any{})
	default:
		redfishErr(w, 404, "Base.1.4.ResourceMissingAtURI")
	}
}

func (s *Server) vmedia(w http.ResponseWriter, r *http.Request, slot string, in map[string]any) {
	o := s.oem()
	self := "/redfish/v1/Managers/1/VirtualMedia/" + slot + "/"
	if r.Method == http.MethodPatch {
		if oem, ok := in["Oem"].(map[string]any); ok {
			x, _ := oem[o].(map[string]any)
			b, ok := x["BootOnNextServerReset"].(bool)
			if !ok || len(in) != 1 {
				redfishErr(w, 400, "Base.1.0.PropertyUnknown")
				return
			}
			s.bootOnNext[slot] = b
			writeJSON(w, 200, map[string]any{})
			return
		}
		if s.Gen >= 10 {
			redfishErr(w, 405, "Base.1.4.ActionNotSupported")
			return
		}
		// iLO 4: only Image is accepted.
		if _, ok := in["Image"]; !ok || len(in) != 1 {
			redfishErr(w, 400, "Base.0.10.PropertyUnknown")
			return
		}
		if img, ok := in["Image"].(string); ok {
			s.media[slot] = img
		} else {
			delete(s.media, slot)
		}
		writeJSON(w, 200, map[string]any{})
		return
	}
	types := []any{"Floppy", "USBStick"}
	if slot == "2" {
		types = []any{"CD", "DVD"}
	}
	m := map[string]any{"@odata.id": self, "Id": slot, "MediaTypes": types, "Image": s.media[slot], "Inserted": s.media[slot] != "",
		"WriteProtected": true, "ConnectedVia": "NotConnected",
		"Oem": map[string]any{o: map[string]any{"BootOnNextServerReset": s.bootOnNext[slot]}}}
	if s.media[slot] != "" {
		m["ConnectedVia"] = "URI"
	}
	if s.Gen >= 10 {
		m["Actions"] = map[string]any{
			"#VirtualMedia.InsertMedia": map[string]any{"target": self + "Actions/VirtualMedia.InsertMedia/"},
			"#VirtualMedia.EjectMedia":  map[string]any{"target": self + "Actions/VirtualMedia.EjectMedia/"},
		}
	}
	writeJSON(w, 200, m)
}
