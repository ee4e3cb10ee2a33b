package sim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// inventoryRoutes are the Systems/1 inventory resources: processors,
// memory, Ethernet interfaces, PCI devices and HPE Smart Storage.
func (s *Server) inventoryRoutes(h func(string, http.HandlerFunc)) {
	const sys = rf + "/Systems/1/"
	h("GET /systems/1/processors", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.CPUs {
			ms = append(ms, fmt.Sprintf("%sProcessors/%d/", sys, i+1))
		}
		writeJSON(w, 200, collection(sys+"Processors/", "Processor", ms), "GET, HEAD")
	})
	h("GET /systems/1/processors/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 1, len(hw.CPUs))
		if !ok {
			rfNotFound(w)
			return
		}
		c := hw.CPUs[i-1]
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%sProcessors/%d/", sys, i), "@odata.type": "#Processor.v1_0_0.Processor",
			"Id": strconv.Itoa(i), "Name": "Processors", "Socket": fmt.Sprintf("Proc %d", i), "Model": c.Model,
			"Manufacturer": "Intel(R) Corporation", "ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64",
			"TotalCores": c.Cores, "TotalThreads": c.Threads, "MaxSpeedMHz": c.SpeedMHz,
			"Status": obj{"Health": hw.Health, "State": "Enabled"}}, "GET, HEAD")
	})
	h("GET /systems/1/memory", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.CPUs {
			ms = append(ms, fmt.Sprintf("%sMemory/proc%ddimm1/", sys, i+1))
		}
		writeJSON(w, 200, collection(sys+"Memory/", "Memory", ms), "GET, HEAD")
	})
	h("GET /systems/1/memory/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		id := r.PathValue("id")
		var n int
		if _, err := fmt.Sscanf(id, "proc%ddimm1", &n); err != nil || n < 1 || n > len(hw.CPUs) {
			rfNotFound(w)
			return
		}
		sizes := memoryChunks(&hw, Gen10)
		gb, _ := strconv.Atoi(strings.TrimSuffix(sizes[n-1], " GB"))
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%sMemory/proc%ddimm1/", sys, n), "@odata.type": "#Memory.v1_7_1.Memory",
			"Id": id, "Name": fmt.Sprintf("proc%ddimm1", n), "DeviceLocator": fmt.Sprintf("PROC %d DIMM 1", n),
			"CapacityMiB": gb * 1024, "MemoryDeviceType": "DDR4", "MemoryType": "DRAM", "BaseModuleType": "RDIMM",
			"OperatingSpeedMhz": 2666, "Status": obj{"Health": hw.Health, "State": "Enabled"},
			"Oem": obj{s.oem(): obj{"BaseModuleType": "RDIMM", "DIMMStatus": "GoodInUse", "MemoryDeviceType": "DDR4"}}}, "GET, HEAD")
	})
	h("GET /systems/1/ethernetinterfaces", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.NICs {
			ms = append(ms, fmt.Sprintf("%sEthernetInterfaces/%d/", sys, i+1))
		}
		writeJSON(w, 200, collection(sys+"EthernetInterfaces/", "EthernetInterface", ms), "GET, HEAD")
	})
	h("GET /systems/1/ethernetinterfaces/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 1, len(hw.NICs))
		if !ok {
			rfNotFound(w)
			return
		}
		n := hw.NICs[i-1]
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%sEthernetInterfaces/%d/", sys, i), "@odata.type": "#EthernetInterface.v1_4_1.EthernetInterface",
			"Id": strconv.Itoa(i), "Name": fmt.Sprintf("Port %d", i), "MACAddress": n.MAC, "PermanentMACAddress": n.MAC,
			"SpeedMbps": n.SpeedGb * 1000, "LinkStatus": nicLink(n), "FullDuplex": true,
			"Status": nicStatus(n)}, "GET, HEAD")
	})
	h("GET /systems/1/pcidevices", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range len(hw.NICs) + len(hw.GPUs) {
			ms = append(ms, fmt.Sprintf("%sPCIDevices/%d/", sys, i+1))
		}
		writeJSON(w, 200, collection(sys+"PCIDevices/", "HpePCIDevice", ms), "GET, HEAD")
	})
	h("GET /systems/1/pcidevices/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 1, len(hw.NICs)+len(hw.GPUs))
		if !ok {
			rfNotFound(w)
			return
		}
		writeJSON(w, 200, s.pciDevice(&hw, i, sys), "GET, HEAD")
	})

	const ss = sys + "SmartStorage/"
	const ac = ss + "ArrayControllers/0/"
	h("GET /systems/1/smartstorage", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		writeJSON(w, 200, obj{"@odata.id": ss, "Id": "SmartStorage", "Name": "Smart Storage",
			"Status": obj{"Health": hw.Health}, "Links": obj{"ArrayControllers": link(ss + "ArrayControllers/"),
				"HostBusAdapters": link(ss + "HostBusAdapters/")}}, "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, collection(ss+"ArrayControllers/", "HpeSmartStorageArrayController", []string{ac}), "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers/0", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		writeJSON(w, 200, obj{"@odata.id": ac, "Id": "0", "Name": "HpeSmartStorageArrayController", "Model": "HPE Smart Array P408i-a SR Gen10",
			"Location": "Slot 0", "LocationFormat": "PCISlot", "SerialNumber": "PEYHB0ARH" + hw.SerialNumber,
			"Status": obj{"Health": hw.Health, "State": "Enabled"},
			"Links": obj{"LogicalDrives": link(ac + "LogicalDrives/"), "PhysicalDrives": link(ac + "DiskDrives/"),
				"UnconfiguredDrives": link(ac + "UnconfiguredDrives/")}}, "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers/0/logicaldrives", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.LogicalDrivesGB {
			ms = append(ms, fmt.Sprintf("%sLogicalDrives/%d/", ac, i+1))
		}
		writeJSON(w, 200, collection(ac+"LogicalDrives/", "HpeSmartStorageLogicalDrive", ms), "GET, HEAD")
	})
	h("/systems/1/smartstorage/arraycontrollers/0/diskdrives", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range 2 * len(hw.LogicalDrivesGB) {
			ms = append(ms, fmt.Sprintf("%sDiskDrives/%d/", ac, i))
		}
		writeJSON(w, 200, collection(ac+"DiskDrives/", "HpeSmartStorageDiskDrive", ms), "GET, HEAD")
	})
	h("/systems/1/smartstorage/arraycontrollers/0/unconfigureddrives", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		var ms []string
		for i := range hw.UnconfiguredDisksGB {
			ms = append(ms, fmt.Sprintf("%sUnconfiguredDrives/%d/", ac, i))
		}
		writeJSON(w, 200, collection(ac+"UnconfiguredDrives/", "HpeSmartStorageDiskDrive", ms), "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers/0/unconfigureddrives/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 0, len(hw.UnconfiguredDisksGB)-1)
		if !ok {
			rfNotFound(w)
			return
		}
		writeJSON(w, 200, unconfiguredDrive(ac+"UnconfiguredDrives/", i, hw.UnconfiguredDisksGB[i]), "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers/0/logicaldrives/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 1, len(hw.LogicalDrivesGB))
		if !ok {
			rfNotFound(w)
			return
		}
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%sLogicalDrives/%d/", ac, i),
			"Id": strconv.Itoa(i), "Name": "HpeSmartStorageLogicalDrive", "LogicalDriveNumber": i, "Raid": "1",
			"CapacityMiB": hw.LogicalDrivesGB[i-1] * 1024, "LogicalDriveName": fmt.Sprintf("Logical Drive %d", i),
			"MediaType": "HDD", "Status": obj{"Health": hw.Health, "State": "Enabled"}}, "GET, HEAD")
	})
	h("GET /systems/1/smartstorage/arraycontrollers/0/diskdrives/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, hw := s.snapshot()
		i, ok := index(r, "i", 0, 2*len(hw.LogicalDrivesGB)-1)
		if !ok {
			rfNotFound(w)
			return
		}
		gb := hw.LogicalDrivesGB[i/2]
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%sDiskDrives/%d/", ac, i),
			"Id": strconv.Itoa(i), "Name": "HpeSmartStorageDiskDrive", "CapacityMiB": gb * 1024, "CapacityGB": gb,
			"MediaType": "HDD", "InterfaceType": "SAS", "RotationalSpeedRpm": 10000, "Location": fmt.Sprintf("1I:1:%d", i+1),
			"Status": obj{"Health": hw.Health, "State": "Enabled"}}, "GET, HEAD")
	})
	// Empty collections: standard storage is not populated on these iLOs.
	for path, id := range map[string]string{
		"/systems/1/storage":                      sys + "Storage/",
		"/systems/1/simplestorage":                sys + "SimpleStorage/",
		"/systems/1/smartstorage/hostbusadapters": ss + "HostBusAdapters/",
	} {
		h("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, collection(id, "Storage", nil), "GET, HEAD")
		})
	}
}
