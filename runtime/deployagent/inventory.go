package deployagent

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Inventory is the hardware inventory in IPA's shape
// (hardware.list_hardware_info / poll.get_hardware_info).
type Inventory struct {
	Interfaces   []NIC          `json:"interfaces"`
	CPU          CPU            `json:"cpu"`
	Disks        []Disk         `json:"disks"`
	Memory       Memory         `json:"memory"`
	BMCAddress   string         `json:"bmc_address"`
	BMCV6Address string         `json:"bmc_v6address"`
	SystemVendor map[string]any `json:"system_vendor"`
	Boot         map[string]any `json:"boot"`
	Hostname     string         `json:"hostname"`
}

// NIC is one network interface.
type NIC struct {
	Name        string  `json:"name"`
	MACAddress  string  `json:"mac_address"`
	IPv4Address *string `json:"ipv4_address"`
	IPv6Address *string `json:"ipv6_address"`
	HasCarrier  bool    `json:"has_carrier"`
	LLDP        any     `json:"lldp"`
	Vendor      string  `json:"vendor"`
	Product     string  `json:"product"`
	ClientID    any     `json:"client_id"`
	Biosdevname any     `json:"biosdevname"`
	SpeedMbps   *int    `json:"speed_mbps"`
}

// CPU summarises the processors.
type CPU struct {
	ModelName    string   `json:"model_name"`
	Frequency    string   `json:"frequency"`
	Count        int      `json:"count"`
	Architecture string   `json:"architecture"`
	Flags        []string `json:"flags"`
}

// Memory is the memory size: total usable bytes and physical MiB.
type Memory struct {
	Total      int64 `json:"total"`
	PhysicalMB int64 `json:"physical_mb"`
}

// ReadInventory collects the inventory from root ("" is "/"): /proc for
// CPUs and memory, /sys/block for disks, /sys/class/net for NICs,
// /sys/class/dmi/id for the system. Addresses are read from the running
// kernel only when root is "/".
func ReadInventory(root string) (Inventory, error) {
	if root == "" {
		root = "/"
	}
	inv := Inventory{}
	var err error
	if inv.Disks, err = ListDisks(root); err != nil {
		inv.Disks = []Disk{}
	}
	if inv.Disks == nil {
		inv.Disks = []Disk{}
	}
	inv.Interfaces = ListNICs(root)
	inv.CPU = readCPU(root)
	inv.Memory = readMemory(root)
	dmi := filepath.Join(root, "sys", "class", "dmi", "id")
	inv.SystemVendor = map[string]any{
		"product_name":  readSys(dmi, "product_name"),
		"serial_number": readSys(dmi, "product_serial"),
		"manufacturer":  readSys(dmi, "sys_vendor"),
		"firmware": map[string]any{
			"vendor": readSys(dmi, "bios_vendor"), "version": readSys(dmi, "bios_version"), "build_date": readSys(dmi, "bios_date"),
		},
	}
	mode := "bios"
	if _, err := os.Stat(filepath.Join(root, "sys", "firmware", "efi")); err == nil {
		mode = "uefi"
	}
	inv.Boot = map[string]any{"current_boot_mode": mode, "pxe_interface": nil}
	if h, err := os.ReadFile(filepath.Join(root, "proc", "sys", "kernel", "hostname")); err == nil {
		inv.Hostname = strings.TrimSpace(string(h))
	}
	return inv, nil
}

// ListNICs reads the physical network interfaces (those with a device
// link) from root/sys/class/net, sorted by name.
func ListNICs(root string) []NIC {
	dir := filepath.Join(root, "sys", "class", "net")
	ents, err := os.ReadDir(dir)
	out := []NIC{}
	if err != nil {
		return out
	}
	for _, e := range ents {
		name := e.Name()
		d := filepath.Join(dir, name)
		if _, err := os.Stat(filepath.Join(d, "device")); err != nil {
			continue // lo, bridges, tunnels
		}
		n := NIC{Name: name, MACAddress: strings.ToLower(readSys(d, "address")),
			HasCarrier: readSys(d, "carrier") == "1",
			Vendor:     readSys(d, "device/vendor"), Product: readSys(d, "device/device")}
		if s, err := strconv.Atoi(readSys(d, "speed")); err == nil && s > 0 {
			n.SpeedMbps = &s
		}
		if root == "/" {
			if ifi, err := net.InterfaceByName(name); err == nil {
				addrs, _ := ifi.Addrs()
				for _, a := range addrs {
					ipn, ok := a.(*net.IPNet)
					if !ok {
						continue
					}
					s := ipn.IP.String()
					if ipn.IP.To4() != nil && n.IPv4Address == nil {
						n.IPv4Address = &s
					} else if ipn.IP.To4() == nil && n.IPv6Address == nil && !ipn.IP.IsLinkLocalUnicast() {
						n.IPv6Address = &s
					}
				}
			}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func readCPU(root string) CPU {
	c := CPU{Architecture: archName(), Flags: []string{}}
	f, err := os.Open(filepath.Join(root, "proc", "cpuinfo"))
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			c.Count++
		case "model name":
			if c.ModelName == "" {
				c.ModelName = v
			}
		case "cpu MHz":
			if c.Frequency == "" {
				c.Frequency = v
			}
		case "flags":
			if len(c.Flags) == 0 {
				c.Flags = strings.Fields(v)
			}
		}
	}
	return c
}

func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// readMemory reads MemTotal from /proc/meminfo and the physical size from
// the online memory blocks in /sys/devices/system/memory (falling back to
// MemTotal rounded up to 128 MiB).
func readMemory(root string) Memory {
	var m Memory
	if b, err := os.ReadFile(filepath.Join(root, "proc", "meminfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.Total = kb * 1024
			}
		}
	}
	memDir := filepath.Join(root, "sys", "devices", "system", "memory")
	if bs, err := strconv.ParseInt(readSys(memDir, "block_size_bytes"), 16, 64); err == nil && bs > 0 {
		ents, _ := os.ReadDir(memDir)
		var online int64
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "memory") && readSys(filepath.Join(memDir, e.Name()), "online") == "1" {
				online++
			}
		}
		m.PhysicalMB = online * bs >> 20
	}
	if m.PhysicalMB == 0 && m.Total > 0 {
		const step = 128 << 20
		m.PhysicalMB = (m.Total + step - 1) / step * step >> 20
	}
	return m
}
