package redfish

import (
	"context"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

func vmDevice(op, device string) (string, error) {
	d := strings.ToUpper(device)
	if d != iloapi.DeviceFloppy && d != iloapi.DeviceCDROM {
		return "", iloapi.Invalid(op, "virtual media device %q: give FLOPPY or CDROM", device)
	}
	return d, nil
}

// vmSlot finds the VirtualMedia member serving device.
func (s *session) vmSlot(device string) (string, VMState, error) {
	m, _, err := s.manager()
	if err != nil {
		return "", VMState{}, err
	}
	coll := link(m, "VirtualMedia")
	if coll == "" {
		return "", VMState{}, iloapi.NotSupported(s.op, "the manager has no VirtualMedia collection", nil)
	}
	cm, _, err := s.getJSON(coll)
	if err != nil {
		return "", VMState{}, err
	}
	for _, u := range members(cm) {
		vm, _, err := s.getJSON(u)
		if err != nil {
			return "", VMState{}, err
		}
		st := DecodeVirtualMedia(vm)
		if st.Serves(device) {
			if id := str(vm, "@odata.id"); id != "" {
				u = id
			}
			return u, st, nil
		}
	}
	return "", VMState{}, iloapi.NotSupported(s.op, "no virtual media slot serves "+device, nil)
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// GetVMStatus builds the RIBCL-style status of a slot.
func (c *Client) GetVMStatus(ctx context.Context, device string) (iloapi.VMStatus, error) {
	const op = "get_vm_status"
	d, err := vmDevice(op, device)
	if err != nil {
		return iloapi.VMStatus{}, err
	}
	return read(ctx, c, op, func(s *session, out *iloapi.VMStatus) error {
		_, st, err := s.vmSlot(d)
		if err != nil {
			return err
		}
		*out = VMStatusOf(d, st)
		return nil
	})
}

// VMStatusOf converts a slot state to the RIBCL-style status.
func VMStatusOf(device string, st VMState) iloapi.VMStatus {
	out := iloapi.VMStatus{Device: device, ImageURL: st.Image, ImageInserted: yesNo(st.Inserted),
		WriteProtect: yesNo(st.WriteProtected), VMApplet: "CONNECTED", BootOption: "BOOT_ALWAYS"}
	if st.ConnectedVia == "NotConnected" {
		out.VMApplet = "DISCONNECTED"
	}
	switch {
	case st.BootOnNextReset && device != iloapi.DeviceFloppy:
		out.BootOption = "BOOT_ONCE"
	case st.ConnectedVia == "NotConnected" && !st.Inserted:
		out.BootOption = "NO_BOOT"
	}
	return out
}

func (s *session) eject(uri string, st VMState) error {
	var err error
	switch {
	case st.EjectTarget != "":
		_, err = s.request(http.MethodPost, st.EjectTarget, map[string]any{}, nil)
	case st.OemEjectTarget != "":
		_, err = s.request(http.MethodPost, st.OemEjectTarget, map[string]any{}, nil)
	default:
		_, err = s.request(http.MethodPatch, uri, map[string]any{"Image": nil}, nil)
	}
	return err
}

// InsertVirtualMedia ejects what is inserted, then inserts url with the
// standard InsertMedia action, the HPE OEM action, or (iLO 4) a PATCH that
// carries only Image.
func (c *Client) InsertVirtualMedia(ctx context.Context, url, device string) error {
	const op = "insert_virtual_media"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	if url == "" {
		return iloapi.Invalid(op, "image URL is empty")
	}
	return c.run(ctx, op, func(s *session) error {
		uri, st, err := s.vmSlot(d)
		if err != nil {
			return err
		}
		if st.Inserted {
			if err := s.eject(uri, st); err != nil {
				return err
			}
		}
		body := map[string]any{"Image": url}
		switch {
		case st.InsertTarget != "":
			_, err = s.request(http.MethodPost, st.InsertTarget, body, nil)
		case st.OemInsertTarget != "":
			_, err = s.request(http.MethodPost, st.OemInsertTarget, body, nil)
		default:
			_, err = s.request(http.MethodPatch, uri, body, nil)
		}
		return err
	})
}

// EjectVirtualMedia ejects device; nothing is sent when it is empty.
func (c *Client) EjectVirtualMedia(ctx context.Context, device string) error {
	const op = "eject_virtual_media"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	return c.run(ctx, op, func(s *session) error {
		uri, st, err := s.vmSlot(d)
		if err != nil {
			return err
		}
		if !st.Inserted {
			return nil
		}
		return s.eject(uri, st)
	})
}

// SetVMStatus PATCHes Oem.Hp(e).BootOnNextServerReset: true for
// BOOT_ONCE, false for BOOT_ALWAYS/NO_BOOT; CONNECT/DISCONNECT send
// nothing. Write protection cannot be changed over Redfish and is ignored.
func (c *Client) SetVMStatus(ctx context.Context, device, bootOption, writeProtect string) error {
	const op = "set_vm_status"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	var boot bool
	switch strings.ToUpper(bootOption) {
	case "BOOT_ONCE":
		boot = true
	case "BOOT_ALWAYS", "NO_BOOT":
	case "CONNECT", "DISCONNECT":
		return nil
	default:
		return iloapi.Invalid(op, "boot option %q: give BOOT_ONCE, BOOT_ALWAYS, NO_BOOT, CONNECT or DISCONNECT", bootOption)
	}
	if wp := strings.ToUpper(writeProtect); wp != "YES" && wp != "NO" && wp != "" {
		return iloapi.Invalid(op, "write protect %q: give YES or NO", writeProtect)
	}
	return c.run(ctx, op, func(s *session) error {
		uri, st, err := s.vmSlot(d)
		if err != nil {
			return err
		}
		key := st.OemKey
		if key == "" {
			key = s.c.root.oemKey
		}
		if key == "" {
			key = "Hpe"
		}
		_, err = s.request(http.MethodPatch, uri, map[string]any{"Oem": map[string]any{key: map[string]any{"BootOnNextServerReset": boot}}}, nil)
		return err
	})
}
