package redfish

import (
	"context"
	"fmt"
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

// UEFIOnly reports a machine that can boot only UEFI: Oem.Hp(e).Bios.
// UefiClass 3 (iLO 5 Gen10 Plus, iLO 6 Gen11, iLO 7 Gen12), or a system
// whose boot override mode allows only UEFI.
func UEFIOnly(system map[string]any) bool {
	if SupportedBootMode(system) == iloapi.SupportedUEFIOnly {
		return true
	}
	vs := list(system, "Boot", "BootSourceOverrideMode@Redfish.AllowableValues")
	return len(vs) == 1 && strings.EqualFold(fmt.Sprint(vs[0]), "UEFI")
}

// hasBIOSAttr reports whether the BIOS resource has the attribute name
// (under Attributes on Redfish, at the top level on iLO 4 HpBios).
func hasBIOSAttr(bios map[string]any, name string) bool {
	if a := obj(bios, "Attributes"); a != nil {
		_, ok := a[name]
		return ok
	}
	_, ok := bios[name]
	return ok
}

// EffectiveBootMode is the boot mode of a BIOS resource (current or
// pending): its BootMode attribute when it has one, else UEFI on a
// UEFI-only system (Gen11 and Gen12 have no BootMode attribute at all),
// else UNKNOWN.
func EffectiveBootMode(system, bios map[string]any) string {
	if hasBIOSAttr(bios, "BootMode") {
		return BootMode(biosAttr(bios, "BootMode"))
	}
	if UEFIOnly(system) {
		return iloapi.BootModeUEFI
	}
	return "UNKNOWN"
}

// GetCurrentBootMode reads the BIOS BootMode attribute (UEFI on a
// UEFI-only machine without one).
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
		*out = EffectiveBootMode(m, bios)
		return nil
	})
}

// GetPendingBootMode reads BootMode from the BIOS settings object (the
// current mode when the settings object does not name one).
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
		mode := EffectiveBootMode(m, bios)
		if st := biosSettingsURI(bios); st != "" && hasBIOSAttr(bios, "BootMode") {
			pending, _, err := s.getJSON(st)
			if err != nil {
				return err
			}
			if v := biosAttr(pending, "BootMode"); v != "" {
				mode = BootMode(v)
			}
		}
		*out = mode
		return nil
	})
}

// SetPendingBootMode PATCHes the BIOS settings object: BootMode Uefi (with
// UefiOptimizedBoot Enabled where the BIOS has that attribute), or
// BootMode LegacyBios. On a UEFI-only machine UEFI is a no-op and LEGACY
// is not supported; no attribute the BIOS does not have is ever sent.
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
		if UEFIOnly(m) && attrs["BootMode"] != "Uefi" {
			return iloapi.NotSupported(s.op, "this server boots only in UEFI mode (Oem.Hpe.Bios.UefiClass 3); LEGACY is not available", nil)
		}
		if !hasBIOSAttr(bios, "BootMode") {
			if UEFIOnly(m) {
				return nil // UEFI is the only mode and there is no attribute: nothing to change
			}
			return iloapi.NotSupported(s.op, "the BIOS has no BootMode attribute; the boot mode cannot be changed over Redfish", nil)
		}
		for k := range attrs {
			if !hasBIOSAttr(bios, k) {
				delete(attrs, k) // never PATCH an attribute the BIOS does not have
			}
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
