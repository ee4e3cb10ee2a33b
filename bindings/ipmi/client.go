package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	gclient "github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	gotypes "github.com/bougou/go-ipmi/pkg/types"
)

// Client talks to one BMC. Each call opens an RMCP+ session, runs the
// command and closes the session (as Ironic's one ipmitool process per
// command), retrying timeouts and busy answers until Options.RetryTimeout.
// A Client is safe for concurrent use: calls share nothing but the options.
type Client struct {
	opts Options
	// closeTimeout bounds the Close Session exchange after a call.
	closeTimeout time.Duration
}

// New returns a client for o. It does not contact the BMC.
func New(o Options) (*Client, error) {
	if o.Host == "" {
		return nil, &Error{Kind: KindInvalid, Op: "connect", Message: "no BMC address: set ipmi_address"}
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.PrivLevel == "" {
		o.PrivLevel = "ADMINISTRATOR"
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = DefaultRetryTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	return &Client{opts: o, closeTimeout: time.Second}, nil
}

// Options returns the client's options.
func (c *Client) Options() Options { return c.opts }

func privLevel(s string) gotypes.PrivilegeLevel {
	switch s {
	case "OPERATOR":
		return gotypes.PrivilegeLevelOperator
	case "USER":
		return gotypes.PrivilegeLevelUser
	case "CALLBACK":
		return gotypes.PrivilegeLevelCallback
	}
	return gotypes.PrivilegeLevelAdministrator
}

// session opens one RMCP+ session.
func (c *Client) session(ctx context.Context, op string) (*gclient.Client, error) {
	o := c.opts
	gc, err := gclient.NewClient(o.Host, o.Port, o.Username, o.Password)
	if err != nil {
		return nil, &Error{Kind: KindInvalid, Op: op, Address: o.Address(), Message: scrub(err.Error(), o.Password)}
	}
	gc.WithInterface(gclient.InterfaceLanplus)
	gc.WithTimeout(o.AttemptTimeout).WithRetry(0)
	gc.WithCipherSuiteID(gotypes.CipherSuiteID(o.CipherSuite))
	gc.WithMaxPrivilegeLevel(privLevel(o.PrivLevel))
	d := &countingDialer{}
	gc.WithUDPProxy(d)
	if err := gc.Connect(ctx); err != nil {
		// Release the socket without waiting on a BMC that did not answer.
		dead, cancel := context.WithCancel(context.Background())
		cancel()
		_ = gc.Close(dead)
		e := classify(ctx, op, o, true, err)
		if n := d.received.Load(); e.Kind == KindTimeout && n > 0 {
			// Something answered, but never with the IPMI response asked for.
			e.Kind = KindIPMIError
			e.Message = fmt.Sprintf("the peer answered %d datagram(s) that are not the IPMI responses asked for (is %s an IPMI BMC?): %s", n, o.Address(), e.Err)
		}
		return nil, e
	}
	return gc, nil
}

// countingDialer dials the BMC's UDP socket and counts the datagrams read,
// so a peer that answers garbage is told from one that does not answer.
type countingDialer struct{ received atomic.Int64 }

// Dial implements proxy.Dialer.
func (d *countingDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

// errSocketKept is what countingConn.Close reports after closing the
// socket, so that go-ipmi keeps the closed conn rather than its nil.
var errSocketKept = errors.New("ipmi: UDP socket closed (kept for go-ipmi's stragglers)")

// Close closes the socket and reports errSocketKept. go-ipmi (v0.9.1)
// sets its conn to nil after a successful Close, while the session's
// keepalive goroutine (a GetCurrentSessionInfo every 30 s, never
// cancelled) may have opened an exchange whose own goroutine has not yet
// taken the socket's lock: that goroutine then writes to a nil conn and
// crashes the process (seen once in a 10,000-node inspection with console
// capture). On an error go-ipmi keeps the conn, so such a straggler gets
// "use of closed network connection" and the keepalive stops at its next
// tick; closeSession ignores Close's error either way.
func (c *countingConn) Close() error {
	if err := c.Conn.Close(); err != nil {
		return err
	}
	return errSocketKept
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.d.received.Add(1)
	}
	return n, err
}

func (c *Client) closeSession(ctx context.Context, gc *gclient.Client) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.closeTimeout)
	defer cancel()
	if ctx.Err() != nil {
		cancel() // the run is over: drop the socket, do not wait for the BMC
	}
	_ = gc.Close(cctx)
}

// do runs fn in a fresh session, retrying timeouts and busy answers until
// RetryTimeout or ctx ends.
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context, gc *gclient.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RetryTimeout)
	defer cancel()
	var last *Error
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, op, fn)
		if err == nil {
			return nil
		}
		last = err
		again := err.Kind == KindTimeout || (err.HasCC && retryable(err.CC))
		if !again || ctx.Err() != nil {
			break
		}
		// A short pause before the next attempt (ipmitool's -N), bounded by ctx.
		t := time.NewTimer(time.Duration(min(attempt+1, 5)) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil && last.Kind != KindLoginFailed && !last.HasCC {
		if errors.Is(ctx.Err(), context.Canceled) {
			last.Kind = KindCancelled
		} else {
			last.Kind = KindTimeout
		}
	}
	return last
}

func (c *Client) once(ctx context.Context, op string, fn func(ctx context.Context, gc *gclient.Client) error) (e *Error) {
	defer func() {
		// A malformed answer must not crash the caller: go-ipmi decodes
		// what the BMC sent, and a panic there is the BMC's garbage.
		if r := recover(); r != nil {
			e = &Error{Kind: KindIPMIError, Op: op, Address: c.opts.Address(), Message: fmt.Sprintf("malformed answer from the BMC (%v)", r)}
		}
	}()
	gc, err := c.session(ctx, op)
	if err != nil {
		var ie *Error
		errors.As(err, &ie)
		return ie
	}
	defer c.closeSession(ctx, gc)
	if err := fn(ctx, gc); err != nil {
		return classify(ctx, op, c.opts, false, err)
	}
	return nil
}

// Power states and actions.
const (
	PowerOn  = "on"
	PowerOff = "off"
)

// PowerStatus returns "on" or "off".
func (c *Client) PowerStatus(ctx context.Context) (string, error) {
	st, err := c.ChassisStatus(ctx)
	if err != nil {
		return "", err
	}
	return st.Power, nil
}

// ChassisStatus is Get Chassis Status, decoded.
type ChassisStatus struct {
	Power              string `json:"power"` // on | off
	PowerRestorePolicy string `json:"power_restore_policy"`
	PowerFault         bool   `json:"power_fault"`
	PowerOverload      bool   `json:"power_overload"`
	Interlock          bool   `json:"interlock"`
	LastPowerOnCommand bool   `json:"last_power_on_by_command"`
	Intrusion          bool   `json:"intrusion"`
	FanFault           bool   `json:"fan_fault"`
	DriveFault         bool   `json:"drive_fault"`
	FrontPanelLockout  bool   `json:"front_panel_lockout"`
}

// ChassisStatus reads the chassis status.
func (c *Client) ChassisStatus(ctx context.Context) (ChassisStatus, error) {
	var out ChassisStatus
	err := c.do(ctx, "chassis_status", func(ctx context.Context, gc *gclient.Client) error {
		r, err := gc.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		out = ChassisStatus{Power: PowerOff, PowerRestorePolicy: r.PowerRestorePolicy.String(), PowerFault: r.PowerFault,
			PowerOverload: r.PowerOverload, Interlock: r.InterLock, LastPowerOnCommand: r.LastPowerOnByCommand,
			Intrusion: r.ChassisIntrusionActive, FanFault: r.CollingFanFault, DriveFault: r.DriveFault,
			FrontPanelLockout: r.FrontPanelLockoutActive}
		if r.PowerIsOn {
			out.Power = PowerOn
		}
		return nil
	})
	return out, err
}

// Power actions accepted by [Client.Power].
var powerActions = map[string]chassis.ChassisControl{
	"on":    chassis.ChassisControlPowerUp,
	"off":   chassis.ChassisControlPowerDown,
	"cycle": chassis.ChassisControlPowerCycle,
	"reset": chassis.ChassisControlHardReset,
	"soft":  chassis.ChassisControlSoftShutdown,
	"diag":  chassis.ChassisControlDiagnosticInterrupt,
}

// Power sends a chassis control: on, off, cycle, reset, soft (ACPI
// shutdown) or diag (NMI).
func (c *Client) Power(ctx context.Context, action string) error {
	ctl, ok := powerActions[strings.ToLower(action)]
	if !ok {
		return &Error{Kind: KindInvalid, Op: "power", Address: c.opts.Address(), Message: fmt.Sprintf("action %q: use on, off, cycle, reset, soft or diag", action)}
	}
	return c.do(ctx, "power_"+strings.ToLower(action), func(ctx context.Context, gc *gclient.Client) error {
		_, err := gc.ChassisControl(ctx, ctl)
		return err
	})
}

// Boot devices (ipmitool chassis bootdev names).
var bootDevices = map[string]gotypes.BootDeviceSelector{
	"none":   gotypes.BootDeviceSelectorNoOverride,
	"pxe":    gotypes.BootDeviceSelectorForcePXE,
	"disk":   gotypes.BootDeviceSelectorForceHardDrive,
	"safe":   gotypes.BootDeviceSelectorForceHardDriveSafe,
	"diag":   gotypes.BootDeviceSelectorForceDiagnosticPartition,
	"cdrom":  gotypes.BootDeviceSelectorForceCDROM,
	"bios":   gotypes.BootDeviceSelectorForceBIOSSetup,
	"floppy": gotypes.BootDeviceSelectorForceFloppy,
}

func bootDeviceName(s gotypes.BootDeviceSelector) string {
	for k, v := range bootDevices {
		if v == s {
			return k
		}
	}
	switch s {
	case gotypes.BootDeviceSelectorForceRemoteCDROM, gotypes.BootDeviceSelectorForceRemoteMedia:
		return "cdrom"
	case gotypes.BootDeviceSelectorForceRemoteHardDrive:
		return "disk"
	case gotypes.BootDeviceSelectorForceRemoteFloppy:
		return "floppy"
	}
	return fmt.Sprintf("0x%02x", uint8(s))
}

// BootDevice is the boot override (Get/Set System Boot Options parameter 5).
type BootDevice struct {
	Device     string `json:"device"` // none, pxe, disk, cdrom, bios, ...
	Persistent bool   `json:"persistent"`
	EFI        bool   `json:"efi"`
	Valid      bool   `json:"valid"`
}

// SetBootDevice sets the next boot (or every boot, persistent) to device,
// in EFI or legacy mode. Only parameter 5 is written (no set-in-progress,
// which some BMCs do not implement).
func (c *Client) SetBootDevice(ctx context.Context, b BootDevice) error {
	sel, ok := bootDevices[strings.ToLower(b.Device)]
	if !ok {
		return &Error{Kind: KindInvalid, Op: "set_boot_device", Address: c.opts.Address(), Message: fmt.Sprintf("device %q: use pxe, disk, cdrom, bios, safe, diag, floppy or none", b.Device)}
	}
	bt := gotypes.BIOSBootTypeLegacy
	if b.EFI {
		bt = gotypes.BIOSBootTypeEFI
	}
	return c.do(ctx, "set_boot_device", func(ctx context.Context, gc *gclient.Client) error {
		return gc.SetBootDevice(ctx, sel, bt, b.Persistent)
	})
}

// GetBootDevice reads the boot override.
func (c *Client) GetBootDevice(ctx context.Context) (BootDevice, error) {
	var out BootDevice
	err := c.do(ctx, "get_boot_device", func(ctx context.Context, gc *gclient.Client) error {
		r, err := gc.GetSystemBootOptionsParam(ctx, gotypes.BootOptionParamSelector_BootFlags, 0, 0)
		if err != nil {
			return err
		}
		f, err := decodeBootFlags(r.ParamData)
		if err != nil {
			return err
		}
		out = f
		return nil
	})
	return out, err
}

// decodeBootFlags decodes boot option parameter 5's data (5 bytes).
func decodeBootFlags(d []byte) (BootDevice, error) {
	if len(d) < 2 {
		return BootDevice{}, fmt.Errorf("boot flags parameter: %d bytes, want 5", len(d))
	}
	return BootDevice{
		Valid:      d[0]&0x80 != 0,
		Persistent: d[0]&0x40 != 0,
		EFI:        d[0]&0x20 != 0,
		Device:     bootDeviceName(gotypes.BootDeviceSelector((d[1] >> 2) & 0x0f)),
	}, nil
}

// BMCInfo is Get Device ID.
type BMCInfo struct {
	DeviceID         uint8  `json:"device_id"`
	DeviceRevision   uint8  `json:"device_revision"`
	FirmwareRevision string `json:"firmware_revision"`
	IPMIVersion      string `json:"ipmi_version"`
	ManufacturerID   uint32 `json:"manufacturer_id"`
	ProductID        uint16 `json:"product_id"`
	SEL              bool   `json:"sel"`
	SDR              bool   `json:"sdr"`
	FRU              bool   `json:"fru"`
	Chassis          bool   `json:"chassis"`
}

// BMCInfo reads Get Device ID.
func (c *Client) BMCInfo(ctx context.Context) (BMCInfo, error) {
	var out BMCInfo
	err := c.do(ctx, "bmc_info", func(ctx context.Context, gc *gclient.Client) error {
		r, err := gc.GetDeviceID(ctx)
		if err != nil {
			return err
		}
		out = BMCInfo{DeviceID: r.DeviceID, DeviceRevision: r.DeviceRevision,
			FirmwareRevision: fmt.Sprintf("%d.%02x", r.MajorFirmwareRevision, r.MinorFirmwareRevision),
			IPMIVersion:      fmt.Sprintf("%d.%d", r.MajorIPMIVersion, r.MinorIPMIVersion),
			ManufacturerID:   r.ManufacturerID, ProductID: r.ProductID,
			SEL: r.AdditionalDeviceSupport.SupportSEL, SDR: r.AdditionalDeviceSupport.SupportSDRRepo,
			FRU: r.AdditionalDeviceSupport.SupportFRUInventory, Chassis: r.AdditionalDeviceSupport.SupportChassis}
		return nil
	})
	return out, err
}
