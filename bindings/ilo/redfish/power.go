package redfish

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// PowerState maps a Redfish PowerState to ON/OFF.
func PowerState(p string) string {
	switch p {
	case "On", "PoweringOn":
		return iloapi.PowerOn
	}
	return iloapi.PowerOff
}

// GetProductName returns Systems/1 Model.
func (c *Client) GetProductName(ctx context.Context) (string, error) {
	return read(ctx, c, "get_product_name", func(s *session, out *string) error {
		_, sys, _, err := s.system()
		if err == nil {
			*out = sys.Model
		}
		return err
	})
}

// GetHostPowerStatus returns ON or OFF.
func (c *Client) GetHostPowerStatus(ctx context.Context) (string, error) {
	return read(ctx, c, "get_host_power_status", func(s *session, out *string) error {
		m, sys, _, err := s.system()
		if err != nil {
			return err
		}
		p := string(sys.PowerState)
		if p == "" {
			p = str(m, "Power") // iLO 4 RIS spelling
		}
		*out = PowerState(p)
		return nil
	})
}

func (s *session) reset(m map[string]any, resetType string) error {
	acts := obj(m, "Actions")
	target := actionTarget(acts, "ComputerSystem.Reset")
	if target == "" {
		return iloapi.NotSupported(s.op, "the system has no #ComputerSystem.Reset action", nil)
	}
	if allowed := allowable(acts, "ComputerSystem.Reset", "ResetType"); len(allowed) > 0 && !contains(allowed, resetType) {
		return iloapi.NotSupported(s.op, fmt.Sprintf("reset type %s is not allowed (allowed: %s)", resetType, strings.Join(allowed, ", ")), nil)
	}
	_, err := s.request(http.MethodPost, target, map[string]string{"ResetType": resetType}, nil)
	return err
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// SetHostPower powers ON or OFF (ResetType On / ForceOff); no-op when the
// server is already there (iLO refuses On for a running server).
func (c *Client) SetHostPower(ctx context.Context, power string) error {
	const op = "set_host_power"
	p := strings.ToUpper(power)
	if p != iloapi.PowerOn && p != iloapi.PowerOff {
		return iloapi.Invalid(op, "power %q: give ON or OFF", power)
	}
	return c.run(ctx, op, func(s *session) error {
		m, sys, _, err := s.system()
		if err != nil {
			return err
		}
		if PowerState(string(sys.PowerState)) == p {
			return nil
		}
		if p == iloapi.PowerOn {
			return s.reset(m, "On")
		}
		return s.reset(m, "ForceOff")
	})
}

// ResetServer posts ResetType ForceRestart.
func (c *Client) ResetServer(ctx context.Context) error {
	return c.run(ctx, "reset_server", func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		return s.reset(m, "ForceRestart")
	})
}

func (c *Client) powerButton(ctx context.Context, op, push string) error {
	return c.run(ctx, op, func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		if t := oemAction(m, "ComputerSystemExt.PowerButton"); t != "" {
			_, err := s.request(http.MethodPost, t, map[string]string{"PushType": push}, nil)
			return err
		}
		if push == "Press" {
			return s.reset(m, "PushPowerButton")
		}
		return iloapi.NotSupported(op, "the system has no HPE PowerButton action", nil)
	})
}

// HoldPwrBtn posts the HPE PowerButton action with PushType PressAndHold.
func (c *Client) HoldPwrBtn(ctx context.Context) error {
	return c.powerButton(ctx, "hold_pwr_btn", "PressAndHold")
}

// PressPwrBtn posts the HPE PowerButton action with PushType Press.
func (c *Client) PressPwrBtn(ctx context.Context) error {
	return c.powerButton(ctx, "press_pwr_btn", "Press")
}
