package sim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ribclMode reads the server's RIBCL behaviour under the lock.
func (s *Server) ribclMode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hw.ribclMode(s.gen)
}

// ribclAvailable applies the RIBCL hardware option before a request is
// read: false means the request has been answered (404, 500) or dropped
// (hang: until the client gives up or the simulator closes).
func (s *Server) ribclAvailable(w http.ResponseWriter, r *http.Request) bool {
	switch s.ribclMode() {
	case "absent":
		// iLO 7: no RIBCL endpoint at all; the web server's HTML 404.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\r\n"))
		return false
	case "error":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>\r\n"))
		return false
	case "hang":
		select {
		case <-r.Context().Done():
		case <-s.sim.baseCtx.Done():
			resetConnection(w)
		}
		return false
	}
	return true
}

// iloMAC is the MAC of the iLO's own NIC (stable per server).
func (s *Server) iloMAC() string {
	gn := map[Generation]byte{Gen8: 8, Gen9: 9, Gen10: 10, Gen11: 11, Gen12: 12}[s.gen]
	return fmt.Sprintf("9c:8e:99:%02x:%02x:%02x", gn, byte(s.genIndex>>8), byte(s.genIndex))
}

// powerOnMinutes is the lifetime power-on counter GET_SERVER_POWER_ON_TIME
// reports: the saved minutes plus the current power-on period.
func (s *Server) powerOnMinutesLocked() int {
	m := s.st.PowerOnMinutes
	if s.st.Power == "ON" && !s.onSince.IsZero() {
		m += int(time.Since(s.onSince) / time.Minute)
	}
	return m
}

// runRIBCLInfo answers the configuration and status commands other RIBCL
// clients (python-hpilo, hponcfg scripts) use; ok is false for a command it
// does not know. The shapes follow the iLO 4 RIBCL reference.
func (s *Server) runRIBCLInfo(name string, cmd *xnode) (msg string, data func(*ribclWriter), err error, ok bool) {
	ok = true
	switch name {
	case "GET_NETWORK_SETTINGS":
		hw := s.Hardware()
		mac, port := s.iloMAC(), s.port
		data = func(w *ribclWriter) {
			w.raw("<GET_NETWORK_SETTINGS>\r\n")
			for _, kv := range [][2]string{
				{"ENABLE_NIC", "Y"}, {"SHARED_NETWORK_PORT", "N"}, {"VLAN_ENABLED", "N"}, {"VLAN_ID", "0"},
				{"SPEED_AUTOSELECT", "Y"}, {"NIC_SPEED", "Automatic"}, {"FULL_DUPLEX", "Automatic"},
				{"DHCP_ENABLE", "N"}, {"DHCP_GATEWAY", "N"}, {"DHCP_DNS_SERVER", "N"}, {"DHCP_WINS_SERVER", "N"},
				{"DHCP_STATIC_ROUTE", "N"}, {"DHCP_DOMAIN_NAME", "N"}, {"DHCP_SNTP_SETTINGS", "N"},
				{"REG_WINS_SERVER", "N"}, {"REG_DDNS_SERVER", "Y"}, {"PING_GATEWAY", "N"},
				{"MAC_ADDRESS", mac}, {"IP_ADDRESS", "127.0.0.1"}, {"SUBNET_MASK", "255.0.0.0"},
				{"GATEWAY_IP_ADDRESS", "0.0.0.0"}, {"DNS_NAME", "ILO" + hw.SerialNumber}, {"DOMAIN_NAME", "sim.local"},
				{"PRIM_DNS_SERVER", "0.0.0.0"}, {"SEC_DNS_SERVER", "0.0.0.0"}, {"TER_DNS_SERVER", "0.0.0.0"},
				{"PRIM_WINS_SERVER", "0.0.0.0"}, {"SEC_WINS_SERVER", "0.0.0.0"},
				{"SNTP_SERVER1", ""}, {"SNTP_SERVER2", ""}, {"TIMEZONE", "Etc/UTC"},
			} {
				w.val("    ", kv[0], kv[1])
			}
			for i := 1; i <= 3; i++ {
				w.el("    ", "STATIC_ROUTE_"+strconv.Itoa(i), "DEST", "0.0.0.0", "MASK", "0.0.0.0", "GATEWAY", "0.0.0.0")
			}
			w.val("    ", "HTTPS_PORT", strconv.Itoa(port))
			w.raw("</GET_NETWORK_SETTINGS>\r\n")
		}
	case "GET_GLOBAL_SETTINGS":
		port := s.port
		data = func(w *ribclWriter) {
			w.raw("<GET_GLOBAL_SETTINGS>\r\n")
			for _, kv := range [][2]string{
				{"SESSION_TIMEOUT", "30"}, {"F8_PROMPT_ENABLED", "Y"}, {"HTTP_PORT", "80"}, {"HTTPS_PORT", strconv.Itoa(port)},
				{"REMOTE_CONSOLE_PORT", "17990"}, {"MIN_PASSWORD", "8"}, {"ILO_FUNCT_ENABLED", "Y"},
				{"VIRTUAL_MEDIA_PORT", "17988"}, {"F8_LOGIN_REQUIRED", "N"}, {"ENFORCE_AES", "N"},
				{"AUTHENTICATION_FAILURE_LOGGING", "Enabled-every 3rd failure"}, {"SSH_PORT", "22"}, {"SSH_STATUS", "Y"},
				{"SERIAL_CLI_STATUS", "Enabled-Authentication Required"}, {"SERIAL_CLI_SPEED", "9600"},
				{"RBSU_POST_IP", "Y"}, {"SNMP_ACCESS_ENABLED", "Y"}, {"SNMP_PORT", "161"}, {"SNMP_TRAP_PORT", "162"},
				{"REMOTE_SYSLOG_ENABLE", "N"}, {"REMOTE_SYSLOG_PORT", "514"}, {"REMOTE_SYSLOG_SERVER_ADDRESS", ""},
				{"ALERTMAIL_ENABLE", "N"}, {"IPMI_DCMI_OVER_LAN_ENABLED", "Y"}, {"IPMI_DCMI_OVER_LAN_PORT", "623"},
				{"VSP_LOG_ENABLE", "N"}, {"PROPAGATE_TIME_TO_HOST", "Y"},
			} {
				w.val("    ", kv[0], kv[1])
			}
			w.raw("</GET_GLOBAL_SETTINGS>\r\n")
		}
	case "GET_ALL_USERS":
		st := s.State()
		data = func(w *ribclWriter) {
			w.raw("<GET_ALL_USERS>\r\n")
			// iLO 4 lists all 12 account slots, the unused ones empty.
			for i := range max(12, len(st.Users)) {
				login := ""
				if i < len(st.Users) {
					login = st.Users[i].Login
				}
				w.val("    ", "USER_LOGIN", login)
			}
			w.raw("</GET_ALL_USERS>\r\n")
		}
	case "GET_USER", "GET_ALL_USER_INFO":
		st := s.State()
		want, _ := cmd.attr("USER_LOGIN")
		found := name == "GET_ALL_USER_INFO"
		for _, u := range st.Users {
			found = found || u.Login == want
		}
		if !found {
			return "", nil, rerr(0x000A, "User login name was not found"), true
		}
		data = func(w *ribclWriter) {
			if name == "GET_ALL_USER_INFO" {
				w.raw("<GET_ALL_USER_INFO>\r\n")
			}
			for _, u := range st.Users {
				if name == "GET_USER" && u.Login != want {
					continue
				}
				w.el("", "GET_USER", "USER_NAME", u.Login, "USER_LOGIN", u.Login, "ADMIN_PRIV", "Y",
					"REMOTE_CONS_PRIV", "Y", "RESET_SERVER_PRIV", "Y", "VIRTUAL_MEDIA_PRIV", "Y", "CONFIG_ILO_PRIV", "Y")
			}
			if name == "GET_ALL_USER_INFO" {
				w.raw("</GET_ALL_USER_INFO>\r\n")
			}
		}
	case "GET_UID_STATUS":
		uid := s.State().UID
		if uid == "" {
			uid = "OFF"
		}
		data = func(w *ribclWriter) { w.el("", "GET_UID_STATUS", "UID", uid) }
	case "UID_CONTROL":
		v, _ := cmd.attr("UID")
		var uid string
		switch strings.ToUpper(v) {
		case "YES", "ON":
			uid = "ON"
		case "NO", "OFF":
			uid = "OFF"
		default:
			return "", nil, rerr(0x0001, fmt.Sprintf("Syntax error: UID must be Yes or No, not %q.", v)), true
		}
		_ = s.do(func(st *State) error { st.UID = uid; return nil })
	case "GET_SERVER_POWER_ON_TIME":
		s.mu.Lock()
		m := s.powerOnMinutesLocked()
		s.mu.Unlock()
		data = func(w *ribclWriter) { w.val("", "SERVER_POWER_ON_MINUTES", strconv.Itoa(m)) }
	case "GET_ASSET_TAG":
		tag := s.Hardware().AssetTag
		if t := s.State().AssetTag; t != "" {
			tag = t
		}
		if tag == "" {
			// No data document: python-hpilo turns this into asset_tag None.
			return "No Asset Tag Information.", nil, nil, true
		}
		data = func(w *ribclWriter) {
			w.raw("<GET_ASSET_TAG>\r\n")
			w.val("    ", "ASSET_TAG", tag)
			w.raw("</GET_ASSET_TAG>\r\n")
		}
	case "SET_ASSET_TAG":
		v, _ := cmd.attr("VALUE")
		if len(v) > 32 {
			return "", nil, rerr(0x0001, "The asset tag is longer than 32 characters."), true
		}
		_ = s.do(func(st *State) error { st.AssetTag = v; return nil })
	case "GET_TPM_STATUS":
		data = func(w *ribclWriter) {
			w.raw("<GET_TPM_STATUS>\r\n")
			w.val("    ", "TPM_SUPPORT", "Yes")
			w.val("    ", "TPM_PRESENT", "Yes")
			w.val("    ", "TPM_ENABLED", "Yes")
			w.raw("</GET_TPM_STATUS>\r\n")
		}
	case "GET_SERVER_AUTO_PWR":
		data = func(w *ribclWriter) {
			w.raw("<GET_SERVER_AUTO_PWR>\r\n")
			w.val("    ", "SERVER_AUTO_PWR", "RESTORE")
			w.raw("</GET_SERVER_AUTO_PWR>\r\n")
		}
	case "GET_HOST_POWER_SAVER_STATUS":
		data = func(w *ribclWriter) { w.el("", "GET_HOST_POWER_SAVER", "HOST_POWER_SAVER", "1") }
	default:
		ok = false
	}
	return msg, data, err, ok
}
