package redfish

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// GetEssentialProperties reads memory, threads, architecture, local_gb
// (see largestVolumeBytes), the MACs of Ethernet interfaces whose Health
// is OK and every port with its state (rules: docs/ilo.md).
func (c *Client) GetEssentialProperties(ctx context.Context) (iloapi.EssentialProperties, error) {
	return read(ctx, c, "get_essential_properties", func(s *session, p *iloapi.EssentialProperties) error {
		*p = iloapi.EssentialProperties{CPUArch: "x86_64", MACs: map[string]string{}}
		m, sys, _, err := s.system()
		if err != nil {
			return err
		}
		if sys.MemorySummary.TotalSystemMemoryGiB != nil {
			p.MemoryMB = int(*sys.MemorySummary.TotalSystemMemoryGiB * 1024)
		}
		if u := link(m, "Processors"); u != "" {
			cm, _, err := s.getJSON(u)
			if err != nil {
				return err
			}
			procs, err := s.getAll(members(cm))
			if err != nil {
				return err
			}
			for i, pm := range procs {
				var proc schemas.Processor
				if err := decodeAs(s, pm, &proc); err != nil {
					return err
				}
				if proc.TotalThreads != nil {
					p.CPUs += *proc.TotalThreads
				}
				if i == 0 && proc.ProcessorArchitecture != "" && proc.ProcessorArchitecture != "x86" {
					p.CPUArch = string(proc.ProcessorArchitecture)
				}
			}
		}
		if p.CPUs == 0 && sys.ProcessorSummary.LogicalProcessorCount != nil {
			p.CPUs = int(*sys.ProcessorSummary.LogicalProcessorCount)
		}
		largest, err := s.largestVolumeBytes(m)
		if err != nil {
			return err
		}
		if gb := largest >> 30; gb > 0 {
			p.LocalGB = int(gb - 1)
		}
		eth := link(m, "EthernetInterfaces")
		if eth == "" {
			eth = oemLink(m, "EthernetInterfaces")
		}
		if eth != "" {
			cm, _, err := s.getJSON(eth)
			if err != nil {
				return err
			}
			ems, err := s.getAll(members(cm))
			if err != nil {
				return err
			}
			for _, em := range ems {
				var ei schemas.EthernetInterface
				if err := decodeAs(s, em, &ei); err != nil {
					return err
				}
				mac := ei.MACAddress
				if mac == "" {
					mac = ei.PermanentMACAddress
				}
				if mac == "" {
					continue
				}
				health, state := str(em, "Status", "Health"), str(em, "Status", "State")
				port, mac := "Port "+ei.ID, strings.ToLower(mac)
				p.NICs = append(p.NICs, iloapi.NIC{Port: port, MAC: mac, State: state, Health: health})
				// sushy's EthernetInterfaceCollection.summary: Health OK
				// only (a null Status is left out, an offline port with
				// Health OK is kept).
				if health == "OK" {
					p.MACs[port] = mac
				}
			}
		}
		return nil
	})
}

// largestVolumeBytes is proliantutils' common_storage.get_local_gb
// before the "- 1 GiB": the largest Storage volume or SmartStorage
// logical drive; when there is none, the largest Storage drive or
// SmartStorage physical drive (whatever their state).
func (s *session) largestVolumeBytes(system map[string]any) (int64, error) {
	var volumes, drives float64
	var driveURIs []string
	if st := link(system, "Storage"); st != "" {
		cm, _, err := s.getJSON(st)
		if err != nil {
			return 0, err
		}
		for _, su := range members(cm) {
			sm, _, err := s.getJSON(su)
			if err != nil {
				return 0, err
			}
			if vu := link(sm, "Volumes"); vu != "" {
				if err := s.maxOver(vu, "CapacityBytes", 1, &volumes); err != nil {
					return 0, err
				}
			}
			for _, d := range list(sm, "Drives") {
				if o, ok := d.(map[string]any); ok && str(o, "@odata.id") != "" {
					driveURIs = append(driveURIs, str(o, "@odata.id"))
				}
			}
		}
	}
	if ss := oemLink(system, "SmartStorage"); ss != "" {
		if sm, _, err := s.getJSON(ss); err == nil {
			if ac := link(sm, "Links", "ArrayControllers"); ac != "" {
				cm, _, err := s.getJSON(ac)
				if err != nil {
					return 0, err
				}
				for _, cu := range members(cm) {
					ctl, _, err := s.getJSON(cu)
					if err != nil {
						return 0, err
					}
					if ld := link(ctl, "Links", "LogicalDrives"); ld != "" {
						if err := s.maxOver(ld, "CapacityMiB", 1<<20, &volumes); err != nil {
							return 0, err
						}
					}
					if pd := link(ctl, "Links", "PhysicalDrives"); pd != "" && volumes == 0 {
						if err := s.maxOver(pd, "CapacityMiB", 1<<20, &drives); err != nil {
							return 0, err
						}
					}
				}
			}
		}
	}
	if volumes > 0 {
		return int64(volumes), nil
	}
	ds, err := s.getAll(driveURIs)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if b, ok := num(d, "CapacityBytes"); ok && b > drives {
			drives = b
		}
	}
	return int64(drives), nil
}

// maxOver raises *max to the largest field*unit over the members of a
// collection.
func (s *session) maxOver(collection, field string, unit float64, max *float64) error {
	cm, _, err := s.getJSON(collection)
	if err != nil {
		return err
	}
	ms, err := s.getAll(members(cm))
	if err != nil {
		return err
	}
	for _, m := range ms {
		if v, ok := num(m, field); ok && v*unit > *max {
			*max = v * unit
		}
	}
	return nil
}

// GetServerCapabilities reports firmware versions, model, secure boot,
// GPU count and boot modes.
func (c *Client) GetServerCapabilities(ctx context.Context) (map[string]string, error) {
	return read(ctx, c, "get_server_capabilities", func(s *session, out *map[string]string) error {
		caps := map[string]string{}
		*out = caps
		m, sys, _, err := s.system()
		if err != nil {
			return err
		}
		caps["server_model"] = sys.Model
		o, _ := Oem(m)
		if v := str(o, "Bios", "Current", "VersionString"); v != "" {
			caps["rom_firmware_version"] = v
		} else if sys.BiosVersion != "" {
			caps["rom_firmware_version"] = sys.BiosVersion
		}
		if link(m, "SecureBoot") != "" || oemLink(m, "SecureBoot") != "" {
			caps["secure_boot"] = "true"
		}
		sup := SupportedBootMode(m)
		caps["boot_mode_bios"] = strconv.FormatBool(sup != iloapi.SupportedUEFIOnly)
		caps["boot_mode_uefi"] = strconv.FormatBool(sup != iloapi.SupportedLegacyOnly)
		gpus := 0
		if pu := oemLink(m, "PCIDevices"); pu != "" {
			cm, _, err := s.getJSON(pu)
			if err != nil {
				return err
			}
			devs, err := s.getAll(members(cm))
			if err != nil {
				return err
			}
			for _, d := range devs {
				if IsGPU(d) {
					gpus++
				}
			}
		}
		caps["pci_gpu_devices"] = strconv.Itoa(gpus)
		mm, mgr, err := s.manager()
		if err != nil {
			return err
		}
		fw := mgr.FirmwareVersion
		if fw == "" {
			fw = str(mm, "Firmware", "Current", "VersionString")
		}
		if fw != "" {
			caps["ilo_firmware_version"] = fw
		}
		return nil
	})
}

// GetHostHealthData reads the first chassis' Thermal and Power resources.
func (c *Client) GetHostHealthData(ctx context.Context) (iloapi.HealthData, error) {
	return read(ctx, c, "get_host_health_data", func(s *session, d *iloapi.HealthData) error {
		var chassis string
		uri, err := s.firstMember(s.c.root.chassis, &chassis, "Chassis")
		if err != nil {
			return err
		}
		ch, _, err := s.getJSON(uri)
		if err != nil {
			return err
		}
		if tu := link(ch, "Thermal"); tu != "" {
			th, _, err := s.getJSON(tu)
			if err != nil {
				return err
			}
			for _, e := range list(th, "Temperatures") {
				t, _ := e.(map[string]any)
				r := ""
				if v, ok := num(t, "ReadingCelsius"); ok {
					r = strconv.FormatFloat(v, 'f', -1, 64) + " Celsius"
				}
				d.Temperatures = append(d.Temperatures, iloapi.Sensor{Name: str(t, "Name"), Location: str(t, "PhysicalContext"), Status: status(t), Reading: r})
			}
			for _, e := range list(th, "Fans") {
				f, _ := e.(map[string]any)
				name := str(f, "Name")
				if name == "" {
					name = str(f, "FanName")
				}
				r := ""
				if v, ok := num(f, "Reading"); ok {
					r = strings.TrimSpace(strconv.FormatFloat(v, 'f', -1, 64) + " " + str(f, "ReadingUnits"))
				}
				d.Fans = append(d.Fans, iloapi.Sensor{Name: name, Status: status(f), Reading: r})
			}
		}
		if pu := link(ch, "Power"); pu != "" {
			pw, _, err := s.getJSON(pu)
			if err != nil {
				return err
			}
			for _, e := range list(pw, "PowerSupplies") {
				p, _ := e.(map[string]any)
				r := ""
				if v, ok := num(p, "PowerCapacityWatts"); ok {
					r = strconv.FormatFloat(v, 'f', -1, 64) + " Watts"
				}
				d.PowerSupplies = append(d.PowerSupplies, iloapi.Sensor{Name: str(p, "Name"), Status: status(p), Reading: r})
			}
			if pc := list(pw, "PowerControl"); len(pc) > 0 {
				if o, ok := pc[0].(map[string]any); ok {
					if v, ok := num(o, "PowerConsumedWatts"); ok {
						d.PowerReading = strconv.FormatFloat(v, 'f', -1, 64) + " Watts"
					}
				}
			}
		}
		sort.SliceStable(d.Temperatures, func(i, j int) bool { return d.Temperatures[i].Name < d.Temperatures[j].Name })
		return nil
	})
}

func status(m map[string]any) string {
	if h := str(m, "Status", "Health"); h != "" {
		return h
	}
	return str(m, "Status", "State")
}

// decodeAs decodes a resource already read (getAll) into a gofish type.
func decodeAs[T any](s *session, m map[string]any, v *T) error {
	b, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return iloapi.Errorf(s.op, err, "decode %s: %v", str(m, "@odata.id"), err)
	}
	return nil
}
