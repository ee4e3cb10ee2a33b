package sim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// HP RESTful API (RIS, /rest/v1) of iLO 4 on Gen9: basic auth on every
// request, "links"/"href" hyperlinks, ExtendedError bodies.

const rv = "/rest/v1"

func href(p string) obj { return obj{"href": p} }

func risError(w http.ResponseWriter, status int, messageID string) {
	writeJSON(w, status, obj{"Type": "ExtendedError.1.0.0", "Messages": []obj{{"MessageID": messageID}}}, "")
}

func risSuccess(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, obj{"Type": "ExtendedError.1.0.0", "Messages": []obj{{"MessageID": "Base.0.10.Success"}}}, "")
}

func risOpError(w http.ResponseWriter, err error) {
	switch opKind(err) {
	case "state":
		risError(w, 400, "iLO.0.10.InvalidOperationForSystemState")
	case "legacy":
		risError(w, 400, "iLO.0.10.UnsupportedOperationInLegacyBootMode")
	case "media":
		risError(w, 400, "iLO.0.10.UnableToConnectToURL")
	case "notinserted":
		risError(w, 400, "iLO.0.10.NoVirtualMediaInserted")
	case "license":
		risError(w, 400, "iLO.0.10.LicenseKeyNotValid")
	case "password":
		risError(w, 400, "iLO.0.10.PasswordLengthViolation")
	default:
		risError(w, 400, "Base.0.10.PropertyValueNotInList")
	}
}

func risCollection(self, memberType string, items []obj) obj {
	members := make([]obj, len(items))
	for i, it := range items {
		members[i] = it["links"].(obj)["self"].(obj)
	}
	return obj{"Type": "Collection.1.0.0", "Name": memberType, "MemberType": memberType + ".1", "Total": len(items),
		"Items": items, "links": obj{"Member": members, "self": href(self)}}
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	u, p, ok := basicAuth(r)
	s.mu.Lock()
	ok = ok && s.checkLoginLocked(u, p)
	st := s.st.clone()
	hw := s.hw
	s.mu.Unlock()
	if !ok {
		risError(w, http.StatusUnauthorized, "Base.0.0.NoValidSession")
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !get && s.takeBusy() {
		risError(w, 400, "iLO.0.10.InvalidOperationForSystemState")
		return
	}
	rel := strings.TrimPrefix(canon(r.URL.Path), rv)
	sys := rv + "/Systems/1"
	switch {
	case rel == "" && get:
		writeJSON(w, 200, obj{"Type": "ServiceRoot.1.0.0", "Name": "HP RESTful Root Service", "Time": "",
			"links": obj{"Systems": href(rv + "/Systems"), "Managers": href(rv + "/Managers"), "Chassis": href(rv + "/Chassis"),
				"AccountService": href(rv + "/AccountService"), "self": href(rv)}}, "GET, HEAD")
	case rel == "/systems" && get:
		writeJSON(w, 200, risCollection(rv+"/Systems", "ComputerSystem", []obj{s.risSystem(&st, &hw)}), "GET, HEAD")
	case rel == "/systems/1":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, 200, s.risSystem(&st, &hw), "GET, HEAD, POST, PATCH")
		case http.MethodPatch:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			boot, _ := body["Boot"].(map[string]any)
			if boot == nil {
				risError(w, 400, "Base.0.10.PropertyNotWritable")
				return
			}
			en, _ := boot["BootSourceOverrideEnabled"].(string)
			tgt, _ := boot["BootSourceOverrideTarget"].(string)
			if en == "" && tgt == "" {
				risSuccess(w) // UefiTargetBootSourceOverride only
				return
			}
			if err := s.setOverride(en, tgt); err != nil {
				risOpError(w, err)
				return
			}
			risSuccess(w)
		case http.MethodPost:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			var opErr2 error
			switch body["Action"] {
			case "Reset":
				rt, _ := body["ResetType"].(string)
				opErr2 = s.systemReset(rt)
			case "PowerButton":
				pt, _ := body["PushType"].(string)
				if pt != "Press" && pt != "PressAndHold" {
					risError(w, 400, "Base.0.10.PropertyValueNotInList")
					return
				}
				opErr2 = s.systemReset(pt)
			default:
				risError(w, 400, "Base.0.10.ActionNotSupported")
				return
			}
			if opErr2 != nil {
				risOpError(w, opErr2)
				return
			}
			risSuccess(w)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	case rel == "/systems/1/bios" && get:
		writeJSON(w, 200, s.risBios(&st, &hw, false), "GET, HEAD")
	case rel == "/systems/1/bios/settings":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, 200, s.risBios(&st, &hw, true), "GET, HEAD, PATCH, PUT")
		case http.MethodPatch, http.MethodPut:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			if m, ok := body["BootMode"].(string); ok {
				if err := s.setPendingMode(m); err != nil {
					risOpError(w, err)
					return
				}
			}
			full := len(body) > 5
			_ = s.do(func(st *State) error {
				if v, ok := body["CustomPostMessage"].(string); ok {
					st.CustomPostMessage = v
				}
				if full {
					st.BIOSResets++
				}
				return nil
			})
			risSuccess(w)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	case rel == "/systems/1/bios/baseconfigs" && get:
		d := s.defaultBiosAttrs(&hw)
		writeJSON(w, 200, obj{"Type": "HpBaseConfigs.0.10.0", "BaseConfigs": []obj{{"default": d}},
			"links": obj{"self": href(sys + "/bios/BaseConfigs")}}, "GET, HEAD")
	case rel == "/systems/1/bios/boot" && get:
		b := s.rfBiosBoot(&st, &hw)
		delete(b, "@odata.id")
		b["Type"] = "HpServerBootSettings.1.2.0"
		b["links"] = obj{"self": href(sys + "/bios/Boot"), "Settings": href(sys + "/bios/Boot/Settings")}
		writeJSON(w, 200, b, "GET, HEAD")
	case (rel == "/systems/1/bios/iscsi" || rel == "/systems/1/bios/iscsi/settings") && get:
		writeJSON(w, 200, obj{"Type": "HpiSCSISoftwareInitiator.1.0.0", "iSCSIInitiatorName": "iqn.2015-02.com.hp:uefi-" + hw.SerialNumber,
			"iSCSIBootSources": []obj{}, "links": obj{"self": href(sys + "/bios/iScsi"), "Settings": href(sys + "/bios/iScsi/Settings")}}, "GET, HEAD")
	case rel == "/systems/1/bios/mappings" && get:
		writeJSON(w, 200, obj{"Type": "HpBiosMapping.1.2.0", "BiosPciSettingsMappings": []obj{}, "links": obj{"self": href(sys + "/bios/Mappings")}}, "GET, HEAD")
	case rel == "/systems/1/secureboot":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, 200, obj{"Type": "HpSecureBoot.1.0.0", "Name": "SecureBoot", "SecureBootEnable": st.SecureBootEnable,
				"SecureBootCurrentState": st.SecureBootCurrent, "ResetToDefaultKeys": false, "ResetAllKeys": false,
				"links": obj{"self": href(sys + "/SecureBoot")}}, "GET, HEAD, PATCH")
		case http.MethodPatch:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			var e error
			switch {
			case body["SecureBootEnable"] != nil:
				v, _ := body["SecureBootEnable"].(bool)
				e = s.setSecureBoot(v)
			case body["ResetToDefaultKeys"] == true:
				e = s.resetKeys("ResetAllKeysToDefault")
			case body["ResetAllKeys"] == true:
				e = s.resetKeys("DeleteAllKeys")
			default:
				risError(w, 400, "Base.0.10.PropertyUnknown")
				return
			}
			if e != nil {
				risOpError(w, e)
				return
			}
			risSuccess(w)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	case rel == "/systems/1/pcidevices" && get:
		var items []obj
		for i := 1; i <= len(hw.NICs)+len(hw.GPUs); i++ {
			d := s.pciDevice(&hw, i, "")
			delete(d, "@odata.id")
			d["Type"] = "HpServerPciDevice.1.0.0"
			d["links"] = obj{"self": href(fmt.Sprintf("%s/PCIDevices/%d", sys, i))}
			items = append(items, d)
		}
		writeJSON(w, 200, risCollection(sys+"/PCIDevices", "HpServerPciDevice", items), "GET, HEAD")
	case rel == "/systems/1/networkadapters" && get:
		var ports []obj
		for _, n := range hw.NICs {
			ports = append(ports, obj{"MacAddress": n.MAC, "UEFIDevicePath": "PciRoot(0x0)/Pci(0x1C,0x0)", "Status": obj{"Health": "OK"}})
		}
		item := obj{"Type": "HpBaseNetworkAdapter.1.1.0", "Name": "HP Ethernet 1Gb 4-port 331i Adapter", "PhysicalPorts": ports,
			"links": obj{"self": href(sys + "/NetworkAdapters/1")}}
		writeJSON(w, 200, risCollection(sys+"/NetworkAdapters", "HpBaseNetworkAdapter", []obj{item}), "GET, HEAD")
	case rel == "/systems/1/smartstorage" && get:
		writeJSON(w, 200, obj{"Type": "HpSmartStorage.1.0.0", "links": obj{"ArrayControllers": href(sys + "/SmartStorage/ArrayControllers"),
			"self": href(sys + "/SmartStorage")}}, "GET, HEAD")
	case rel == "/systems/1/smartstorage/arraycontrollers" && get:
		ac := sys + "/SmartStorage/ArrayControllers/0"
		item := obj{"Type": "HpSmartStorageArrayController.1.0.0", "Model": "Smart Array P440ar Controller", "Status": obj{"Health": hw.Health},
			"links": obj{"self": href(ac), "LogicalDrives": href(ac + "/LogicalDrives"), "PhysicalDrives": href(ac + "/DiskDrives")}}
		writeJSON(w, 200, risCollection(sys+"/SmartStorage/ArrayControllers", "HpSmartStorageArrayController", []obj{item}), "GET, HEAD")
	case rel == "/systems/1/smartstorage/arraycontrollers/0" && get:
		ac := sys + "/SmartStorage/ArrayControllers/0"
		writeJSON(w, 200, obj{"Type": "HpSmartStorageArrayController.1.0.0", "Model": "Smart Array P440ar Controller", "Status": obj{"Health": hw.Health},
			"links": obj{"self": href(ac), "LogicalDrives": href(ac + "/LogicalDrives"), "PhysicalDrives": href(ac + "/DiskDrives")}}, "GET, HEAD")
	case rel == "/systems/1/smartstorage/arraycontrollers/0/logicaldrives" && get:
		var items []obj
		for i, gb := range hw.LogicalDrivesGB {
			items = append(items, obj{"Type": "HpSmartStorageLogicalDrive.1.1.0", "CapacityMiB": gb * 1024, "Raid": "1",
				"LogicalDriveNumber": i + 1, "Status": obj{"Health": hw.Health},
				"links": obj{"self": href(fmt.Sprintf("%s/SmartStorage/ArrayControllers/0/LogicalDrives/%d", sys, i+1))}})
		}
		writeJSON(w, 200, risCollection(sys+"/SmartStorage/ArrayControllers/0/LogicalDrives", "HpSmartStorageLogicalDrive", items), "GET, HEAD")
	case rel == "/systems/1/smartstorage/arraycontrollers/0/diskdrives" && get:
		var items []obj
		for i := range 2 * len(hw.LogicalDrivesGB) {
			items = append(items, obj{"Type": "HpSmartStorageDiskDrive.1.1.0", "CapacityMiB": hw.LogicalDrivesGB[i/2] * 1024,
				"MediaType": "HDD", "RotationalSpeedRpm": 10000, "InterfaceType": "SAS", "Status": obj{"Health": hw.Health},
				"links": obj{"self": href(fmt.Sprintf("%s/SmartStorage/ArrayControllers/0/DiskDrives/%d", sys, i))}})
		}
		writeJSON(w, 200, risCollection(sys+"/SmartStorage/ArrayControllers/0/DiskDrives", "HpSmartStorageDiskDrive", items), "GET, HEAD")
	case strings.HasPrefix(rel, "/systems/1/smartstorage/arraycontrollers/0/logicaldrives/") && get:
		i, err := strconv.Atoi(strings.TrimPrefix(rel, "/systems/1/smartstorage/arraycontrollers/0/logicaldrives/"))
		if err != nil || i < 1 || i > len(hw.LogicalDrivesGB) {
			risError(w, 404, "Base.0.10.ResourceMissingAtURI")
			return
		}
		writeJSON(w, 200, obj{"Type": "HpSmartStorageLogicalDrive.1.1.0", "CapacityMiB": hw.LogicalDrivesGB[i-1] * 1024, "Raid": "1",
			"LogicalDriveNumber": i, "Status": obj{"Health": hw.Health},
			"links": obj{"self": href(fmt.Sprintf("%s/SmartStorage/ArrayControllers/0/LogicalDrives/%d", sys, i))}}, "GET, HEAD")
	case strings.HasPrefix(rel, "/systems/1/smartstorage/arraycontrollers/0/diskdrives/") && get:
		i, err := strconv.Atoi(strings.TrimPrefix(rel, "/systems/1/smartstorage/arraycontrollers/0/diskdrives/"))
		if err != nil || i < 0 || i >= 2*len(hw.LogicalDrivesGB) {
			risError(w, 404, "Base.0.10.ResourceMissingAtURI")
			return
		}
		writeJSON(w, 200, obj{"Type": "HpSmartStorageDiskDrive.1.1.0", "CapacityMiB": hw.LogicalDrivesGB[i/2] * 1024,
			"MediaType": "HDD", "RotationalSpeedRpm": 10000, "InterfaceType": "SAS", "Status": obj{"Health": hw.Health},
			"links": obj{"self": href(fmt.Sprintf("%s/SmartStorage/ArrayControllers/0/DiskDrives/%d", sys, i))}}, "GET, HEAD")
	case rel == "/managers" && get:
		writeJSON(w, 200, risCollection(rv+"/Managers", "Manager", []obj{s.risManager(&st, &hw)}), "GET, HEAD")
	case rel == "/managers/1" && get:
		writeJSON(w, 200, s.risManager(&st, &hw), "GET, HEAD, POST, PATCH")
	case rel == "/managers/1/virtualmedia" && get:
		items := []obj{s.risVirtualMedia(&st, "FLOPPY"), s.risVirtualMedia(&st, "CDROM")}
		writeJSON(w, 200, risCollection(rv+"/Managers/1/VirtualMedia", "VirtualMedia", items), "GET, HEAD")
	case rel == "/managers/1/virtualmedia/1" || rel == "/managers/1/virtualmedia/2":
		dev := "FLOPPY"
		if strings.HasSuffix(rel, "2") {
			dev = "CDROM"
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, 200, s.risVirtualMedia(&st, dev), "GET, HEAD, PATCH")
		case http.MethodPatch:
			s.risPatchVirtualMedia(w, r, dev)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	case rel == "/managers/1/licenseservice":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			l := st.Licenses[len(st.Licenses)-1]
			item := obj{"Type": "HpiLOLicense.1.0.0", "License": l.Type, "LicenseKey": l.Key, "LicenseType": "Perpetual",
				"links": obj{"self": href(rv + "/Managers/1/LicenseService/1")}}
			writeJSON(w, 200, risCollection(rv+"/Managers/1/LicenseService", "HpiLOLicense", []obj{item}), "GET, HEAD, POST")
		case http.MethodPost:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			key, _ := body["LicenseKey"].(string)
			if err := s.activateLicense(key); err != nil {
				risOpError(w, opErr("license", "bad key"))
				return
			}
			risSuccess(w)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	case rel == "/accountservice" && get:
		writeJSON(w, 200, obj{"Type": "AccountService.1.0.0", "links": obj{"Accounts": href(rv + "/AccountService/Accounts"),
			"self": href(rv + "/AccountService")}}, "GET, HEAD")
	case rel == "/accountservice/accounts" && get:
		var items []obj
		for i, u := range st.Users {
			items = append(items, s.risAccount(i+1, u))
		}
		writeJSON(w, 200, risCollection(rv+"/AccountService/Accounts", "ManagerAccount", items), "GET, HEAD, POST")
	case strings.HasPrefix(rel, "/accountservice/accounts/"):
		i, err := strconv.Atoi(strings.TrimPrefix(rel, "/accountservice/accounts/"))
		if err != nil || i < 1 || i > len(st.Users) {
			risError(w, 404, "Base.0.10.ResourceMissingAtURI")
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, 200, s.risAccount(i, st.Users[i-1]), "GET, HEAD, PATCH")
		case http.MethodPatch:
			body, err := readJSONBody(r)
			if err != nil {
				risError(w, 400, "Base.0.10.MalformedJSON")
				return
			}
			pw, ok := body["Password"].(string)
			if !ok {
				risError(w, 400, "Base.0.10.PropertyUnknown")
				return
			}
			if err := s.setPassword(st.Users[i-1].Login, pw); err != nil {
				risOpError(w, opErr("password", err.Error()))
				return
			}
			risSuccess(w)
		default:
			risError(w, 405, "Base.0.10.OperationNotAllowed")
		}
	default:
		risError(w, 404, "Base.0.10.ResourceMissingAtURI")
	}
}

func (s *Server) risSystem(st *State, hw *Hardware) obj {
	sys := rv + "/Systems/1"
	en, tgt := bootOverride(st)
	var uefiTargets []string
	for _, d := range st.PersistentBoot {
		if e, ok := uefiEntry(d, hw); ok {
			uefiTargets = append(uefiTargets, e.desc)
		}
	}
	post := "FinishedPost"
	if st.Power != "ON" {
		post = "PowerOff"
	}
	return obj{
		"Type": "ComputerSystem.1.0.1", "Name": "Computer System", "Manufacturer": "HP", "Model": hw.Model,
		"SerialNumber": hw.SerialNumber, "UUID": hw.UUID, "SKU": "719064-B21", "SystemType": "Physical",
		"Power": powerState(st), "PowerState": powerState(st), "IndicatorLED": "Off",
		"Status":     obj{"Health": hw.Health, "State": "Enabled"},
		"Bios":       obj{"Current": obj{"VersionString": hw.ROMFirmware}},
		"Memory":     obj{"TotalSystemMemoryGB": hw.MemoryMB / 1024},
		"Processors": obj{"Count": len(hw.CPUs), "ProcessorFamily": hw.CPUs[0].Model, "Status": obj{"HealthRollUp": hw.Health}},
		"Boot": obj{"BootSourceOverrideEnabled": en, "BootSourceOverrideTarget": tgt,
			"BootSourceOverrideSupported":           allowableTargets,
			"UefiTargetBootSourceOverride":          "None",
			"UefiTargetBootSourceOverrideSupported": uefiTargets},
		"HostCorrelation":  obj{"HostMACAddress": hw.MACs()},
		"AvailableActions": []obj{{"Action": "Reset", "Capabilities": []obj{{"AllowableValues": []string{"On", "ForceOff", "ForceRestart", "Nmi", "PushPowerButton"}, "PropertyName": "ResetType"}}}},
		"Oem": obj{"Hp": obj{
			"Type":      "HpComputerSystemExt.0.10.1",
			"Bios":      obj{"Current": obj{"VersionString": hw.ROMFirmware}, "Backup": obj{"VersionString": hw.ROMFirmware}, "UefiClass": hw.uefiClass()},
			"PostState": post, "PowerAutoOn": "Restore",
			"AvailableActions": []obj{{"Action": "PowerButton", "Capabilities": []obj{
				{"AllowableValues": []string{"Press", "PressAndHold"}, "PropertyName": "PushType"},
				{"AllowableValues": []string{"/Oem/Hp"}, "PropertyName": "Target"}}}},
			"links": obj{"BIOS": href(rv + "/systems/1/bios"), "SecureBoot": href(sys + "/SecureBoot"),
				"PCIDevices": href(sys + "/PCIDevices"), "NetworkAdapters": href(sys + "/NetworkAdapters"),
				"SmartStorage": href(sys + "/SmartStorage"), "Memory": href(sys + "/Memory")},
		}},
		"links": obj{"self": href(sys), "Chassis": []obj{href(rv + "/Chassis/1")}, "ManagedBy": []obj{href(rv + "/Managers/1")}},
	}
}

func (s *Server) risBios(st *State, hw *Hardware, pending bool) obj {
	attrs := s.defaultBiosAttrs(hw)
	mode := st.BootMode
	self := rv + "/systems/1/bios"
	if pending {
		mode = st.PendingBootMode
		self += "/Settings"
	}
	attrs["BootMode"] = biosMode(mode)
	attrs["CustomPostMessage"] = st.CustomPostMessage
	attrs["Type"] = "HpBios.1.2.0"
	attrs["Name"] = "BIOS Current Settings"
	b := rv + "/systems/1/bios"
	attrs["links"] = obj{"self": href(self), "Settings": href(b + "/Settings"), "BaseConfigs": href(b + "/BaseConfigs"),
		"Boot": href(b + "/Boot"), "Mappings": href(b + "/Mappings"), "iScsi": href(b + "/iScsi")}
	return attrs
}

func (s *Server) risManager(st *State, hw *Hardware) obj {
	fw := "iLO 4 v" + hw.iloVersion()
	l := st.Licenses[len(st.Licenses)-1]
	return obj{
		"Type": "Manager.1.0.0", "Name": "Manager", "ManagerType": "BMC", "Model": "iLO 4", "UUID": hw.UUID,
		"Firmware":         obj{"Current": obj{"VersionString": fw}},
		"AvailableActions": []obj{{"Action": "Reset"}},
		"Status":           obj{"State": "Enabled"},
		"Oem": obj{"Hp": obj{
			"Type":     "HpiLO.1.0.0",
			"Firmware": obj{"Current": obj{"VersionString": fw}},
			"License":  obj{"LicenseKey": l.Key, "LicenseString": l.Type, "LicenseType": "Perpetual"},
			"links":    obj{"LicenseService": href(rv + "/Managers/1/LicenseService"), "UpdateService": href(rv + "/Managers/1/UpdateService")},
		}},
		"links": obj{"self": href(rv + "/Managers/1"), "VirtualMedia": href(rv + "/Managers/1/VirtualMedia"),
			"ManagerForServers": []obj{href(rv + "/Systems/1")}},
	}
}

func (s *Server) risVirtualMedia(st *State, dev string) obj {
	m := st.Media[dev]
	id, types := "1", []string{"Floppy", "USBStick"}
	if dev == "CDROM" {
		id, types = "2", []string{"CD", "DVD"}
	}
	via := "NotConnected"
	image := "" // iLO 4 says "" for an empty drive (proliantutils' RIS samples)
	name := ""
	if m.Inserted {
		via, image = "URI", m.URL
		name = m.URL[strings.LastIndex(m.URL, "/")+1:]
	}
	return obj{"Type": "VirtualMedia.1.0.0", "Name": "VirtualMedia", "MediaTypes": types, "Image": image, "ImageName": name,
		"Inserted": m.Inserted, "WriteProtected": m.WriteProtect, "ConnectedVia": via,
		"Oem":   obj{"Hp": obj{"Type": "HpiLOVirtualMedia.1.0.0", "BootOnNextServerReset": m.BootOption == "BOOT_ONCE"}},
		"links": obj{"self": href(rv + "/Managers/1/VirtualMedia/" + id)}}
}

func (s *Server) risPatchVirtualMedia(w http.ResponseWriter, r *http.Request, dev string) {
	body, err := readJSONBody(r)
	if err != nil {
		risError(w, 400, "Base.0.10.MalformedJSON")
		return
	}
	for k := range body {
		if k != "Image" && k != "Oem" {
			risError(w, 400, "Base.0.10.PropertyUnknown")
			return
		}
	}
	if o, ok := body["Oem"].(map[string]any); ok {
		hp, _ := o["Hp"].(map[string]any)
		v, ok := hp["BootOnNextServerReset"].(bool)
		if !ok {
			risError(w, 400, "Base.0.10.PropertyUnknown")
			return
		}
		_ = s.setBootOnNextReset(dev, v)
	}
	if img, present := body["Image"]; present {
		switch v := img.(type) {
		case nil:
			if err := s.ejectMedia(dev); err != nil && opKind(err) != "notinserted" {
				risOpError(w, err)
				return
			}
		case string:
			if err := s.insertMedia(r.Context(), dev, v, nil); err != nil {
				risOpError(w, err)
				return
			}
		default:
			risError(w, 400, "Base.0.10.PropertyValueTypeError")
			return
		}
	}
	risSuccess(w)
}

func (s *Server) risAccount(i int, u User) obj {
	return obj{"Type": "ManagerAccount.1.0.0", "Name": "User Account", "UserName": u.Login, "Password": nil,
		"Oem":   obj{"Hp": obj{"LoginName": u.Login, "Type": "HpiLOAccount.1.0.0"}},
		"links": obj{"self": href(fmt.Sprintf("%s/AccountService/Accounts/%d", rv, i))}}
}
