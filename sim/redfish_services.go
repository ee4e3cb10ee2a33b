package sim

import (
	"fmt"
	"net/http"
	"strconv"
)

// firmwareItem is one FirmwareInventory member.
type firmwareItem struct {
	id, name, version string
}

// firmwareInventory lists the iLO, system ROM (active and redundant) and
// NIC firmware, as iLO 5+ does.
func (s *Server) firmwareInventory(hw *Hardware) []firmwareItem {
	return []firmwareItem{
		{"1", s.gen.iloName(), hw.iloVersion()},
		{"2", s.romName(), hw.ROMFirmware},
		{"3", "Redundant " + s.romName(), hw.ROMFirmware},
		{"4", "Embedded LOM Firmware", "20.14.62"},
	}
}

// updateServiceRoutes are UpdateService, its FirmwareInventory and
// SoftwareInventory (sushy needs Name, Actions and the inventories) and the
// SimpleUpdate action (accepted, nothing is flashed).
func (s *Server) updateServiceRoutes(h func(string, http.HandlerFunc)) {
	const us = rf + "/UpdateService/"
	h("GET /updateservice", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": us, "@odata.type": "#UpdateService.v1_1_1.UpdateService",
			"Id": "UpdateService", "Name": "Update Service", "Description": "iLO Update Service",
			"ServiceEnabled": true, "HttpPushUri": "/cgi-bin/uploadFile", "Status": obj{"Health": "OK", "State": "Enabled"},
			"FirmwareInventory": link(us + "FirmwareInventory/"), "SoftwareInventory": link(us + "SoftwareInventory/"),
			"Actions": obj{"#UpdateService.SimpleUpdate": obj{
				"target": us + "Actions/UpdateService.SimpleUpdate/",
				"TransferProtocol@Redfish.AllowableValues": []string{"HTTP", "HTTPS"},
			}}}, "GET, HEAD")
	})
	h("POST /updateservice/actions/updateservice.simpleupdate", func(w http.ResponseWriter, r *http.Request) {
		withBody(w, r, func(body obj) error {
			if uri, _ := body["ImageURI"].(string); uri == "" {
				return opErr("value", "ImageURI is required")
			}
			return nil
		})
	})
	h("GET /updateservice/firmwareinventory", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for _, f := range s.firmwareInventory(&hw) {
			ms = append(ms, us+"FirmwareInventory/"+f.id+"/")
		}
		writeJSON(w, 200, collection(us+"FirmwareInventory/", "SoftwareInventory", ms), "GET, HEAD")
	})
	h("GET /updateservice/firmwareinventory/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		for _, f := range s.firmwareInventory(&hw) {
			if f.id == r.PathValue("id") {
				writeJSON(w, 200, obj{"@odata.id": us + "FirmwareInventory/" + f.id + "/", "@odata.type": "#SoftwareInventory.v1_0_0.SoftwareInventory",
					"Id": f.id, "Name": f.name, "Description": f.name, "Version": f.version, "Updateable": true,
					"Status": obj{"Health": "OK", "State": "Enabled"}}, "GET, HEAD")
				return
			}
		}
		rfNotFound(w)
	})
	h("GET /updateservice/softwareinventory", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(us+"SoftwareInventory/", "SoftwareInventory", nil), "GET, HEAD")
	})
}

// managerRoutes are the Manager, System and BIOS links that have no other
// handler (so that following any link of the tree finds a resource).
func (s *Server) managerRoutes(h func(string, http.HandlerFunc)) {
	const mgr = rf + "/Managers/1/"
	const sys = rf + "/Systems/1/"
	h("GET /managers/1/ethernetinterfaces", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(mgr+"EthernetInterfaces/", "EthernetInterface", []string{mgr + "EthernetInterfaces/1/"}), "GET, HEAD")
	})
	h("GET /managers/1/ethernetinterfaces/1", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		writeJSON(w, 200, obj{"@odata.id": mgr + "EthernetInterfaces/1/", "@odata.type": "#EthernetInterface.v1_4_1.EthernetInterface",
			"Id": "1", "Name": "Manager Dedicated Network Interface", "MACAddress": s.iloMAC(), "PermanentMACAddress": s.iloMAC(),
			"HostName": "ILO" + hw.SerialNumber, "FQDN": "ILO" + hw.SerialNumber + ".sim.local", "InterfaceEnabled": true,
			"LinkStatus": "LinkUp", "SpeedMbps": 1000, "FullDuplex": true, "AutoNeg": true,
			"IPv4Addresses": []obj{{"Address": "127.0.0.1", "SubnetMask": "255.0.0.0", "AddressOrigin": "Static", "Gateway": "0.0.0.0"}},
			"Status":        obj{"Health": "OK", "State": "Enabled"}}, "GET, HEAD, PATCH")
	})
	h("GET /managers/1/activehealthsystem", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": mgr + "ActiveHealthSystem/", "@odata.type": "#HpeiLOActiveHealthSystem.v2_5_0.HpeiLOActiveHealthSystem",
			"Id": "ActiveHealthSystem", "Name": "Active Health System", "AHSEnabled": true}, "GET, HEAD, PATCH")
	})
	h("GET /systems/1/networkadapters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(sys+"NetworkAdapters/", "HpeBaseNetworkAdapter", []string{sys + "NetworkAdapters/1/"}), "GET, HEAD")
	})
	h("GET /systems/1/networkadapters/1", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ports []obj
		for i, n := range hw.NICs {
			ports = append(ports, obj{"MacAddress": n.MAC, "PhysicalPortNumber": i + 1, "Status": nicStatus(n)})
		}
		writeJSON(w, 200, obj{"@odata.id": sys + "NetworkAdapters/1/", "Id": "1", "Name": "HPE Ethernet 1Gb 4-port 331i Adapter - NIC",
			"StructuredName": "NIC.LOM.1.1", "Firmware": obj{"Current": obj{"VersionString": "20.14.62"}},
			"PhysicalPorts": ports, "Status": obj{"Health": "OK", "State": "Enabled"}}, "GET, HEAD")
	})
	h("GET /systems/1/bios/tlsconfig", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": sys + "bios/tlsconfig/", "Id": "tlsconfig", "Name": "TLS Current Settings",
			"Certificates": []obj{}, "HostnameCheck": "Disabled", "ProtocolVersion": "AUTO", "VerifyMode": "PEER",
			"@Redfish.Settings": obj{"SettingsObject": link(sys + "bios/tlsconfig/settings/")}}, "GET, HEAD")
	})
	h("GET /systems/1/bios/tlsconfig/settings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, obj{"@odata.id": sys + "bios/tlsconfig/settings/", "Id": "settings", "Name": "TLS Pending Settings",
			"Certificates": []obj{}, "HostnameCheck": "Disabled", "ProtocolVersion": "AUTO", "VerifyMode": "PEER"}, "GET, HEAD, PATCH")
	})
}

// nicStatus is a port's Redfish Status by its hardware option: null
// members for an unconfigured port (iLO 5 capture, ports 3-6), State
// UnavailableOffline for a port that is down.
func nicStatus(n NIC) obj {
	switch n.Status {
	case "null":
		return obj{"Health": nil, "State": nil}
	case "offline":
		return obj{"Health": nil, "State": "UnavailableOffline"}
	}
	return obj{"Health": "OK", "State": "Enabled"}
}

// nicLink is a port's LinkStatus (null when unconfigured).
func nicLink(n NIC) any {
	switch n.Status {
	case "null":
		return nil
	case "offline":
		return "LinkDown"
	}
	return "LinkUp"
}

// unconfiguredDrive is the Smart Storage view of unconfigured disk i.
func unconfiguredDrive(base string, i, gb int) obj {
	return obj{"@odata.id": fmt.Sprintf("%s%d/", base, i), "Id": strconv.Itoa(i), "Name": "HpeSmartStorageDiskDrive",
		"CapacityMiB": gb * 1024, "CapacityGB": gb, "MediaType": "HDD", "InterfaceType": "SAS", "RotationalSpeedRpm": 10000,
		"Location": fmt.Sprintf("2I:1:%d", i+1), "DiskDriveUse": "Raw", "Status": obj{"Health": "OK", "State": "Enabled"}}
}
