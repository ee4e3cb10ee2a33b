package redfish

import (
	"context"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// bios returns the current BIOS resource and its URI.
func (s *session) bios(system map[string]any) (map[string]any, string, error) {
	uri := link(system, "Bios")
	if uri == "" {
		uri = oemLink(system, "BIOS")
	}
	if uri == "" {
		return nil, "", iloapi.NotSupported(s.op, "the system has no BIOS resource", nil)
	}
	m, _, err := s.getJSON(uri)
	return m, uri, err
}

// biosSettingsURI returns the pending-settings URI of a BIOS resource.
func biosSettingsURI(bios map[string]any) string {
	if u := link(bios, "@Redfish.Settings", "SettingsObject"); u != "" {
		return u
	}
	if u := link(bios, "links", "Settings"); u != "" {
		return u
	}
	return oemLink(bios, "Settings")
}

// biosAttr reads Attributes.<name> (Redfish) or <name> (iLO 4 HpBios).
func biosAttr(bios map[string]any, name string) string {
	if a := obj(bios, "Attributes"); a != nil {
		return str(a, name)
	}
	return str(bios, name)
}

// BootMode maps a BIOS BootMode attribute to LEGACY/UEFI/UNKNOWN.
func BootMode(v string) string {
	switch strings.ToLower(v) {
	case "uefi":
		return iloapi.BootModeUEFI
	case "legacybios", "legacy":
		return iloapi.BootModeLegacy
	}
	return "UNKNOWN"
}

// GetCurrentBootMode reads the BIOS BootMode attribute.
func (c *Client) GetCurrentBootMode(ctx context.Context) (string, error) {
	return read(ctx, c, "get_current_boot_mode", func(s *session, out *string) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		bios, _, err := s.bios(m)
		if err != nil {
			return err
		}
		*out = BootMode(biosAttr(bios, "BootMode"))
		return nil
	})
}

// GetPendingBootMode reads BootMode from the BIOS settings object.
func (c *Client) GetPendingBootMode(ctx context.Context) (string, error) {
	return read(ctx, c, "get_pending_boot_mode", func(s *session, out *string) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		bios, _, err := s.bios(m)
		if err != nil {
			return err
		}
		mode := biosAttr(bios, "BootMode")
		if st := biosSettingsURI(bios); st != "" {
			pending, _, err := s.getJSON(st)
			if err != nil {
				return err
			}
			if v := biosAttr(pending, "BootMode"); v != "" {
				mode = v
			}
		}
		*out = BootMode(mode)
		return nil
	})
}

// SetPendingBootMode PATCHes the BIOS settings object: BootMode Uefi with
// UefiOptimizedBoot Enabled, or BootMode LegacyBios.
func (c *Client) SetPendingBootMode(ctx context.Context, mode string) error {
	const op = "set_pending_boot_mode"
	var attrs map[string]any
	switch strings.ToUpper(mode) {
	case iloapi.BootModeUEFI:
		attrs = map[string]any{"BootMode": "Uefi", "UefiOptimizedBoot": "Enabled"}
	case iloapi.BootModeLegacy:
		attrs = map[string]any{"BootMode": "LegacyBios"}
	default:
		return iloapi.Invalid(op, "boot mode %q: give LEGACY or UEFI", mode)
	}
	return c.run(ctx, op, func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		bios, uri, err := s.bios(m)
		if err != nil {
			return err
		}
		target := biosSettingsURI(bios)
		if target == "" {
			target = uri
		}
		var body any = map[string]any{"Attributes": attrs}
		if obj(bios, "Attributes") == nil {
			body = attrs // iLO 4 HpBios: attributes at the top level
		}
		_, err = s.request(http.MethodPatch, target, body, nil)
		return err
	})
}

// GetSupportedBootMode maps Oem.Hp(e).Bios.UefiClass.
func (c *Client) GetSupportedBootMode(ctx context.Context) (string, error) {
	return read(ctx, c, "get_supported_boot_mode", func(s *session, out *string) error {
		m, _, _, err := s.system()
		if err == nil {
			*out = SupportedBootMode(m)
		}
		return err
	})
}

// ResetBIOSToDefault posts #Bios.ResetBios when advertised, else writes the
// HPE BaseConfigs defaults into the BIOS settings object.
func (c *Client) ResetBIOSToDefault(ctx context.Context) error {
	return c.run(ctx, "reset_bios_to_default", func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		bios, uri, err := s.bios(m)
		if err != nil {
			return err
		}
		if t := actionTarget(obj(bios, "Actions"), "Bios.ResetBios"); t != "" {
			_, err := s.request(http.MethodPost, t, map[string]any{}, nil)
			return err
		}
		bc := oemLink(bios, "BaseConfigs")
		if bc == "" {
			return iloapi.NotSupported(s.op, "the BIOS has neither #Bios.ResetBios nor HPE BaseConfigs", nil)
		}
		base, _, err := s.getJSON(bc)
		if err != nil {
			return err
		}
		var defaults map[string]any
		for _, e := range list(base, "BaseConfigs") {
			if o, ok := e.(map[string]any); ok {
				if d := obj(o, "default"); d != nil {
					defaults = d
					break
				}
			}
		}
		if defaults == nil {
			return iloapi.Errorf(s.op, nil, "BaseConfigs %s has no default entry", bc)
		}
		target := biosSettingsURI(bios)
		if target == "" {
			target = uri
		}
		if obj(bios, "Attributes") != nil {
			_, err = s.request(http.MethodPost, target, map[string]any{"Attributes": defaults}, nil)
		} else {
			_, err = s.request(http.MethodPatch, target, defaults, nil)
		}
		return err
	})
}
