package redfish

import (
	"context"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// TargetToDevice maps BootSourceOverrideTarget to proliantutils' names.
func TargetToDevice(t string, persistent bool) string {
	switch t {
	case "Pxe":
		return iloapi.BootNetwork
	case "Hdd":
		return iloapi.BootHDD
	case "Cd":
		return iloapi.BootCDROM
	case "UefiTarget":
		if persistent {
			return iloapi.BootNetwork
		}
		return "ISCSI"
	case "UefiHttp":
		return "UEFIHTTP"
	case "None", "":
		return "NONE"
	case "Floppy":
		return "FLOPPY"
	case "Usb":
		return "USB"
	}
	return t
}

// DeviceToTarget maps CDROM/HDD/NETWORK/... to BootSourceOverrideTarget.
func DeviceToTarget(op, d string) (string, error) {
	switch strings.ToUpper(d) {
	case "CDROM":
		return "Cd", nil
	case "HDD":
		return "Hdd", nil
	case "NETWORK":
		return "Pxe", nil
	case "ISCSI":
		return "UefiTarget", nil
	case "UEFIHTTP":
		return "UefiHttp", nil
	case "FLOPPY":
		return "Floppy", nil
	case "USB":
		return "Usb", nil
	}
	return "", iloapi.Invalid(op, "boot device %q: give CDROM, HDD, NETWORK or Normal", d)
}

// GetOneTimeBoot returns the Once override target, or "Normal".
func (c *Client) GetOneTimeBoot(ctx context.Context) (string, error) {
	return read(ctx, c, "get_one_time_boot", func(s *session, out *string) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		if obj(m, "Boot") == nil {
			return iloapi.Errorf(s.op, nil, "the system resource has no Boot object")
		}
		if str(m, "Boot", "BootSourceOverrideEnabled") == "Once" {
			*out = TargetToDevice(str(m, "Boot", "BootSourceOverrideTarget"), false)
		} else {
			*out = iloapi.BootNormal
		}
		return nil
	})
}

// patchBoot PATCHes a minimal Boot object (never BootSourceOverrideMode,
// which ProLiant rejects), with If-Match when the GET had an ETag.
func (s *session) patchBoot(m map[string]any, resp *iloapi.Response, boot map[string]any) error {
	uri := str(m, "@odata.id")
	if uri == "" {
		uri = s.c.root.system
	}
	h := map[string]string{}
	if et := resp.Header.Get("ETag"); et != "" {
		h["If-Match"] = et
	}
	_, err := s.request(http.MethodPatch, uri, map[string]any{"Boot": boot}, h)
	if err != nil && iloapi.IsNotSupported(err) {
		if st := link(m, "@Redfish.Settings", "SettingsObject"); st != "" {
			_, err = s.request(http.MethodPatch, st, map[string]any{"Boot": boot}, nil)
		}
	}
	return err
}

// SetOneTimeBoot sets BootSourceOverrideEnabled Once with the target, or
// disables the override for "Normal".
func (c *Client) SetOneTimeBoot(ctx context.Context, device string) error {
	const op = "set_one_time_boot"
	boot := map[string]any{}
	if strings.EqualFold(device, iloapi.BootNormal) {
		boot["BootSourceOverrideEnabled"] = "Disabled"
	} else {
		t, err := DeviceToTarget(op, device)
		if err != nil {
			return err
		}
		boot["BootSourceOverrideEnabled"] = "Once"
		boot["BootSourceOverrideTarget"] = t
	}
	return c.run(ctx, op, func(s *session) error {
		m, _, resp, err := s.system()
		if err != nil {
			return err
		}
		return s.patchBoot(m, resp, boot)
	})
}

// GetPersistentBootDevice returns the Continuous override target, else the
// first entry of the UEFI persistent boot order, else "NONE".
func (c *Client) GetPersistentBootDevice(ctx context.Context) (string, error) {
	return read(ctx, c, "get_persistent_boot_device", func(s *session, out *string) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		if str(m, "Boot", "BootSourceOverrideEnabled") == "Continuous" {
			*out = TargetToDevice(str(m, "Boot", "BootSourceOverrideTarget"), true)
			return nil
		}
		*out = "NONE"
		bios, _, err := s.bios(m)
		if err != nil {
			return nil // no BIOS resource: nothing more to say
		}
		bootURI := oemLink(bios, "Boot")
		if bootURI == "" {
			return nil
		}
		b, _, err := s.getJSON(bootURI)
		if err != nil {
			return err
		}
		order := list(b, "PersistentBootConfigOrder")
		if len(order) == 0 {
			return nil
		}
		first, _ := order[0].(string)
		*out = persistentDevice(first, list(b, "BootSources"))
		return nil
	})
}

// persistentDevice maps the first PersistentBootConfigOrder entry: the
// BootString of its (first) boot source as proliantutils does; when that
// names nothing known, the structured name itself ("HD.Slot.12.3",
// "NVMe.Slot.1.1" are disks, "NIC.…" the network: where proliantutils
// answers NONE); else NONE.
func persistentDevice(first string, sources []any) string {
	for _, src := range sources {
		o, _ := src.(map[string]any)
		if str(o, "StructuredBootString") == first {
			if d := bootStringDevice(str(o, "BootString")); d != "UNKNOWN" {
				return d
			}
			break
		}
	}
	lower := strings.ToLower(first)
	for _, p := range []string{"hd.", "nvme.", "raid.", "sata.", "sas.", "storage."} {
		if strings.HasPrefix(lower, p) {
			return iloapi.BootHDD
		}
	}
	switch {
	case strings.HasPrefix(lower, "nic."):
		return iloapi.BootNetwork
	case strings.HasPrefix(lower, "cd.") || strings.HasPrefix(lower, "dvd."):
		return iloapi.BootCDROM
	}
	return "NONE"
}

func bootStringDevice(bs string) string {
	switch {
	case strings.Contains(bs, "Virtual CD") || strings.Contains(bs, "HPE Virtual CD-ROM") || strings.Contains(bs, "Virtual USB CD"):
		return iloapi.BootCDROM
	case strings.Contains(bs, "NIC") || strings.Contains(bs, "PXE") || strings.Contains(bs, "ISCSI") || strings.Contains(bs, "iSCSI"):
		return iloapi.BootNetwork
	case strings.Contains(bs, "Logical Drive") || strings.Contains(bs, "HDD") || strings.Contains(bs, "Storage") || strings.Contains(bs, "LogVol"):
		return iloapi.BootHDD
	}
	return "UNKNOWN"
}

// UpdatePersistentBoot sets BootSourceOverrideEnabled Continuous with the
// first device.
func (c *Client) UpdatePersistentBoot(ctx context.Context, devices []string) error {
	const op = "update_persistent_boot"
	if len(devices) == 0 {
		return iloapi.Invalid(op, "give at least one boot device")
	}
	t, err := DeviceToTarget(op, devices[0])
	if err != nil {
		return err
	}
	return c.run(ctx, op, func(s *session) error {
		m, _, resp, err := s.system()
		if err != nil {
			return err
		}
		return s.patchBoot(m, resp, map[string]any{"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": t})
	})
}
