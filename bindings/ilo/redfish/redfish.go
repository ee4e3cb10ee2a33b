package redfish

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// Client is a Redfish client for one iLO. It implements iloapi.Client.
type Client struct {
	t *iloapi.Transport
	// Debug, when set, receives every request (passwords hidden) and answer.
	Debug io.Writer
	// BasicAuth skips sessions altogether.
	BasicAuth bool
	// ResetPollInterval and ResetSettle tune ResetILO's wait (5 s, 10 s).
	ResetPollInterval, ResetSettle time.Duration

	mu    sync.Mutex
	root  *rootInfo
	stale []staleSession
}

var _ iloapi.Client = (*Client)(nil)

// New returns a Redfish client over t.
func New(t *iloapi.Transport) *Client {
	return &Client{t: t, ResetPollInterval: 2 * time.Second, ResetSettle: 10 * time.Second}
}

func (c *Client) forceBasic() bool { return c.BasicAuth }

func (c *Client) logf(format string, args ...any) {
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "# "+format+"\n", args...)
	}
}

// rootInfo is what the service root and the first collection walks tell.
type rootInfo struct {
	sessions, systems, managers, chassis, accounts string
	oemKey                                         string // "Hpe" or "Hp" from the root
	system, manager                                string // first members, found lazily
}

// discover reads /redfish/v1/ without credentials (as sushy does) once.
func (c *Client) discover(ctx context.Context, op string) (*rootInfo, error) {
	c.mu.Lock()
	r := c.root
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var resp *iloapi.Response
	err := c.t.Retry(ctx, op, func(ctx context.Context) error {
		h := http.Header{}
		h.Set("Accept", "application/json")
		h.Set("OData-Version", "4.0")
		x, err := c.t.Do(ctx, iloapi.Request{Method: http.MethodGet, Path: "/redfish/v1/", Header: h})
		if err != nil {
			return err
		}
		if x.Status >= 500 {
			return iloapi.Transient(op, fmt.Sprintf("GET /redfish/v1/: HTTP %d", x.Status), nil)
		}
		resp = x
		return nil
	})
	if err != nil {
		return nil, err
	}
	if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed {
		return nil, iloapi.Unavailable(op, "redfish", fmt.Sprintf("GET /redfish/v1/ answered HTTP %d", resp.Status))
	}
	if resp.Status >= 300 && resp.Status != http.StatusUnauthorized {
		return nil, httpError(op, http.MethodGet, "/redfish/v1/", resp)
	}
	m, err := decodeObject(resp.Body)
	if err != nil {
		if resp.Status == http.StatusUnauthorized {
			return nil, loginError(op, resp)
		}
		return nil, iloapi.Unavailable(op, "redfish", "GET /redfish/v1/: "+err.Error())
	}
	r = &rootInfo{
		sessions: link(m, "Links", "Sessions"),
		systems:  link(m, "Systems"),
		managers: link(m, "Managers"),
		chassis:  link(m, "Chassis"),
		accounts: link(m, "AccountService"),
	}
	_, r.oemKey = Oem(m)
	if r.sessions == "" {
		if ss := link(m, "SessionService"); ss != "" {
			r.sessions = strings.TrimSuffix(ss, "/") + "/Sessions/"
		}
	}
	if r.systems == "" {
		return nil, iloapi.Unavailable(op, "redfish", "service root has no Systems link")
	}
	c.mu.Lock()
	if c.root == nil {
		c.root = r
	}
	r = c.root
	c.mu.Unlock()
	return r, nil
}

// firstMember returns the first member of a collection, cached in *slot.
func (s *session) firstMember(collection string, slot *string, what string) (string, error) {
	s.c.mu.Lock()
	v := *slot
	s.c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if collection == "" {
		return "", iloapi.NotSupported(s.op, "the service root has no "+what+" collection", nil)
	}
	m, _, err := s.getJSON(collection)
	if err != nil {
		return "", err
	}
	ms := members(m)
	if len(ms) == 0 {
		return "", iloapi.Errorf(s.op, nil, "%s collection %s is empty", what, collection)
	}
	s.c.mu.Lock()
	*slot = ms[0]
	s.c.mu.Unlock()
	return ms[0], nil
}

// system GETs the first ComputerSystem (raw and typed).
func (s *session) system() (map[string]any, *schemas.ComputerSystem, *iloapi.Response, error) {
	r := s.c.root
	uri, err := s.firstMember(r.systems, &r.system, "Systems")
	if err != nil {
		return nil, nil, nil, err
	}
	var sys schemas.ComputerSystem
	m, resp, err := getTyped(s, uri, &sys)
	if err != nil {
		return nil, nil, nil, err
	}
	if sys.ODataID == "" {
		sys.ODataID = uri
	}
	return m, &sys, resp, nil
}

// manager GETs the first Manager.
func (s *session) manager() (map[string]any, *schemas.Manager, error) {
	r := s.c.root
	uri, err := s.firstMember(r.managers, &r.manager, "Managers")
	if err != nil {
		return nil, nil, err
	}
	var mgr schemas.Manager
	m, _, err := getTyped(s, uri, &mgr)
	if err != nil {
		return nil, nil, err
	}
	if mgr.ODataID == "" {
		mgr.ODataID = uri
	}
	return m, &mgr, nil
}

func (c *Client) run(ctx context.Context, op string, fn func(s *session) error) error {
	return iloapi.WithOperation(op, c.withSession(ctx, op, fn))
}

// --- power ------------------------------------------------------------------

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
	var out string
	err := c.run(ctx, "get_product_name", func(s *session) error {
		_, sys, _, err := s.system()
		if err == nil {
			out = sys.Model
		}
		return err
	})
	return out, err
}

// GetHostPowerStatus returns ON or OFF.
func (c *Client) GetHostPowerStatus(ctx context.Context) (string, error) {
	var out string
	err := c.run(ctx, "get_host_power_status", func(s *session) error {
		m, sys, _, err := s.system()
		if err != nil {
			return err
		}
		p := string(sys.PowerState)
		if p == "" {
			p = str(m, "Power") // iLO 4 RIS spelling
		}
		out = PowerState(p)
		return nil
	})
	return out, err
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

// --- boot devices -------------------------------------------------------------

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
	var out string
	err := c.run(ctx, "get_one_time_boot", func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		if obj(m, "Boot") == nil {
			return iloapi.Errorf(s.op, nil, "the system resource has no Boot object")
		}
		if str(m, "Boot", "BootSourceOverrideEnabled") == "Once" {
			out = TargetToDevice(str(m, "Boot", "BootSourceOverrideTarget"), false)
		} else {
			out = iloapi.BootNormal
		}
		return nil
	})
	return out, err
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
	var out string
	err := c.run(ctx, "get_persistent_boot_device", func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		if str(m, "Boot", "BootSourceOverrideEnabled") == "Continuous" {
			out = TargetToDevice(str(m, "Boot", "BootSourceOverrideTarget"), true)
			return nil
		}
		out = "NONE"
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
		for _, src := range list(b, "BootSources") {
			o, _ := src.(map[string]any)
			if str(o, "StructuredBootString") == first {
				out = bootStringDevice(str(o, "BootString"))
				break
			}
		}
		return nil
	})
	return out, err
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

// --- BIOS and boot mode ------------------------------------------------------------

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
	var out string
	err := c.run(ctx, "get_current_boot_mode", func(s *session) error {
		m, _, _, err := s.system()
		if err != nil {
			return err
		}
		bios, _, err := s.bios(m)
		if err != nil {
			return err
		}
		out = BootMode(biosAttr(bios, "BootMode"))
		return nil
	})
	return out, err
}

// GetPendingBootMode reads BootMode from the BIOS settings object.
func (c *Client) GetPendingBootMode(ctx context.Context) (string, error) {
	var out string
	err := c.run(ctx, "get_pending_boot_mode", func(s *session) error {
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
		out = BootMode(mode)
		return nil
	})
	return out, err
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
	var out string
	err := c.run(ctx, "get_supported_boot_mode", func(s *session) error {
		m, _, _, err := s.system()
		if err == nil {
			out = SupportedBootMode(m)
		}
		return err
	})
	return out, err
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

// --- secure boot ------------------------------------------------------------------

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
	var out bool
	err := c.run(ctx, "get_secure_boot_mode", func(s *session) error {
		_, sb, _, err := s.secureBoot()
		if err != nil {
			return err
		}
		if v := str(sb, "SecureBootCurrentBoot"); v != "" {
			out = v == string(schemas.EnabledSecureBootCurrentBootType)
			return nil
		}
		if b, ok := boolean(sb, "SecureBootCurrentState"); ok {
			out = b
			return nil
		}
		out, _ = boolean(sb, "SecureBootEnable")
		return nil
	})
	return out, err
}

func (s *session) requireUEFI(system map[string]any) error {
	bios, _, err := s.bios(system)
	if err != nil {
		return err
	}
	if BootMode(biosAttr(bios, "BootMode")) != iloapi.BootModeUEFI {
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

// --- virtual media -------------------------------------------------------------------

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
	var out iloapi.VMStatus
	err = c.run(ctx, op, func(s *session) error {
		_, st, err := s.vmSlot(d)
		if err != nil {
			return err
		}
		out = VMStatusOf(d, st)
		return nil
	})
	return out, err
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

// --- iLO -----------------------------------------------------------------------------

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
		_, err = s.request(http.MethodPost, t, body, nil)
		return err
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
				_, err = s.request(http.MethodPatch, u, map[string]any{"Password": newPassword}, nil)
				return err
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
	var out []iloapi.License
	err := c.run(ctx, "get_all_licenses", func(s *session) error {
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
			out = append(out, DecodeLicense(l))
		}
		return nil
	})
	return out, err
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

// --- inspection ----------------------------------------------------------------------

// GetEssentialProperties reads memory, threads, architecture, the largest
// volume (minus 1 GiB) and the MACs of enabled Ethernet interfaces.
func (c *Client) GetEssentialProperties(ctx context.Context) (iloapi.EssentialProperties, error) {
	p := iloapi.EssentialProperties{CPUArch: "x86_64", MACs: map[string]string{}}
	err := c.run(ctx, "get_essential_properties", func(s *session) error {
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
			for i, pu := range members(cm) {
				var proc schemas.Processor
				if _, _, err := getTyped(s, pu, &proc); err != nil {
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
			for _, eu := range members(cm) {
				var ei schemas.EthernetInterface
				em, _, err := getTyped(s, eu, &ei)
				if err != nil {
					return err
				}
				mac := ei.MACAddress
				if mac == "" {
					mac = ei.PermanentMACAddress
				}
				health, state := str(em, "Status", "Health"), str(em, "Status", "State")
				if mac == "" || (state != "" && state != "Enabled") || (health != "" && health != "OK") {
					continue
				}
				p.MACs["Port "+ei.ID] = strings.ToLower(mac)
			}
		}
		return nil
	})
	return p, err
}

// largestVolumeBytes looks at Storage volumes, then drives, then the HPE
// SmartStorage logical drives.
func (s *session) largestVolumeBytes(system map[string]any) (int64, error) {
	var largest float64
	if st := link(system, "Storage"); st != "" {
		cm, _, err := s.getJSON(st)
		if err != nil {
			return 0, err
		}
		var drives []string
		for _, su := range members(cm) {
			sm, _, err := s.getJSON(su)
			if err != nil {
				return 0, err
			}
			if vu := link(sm, "Volumes"); vu != "" {
				vm, _, err := s.getJSON(vu)
				if err != nil {
					return 0, err
				}
				for _, v := range members(vm) {
					vol, _, err := s.getJSON(v)
					if err != nil {
						return 0, err
					}
					if b, ok := num(vol, "CapacityBytes"); ok && b > largest {
						largest = b
					}
				}
			}
			for _, d := range list(sm, "Drives") {
				if o, ok := d.(map[string]any); ok {
					drives = append(drives, str(o, "@odata.id"))
				}
			}
		}
		if largest == 0 {
			for _, du := range drives {
				if du == "" {
					continue
				}
				d, _, err := s.getJSON(du)
				if err != nil {
					return 0, err
				}
				if b, ok := num(d, "CapacityBytes"); ok && b > largest {
					largest = b
				}
			}
		}
	}
	if largest == 0 {
		if ss := oemLink(system, "SmartStorage"); ss != "" {
			sm, _, err := s.getJSON(ss)
			if err == nil {
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
						ld := link(ctl, "Links", "LogicalDrives")
						if ld == "" {
							continue
						}
						lm, _, err := s.getJSON(ld)
						if err != nil {
							return 0, err
						}
						for _, lu := range members(lm) {
							l, _, err := s.getJSON(lu)
							if err != nil {
								return 0, err
							}
							if mib, ok := num(l, "CapacityMiB"); ok && mib*(1<<20) > largest {
								largest = mib * (1 << 20)
							}
						}
					}
				}
			}
		}
	}
	return int64(largest), nil
}

// GetServerCapabilities reports firmware versions, model, secure boot,
// GPU count and boot modes.
func (c *Client) GetServerCapabilities(ctx context.Context) (map[string]string, error) {
	caps := map[string]string{}
	err := c.run(ctx, "get_server_capabilities", func(s *session) error {
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
			for _, du := range members(cm) {
				d, _, err := s.getJSON(du)
				if err != nil {
					return err
				}
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
	return caps, err
}

// GetHostHealthData reads the first chassis' Thermal and Power resources.
func (c *Client) GetHostHealthData(ctx context.Context) (iloapi.HealthData, error) {
	var d iloapi.HealthData
	err := c.run(ctx, "get_host_health_data", func(s *session) error {
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
	return d, err
}

func status(m map[string]any) string {
	if h := str(m, "Status", "Health"); h != "" {
		return h
	}
	return str(m, "Status", "State")
}
