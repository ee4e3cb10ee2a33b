package redfish

import (
	"context"
	"net/http"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

func (s *session) secureBoot() (map[string]any, map[string]any, string, error) {
	m, _, _, err := s.system()
	if err != nil {
		return nil, nil, "", err
	}
	uri := link(m, "SecureBoot")
	if uri == "" {
		uri = oemLink(m, "SecureBoot")
	}
	if uri == "" {
		return nil, nil, "", iloapi.NotSupported(s.op, "the system has no SecureBoot resource", nil)
	}
	sb, _, err := s.getJSON(uri)
	return m, sb, uri, err
}

// GetSecureBootMode reads SecureBootCurrentBoot (SecureBootCurrentState on iLO 4).
func (c *Client) GetSecureBootMode(ctx context.Context) (bool, error) {
	return read(ctx, c, "get_secure_boot_mode", func(s *session, out *bool) error {
		_, sb, _, err := s.secureBoot()
		if err != nil {
			return err
		}
		if v := str(sb, "SecureBootCurrentBoot"); v != "" {
			*out = v == string(schemas.EnabledSecureBootCurrentBootType)
			return nil
		}
		if b, ok := boolean(sb, "SecureBootCurrentState"); ok {
			*out = b
			return nil
		}
		*out, _ = boolean(sb, "SecureBootEnable")
		return nil
	})
}

func (s *session) requireUEFI(system map[string]any) error {
	bios, _, err := s.bios(system)
	if err != nil {
		return err
	}
	if EffectiveBootMode(system, bios) != iloapi.BootModeUEFI {
		return iloapi.NotSupported(s.op, "secure boot can be changed only when the server boots in UEFI mode", nil)
	}
	return nil
}

// SetSecureBootMode PATCHes SecureBootEnable (UEFI only).
func (c *Client) SetSecureBootMode(ctx context.Context, enable bool) error {
	return c.run(ctx, "set_secure_boot_mode", func(s *session) error {
		m, _, uri, err := s.secureBoot()
		if err != nil {
			return err
		}
		if err := s.requireUEFI(m); err != nil {
			return err
		}
		_, err = s.request(http.MethodPatch, uri, map[string]any{"SecureBootEnable": enable}, nil)
		return err
	})
}

func (c *Client) resetKeys(ctx context.Context, op, keysType, risField string) error {
	return c.run(ctx, op, func(s *session) error {
		m, sb, uri, err := s.secureBoot()
		if err != nil {
			return err
		}
		if err := s.requireUEFI(m); err != nil {
			return err
		}
		if t := actionTarget(obj(sb, "Actions"), "SecureBoot.ResetKeys"); t != "" {
			_, err := s.request(http.MethodPost, t, map[string]any{"ResetKeysType": keysType}, nil)
			return err
		}
		_, err = s.request(http.MethodPatch, uri, map[string]any{risField: true}, nil)
		return err
	})
}

// ResetSecureBootKeys resets all keys to the defaults.
func (c *Client) ResetSecureBootKeys(ctx context.Context) error {
	return c.resetKeys(ctx, "reset_secure_boot_keys", "ResetAllKeysToDefault", "ResetToDefaultKeys")
}

// ClearSecureBootKeys deletes all keys.
func (c *Client) ClearSecureBootKeys(ctx context.Context) error {
	return c.resetKeys(ctx, "clear_secure_boot_keys", "DeleteAllKeys", "ResetAllKeys")
}
