package redfish

import (
	"context"
	"net/http"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// ResetILO posts #Manager.Reset and waits until the service answers again.
func (c *Client) ResetILO(ctx context.Context) error {
	const op = "reset_ilo"
	err := c.run(ctx, op, func(s *session) error {
		m, _, err := s.manager()
		if err != nil {
			return err
		}
		acts := obj(m, "Actions")
		t := actionTarget(acts, "Manager.Reset")
		if t == "" {
			return iloapi.NotSupported(op, "the manager has no #Manager.Reset action", nil)
		}
		body := map[string]any{}
		if allowed := allowable(acts, "Manager.Reset", "ResetType"); contains(allowed, "GracefulRestart") {
			body["ResetType"] = "GracefulRestart"
		}
		if _, err = s.request(http.MethodPost, t, body, nil); err != nil {
			return err
		}
		// The reset ends every session: forget ours (no DELETE to an iLO
		// that is restarting); the next operation logs in again.
		s.sh.invalidate(s.token)
		return nil
	})
	if err != nil {
		return err
	}
	return iloapi.WaitUntilUp(ctx, op, c.ResetSettle, c.ResetPollInterval, c.t.Options().Timeout+120*time.Second, func(ctx context.Context) error {
		_, err := c.GetProductName(ctx)
		return err
	})
}

// ResetILOCredential PATCHes the Password of the account whose UserName is
// the login.
func (c *Client) ResetILOCredential(ctx context.Context, newPassword string) error {
	const op = "reset_ilo_credential"
	if newPassword == "" {
		return iloapi.Invalid(op, "new password is empty")
	}
	return c.run(ctx, op, func(s *session) error {
		if s.c.root.accounts == "" {
			return iloapi.NotSupported(op, "the service root has no AccountService", nil)
		}
		as, _, err := s.getJSON(s.c.root.accounts)
		if err != nil {
			return err
		}
		coll := link(as, "Accounts")
		if coll == "" {
			return iloapi.NotSupported(op, "the AccountService has no Accounts", nil)
		}
		cm, _, err := s.getJSON(coll)
		if err != nil {
			return err
		}
		user := s.c.t.Options().Username
		for _, u := range members(cm) {
			a, _, err := s.getJSON(u)
			if err != nil {
				return err
			}
			if str(a, "UserName") == user {
				if _, err = s.request(http.MethodPatch, u, map[string]any{"Password": newPassword}, nil); err != nil {
					return err
				}
				// The session belongs to the old credentials: end it.
				s.dropSession("credentials changed")
				return nil
			}
		}
		return iloapi.Errorf(op, nil, "no iLO account named %q", user)
	})
}

func (s *session) licenseService() (string, error) {
	m, _, err := s.manager()
	if err != nil {
		return "", err
	}
	u := oemLink(m, "LicenseService")
	if u == "" {
		return "", iloapi.NotSupported(s.op, "the manager has no HPE LicenseService", nil)
	}
	return u, nil
}

// ActivateLicense posts {"LicenseKey": key} to the HPE LicenseService.
func (c *Client) ActivateLicense(ctx context.Context, key string) error {
	const op = "activate_license"
	if key == "" {
		return iloapi.Invalid(op, "licence key is empty")
	}
	return c.run(ctx, op, func(s *session) error {
		u, err := s.licenseService()
		if err != nil {
			return err
		}
		_, err = s.request(http.MethodPost, u, map[string]any{"LicenseKey": key}, nil)
		return err
	})
}

// GetAllLicenses lists the HPE LicenseService members.
func (c *Client) GetAllLicenses(ctx context.Context) ([]iloapi.License, error) {
	return read(ctx, c, "get_all_licenses", func(s *session, out *[]iloapi.License) error {
		u, err := s.licenseService()
		if err != nil {
			return err
		}
		cm, _, err := s.getJSON(u)
		if err != nil {
			return err
		}
		for _, mu := range members(cm) {
			l, _, err := s.getJSON(mu)
			if err != nil {
				return err
			}
			*out = append(*out, DecodeLicense(l))
		}
		return nil
	})
}

// GetLicense reads the manager's Oem.Hpe.License (Oem.Hp on iLO 4) and
// its model ("iLO 5"); when the manager carries no licence it falls back
// to the LicenseService's first member.
func (c *Client) GetLicense(ctx context.Context) (iloapi.LicenseInfo, error) {
	return read(ctx, c, "get_license", func(s *session, out *iloapi.LicenseInfo) error {
		m, mgr, err := s.manager()
		if err != nil {
			return err
		}
		o, _ := Oem(m)
		name := str(o, "License", "LicenseString")
		if name == "" {
			u := oemLink(m, "LicenseService")
			if u == "" {
				return iloapi.NotSupported(s.op, "the manager names no licence and has no HPE LicenseService", nil)
			}
			cm, _, err := s.getJSON(u)
			if err != nil {
				return err
			}
			for _, mu := range members(cm) {
				l, _, err := s.getJSON(mu)
				if err != nil {
					return err
				}
				if name = DecodeLicense(l).Type; name != "" {
					break
				}
			}
		}
		if name == "" {
			return iloapi.Errorf(s.op, nil, "the iLO reports no licence")
		}
		gen := iloapi.ILOGeneration(mgr.Model)
		if gen == 0 {
			gen = iloapi.ILOGeneration(mgr.FirmwareVersion)
		}
		*out = iloapi.LicenseInfo{Name: name, Tier: iloapi.ClassifyLicense(name), ILO: gen}
		return nil
	})
}

// DecodeLicense reads an HpeiLOLicense / HpiLOLicense member.
func DecodeLicense(l map[string]any) iloapi.License {
	lic := iloapi.License{Type: str(l, "License"), Key: str(l, "LicenseKey"), InstallDate: str(l, "LicenseInstallDate"), Class: str(l, "LicenseClass")}
	if lic.Type == "" {
		lic.Type = str(l, "LicenseType")
	}
	if lic.Class == "" {
		lic.Class = str(l, "LicenseType")
	}
	return lic
}
