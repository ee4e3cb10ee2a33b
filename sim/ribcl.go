package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// xnode is a parsed RIBCL request element.
type xnode struct {
	name     string // upper case
	attrs    []xml.Attr
	children []*xnode
}

// attr looks an attribute up case-insensitively (proliantutils writes the
// lower-case `value` on SET_ONE_TIME_BOOT and SET_PENDING_BOOT_MODE).
func (n *xnode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

const maxRIBCLBody = 1 << 20

// parseRIBCL parses a request document into its element tree.
func parseRIBCL(body []byte) (*xnode, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = false
	var stack []*xnode
	var root *xnode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: strings.ToUpper(t.Name.Local), attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 64 {
			return nil, errors.New("document nested too deeply")
		}
	}
	if root == nil {
		return nil, errors.New("empty document")
	}
	return root, nil
}

// ribclWriter builds the multi-document answer stream of a real iLO.
type ribclWriter struct {
	b bytes.Buffer
}

var ribclPool = sync.Pool{New: func() any { return new(ribclWriter) }}

func (w *ribclWriter) open(status int, msg string) {
	w.b.WriteString("<?xml version=\"1.0\"?>\r\n<RIBCL VERSION=\"2.23\">\r\n<RESPONSE\r\n    STATUS=\"0x")
	fmt.Fprintf(&w.b, "%04X", status)
	w.b.WriteString("\"\r\n    MESSAGE='")
	w.b.WriteString(escapeAttr(msg))
	w.b.WriteString("'\r\n     />\r\n")
}

func (w *ribclWriter) close() { w.b.WriteString("</RIBCL>\r\n") }

// doc writes one RESPONSE-only document.
func (w *ribclWriter) doc(status int, msg string) {
	w.open(status, msg)
	w.close()
}

func (w *ribclWriter) raw(s string) { w.b.WriteString(s) }

// el writes <NAME A="v" .../> with attribute pairs.
func (w *ribclWriter) el(indent, name string, kv ...string) {
	w.b.WriteString(indent)
	w.b.WriteByte('<')
	w.b.WriteString(name)
	for i := 0; i+1 < len(kv); i += 2 {
		w.b.WriteByte(' ')
		w.b.WriteString(kv[i])
		w.b.WriteString("=\"")
		w.b.WriteString(escapeAttr(kv[i+1]))
		w.b.WriteByte('"')
	}
	w.b.WriteString("/>\r\n")
}

// val writes <NAME VALUE="v"/>.
func (w *ribclWriter) val(indent, name, v string) { w.el(indent, name, "VALUE", v) }

func escapeAttr(s string) string {
	if !strings.ContainsAny(s, "&<>\"'") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ribclError is a non-zero RIBCL status.
type ribclError struct {
	status int
	msg    string
}

func (e *ribclError) Error() string { return fmt.Sprintf("0x%04X %s", e.status, e.msg) }

func rerr(status int, msg string) *ribclError { return &ribclError{status, msg} }

func syntaxError(cmd string) *ribclError {
	return rerr(0x0001, fmt.Sprintf("Syntax error: Line #0: syntax error near \"%s\" in the line: \"<%s />\".", cmd, cmd))
}

const (
	statusLoginFailed  = 0x005F
	statusBadVMOption  = 0x0035
	statusPwTooShort   = 0x0004
	statusLicenseError = 0x002E
	statusNotSupported = 0x003C
)

func (s *Server) serveRIBCL(w http.ResponseWriter, r *http.Request) {
	out := ribclPool.Get().(*ribclWriter)
	out.b.Reset()
	defer ribclPool.Put(out)
	if !s.ribclAvailable(w, r) {
		return
	}
	if busy := s.ribclAnswer(r, out); busy {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "iLO is busy; try again later", http.StatusServiceUnavailable)
		return
	}
	// A real iLO answers RIBCL chunked and closes the connection;
	// python-hpilo reads the Transfer-Encoding header and fails without it.
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Connection", "close")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	_, _ = w.Write(out.b.Bytes())
}

// ribclAnswer builds the answer stream; true means "answer busy instead".
func (s *Server) ribclAnswer(r *http.Request, out *ribclWriter) bool {
	if s.ribclMode() == "disabled" {
		out.doc(0x0001, "RIBCLI is disabled.")
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRIBCLBody+1))
	if err != nil {
		out.doc(0x0001, "Syntax error: Line #0: incomplete request.")
		return false
	}
	if len(body) > maxRIBCLBody {
		out.doc(0x0001, "Syntax error: Line #0: request too large.")
		return false
	}
	root, err := parseRIBCL(body)
	if err != nil || root.name != "RIBCL" {
		out.doc(0x0001, "Syntax error: Line #0: syntax error near \"\" in the line: \"\".")
		return false
	}
	login := root.child("LOGIN")
	if login == nil {
		out.doc(0x0001, "Syntax error: Line #1: syntax error near \"RIBCL\" in the line: \"LOGIN expected\".")
		return false
	}
	user, _ := login.attr("USER_LOGIN")
	pass, _ := login.attr("PASSWORD")
	s.mu.Lock()
	ok := s.checkLoginLocked(user, pass)
	s.mu.Unlock()
	out.doc(0, "No error")
	if !ok {
		out.doc(statusLoginFailed, "Login failed.")
		return false
	}
	for _, sec := range login.children {
		if m, _ := sec.attr("MODE"); strings.EqualFold(m, "write") && s.takeBusy() {
			return true
		}
	}
	for _, sec := range login.children {
		switch sec.name {
		case "SERVER_INFO", "RIB_INFO", "USER_INFO":
		default:
			out.doc(0x0001, fmt.Sprintf("Syntax error: Line #0: syntax error near \"%s\" in the line: \"<%s>\".", sec.name, sec.name))
			continue
		}
		mode, _ := sec.attr("MODE")
		write := strings.EqualFold(mode, "write")
		for _, cmd := range sec.children {
			s.ribclCommand(r, out, sec.name, write, cmd)
		}
	}
	out.doc(0, "No error")
	return false
}

var writeCommands = map[string]bool{
	"SET_HOST_POWER": true, "RESET_SERVER": true, "PRESS_PWR_BTN": true, "HOLD_PWR_BTN": true,
	"COLD_BOOT_SERVER": true, "WARM_BOOT_SERVER": true, "SET_ONE_TIME_BOOT": true,
	"SET_PERSISTENT_BOOT": true, "SET_PENDING_BOOT_MODE": true, "INSERT_VIRTUAL_MEDIA": true,
	"EJECT_VIRTUAL_MEDIA": true, "SET_VM_STATUS": true, "RESET_RIB": true, "LICENSE": true,
	"MOD_USER": true, "UID_CONTROL": true, "SET_ASSET_TAG": true,
}

var commandSection = map[string]string{
	"GET_PRODUCT_NAME": "SERVER_INFO", "GET_HOST_POWER_STATUS": "SERVER_INFO", "SET_HOST_POWER": "SERVER_INFO",
	"RESET_SERVER": "SERVER_INFO", "PRESS_PWR_BTN": "SERVER_INFO", "HOLD_PWR_BTN": "SERVER_INFO",
	"COLD_BOOT_SERVER": "SERVER_INFO", "WARM_BOOT_SERVER": "SERVER_INFO",
	"GET_ONE_TIME_BOOT": "SERVER_INFO", "SET_ONE_TIME_BOOT": "SERVER_INFO", "GET_PERSISTENT_BOOT": "SERVER_INFO",
	"SET_PERSISTENT_BOOT": "SERVER_INFO", "GET_CURRENT_BOOT_MODE": "SERVER_INFO", "GET_PENDING_BOOT_MODE": "SERVER_INFO",
	"SET_PENDING_BOOT_MODE": "SERVER_INFO", "GET_SUPPORTED_BOOT_MODE": "SERVER_INFO", "GET_EMBEDDED_HEALTH": "SERVER_INFO",
	"GET_POWER_READINGS": "SERVER_INFO", "GET_HOST_DATA": "SERVER_INFO", "GET_SERVER_NAME": "SERVER_INFO",
	"GET_VM_STATUS": "RIB_INFO", "INSERT_VIRTUAL_MEDIA": "RIB_INFO", "EJECT_VIRTUAL_MEDIA": "RIB_INFO",
	"SET_VM_STATUS": "RIB_INFO", "RESET_RIB": "RIB_INFO", "GET_ALL_LICENSES": "RIB_INFO", "LICENSE": "RIB_INFO",
	"GET_FW_VERSION": "RIB_INFO", "MOD_USER": "USER_INFO",
	"GET_NETWORK_SETTINGS": "RIB_INFO", "GET_GLOBAL_SETTINGS": "RIB_INFO",
	"GET_ALL_USERS": "USER_INFO", "GET_USER": "USER_INFO", "GET_ALL_USER_INFO": "USER_INFO",
	"GET_UID_STATUS": "SERVER_INFO", "UID_CONTROL": "SERVER_INFO", "GET_SERVER_POWER_ON_TIME": "SERVER_INFO",
	"GET_ASSET_TAG": "SERVER_INFO", "SET_ASSET_TAG": "SERVER_INFO", "GET_TPM_STATUS": "SERVER_INFO",
	"GET_SERVER_AUTO_PWR": "SERVER_INFO", "GET_HOST_POWER_SAVER_STATUS": "SERVER_INFO",
}

func (s *Server) ribclCommand(r *http.Request, out *ribclWriter, section string, write bool, cmd *xnode) {
	name := cmd.name
	if sec, ok := commandSection[name]; !ok || sec != section {
		out.doc(syntaxError(name).status, syntaxError(name).msg)
		return
	}
	if writeCommands[name] && !write {
		out.doc(0x0023, "Read-only access for this command; use MODE=\"write\".")
		return
	}
	msg, data, err := s.runRIBCL(r, name, cmd)
	var re *ribclError
	if errors.As(err, &re) {
		out.doc(re.status, re.msg)
		return
	}
	if err != nil {
		out.doc(0x0001, err.Error())
		return
	}
	if msg == "" {
		msg = "No error"
	}
	out.open(0, msg)
	if data != nil {
		data(out)
	}
	out.close()
}

var licenseKeyRE = regexp.MustCompile(`^[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){4}$`)

// runRIBCL executes one command: a status message, the data writer or an error.
func (s *Server) runRIBCL(r *http.Request, name string, cmd *xnode) (string, func(*ribclWriter), error) {
	switch name {
	case "GET_PRODUCT_NAME":
		model := s.Hardware().Model
		return "", func(w *ribclWriter) {
			w.raw("<GET_PRODUCT_NAME>\r\n    <PRODUCT_NAME VALUE =\"" + escapeAttr(model) + "\"/>\r\n</GET_PRODUCT_NAME>\r\n")
		}, nil
	case "GET_SERVER_NAME":
		return "", func(w *ribclWriter) { w.el("", "SERVER_NAME", "VALUE", s.name) }, nil
	case "GET_HOST_POWER_STATUS":
		p := s.State().Power
		return "", func(w *ribclWriter) { w.raw("<GET_HOST_POWER\r\n    HOST_POWER=\"" + p + "\"\r\n    />\r\n") }, nil
	case "SET_HOST_POWER":
		v, _ := cmd.attr("HOST_POWER")
		on := strings.EqualFold(v, "Yes")
		if !on && !strings.EqualFold(v, "No") {
			return "", nil, rerr(0x0001, "Syntax error: HOST_POWER must be Yes or No.")
		}
		var msg string
		_ = s.do(func(st *State) error {
			switch {
			case on && st.Power == "ON":
				msg = "Host power is already ON."
			case !on && st.Power == "OFF":
				msg = "Host power is already OFF."
			case on:
				s.bootLocked()
			default:
				s.powerOffLocked()
			}
			return nil
		})
		return msg, nil, nil
	case "RESET_SERVER", "COLD_BOOT_SERVER", "WARM_BOOT_SERVER":
		var msg string
		_ = s.do(func(st *State) error {
			if st.Power != "ON" {
				msg = "Server is currently powered off."
				return errors.New("off")
			}
			s.bootLocked()
			msg = "Server being reset."
			return nil
		})
		if msg == "Server is currently powered off." {
			return "", nil, rerr(0x0001, msg)
		}
		return msg, nil, nil
	case "PRESS_PWR_BTN":
		_ = s.do(func(st *State) error {
			if st.Power == "ON" {
				s.gracefulLocked()
			} else {
				s.bootLocked()
			}
			return nil
		})
		return "", nil, nil
	case "HOLD_PWR_BTN":
		var msg string
		_ = s.do(func(st *State) error {
			if st.Power == "ON" {
				s.powerOffLocked()
			} else {
				msg = "Host power is already OFF."
			}
			return nil
		})
		return msg, nil, nil
	case "GET_ONE_TIME_BOOT":
		v := s.State().OneTimeBoot
		return "", func(w *ribclWriter) {
			w.raw("<ONE_TIME_BOOT>\r\n")
			w.val("    ", "BOOT_TYPE", v)
			w.raw("</ONE_TIME_BOOT>\r\n")
		}, nil
	case "SET_ONE_TIME_BOOT":
		v, _ := cmd.attr("VALUE")
		dev, ok := normaliseOneTime(v)
		if !ok {
			return "", nil, rerr(0x0001, fmt.Sprintf("Invalid one time boot device %q.", v))
		}
		_ = s.do(func(st *State) error {
			if strings.HasPrefix(dev, "Boot") {
				if c := uefiClassOf(dev); c != "" {
					dev = c
				}
			}
			st.OneTimeBoot = dev
			return nil
		})
		return "", nil, nil
	case "GET_PERSISTENT_BOOT":
		st := s.State()
		hw := s.Hardware()
		return "", func(w *ribclWriter) {
			w.raw("<PERSISTENT_BOOT>\r\n")
			for _, d := range st.PersistentBoot {
				if st.BootMode == "UEFI" {
					e, ok := uefiEntry(d, &hw)
					if !ok {
						continue
					}
					w.el("    ", "DEVICE", "value", e.id, "DESCRIPTION", e.desc)
				} else {
					w.el("    ", "DEVICE", "value", d)
				}
			}
			w.raw("</PERSISTENT_BOOT>\r\n")
		}, nil
	case "SET_PERSISTENT_BOOT":
		var devs []string
		for _, c := range cmd.children {
			if c.name != "DEVICE" {
				continue
			}
			v, _ := c.attr("VALUE")
			d := ""
			if strings.HasPrefix(strings.ToUpper(v), "BOOT") {
				d = uefiClassOf(v)
			} else {
				d = normaliseDevice(v)
			}
			if d == "" {
				return "", nil, rerr(0x0001, fmt.Sprintf("Invalid persistent boot device %q.", v))
			}
			devs = append(devs, d)
		}
		if len(devs) == 0 {
			return "", nil, rerr(0x0001, "SET_PERSISTENT_BOOT needs at least one DEVICE.")
		}
		_ = s.do(func(st *State) error {
			st.PersistentBoot = reorder(st.PersistentBoot, devs)
			st.ContinuousOverride = false
			return nil
		})
		return "", nil, nil
	case "GET_CURRENT_BOOT_MODE", "GET_PENDING_BOOT_MODE":
		st := s.State()
		v := st.BootMode
		if name == "GET_PENDING_BOOT_MODE" {
			v = st.PendingBootMode
		}
		return "", func(w *ribclWriter) {
			w.raw("<" + name + ">\r\n")
			w.val("    ", "BOOT_MODE", v)
			w.raw("</" + name + ">\r\n")
		}, nil
	case "SET_PENDING_BOOT_MODE":
		v, _ := cmd.attr("VALUE")
		mode := strings.ToUpper(strings.TrimSpace(v))
		if mode != "UEFI" && mode != "LEGACY" {
			return "", nil, rerr(0x0001, fmt.Sprintf("Invalid boot mode %q: use UEFI or LEGACY.", v))
		}
		hw := s.Hardware()
		if !hw.supportsMode(mode) {
			return "", nil, rerr(statusNotSupported, "Feature not supported - SET_PENDING_BOOT_MODE")
		}
		_ = s.do(func(st *State) error { st.PendingBootMode = mode; return nil })
		return "", nil, nil
	case "GET_SUPPORTED_BOOT_MODE":
		v := s.Hardware().SupportedBootModes
		return "", func(w *ribclWriter) {
			w.raw("<GET_SUPPORTED_BOOT_MODE>\r\n")
			w.val("    ", "SUPPORTED_BOOT_MODE", v)
			w.raw("</GET_SUPPORTED_BOOT_MODE>\r\n")
		}, nil
	case "GET_EMBEDDED_HEALTH":
		hw := s.Hardware()
		st := s.State()
		return "", func(w *ribclWriter) { s.writeEmbeddedHealth(w, &hw, &st) }, nil
	case "GET_POWER_READINGS":
		hw := s.Hardware()
		watts := 0
		if s.State().Power == "ON" {
			watts = hw.PowerWatts
		}
		return "", func(w *ribclWriter) {
			w.raw("<GET_POWER_READINGS>\r\n")
			for _, k := range []string{"PRESENT", "AVERAGE", "MAXIMUM", "MINIMUM"} {
				v := watts
				if k == "MAXIMUM" && watts > 0 {
					v = watts + watts/2
				}
				w.el("", k+"_POWER_READING", "VALUE", strconv.Itoa(v), "UNIT", "Watts")
			}
			w.raw("</GET_POWER_READINGS>\r\n")
		}, nil
	case "GET_HOST_DATA":
		hw := s.Hardware()
		return "", func(w *ribclWriter) { writeHostData(w, &hw, s.gen) }, nil
	case "GET_FW_VERSION":
		hw := s.Hardware()
		st := s.State()
		ver, date, _ := strings.Cut(hw.ILOFirmware, " ")
		proc := strings.ReplaceAll(s.gen.iloName(), " ", "")
		lic := st.Licenses[len(st.Licenses)-1].Type
		return "", func(w *ribclWriter) {
			w.el("", "GET_FW_VERSION", "FIRMWARE_VERSION", ver, "FIRMWARE_DATE", date,
				"MANAGEMENT_PROCESSOR", proc, "LICENSE_TYPE", lic)
		}, nil
	case "GET_VM_STATUS":
		dev, ok := vmDevice(cmd)
		if !ok {
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		m := s.State().Media[dev]
		return "", func(w *ribclWriter) {
			w.el("", "GET_VM_STATUS", "VM_APPLET", "DISCONNECTED", "DEVICE", dev,
				"BOOT_OPTION", m.BootOption, "WRITE_PROTECT", yesNo(m.WriteProtect),
				"IMAGE_INSERTED", yesNo(m.Inserted), "IMAGE_URL", m.URL)
		}, nil
	case "INSERT_VIRTUAL_MEDIA":
		dev, ok := vmDevice(cmd)
		if !ok {
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		url, _ := cmd.attr("IMAGE_URL")
		if err := s.sim.checkImageURL(r.Context(), url); err != nil {
			return "", nil, rerr(0x0001, "Unable to connect to the virtual media image URL.")
		}
		_ = s.do(func(st *State) error {
			st.Media[dev] = Media{URL: url, Inserted: true, BootOption: "BOOT_ALWAYS", WriteProtect: true}
			return nil
		})
		return "", nil, nil
	case "EJECT_VIRTUAL_MEDIA":
		dev, ok := vmDevice(cmd)
		if !ok {
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		err := s.do(func(st *State) error {
			if !st.Media[dev].Inserted {
				return errors.New("empty")
			}
			st.Media[dev] = Media{BootOption: "BOOT_ALWAYS"}
			return nil
		})
		if err != nil {
			return "", nil, rerr(0x0001, "No image present in the Virtual Media drive")
		}
		return "", nil, nil
	case "SET_VM_STATUS":
		dev, ok := vmDevice(cmd)
		if !ok {
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		var bootOpt, wp string
		if c := cmd.child("VM_BOOT_OPTION"); c != nil {
			bootOpt, _ = c.attr("VALUE")
			bootOpt = strings.ToUpper(bootOpt)
		}
		if c := cmd.child("VM_WRITE_PROTECT"); c != nil {
			wp, _ = c.attr("VALUE")
			wp = strings.ToUpper(wp)
		}
		switch bootOpt {
		case "", "BOOT_ONCE", "BOOT_ALWAYS", "NO_BOOT", "CONNECT", "DISCONNECT":
		default:
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		if wp != "" && wp != "YES" && wp != "NO" && wp != "Y" && wp != "N" {
			return "", nil, rerr(statusBadVMOption, "An invalid Virtual Media option has been given")
		}
		_ = s.do(func(st *State) error {
			m := st.Media[dev]
			switch bootOpt {
			case "BOOT_ONCE", "BOOT_ALWAYS", "NO_BOOT":
				m.BootOption = bootOpt
			case "DISCONNECT":
				m = Media{BootOption: "BOOT_ALWAYS"}
			}
			if wp != "" {
				m.WriteProtect = wp[0] == 'Y'
			}
			st.Media[dev] = m
			return nil
		})
		return "", nil, nil
	case "RESET_RIB":
		s.resetILO()
		return "", func(w *ribclWriter) {
			w.raw("<INFORM>Integrated Lights-Out will reset at the end of the script.</INFORM>\r\n")
		}, nil
	case "GET_ALL_LICENSES":
		lics := s.State().Licenses
		return "", func(w *ribclWriter) {
			w.raw("<GET_ALL_LICENSES>\r\n")
			for _, l := range lics {
				w.raw("   <LICENSE>\r\n")
				w.val("      ", "LICENSE_TYPE", l.Type)
				w.val("      ", "LICENSE_KEY", l.Key)
				w.val("      ", "LICENSE_INSTALL_DATE", l.InstallDate)
				w.val("      ", "LICENSE_CLASS", l.Class)
				w.raw("   </LICENSE>\r\n")
			}
			w.raw("</GET_ALL_LICENSES>\r\n")
		}, nil
	case "LICENSE":
		act := cmd.child("ACTIVATE")
		if act == nil {
			return "", nil, syntaxError("LICENSE")
		}
		key, _ := act.attr("KEY")
		if err := s.activateLicense(key); err != nil {
			return "", nil, rerr(statusLicenseError, "License key error")
		}
		return "", nil, nil
	case "MOD_USER":
		login, _ := cmd.attr("USER_LOGIN")
		pw, hasPw := "", false
		if c := cmd.child("PASSWORD"); c != nil {
			pw, hasPw = c.attr("VALUE")
		}
		if !hasPw {
			return "", nil, nil
		}
		if err := s.setPassword(login, pw); err != nil {
			var re *ribclError
			if errors.As(err, &re) {
				return "", nil, re
			}
			return "", nil, err
		}
		return "", nil, nil
	}
	if msg, data, err, ok := s.runRIBCLInfo(name, cmd); ok {
		return msg, data, err
	}
	return "", nil, syntaxError(name)
}

// serveXMLData answers the unauthenticated discovery document.
func (s *Server) serveXMLData(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hw := s.Hardware()
	pn := map[Generation]string{
		Gen8: "Integrated Lights-Out 4 (iLO 4)", Gen9: "Integrated Lights-Out 4 (iLO 4)",
		Gen10: "Integrated Lights-Out 5 (iLO 5)", Gen11: "Integrated Lights-Out 6 (iLO 6)",
		Gen12: "Integrated Lights-Out 7 (iLO 7)",
	}[s.gen]
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\r\n<RIMP>\r\n<HSI>\r\n<SBSN>")
	xml.EscapeText(&b, []byte(hw.SerialNumber))
	b.WriteString("</SBSN>\r\n<SPN>")
	xml.EscapeText(&b, []byte(hw.Model))
	b.WriteString("</SPN>\r\n<UUID>")
	xml.EscapeText(&b, []byte(hw.SerialNumber))
	b.WriteString("</UUID>\r\n<SP>1</SP>\r\n<cUUID>")
	b.WriteString(hw.UUID)
	b.WriteString("</cUUID>\r\n<VIRTUAL>\r\n<STATE>Inactive</STATE>\r\n<VID>\r\n<BSN></BSN>\r\n<cUUID></cUUID>\r\n</VID>\r\n</VIRTUAL>\r\n</HSI>\r\n<MP>\r\n<ST>1</ST>\r\n<PN>")
	b.WriteString(pn)
	b.WriteString("</PN>\r\n<FWRI>")
	b.WriteString(hw.iloVersion())
	b.WriteString("</FWRI>\r\n<HWRI>ASIC: 16</HWRI>\r\n<SN>ILO")
	xml.EscapeText(&b, []byte(hw.SerialNumber))
	b.WriteString("</SN>\r\n</MP>\r\n</RIMP>\r\n")
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b.Bytes())
}
