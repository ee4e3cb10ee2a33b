// Package ribcl is the RIBCL-over-HTTPS client for iLO 3/4 (G7, Gen8,
// Gen9) and iLO 5 with RIBCL enabled, following proliantutils 2.14 on the
// wire: one POST /ribcl per command carrying
// RIBCL/LOGIN/<SECTION MODE>/<COMMAND>, multi-document answers, STATUS
// mapping and the GET_EMBEDDED_HEALTH inspection arithmetic.
package ribcl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// Sections and modes.
const (
	serverInfo = "SERVER_INFO"
	ribInfo    = "RIB_INFO"
	userInfo   = "USER_INFO"
	read       = "read"
	write      = "write"
)

// Client is a RIBCL client for one iLO. It implements iloapi.Client;
// operations RIBCL lacks (secure boot) return not_supported.
type Client struct {
	t *iloapi.Transport
	// Debug, when set, receives every request and response with the
	// passwords masked.
	Debug io.Writer
	// ResetPollInterval and ResetSettle tune ResetILO's wait for the iLO
	// (defaults 5 s and 10 s as in proliantutils).
	ResetPollInterval, ResetSettle time.Duration

	mu    sync.Mutex
	model string
}

var _ iloapi.Client = (*Client)(nil)

// New returns a RIBCL client over t (credentials come from t's options).
func New(t *iloapi.Transport) *Client {
	return &Client{t: t, ResetPollInterval: 2 * time.Second, ResetSettle: 10 * time.Second}
}

// SetModel tells the client the product name (it decides the G7 health
// tags); otherwise it asks GET_PRODUCT_NAME when needed.
func (c *Client) SetModel(model string) {
	c.mu.Lock()
	c.model = model
	c.mu.Unlock()
}

func (c *Client) cachedModel() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.model
}

// Call sends one command and returns the parsed answer, retrying
// transient failures within client_timeout.
func (c *Client) Call(ctx context.Context, op, section, mode, command string) (*Response, error) {
	o := c.t.Options()
	body := envelope(o.Username, o.Password, section, mode, command)
	var out *Response
	err := c.t.Retry(ctx, op, func(ctx context.Context) error {
		r, err := c.once(ctx, op, body)
		if err == nil {
			out = r
		}
		return err
	})
	return out, err
}

func (c *Client) once(ctx context.Context, op string, body []byte) (*Response, error) {
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "> POST /ribcl %s\n", MaskPasswords(body))
	}
	resp, err := c.t.Do(ctx, iloapi.Request{Method: http.MethodPost, Path: "/ribcl", Body: body})
	if err != nil {
		return nil, err
	}
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "< %d %s\n", resp.Status, MaskPasswords(resp.Body))
	}
	switch {
	case resp.Status >= 500:
		return nil, iloapi.Transient(op, fmt.Sprintf("RIBCL HTTP %d from iLO %s", resp.Status, o(c)), nil)
	case resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed:
		return nil, iloapi.Unavailable(op, "ribcl", fmt.Sprintf("POST /ribcl answered HTTP %d", resp.Status))
	case resp.Status >= 400:
		return nil, iloapi.ILOError(op, &iloapi.StatusError{Protocol: "ribcl", HTTPStatus: resp.Status, Message: http.StatusText(resp.Status)})
	}
	r, err := Parse(resp.Body)
	if err != nil {
		return nil, classify(op, err)
	}
	return r, nil
}

func o(c *Client) string { return c.t.Options().Address() }

// isLoginStatus reports the statuses proliantutils treats as a login failure.
func isLoginStatus(s int) bool { return s == 0x005F || s == 0x000A }

// classify maps a parse error to a typed error.
func classify(op string, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return iloapi.Unavailable(op, "ribcl", fe.Reason)
	}
	var se *StatusError
	if !errors.As(err, &se) {
		return iloapi.Errorf(op, err, "%v", err)
	}
	msg := se.Message
	lower := strings.ToLower(msg)
	trimmed := strings.TrimSuffix(strings.TrimSpace(msg), ".")
	ise := &iloapi.StatusError{Protocol: "ribcl", Status: fmt.Sprintf("0x%04X", se.Status), Message: msg}
	switch {
	case isLoginStatus(se.Status) || trimmed == "User login name was not found" || trimmed == "Login failed" || trimmed == "Login credentials rejected":
		return iloapi.LoginFailed(op, "iLO refused the credentials: "+msg, ise)
	case strings.Contains(lower, "ribcl") && strings.Contains(lower, "disabled"):
		return iloapi.Unavailable(op, "ribcl", msg)
	case strings.Contains(lower, "syntax error") || strings.Contains(lower, "feature not supported") || strings.Contains(lower, "not supported"):
		return iloapi.NotSupported(op, msg, ise)
	case strings.Contains(lower, "busy") || strings.Contains(lower, "invalidoperationforsystemstate") ||
		strings.Contains(lower, "unabletomodifyduringsystempost") || strings.Contains(lower, "try again"):
		return iloapi.Transient(op, msg, ise)
	}
	return iloapi.ILOError(op, ise)
}

func cmd(name string, attrs ...attr) string { return elem(name, attrs) }

// --- server info ------------------------------------------------------------

// GetProductName returns GET_PRODUCT_NAME/PRODUCT_NAME/@VALUE.
func (c *Client) GetProductName(ctx context.Context) (string, error) {
	const op = "get_product_name"
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_PRODUCT_NAME"))
	if err != nil {
		return "", err
	}
	v := r.Data.Path("GET_PRODUCT_NAME", "PRODUCT_NAME").Value()
	if v == "" {
		return "", missing(op, "GET_PRODUCT_NAME/PRODUCT_NAME")
	}
	c.SetModel(v)
	return v, nil
}

func missing(op, path string) error {
	return iloapi.Errorf(op, nil, "RIBCL answer lacks %s", path)
}

// GetHostPowerStatus reads GET_HOST_POWER/@HOST_POWER.
func (c *Client) GetHostPowerStatus(ctx context.Context) (string, error) {
	const op = "get_host_power_status"
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_HOST_POWER_STATUS"))
	if err != nil {
		return "", err
	}
	v, ok := r.Data.Child("GET_HOST_POWER").Attr("HOST_POWER")
	if !ok {
		return "", missing(op, "GET_HOST_POWER/@HOST_POWER")
	}
	return strings.ToUpper(v), nil
}

// SetHostPower sends SET_HOST_POWER HOST_POWER="Yes"|"No".
func (c *Client) SetHostPower(ctx context.Context, power string) error {
	const op = "set_host_power"
	var v string
	switch strings.ToUpper(power) {
	case iloapi.PowerOn:
		v = "Yes"
	case iloapi.PowerOff:
		v = "No"
	default:
		return iloapi.Invalid(op, "power %q: give ON or OFF", power)
	}
	_, err := c.Call(ctx, op, serverInfo, write, cmd("SET_HOST_POWER", attr{"HOST_POWER", v}))
	return err
}

// HoldPwrBtn sends HOLD_PWR_BTN TOGGLE="NO".
func (c *Client) HoldPwrBtn(ctx context.Context) error {
	_, err := c.Call(ctx, "hold_pwr_btn", serverInfo, write, cmd("HOLD_PWR_BTN", attr{"TOGGLE", "NO"}))
	return err
}

// PressPwrBtn sends PRESS_PWR_BTN.
func (c *Client) PressPwrBtn(ctx context.Context) error {
	_, err := c.Call(ctx, "press_pwr_btn", serverInfo, write, cmd("PRESS_PWR_BTN"))
	return err
}

// ResetServer sends RESET_SERVER.
func (c *Client) ResetServer(ctx context.Context) error {
	_, err := c.Call(ctx, "reset_server", serverInfo, write, cmd("RESET_SERVER"))
	return err
}

// GetOneTimeBoot reads ONE_TIME_BOOT/BOOT_TYPE/@VALUE.
func (c *Client) GetOneTimeBoot(ctx context.Context) (string, error) {
	const op = "get_one_time_boot"
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_ONE_TIME_BOOT"))
	if err != nil {
		return "", err
	}
	bt := r.Data.Path("ONE_TIME_BOOT", "BOOT_TYPE")
	if bt == nil {
		return "", missing(op, "ONE_TIME_BOOT/BOOT_TYPE")
	}
	v := bt.Value()
	if strings.EqualFold(v, "normal") {
		return iloapi.BootNormal, nil
	}
	return v, nil
}

// validBootDevice checks a boot device name.
func validBootDevice(op, dev string) (string, error) {
	switch strings.ToUpper(dev) {
	case "CDROM", "HDD", "NETWORK", "FLOPPY", "USB", "ISCSI", "RBSU", "UEFIHTTP":
		return strings.ToUpper(dev), nil
	case "NORMAL":
		return iloapi.BootNormal, nil
	}
	return "", iloapi.Invalid(op, "boot device %q: give CDROM, HDD, NETWORK or Normal", dev)
}

// SetOneTimeBoot sends SET_ONE_TIME_BOOT value="..." (lower-case attribute).
func (c *Client) SetOneTimeBoot(ctx context.Context, device string) error {
	const op = "set_one_time_boot"
	d, err := validBootDevice(op, device)
	if err != nil {
		return err
	}
	_, err = c.Call(ctx, op, serverInfo, write, cmd("SET_ONE_TIME_BOOT", attr{"value", d}))
	return err
}

type bootDevice struct{ value, description string }

func (c *Client) persistentBoot(ctx context.Context, op string) ([]bootDevice, error) {
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_PERSISTENT_BOOT"))
	if err != nil {
		return nil, err
	}
	pb := r.Data.Child("PERSISTENT_BOOT")
	if pb == nil {
		return nil, missing(op, "PERSISTENT_BOOT")
	}
	var out []bootDevice
	for _, d := range pb.All("DEVICE") {
		v, _ := d.Attr("VALUE")
		desc, _ := d.Attr("DESCRIPTION")
		out = append(out, bootDevice{v, desc})
	}
	return out, nil
}

// uefiDeviceType classifies a UEFI boot entry description.
func uefiDeviceType(desc string) string {
	switch {
	case strings.Contains(desc, "HP iLO Virtual USB CD") || strings.Contains(desc, "Virtual CD"):
		return iloapi.BootCDROM
	case strings.Contains(desc, "NIC") || strings.Contains(desc, "PXE") || strings.Contains(desc, "iSCSI"):
		return iloapi.BootNetwork
	case strings.Contains(desc, "Logical Drive") || strings.Contains(desc, "HDD") || strings.Contains(desc, "Storage") || strings.Contains(desc, "LogVol"):
		return iloapi.BootHDD
	}
	return ""
}

// GetPersistentBootDevice returns the first persistent boot device: the
// DEVICE value in legacy mode, the classified description in UEFI mode.
func (c *Client) GetPersistentBootDevice(ctx context.Context) (string, error) {
	const op = "get_persistent_boot_device"
	devs, err := c.persistentBoot(ctx, op)
	if err != nil {
		return "", err
	}
	if len(devs) == 0 {
		return "NONE", nil
	}
	first := devs[0]
	if first.description == "" {
		return strings.ToUpper(first.value), nil
	}
	if t := uefiDeviceType(first.description); t != "" {
		return t, nil
	}
	return "UNKNOWN", nil
}

// UpdatePersistentBoot reads GET_PERSISTENT_BOOT and sends
// SET_PERSISTENT_BOOT with the devices (Boot000X ids in UEFI mode).
func (c *Client) UpdatePersistentBoot(ctx context.Context, devices []string) error {
	const op = "update_persistent_boot"
	if len(devices) == 0 {
		return iloapi.Invalid(op, "give at least one boot device")
	}
	var want []string
	for _, d := range devices {
		v, err := validBootDevice(op, d)
		if err != nil {
			return err
		}
		want = append(want, v)
	}
	devs, err := c.persistentBoot(ctx, op)
	if err != nil {
		return err
	}
	uefi := len(devs) > 0 && devs[0].description != ""
	var values []string
	if !uefi {
		values = want
	} else {
		for _, w := range want {
			var ids []string
			if w == iloapi.BootNetwork {
				var pxe, nic, iscsi []string
				for _, d := range devs {
					switch {
					case strings.Contains(d.description, "PXE"):
						pxe = append(pxe, d.value)
					case strings.Contains(d.description, "NIC"):
						nic = append(nic, d.value)
					case strings.Contains(d.description, "iSCSI"):
						iscsi = append(iscsi, d.value)
					}
				}
				ids = append(append(pxe, nic...), iscsi...)
			} else {
				for _, d := range devs {
					if uefiDeviceType(d.description) == w {
						ids = append(ids, d.value)
						break
					}
				}
			}
			if len(ids) == 0 {
				return iloapi.Invalid(op, "%q is not configured as boot device on this system", w)
			}
			values = append(values, ids...)
		}
	}
	var children []string
	for _, v := range values {
		children = append(children, elem("DEVICE", []attr{{"VALUE", v}}))
	}
	_, err = c.Call(ctx, op, serverInfo, write, elem("SET_PERSISTENT_BOOT", nil, children...))
	return err
}

func (c *Client) bootMode(ctx context.Context, op, command string) (string, error) {
	r, err := c.Call(ctx, op, serverInfo, read, cmd(command))
	if err != nil {
		return "", err
	}
	bm := r.Data.Path(command, "BOOT_MODE")
	if bm == nil {
		return "", missing(op, command+"/BOOT_MODE")
	}
	return strings.ToUpper(strings.TrimSpace(bm.Value())), nil
}

// GetCurrentBootMode returns LEGACY or UEFI.
func (c *Client) GetCurrentBootMode(ctx context.Context) (string, error) {
	return c.bootMode(ctx, "get_current_boot_mode", "GET_CURRENT_BOOT_MODE")
}

// GetPendingBootMode returns LEGACY, UEFI or UNKNOWN.
func (c *Client) GetPendingBootMode(ctx context.Context) (string, error) {
	return c.bootMode(ctx, "get_pending_boot_mode", "GET_PENDING_BOOT_MODE")
}

// SetPendingBootMode sends SET_PENDING_BOOT_MODE value="LEGACY"|"UEFI".
func (c *Client) SetPendingBootMode(ctx context.Context, mode string) error {
	const op = "set_pending_boot_mode"
	m := strings.ToUpper(mode)
	if m != iloapi.BootModeLegacy && m != iloapi.BootModeUEFI {
		return iloapi.Invalid(op, "boot mode %q: give LEGACY or UEFI", mode)
	}
	_, err := c.Call(ctx, op, serverInfo, write, cmd("SET_PENDING_BOOT_MODE", attr{"value", m}))
	return err
}

// GetSupportedBootMode maps GET_SUPPORTED_BOOT_MODE to proliantutils' strings.
func (c *Client) GetSupportedBootMode(ctx context.Context) (string, error) {
	const op = "get_supported_boot_mode"
	r, err := c.Call(ctx, op, serverInfo, read, cmd("GET_SUPPORTED_BOOT_MODE"))
	if err != nil {
		return "", err
	}
	v := r.Data.Path("GET_SUPPORTED_BOOT_MODE", "SUPPORTED_BOOT_MODE").Value()
	return mapSupported(op, v)
}

func mapSupported(op, v string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "LEGACY_ONLY":
		return iloapi.SupportedLegacyOnly, nil
	case "UEFI_ONLY":
		return iloapi.SupportedUEFIOnly, nil
	case "LEGACY_UEFI":
		return iloapi.SupportedBoth, nil
	}
	return "", iloapi.Errorf(op, nil, "unknown SUPPORTED_BOOT_MODE %q", v)
}

// --- secure boot: not in RIBCL -----------------------------------------------

func notInRIBCL(op string) error {
	return iloapi.NotSupported(op, "the specified operation is not supported on current platform (RIBCL has no "+op+" command; it needs iLO 4 REST/Redfish, Gen9 or later)", nil)
}

// GetSecureBootMode is not supported over RIBCL.
func (c *Client) GetSecureBootMode(context.Context) (bool, error) {
	return false, notInRIBCL("get_secure_boot_mode")
}

// SetSecureBootMode is not supported over RIBCL.
func (c *Client) SetSecureBootMode(context.Context, bool) error {
	return notInRIBCL("set_secure_boot_mode")
}

// ResetSecureBootKeys is not supported over RIBCL.
func (c *Client) ResetSecureBootKeys(context.Context) error {
	return notInRIBCL("reset_secure_boot_keys")
}

// ClearSecureBootKeys is not supported over RIBCL.
func (c *Client) ClearSecureBootKeys(context.Context) error {
	return notInRIBCL("clear_secure_boot_keys")
}

// ResetBIOSToDefault is not supported over RIBCL.
func (c *Client) ResetBIOSToDefault(context.Context) error {
	return notInRIBCL("reset_bios_to_default")
}

// --- virtual media -----------------------------------------------------------

func vmDevice(op, device string) (string, error) {
	d := strings.ToUpper(device)
	if d != iloapi.DeviceFloppy && d != iloapi.DeviceCDROM {
		return "", iloapi.Invalid(op, "virtual media device %q: give FLOPPY or CDROM", device)
	}
	return d, nil
}

// GetVMStatus returns the GET_VM_STATUS attributes.
func (c *Client) GetVMStatus(ctx context.Context, device string) (iloapi.VMStatus, error) {
	const op = "get_vm_status"
	d, err := vmDevice(op, device)
	if err != nil {
		return iloapi.VMStatus{}, err
	}
	r, err := c.Call(ctx, op, ribInfo, read, cmd("GET_VM_STATUS", attr{"DEVICE", d}))
	if err != nil {
		return iloapi.VMStatus{}, err
	}
	e := r.Data.Child("GET_VM_STATUS")
	if e == nil {
		return iloapi.VMStatus{}, missing(op, "GET_VM_STATUS")
	}
	a := func(n string) string { v, _ := e.Attr(n); return v }
	return iloapi.VMStatus{
		VMApplet: a("VM_APPLET"), Device: a("DEVICE"), BootOption: a("BOOT_OPTION"),
		WriteProtect: a("WRITE_PROTECT"), ImageInserted: strings.ToUpper(a("IMAGE_INSERTED")), ImageURL: a("IMAGE_URL"),
	}, nil
}

// InsertVirtualMedia sends INSERT_VIRTUAL_MEDIA.
func (c *Client) InsertVirtualMedia(ctx context.Context, url, device string) error {
	const op = "insert_virtual_media"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	if url == "" {
		return iloapi.Invalid(op, "image URL is empty")
	}
	_, err = c.Call(ctx, op, ribInfo, write, cmd("INSERT_VIRTUAL_MEDIA", attr{"DEVICE", d}, attr{"IMAGE_URL", url}))
	return err
}

// EjectVirtualMedia ejects device when an image is inserted.
func (c *Client) EjectVirtualMedia(ctx context.Context, device string) error {
	const op = "eject_virtual_media"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	st, err := c.GetVMStatus(ctx, d)
	if err != nil {
		return err
	}
	if st.ImageInserted == "NO" {
		return nil
	}
	_, err = c.Call(ctx, op, ribInfo, write, cmd("EJECT_VIRTUAL_MEDIA", attr{"DEVICE", d}))
	return err
}

// SetVMStatus sends SET_VM_STATUS with VM_BOOT_OPTION and VM_WRITE_PROTECT.
func (c *Client) SetVMStatus(ctx context.Context, device, bootOption, writeProtect string) error {
	const op = "set_vm_status"
	d, err := vmDevice(op, device)
	if err != nil {
		return err
	}
	bo := strings.ToUpper(bootOption)
	switch bo {
	case "BOOT_ONCE", "BOOT_ALWAYS", "NO_BOOT", "CONNECT", "DISCONNECT":
	default:
		return iloapi.Invalid(op, "boot option %q: give BOOT_ONCE, BOOT_ALWAYS, NO_BOOT, CONNECT or DISCONNECT", bootOption)
	}
	wp := strings.ToUpper(writeProtect)
	if wp != "YES" && wp != "NO" {
		return iloapi.Invalid(op, "write protect %q: give YES or NO", writeProtect)
	}
	_, err = c.Call(ctx, op, ribInfo, write, elem("SET_VM_STATUS", []attr{{"DEVICE", d}},
		elem("VM_BOOT_OPTION", []attr{{"VALUE", bo}}), elem("VM_WRITE_PROTECT", []attr{{"VALUE", wp}})))
	return err
}

// --- iLO --------------------------------------------------------------------

// ResetILO sends RESET_RIB, then polls GET_PRODUCT_NAME until the iLO
// answers again (bounded by ctx and a deadline of client_timeout plus
// 120 s).
func (c *Client) ResetILO(ctx context.Context) error {
	const op = "reset_ilo"
	if _, err := c.Call(ctx, op, ribInfo, write, cmd("RESET_RIB")); err != nil {
		return err
	}
	return iloapi.WaitUntilUp(ctx, op, c.ResetSettle, c.ResetPollInterval, c.t.Options().Timeout+120*time.Second, func(ctx context.Context) error {
		_, err := c.GetProductName(ctx)
		return err
	})
}

// ResetILOCredential sends MOD_USER for the login user with a new password.
func (c *Client) ResetILOCredential(ctx context.Context, newPassword string) error {
	const op = "reset_ilo_credential"
	if newPassword == "" {
		return iloapi.Invalid(op, "new password is empty")
	}
	u := c.t.Options().Username
	_, err := c.Call(ctx, op, userInfo, write, elem("MOD_USER", []attr{{"USER_LOGIN", u}},
		elem("PASSWORD", []attr{{"VALUE", newPassword}})))
	return err
}

// GetAllLicenses reads GET_ALL_LICENSES/LICENSE[].
func (c *Client) GetAllLicenses(ctx context.Context) ([]iloapi.License, error) {
	const op = "get_all_licenses"
	r, err := c.Call(ctx, op, ribInfo, read, cmd("GET_ALL_LICENSES"))
	if err != nil {
		return nil, err
	}
	var out []iloapi.License
	for _, l := range r.Data.Path("GET_ALL_LICENSES").All("LICENSE") {
		out = append(out, iloapi.License{
			Type: l.Child("LICENSE_TYPE").Value(), Key: l.Child("LICENSE_KEY").Value(),
			InstallDate: l.Child("LICENSE_INSTALL_DATE").Value(), Class: l.Child("LICENSE_CLASS").Value(),
		})
	}
	return out, nil
}

// GetLicense reads GET_FW_VERSION: LICENSE_TYPE and MANAGEMENT_PROCESSOR
// ("iLO4") in one call.
func (c *Client) GetLicense(ctx context.Context) (iloapi.LicenseInfo, error) {
	const op = "get_license"
	r, err := c.Call(ctx, op, ribInfo, read, cmd("GET_FW_VERSION"))
	if err != nil {
		return iloapi.LicenseInfo{}, err
	}
	fw := r.Data.Path("GET_FW_VERSION")
	name, _ := fw.Attr("LICENSE_TYPE")
	proc, _ := fw.Attr("MANAGEMENT_PROCESSOR")
	if name == "" {
		return iloapi.LicenseInfo{}, missing(op, "GET_FW_VERSION/@LICENSE_TYPE")
	}
	return iloapi.LicenseInfo{Name: name, Tier: iloapi.ClassifyLicense(name), ILO: iloapi.ILOGeneration(proc)}, nil
}

// ActivateLicense sends LICENSE/ACTIVATE KEY.
func (c *Client) ActivateLicense(ctx context.Context, key string) error {
	const op = "activate_license"
	if key == "" {
		return iloapi.Invalid(op, "licence key is empty")
	}
	_, err := c.Call(ctx, op, ribInfo, write, elem("LICENSE", nil, elem("ACTIVATE", []attr{{"KEY", key}})))
	return err
}
