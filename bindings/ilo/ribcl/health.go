package ribcl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// GetEmbeddedHealth sends GET_EMBEDDED_HEALTH and returns the
// GET_EMBEDDED_HEALTH_DATA element.
func (c *Client) GetEmbeddedHealth(ctx context.Context, op string) (*Element, error) {
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_EMBEDDED_HEALTH"))
	if err != nil {
		return nil, err
	}
	h := r.Data.Child("GET_EMBEDDED_HEALTH_DATA")
	if h == nil {
		return nil, missing(op, "GET_EMBEDDED_HEALTH_DATA")
	}
	return h, nil
}

func (c *Client) productModel(ctx context.Context) (string, error) {
	if m := c.cachedModel(); m != "" {
		return m, nil
	}
	return c.GetProductName(ctx)
}

// GetEssentialProperties computes memory_mb, cpus, cpu_arch, local_gb and
// the embedded NIC MACs from GET_EMBEDDED_HEALTH.
func (c *Client) GetEssentialProperties(ctx context.Context) (iloapi.EssentialProperties, error) {
	const op = "get_essential_properties"
	model, err := c.productModel(ctx)
	if err != nil {
		return iloapi.EssentialProperties{}, err
	}
	h, err := c.GetEmbeddedHealth(ctx, op)
	if err != nil {
		return iloapi.EssentialProperties{}, err
	}
	p, err := EssentialProperties(model, h)
	if err != nil {
		return p, iloapi.Errorf(op, err, "%v", err)
	}
	return p, nil
}

// IsG7 reports whether model uses the iLO 3 (G7) health layout.
func IsG7(model string) bool { return strings.Contains(model, "G7") }

// EssentialProperties applies proliantutils' inspection arithmetic to a
// GET_EMBEDDED_HEALTH_DATA element.
func EssentialProperties(model string, h *Element) (iloapi.EssentialProperties, error) {
	p := iloapi.EssentialProperties{CPUArch: "x86_64", MACs: map[string]string{}}
	var err error
	if p.MemoryMB, err = MemoryMB(model, h); err != nil {
		return p, err
	}
	if p.CPUs, err = CPUs(h); err != nil {
		return p, err
	}
	if p.LocalGB, err = LocalGB(h); err != nil {
		return p, err
	}
	if p.MACs, err = MACs(model, h); err != nil {
		return p, err
	}
	return p, nil
}

// MemoryMB sums the memory sizes: MEMORY_COMPONENT/MEMORY_SIZE on G7
// ("Not Installed" skipped), MEMORY_DETAILS_SUMMARY/*/TOTAL_MEMORY_SIZE
// otherwise ("N/A" skipped).
func MemoryMB(model string, h *Element) (int, error) {
	var sizes []string
	if IsG7(model) {
		for _, mc := range h.Path("MEMORY", "MEMORY_COMPONENTS").All("MEMORY_COMPONENT") {
			v := mc.Child("MEMORY_SIZE").Value()
			if v != "Not Installed" {
				sizes = append(sizes, v)
			}
		}
	} else {
		sum := h.Path("MEMORY", "MEMORY_DETAILS_SUMMARY")
		if sum == nil {
			return 0, fmt.Errorf("GET_EMBEDDED_HEALTH_DATA lacks MEMORY/MEMORY_DETAILS_SUMMARY")
		}
		for _, board := range sum.Children {
			v := board.Child("TOTAL_MEMORY_SIZE").Value()
			if v != "N/A" {
				sizes = append(sizes, v)
			}
		}
	}
	var total int64
	for _, s := range sizes {
		b, err := StringToBytes(s)
		if err != nil {
			return 0, fmt.Errorf("memory size: %w", err)
		}
		total += b >> 20
	}
	return int(total), nil
}

// StringToBytes parses "8192 MB", "16 GB", "99GB", "512 KB" (binary units,
// spaces ignored) as oslo's string_to_bytes does for these inputs.
func StringToBytes(s string) (int64, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	num, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	unit := strings.ToUpper(t[i:])
	unit = strings.TrimSuffix(unit, "IB")
	unit = strings.TrimSuffix(unit, "B")
	var mult float64
	switch unit {
	case "":
		mult = 1
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	case "P":
		mult = 1 << 50
	default:
		return 0, fmt.Errorf("%q has an unknown unit", s)
	}
	v := num * mult
	if v > 1<<62 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// CPUs sums, over PROCESSORS/PROCESSOR[], the leading integer of every
// "; "-separated piece of a child VALUE that mentions "thread".
func CPUs(h *Element) (int, error) {
	procs := h.Child("PROCESSORS")
	if procs == nil {
		return 0, fmt.Errorf("GET_EMBEDDED_HEALTH_DATA lacks PROCESSORS")
	}
	total := 0
	for _, p := range procs.All("PROCESSOR") {
		for _, f := range p.Children {
			for _, piece := range strings.Split(f.Value(), "; ") {
				if !strings.Contains(piece, "thread") {
					continue
				}
				num := strings.TrimSpace(piece)
				end := strings.IndexFunc(num, func(r rune) bool { return !unicode.IsDigit(r) })
				if end == 0 {
					return 0, fmt.Errorf("processor %q has no thread count", piece)
				}
				if end > 0 {
					num = num[:end]
				}
				n, err := strconv.Atoi(num)
				if err != nil || n > 1<<20 {
					return 0, fmt.Errorf("processor %q has no thread count", piece)
				}
				total += n
			}
		}
	}
	return total, nil
}

// LocalGB is the smallest STORAGE/CONTROLLER/LOGICAL_DRIVE/CAPACITY in GiB
// minus 1, or 0 when no logical drive exists.
func LocalGB(h *Element) (int, error) {
	smallest := int64(-1)
	for _, st := range h.All("STORAGE") {
		for _, ctl := range st.All("CONTROLLER") {
			for _, ld := range ctl.All("LOGICAL_DRIVE") {
				b, err := StringToBytes(ld.Child("CAPACITY").Value())
				if err != nil {
					return 0, fmt.Errorf("logical drive capacity: %w", err)
				}
				gb := b >> 30
				if smallest < 0 || gb < smallest {
					smallest = gb
				}
			}
		}
	}
	if smallest < 0 {
		return 0, nil
	}
	return int(smallest - 1), nil
}

// MACs maps NETWORK_PORT to MAC_ADDRESS: every NIC under NIC_INFOMATION on
// G7, embedded NICs under NIC_INFORMATION otherwise.
func MACs(model string, h *Element) (map[string]string, error) {
	out := map[string]string{}
	var nics []*Element
	if IsG7(model) {
		nics = h.Child("NIC_INFOMATION").All("NIC")
	} else {
		for _, n := range h.Child("NIC_INFORMATION").All("NIC") {
			if n.Child("LOCATION").Value() == "Embedded" {
				nics = append(nics, n)
			}
		}
	}
	for _, n := range nics {
		port, mac := n.Child("NETWORK_PORT"), n.Child("MAC_ADDRESS")
		if port == nil || mac == nil {
			return nil, fmt.Errorf("NIC entry lacks NETWORK_PORT or MAC_ADDRESS")
		}
		out[port.Value()] = strings.ToLower(mac.Value())
	}
	return out, nil
}

// Firmware maps FIRMWARE_INFORMATION/INDEX_n FIRMWARE_NAME to FIRMWARE_VERSION.
func Firmware(h *Element) map[string]string {
	out := map[string]string{}
	if fi := h.Child("FIRMWARE_INFORMATION"); fi != nil {
		for _, idx := range fi.Children {
			out[idx.Child("FIRMWARE_NAME").Value()] = idx.Child("FIRMWARE_VERSION").Value()
		}
	}
	return out
}

// GPUCount counts TEMPERATURE/TEMP[] whose LABEL contains "GPU".
func GPUCount(h *Element) int {
	n := 0
	for _, t := range h.Child("TEMPERATURE").All("TEMP") {
		if strings.Contains(t.Child("LABEL").Value(), "GPU") {
			n++
		}
	}
	return n
}

// GetServerCapabilities returns ilo_firmware_version, rom_firmware_version,
// server_model, pci_gpu_devices and boot_mode_bios/boot_mode_uefi (RIBCL
// never reports secure_boot).
func (c *Client) GetServerCapabilities(ctx context.Context) (map[string]string, error) {
	const op = "get_server_capabilities"
	model, err := c.productModel(ctx)
	if err != nil {
		return nil, err
	}
	h, err := c.GetEmbeddedHealth(ctx, op)
	if err != nil {
		return nil, err
	}
	fw := Firmware(h)
	caps := map[string]string{
		"server_model":    model,
		"pci_gpu_devices": strconv.Itoa(GPUCount(h)),
	}
	if v := fw["iLO"]; v != "" {
		caps["ilo_firmware_version"] = v
	}
	if v := fw["HP ProLiant System ROM"]; v != "" {
		caps["rom_firmware_version"] = v
	}
	sup, err := c.GetSupportedBootMode(ctx)
	switch {
	case err == nil:
		caps["boot_mode_bios"] = strconv.FormatBool(sup != iloapi.SupportedUEFIOnly)
		caps["boot_mode_uefi"] = strconv.FormatBool(sup != iloapi.SupportedLegacyOnly)
	case iloapi.IsNotSupported(err):
		// G7: legacy BIOS only.
		caps["boot_mode_bios"] = "true"
		caps["boot_mode_uefi"] = "false"
	default:
		return nil, err
	}
	return caps, nil
}

// GetHostHealthData summarises temperatures, fans and power supplies.
func (c *Client) GetHostHealthData(ctx context.Context) (iloapi.HealthData, error) {
	h, err := c.GetEmbeddedHealth(ctx, "get_host_health_data")
	if err != nil {
		return iloapi.HealthData{}, err
	}
	return HealthData(h), nil
}

func reading(e *Element) string {
	if e == nil {
		return ""
	}
	v := e.Value()
	if u, ok := e.Attr("UNIT"); ok && v != "" && v != "N/A" {
		return v + " " + u
	}
	return v
}

// HealthData converts GET_EMBEDDED_HEALTH_DATA into the summary.
func HealthData(h *Element) iloapi.HealthData {
	var d iloapi.HealthData
	for _, t := range h.Child("TEMPERATURE").All("TEMP") {
		d.Temperatures = append(d.Temperatures, iloapi.Sensor{
			Name: t.Child("LABEL").Value(), Location: t.Child("LOCATION").Value(),
			Status: t.Child("STATUS").Value(), Reading: reading(t.Child("CURRENTREADING")),
		})
	}
	for _, f := range h.Child("FANS").All("FAN") {
		d.Fans = append(d.Fans, iloapi.Sensor{
			Name: f.Child("LABEL").Value(), Location: f.Child("ZONE").Value(),
			Status: f.Child("STATUS").Value(), Reading: reading(f.Child("SPEED")),
		})
	}
	ps := h.Child("POWER_SUPPLIES")
	for _, s := range ps.All("SUPPLY") {
		d.PowerSupplies = append(d.PowerSupplies, iloapi.Sensor{
			Name: s.Child("LABEL").Value(), Status: s.Child("STATUS").Value(),
			Reading: reading(s.Child("CAPACITY")),
		})
	}
	d.PowerReading = ps.Path("POWER_SUPPLY_SUMMARY", "PRESENT_POWER_READING").Value()
	return d
}
