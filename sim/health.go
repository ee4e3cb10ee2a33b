package sim

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// memoryChunks splits total memory over the CPUs (what MEMORY_DETAILS_SUMMARY
// reports per processor), as "N GB" strings, or "N MB" on a Gen8 (iLO 4
// before 2.30 says "16384 MB").
func memoryChunks(hw *Hardware, g Generation) []string {
	n := len(hw.CPUs)
	totalGB := hw.MemoryMB / 1024
	out := make([]string, n)
	for i := range n {
		gb := totalGB / n
		if i == 0 {
			gb += totalGB % n
		}
		switch {
		case gb == 0:
			out[i] = "N/A"
		case g == Gen8:
			out[i] = strconv.Itoa(gb*1024) + " MB"
		default:
			out[i] = strconv.Itoa(gb) + " GB"
		}
	}
	return out
}

func (s *Server) romName() string {
	if s.gen == Gen8 || s.gen == Gen9 {
		return "HP ProLiant System ROM"
	}
	return "System ROM"
}

// writeEmbeddedHealth writes GET_EMBEDDED_HEALTH_DATA in the iLO 4 layout
// proliantutils parses (MEMORY_DETAILS_SUMMARY, NIC_INFORMATION, STORAGE,
// TEMPERATURE with GPU labels, FIRMWARE_INFORMATION).
func (s *Server) writeEmbeddedHealth(w *ribclWriter, hw *Hardware, st *State) {
	on := st.Power == "ON"
	status := hw.Health
	w.raw("<GET_EMBEDDED_HEALTH_DATA>\r\n    <FANS>\r\n")
	for i := 1; i <= hw.Fans; i++ {
		speed := "0"
		if on {
			speed = "23"
		}
		w.raw("        <FAN>\r\n")
		w.val("            ", "LABEL", "Fan "+strconv.Itoa(i))
		w.el("            ", "SPEED", "UNIT", "Percentage", "VALUE", speed)
		w.val("            ", "STATUS", status)
		w.val("            ", "ZONE", "System")
		w.raw("        </FAN>\r\n")
	}
	w.raw("    </FANS>\r\n    <FIRMWARE_INFORMATION>\r\n")
	fw := [][2]string{{s.romName(), hw.ROMFirmware}, {s.romName() + " - Backup", hw.ROMFirmware}, {"iLO", hw.ILOFirmware}}
	for i, f := range fw {
		tag := "INDEX_" + strconv.Itoa(i+1)
		w.raw("        <" + tag + ">\r\n")
		w.val("            ", "FIRMWARE_NAME", f[0])
		w.val("            ", "FIRMWARE_VERSION", f[1])
		w.raw("        </" + tag + ">\r\n")
	}
	w.raw("    </FIRMWARE_INFORMATION>\r\n    <HEALTH_AT_A_GLANCE>\r\n")
	for _, k := range []string{"BIOS_HARDWARE", "FANS", "MEMORY", "NETWORK", "POWER_SUPPLIES", "PROCESSOR", "STORAGE", "TEMPERATURE"} {
		w.el("        ", k, "STATUS", status)
	}
	w.raw("    </HEALTH_AT_A_GLANCE>\r\n    <MEMORY>\r\n        <MEMORY_DETAILS_SUMMARY>\r\n")
	for i, sz := range memoryChunks(hw, s.gen) {
		tag := "CPU_" + strconv.Itoa(i+1)
		w.raw("            <" + tag + ">\r\n")
		w.val("                ", "NUMBER_OF_SOCKETS", "12")
		w.val("                ", "TOTAL_MEMORY_SIZE", sz)
		w.val("                ", "OPERATING_FREQUENCY", "2133 MHz")
		w.val("                ", "OPERATING_VOLTAGE", "1.20 v")
		w.raw("            </" + tag + ">\r\n")
	}
	w.raw("        </MEMORY_DETAILS_SUMMARY>\r\n    </MEMORY>\r\n    <NIC_INFORMATION>\r\n")
	for i, n := range hw.NICs {
		loc := "Embedded"
		if !n.Embedded {
			loc = "PCI Slot 1"
		}
		w.raw("        <NIC>\r\n")
		w.val("            ", "NETWORK_PORT", "Port "+strconv.Itoa(i+1))
		w.val("            ", "PORT_DESCRIPTION", "N/A")
		w.val("            ", "LOCATION", loc)
		w.val("            ", "MAC_ADDRESS", n.MAC)
		w.val("            ", "IP_ADDRESS", "N/A")
		w.val("            ", "STATUS", "Unknown")
		w.raw("        </NIC>\r\n")
	}
	w.raw("    </NIC_INFORMATION>\r\n    <POWER_SUPPLIES>\r\n        <POWER_SUPPLY_SUMMARY>\r\n")
	watts := 0
	if on {
		watts = hw.PowerWatts
	}
	w.val("            ", "PRESENT_POWER_READING", strconv.Itoa(watts)+" Watts")
	w.val("            ", "POWER_SYSTEM_REDUNDANCY", "Redundant")
	w.raw("        </POWER_SUPPLY_SUMMARY>\r\n")
	for i := 1; i <= hw.PowerSupplies; i++ {
		w.raw("        <SUPPLY>\r\n")
		w.val("            ", "LABEL", "Power Supply "+strconv.Itoa(i))
		w.val("            ", "PRESENT", "Yes")
		w.val("            ", "STATUS", "Good, In Use")
		w.val("            ", "CAPACITY", "800 Watts")
		w.raw("        </SUPPLY>\r\n")
	}
	w.raw("    </POWER_SUPPLIES>\r\n    <PROCESSORS>\r\n")
	for i, c := range hw.CPUs {
		w.raw("        <PROCESSOR>\r\n")
		w.val("            ", "LABEL", "Proc "+strconv.Itoa(i+1))
		w.val("            ", "NAME", c.Model)
		w.val("            ", "STATUS", status)
		w.val("            ", "SPEED", strconv.Itoa(c.SpeedMHz)+" MHz")
		w.val("            ", "EXECUTION_TECHNOLOGY", fmt.Sprintf("%d/%d cores; %d threads", c.Cores, c.Cores, c.Threads))
		w.val("            ", "MEMORY_TECHNOLOGY", "64-bit Capable")
		w.raw("        </PROCESSOR>\r\n")
	}
	w.raw("    </PROCESSORS>\r\n    <STORAGE>\r\n        <CONTROLLER>\r\n")
	w.val("            ", "LABEL", "Controller on System Board")
	w.val("            ", "STATUS", status)
	w.val("            ", "CONTROLLER_STATUS", status)
	w.val("            ", "MODEL", "Smart Array P440ar Controller")
	for i, gb := range hw.LogicalDrivesGB {
		w.raw("            <LOGICAL_DRIVE>\r\n")
		w.val("                ", "LABEL", fmt.Sprintf("%02d", i+1))
		w.val("                ", "STATUS", status)
		w.val("                ", "CAPACITY", strconv.Itoa(gb)+" GB")
		w.val("                ", "FAULT_TOLERANCE", "RAID 1/RAID 1+0")
		for d := 1; d <= 2; d++ {
			w.raw("                <PHYSICAL_DRIVE>\r\n")
			w.val("                    ", "LABEL", fmt.Sprintf("Port 1I Box 1 Bay %d", 2*i+d))
			w.val("                    ", "STATUS", status)
			w.val("                    ", "CAPACITY", strconv.Itoa(gb)+" GB")
			w.val("                    ", "MEDIA_TYPE", "HDD")
			w.raw("                </PHYSICAL_DRIVE>\r\n")
		}
		w.raw("            </LOGICAL_DRIVE>\r\n")
	}
	w.raw("        </CONTROLLER>\r\n        <DISCOVERY_STATUS>\r\n")
	w.val("            ", "STATUS", "Discovery Complete")
	w.raw("        </DISCOVERY_STATUS>\r\n    </STORAGE>\r\n    <TEMPERATURE>\r\n")
	temps := []struct{ label, loc string }{{"01-Inlet Ambient", "Ambient"}}
	for i := range hw.CPUs {
		temps = append(temps, struct{ label, loc string }{fmt.Sprintf("%02d-CPU %d", len(temps)+1, i+1), "CPU"})
	}
	for i := range hw.GPUs {
		temps = append(temps, struct{ label, loc string }{fmt.Sprintf("%02d-GPU %d", len(temps)+1, i+1), "I/O Board"})
	}
	for i, t := range temps {
		reading := "N/A"
		if on {
			reading = strconv.Itoa(21 + 7*min(i, 3))
		}
		w.raw("        <TEMP>\r\n")
		w.val("            ", "LABEL", t.label)
		w.val("            ", "LOCATION", t.loc)
		w.val("            ", "STATUS", status)
		w.el("            ", "CURRENTREADING", "VALUE", reading, "UNIT", "Celsius")
		w.el("            ", "CAUTION", "VALUE", "70", "UNIT", "Celsius")
		w.el("            ", "CRITICAL", "VALUE", "80", "UNIT", "Celsius")
		w.raw("        </TEMP>\r\n")
	}
	w.raw("    </TEMPERATURE>\r\n</GET_EMBEDDED_HEALTH_DATA>\r\n")
}

// writeHostData writes a small GET_HOST_DATA (SMBIOS records 0, 1, 4, 17, 209)
// for clients other than proliantutils.
func writeHostData(w *ribclWriter, hw *Hardware, g Generation) {
	b64 := base64.StdEncoding.EncodeToString([]byte("simulated"))
	w.raw("<GET_HOST_DATA>\r\n")
	rec := func(typ string, fields ...string) {
		w.raw("<SMBIOS_RECORD TYPE=\"" + typ + "\" B64_DATA=\"" + b64 + "\">\r\n")
		for i := 0; i+1 < len(fields); i += 2 {
			w.el("    ", "FIELD", "NAME", fields[i], "VALUE", fields[i+1])
		}
		w.raw("</SMBIOS_RECORD>\r\n")
	}
	rec("0", "Subject", "BIOS Information", "Family", hw.ROMFirmware, "Date", "")
	rec("1", "Subject", "System Information", "Product Name", hw.Model, "Serial Number", hw.SerialNumber, "cUUID", hw.UUID)
	for i, c := range hw.CPUs {
		rec("4", "Subject", "Processor Information", "Label", "Proc "+strconv.Itoa(i+1), "Speed", strconv.Itoa(c.SpeedMHz)+" MHz",
			"Execution Technology", fmt.Sprintf("%d of %d cores; %d threads", c.Cores, c.Cores, c.Threads))
	}
	for i, sz := range memoryChunks(hw, g) {
		rec("17", "Subject", "Memory Device", "Label", fmt.Sprintf("PROC %d DIMM 1", i+1), "Size", sz)
	}
	var kv []string
	kv = append(kv, "Subject", "Embedded NIC MAC Assignment")
	for i, n := range hw.NICs {
		kv = append(kv, "Port", strconv.Itoa(i+1), "MAC", n.MAC)
	}
	rec("209", kv...)
	w.raw("</GET_HOST_DATA>\r\n")
}
