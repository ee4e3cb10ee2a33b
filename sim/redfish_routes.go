package sim

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// sessionKey carries the caller's Redfish session (nil with basic auth) to
// the handlers.
type sessionKey struct{}

// redfishMux routes the authenticated Redfish resources. Patterns are in
// the canonical form serveRedfish routes by (lower case, no trailing
// slash): iLOs accept any case and an optional trailing slash. A GET
// pattern also answers HEAD. Anything unmatched, including a known path
// with a method it does not list, is the iLO's ResourceMissingAtURI; paths
// that answer other methods with the iLO's 405 say so explicitly.
func (s *Server) redfishMux() *http.ServeMux {
	mux := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		if method != "" {
			method += " "
		}
		mux.HandleFunc(method+rf+path, fn)
	}
	const sys = rf + "/Systems/1/"

	// Systems/1: power, boot override.
	h("GET /systems", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Systems/", "ComputerSystem", []string{sys}), "GET, HEAD")
	})
	h("GET /systems/1", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfSystem(&st, &hw), "GET, HEAD, POST, PATCH")
	})
	h("PATCH /systems/1", s.rfPatchSystem)
	h("/systems/1", rfUnsupported)
	h("POST /systems/1/actions/computersystem.reset", func(w http.ResponseWriter, r *http.Request) {
		withBody(w, r, func(body obj) error {
			rt, _ := body["ResetType"].(string)
			return s.systemReset(rt)
		})
	})
	powerButton := func(w http.ResponseWriter, r *http.Request) {
		body, err := readJSONBody(r)
		if err != nil {
			rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
			return
		}
		pt, _ := body["PushType"].(string)
		if pt != "Press" && pt != "PressAndHold" {
			rfMessage(w, 400, "Base.1.4.PropertyValueNotInList", "PushType must be Press or PressAndHold")
			return
		}
		if err := s.systemReset(pt); err != nil {
			rfOpError(w, err)
			return
		}
		rfSuccess(w)
	}
	h("POST /systems/1/actions/oem/hpe/hpecomputersystemext.powerbutton", powerButton)
	h("POST /systems/1/actions/oem/hp/hpcomputersystemext.powerbutton", powerButton)

	// BIOS and boot order.
	h("GET /systems/1/bios", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfBios(&st, &hw, false), "GET, HEAD")
	})
	h("GET /systems/1/bios/settings", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfBios(&st, &hw, true), "GET, HEAD, POST, PATCH")
	})
	for _, m := range []string{http.MethodPatch, http.MethodPost, http.MethodPut} {
		h(m+" /systems/1/bios/settings", func(w http.ResponseWriter, r *http.Request) { s.rfPatchBios(w, r, r.Method != http.MethodPatch) })
	}
	h("/systems/1/bios/settings", rfUnsupported)
	h("GET /systems/1/bios/baseconfigs", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		writeJSON(w, 200, obj{"@odata.id": sys + "bios/baseconfigs/", "BaseConfigs": []obj{{"default": s.defaultBiosAttrs(&hw)}}}, "GET, HEAD")
	})
	h("GET /systems/1/bios/boot", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfBiosBoot(&st, &hw), "GET, HEAD")
	})
	iscsi := func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		writeJSON(w, 200, obj{"@odata.id": sys + "bios/iscsi/", "iSCSIInitiatorName": "iqn.2015-02.com.hpe:uefi-" + hw.SerialNumber,
			"iSCSISources": []obj{}, "@Redfish.Settings": obj{"SettingsObject": link(sys + "bios/iscsi/settings/")}}, "GET, HEAD, PATCH")
	}
	h("GET /systems/1/bios/iscsi", iscsi)
	h("GET /systems/1/bios/iscsi/settings", iscsi)

	// Secure boot.
	h("GET /systems/1/secureboot", func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.snapshot()
		writeJSON(w, 200, s.rfSecureBoot(&st), "GET, HEAD, PATCH")
	})
	h("PATCH /systems/1/secureboot", func(w http.ResponseWriter, r *http.Request) {
		body, err := readJSONBody(r)
		if err != nil {
			rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
			return
		}
		v, ok := body["SecureBootEnable"].(bool)
		if !ok {
			rfMessage(w, 400, "Base.1.4.PropertyUnknown", "only SecureBootEnable can be changed")
			return
		}
		if err := s.setSecureBoot(v); err != nil {
			rfOpError(w, err)
			return
		}
		rfSuccess(w)
	})
	h("/systems/1/secureboot", rfUnsupported)
	h("POST /systems/1/secureboot/actions/secureboot.resetkeys", func(w http.ResponseWriter, r *http.Request) {
		withBody(w, r, func(body obj) error {
			k, _ := body["ResetKeysType"].(string)
			return s.resetKeys(k)
		})
	})

	// Inventory: processors, memory, NICs, PCI devices, storage.
	s.inventoryRoutes(h)

	// Managers/1: reset, virtual media, licences, security.
	h("GET /managers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Managers/", "Manager", []string{rf + "/Managers/1/"}), "GET, HEAD")
	})
	h("GET /managers/1", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfManager(&st, &hw), "GET, HEAD, PATCH")
	})
	h("POST /managers/1/actions/manager.reset", func(w http.ResponseWriter, r *http.Request) {
		rfSuccess(w)
		s.resetILO()
	})
	h("GET /managers/1/virtualmedia", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Managers/1/VirtualMedia/", "VirtualMedia",
			[]string{rf + "/Managers/1/VirtualMedia/1/", rf + "/Managers/1/VirtualMedia/2/"}), "GET, HEAD")
	})
	h("/managers/1/virtualmedia/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.snapshot()
		s.rfVirtualMedia(w, r, strings.Split(r.PathValue("rest"), "/"), &st)
	})
	h("GET /managers/1/licenseservice", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Managers/1/LicenseService/", "HpeiLOLicense", []string{rf + "/Managers/1/LicenseService/1/"}), "GET, HEAD, POST")
	})
	h("POST /managers/1/licenseservice", func(w http.ResponseWriter, r *http.Request) {
		withBody(w, r, func(body obj) error {
			key, _ := body["LicenseKey"].(string)
			if err := s.activateLicense(key); err != nil {
				return opErr("license", "the licence key is not valid")
			}
			return nil
		})
	})
	h("/managers/1/licenseservice", rfUnsupported)
	h("GET /managers/1/licenseservice/1", func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.snapshot()
		l := st.Licenses[len(st.Licenses)-1]
		writeJSON(w, 200, obj{"@odata.id": rf + "/Managers/1/LicenseService/1/", "Id": "1", "Name": "iLO License",
			"License": l.Type, "LicenseKey": l.Key, "LicenseClass": l.Class, "LicenseInstallDate": l.InstallDate,
			"LicenseType": map[bool]string{true: "Perpetual", false: "Unlicensed"}[l.Key != ""]}, "GET, HEAD")
	})
	securityRoutes(h)

	// Chassis/1: thermal, power, devices.
	h("GET /chassis", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Chassis/", "Chassis", []string{rf + "/Chassis/1/"}), "GET, HEAD")
	})
	h("GET /chassis/1", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfChassis(&st, &hw), "GET, HEAD, PATCH")
	})
	h("GET /chassis/1/thermal", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfThermal(&st, &hw), "GET, HEAD")
	})
	h("GET /chassis/1/power", func(w http.ResponseWriter, r *http.Request) {
		st, hw := s.snapshot()
		writeJSON(w, 200, s.rfPower(&st, &hw), "GET, HEAD")
	})
	h("GET /chassis/1/devices", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.GPUs {
			ms = append(ms, fmt.Sprintf("%s/Chassis/1/Devices/%d/", rf, i+1))
		}
		writeJSON(w, 200, collection(rf+"/Chassis/1/Devices/", "HpeServerDevice", ms), "GET, HEAD")
	})
	h("GET /chassis/1/devices/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 1, len(hw.GPUs))
		if !ok {
			rfNotFound(w)
			return
		}
		g := hw.GPUs[i-1]
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%s/Chassis/1/Devices/%d/", rf, i), "Id": strconv.Itoa(i),
			"Name": g.Name, "Manufacturer": g.Vendor, "DeviceType": "GPU", "Location": fmt.Sprintf("PCI-E Slot %d", i),
			"DeviceInstances": []obj{link(fmt.Sprintf("%sPCIDevices/%d/", sys, len(hw.NICs)+i))},
			"Status":          obj{"Health": hw.Health, "State": "Enabled"}}, "GET, HEAD")
	})

	// Accounts and sessions.
	h("GET /accountservice", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": rf + "/AccountService/", "Id": "AccountService", "Name": "Account Service",
			"MinPasswordLength": 8, "Accounts": link(rf + "/AccountService/Accounts/"), "ServiceEnabled": true}, "GET, HEAD, PATCH")
	})
	h("GET /accountservice/accounts", func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.snapshot()
		var ms []string
		for i := range st.Users {
			ms = append(ms, fmt.Sprintf("%s/AccountService/Accounts/%d/", rf, i+1))
		}
		writeJSON(w, 200, collection(rf+"/AccountService/Accounts/", "ManagerAccount", ms), "GET, HEAD, POST")
	})
	h("/accountservice/accounts/{i}", s.rfAccount)
	h("GET /sessionservice", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": rf + "/SessionService/", "@odata.type": "#SessionService.v1_0_0.SessionService",
			"Id": "SessionService", "Name": "Session Service", "Description": "Session Service",
			"ServiceEnabled": true, "SessionTimeout": 1800, "Status": obj{"Health": "OK", "State": "Enabled"},
			"Sessions": link(rf + "/SessionService/Sessions/")}, "GET, HEAD")
	})
	h("GET /sessionservice/sessions", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		var ms []string
		for _, se := range s.sessions {
			ms = append(ms, rf+"/SessionService/Sessions/"+se.id+"/")
		}
		s.mu.Unlock()
		writeJSON(w, 200, collection(rf+"/SessionService/Sessions/", "Session", ms), "GET, HEAD, POST")
	})
	h("/sessionservice/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		cur, _ := r.Context().Value(sessionKey{}).(*session)
		s.rfSession(w, r, r.PathValue("id"), cur)
	})
	s.updateServiceRoutes(h)
	h("GET /registries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/Registries/", "MessageRegistryFile", nil), "GET, HEAD")
	})
	h("GET /jsonschemas", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(rf+"/JsonSchemas/", "JsonSchemaFile", nil), "GET, HEAD")
	})
	s.managerRoutes(h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { rfNotFound(w) })
	return mux
}

// routeRedfish serves an authenticated request through the server's mux,
// by its canonical path p, with the caller's session in the context.
func (s *Server) routeRedfish(w http.ResponseWriter, r *http.Request, p string, sess *session) {
	r2 := r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2.URL = &u
	s.rfMux.ServeHTTP(w, r2)
}

// snapshot copies the state and the hardware under the lock.
func (s *Server) snapshot() (State, Hardware) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.clone(), s.hw
}

// rfUnsupported is the iLO's answer to a method a resource does not take.
func rfUnsupported(w http.ResponseWriter, r *http.Request) {
	rfMessage(w, http.StatusMethodNotAllowed, "iLO.2.15.UnsupportedOperation", "")
}

// withBody decodes the JSON body, runs fn and answers success or fn's
// operation error.
func withBody(w http.ResponseWriter, r *http.Request, fn func(body obj) error) {
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
		return
	}
	if err := fn(body); err != nil {
		rfOpError(w, err)
		return
	}
	rfSuccess(w)
}

// index reads the path value name as an integer in [lo, hi].
func index(r *http.Request, name string, lo, hi int) (int, bool) {
	i, err := strconv.Atoi(r.PathValue(name))
	return i, err == nil && i >= lo && i <= hi
}

// rfAccount serves one account: GET, and PATCH of its Password.
func (s *Server) rfAccount(w http.ResponseWriter, r *http.Request) {
	st, _ := s.snapshot()
	i, ok := index(r, "i", 1, len(st.Users))
	if !ok {
		rfNotFound(w)
		return
	}
	u := st.Users[i-1]
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%s/AccountService/Accounts/%d/", rf, i), "Id": strconv.Itoa(i),
			"Name": "User Account", "UserName": u.Login, "RoleId": "Administrator", "Password": nil,
			"Oem": obj{s.oem(): obj{"LoginName": u.Login}}}, "GET, HEAD, PATCH, DELETE")
	case http.MethodPatch:
		body, err := readJSONBody(r)
		if err != nil {
			rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
			return
		}
		pw, ok := body["Password"].(string)
		if !ok {
			rfMessage(w, 400, "Base.1.4.PropertyUnknown", "only Password can be changed")
			return
		}
		if err := s.setPassword(u.Login, pw); err != nil {
			rfOpError(w, opErr("password", err.Error()))
			return
		}
		rfSuccess(w)
	default:
		rfUnsupported(w, r)
	}
}

// securityRoutes are Managers/1/SecurityService and its dashboard.
func securityRoutes(h func(string, http.HandlerFunc)) {
	const sec = rf + "/Managers/1/SecurityService/"
	h("GET /managers/1/securityservice", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": sec, "Id": "SecurityService", "SecurityState": "Production",
			"Links": obj{"SecurityDashboard": link(sec + "SecurityDashboard/"),
				"HttpsCert":      link(sec + "HttpsCert/"),
				"SecurityParams": link(sec + "SecurityDashboard/SecurityParams/")}}, "GET, HEAD")
	})
	h("GET /managers/1/securityservice/httpscert", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": sec + "HttpsCert/", "Id": "HttpsCert",
			"X509CertificateInformation": obj{"Issuer": "CN=lightsout iLO simulator CA", "Subject": "CN=ilo.sim.local",
				"SerialNumber": "", "ValidNotBefore": "", "ValidNotAfter": ""}}, "GET, HEAD")
	})
	h("GET /managers/1/securityservice/securitydashboard", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": sec + "SecurityDashboard/", "Id": "SecurityDashboard",
			"OverallSecurityStatus": "Ok", "ServerConfigurationLockStatus": "Disabled",
			"SecurityParameters": link(sec + "SecurityDashboard/SecurityParams/")}, "GET, HEAD")
	})
	h("GET /managers/1/securityservice/securitydashboard/securityparams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(sec+"SecurityDashboard/SecurityParams/", "HpeiLOSecurityParam",
			[]string{sec + "SecurityDashboard/SecurityParams/0/", sec + "SecurityDashboard/SecurityParams/1/"}), "GET, HEAD")
	})
	h("GET /managers/1/securityservice/securitydashboard/securityparams/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		name, ok := map[string]string{"0": "Security Override Switch", "1": "Last Firmware Scan Result"}[id]
		if !ok {
			rfNotFound(w)
			return
		}
		writeJSON(w, 200, obj{"@odata.id": sec + "SecurityDashboard/SecurityParams/" + id + "/", "Id": id,
			"Name": name, "Ignore": false, "SecurityStatus": "Ok", "State": map[string]string{"0": "Off", "1": "Ok"}[id]}, "GET, HEAD")
	})
}
