package ipmi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

func simClient(t *testing.T, s *sim.Sim, i int, edit func(*ipmi.Options)) *ipmi.Client {
	t.Helper()
	o, err := ipmi.ParseDriverInfo(simtest.DriverInfo(s, i))
	if err != nil {
		t.Fatal(err)
	}
	o.RetryTimeout = 5 * time.Second
	o.AttemptTimeout = time.Second
	if edit != nil {
		edit(&o)
	}
	c, err := ipmi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestClientDrivesSimulator drives every operation against the simulator's
// IPMI face and checks the server's shared state.
func TestClientDrivesSimulator(t *testing.T) {
	s := simtest.Start(t, "gen9=1,gen10=1")
	for i, srv := range s.Servers() {
		t.Run(string(srv.Generation()), func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			c := simClient(t, s, i, nil)
			if c.Options().CipherSuite != 17 || c.Options().Port != srv.IPMIPort() {
				t.Fatalf("options from the inventory: %v", c.Options())
			}
			srv.PowerOff()
			if p, err := c.PowerStatus(ctx); err != nil || p != "off" {
				t.Fatalf("power status: %q %v", p, err)
			}
			must(t, c.Power(ctx, "on"))
			if srv.State().Power != "ON" {
				t.Fatal("power on did not reach the server")
			}
			boots := srv.State().BootCount
			must(t, c.Power(ctx, "reset"))
			if srv.State().BootCount != boots+1 {
				t.Fatal("reset did not reboot")
			}
			must(t, c.Power(ctx, "soft"))
			if srv.State().Power != "OFF" {
				t.Fatal("soft off did not power off")
			}
			must(t, c.Power(ctx, "cycle"))
			if st, err := c.ChassisStatus(ctx); err != nil || st.Power != "on" {
				t.Fatalf("chassis status after cycle: %+v %v", st, err)
			}

			must(t, c.SetBootDevice(ctx, ipmi.BootDevice{Device: "pxe"}))
			if st := srv.State(); st.OneTimeBoot != "NETWORK" {
				t.Fatalf("one-time boot %q", st.OneTimeBoot)
			}
			if b, err := c.GetBootDevice(ctx); err != nil || b.Device != "pxe" || b.Persistent || !b.Valid {
				t.Fatalf("get boot device: %+v %v", b, err)
			}
			must(t, c.SetBootDevice(ctx, ipmi.BootDevice{Device: "cdrom", Persistent: true, EFI: true}))
			b, err := c.GetBootDevice(ctx)
			if err != nil || b.Device != "cdrom" || !b.Persistent || !b.EFI {
				t.Fatalf("get boot device: %+v %v", b, err)
			}
			if st := srv.State(); st.PersistentBoot[0] != "CDROM" || st.PendingBootMode != "UEFI" {
				t.Fatalf("persistent boot %v pending mode %q", st.PersistentBoot, st.PendingBootMode)
			}

			fan := func() (float64, ipmi.Sensor) {
				ss, err := c.Sensors(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var cpu ipmi.Sensor
				fan := -1.0
				for _, s := range ss {
					if s.Name == "Fan 1" {
						fan = s.Reading
						if s.Unit != "RPM" {
							t.Errorf("fan unit %q", s.Unit)
						}
					}
					if s.Name == "02-CPU 1" {
						cpu = s
					}
				}
				return fan, cpu
			}
			on, cpu := fan()
			if on <= 0 || !cpu.Available || cpu.Unit != "degrees C" || cpu.Thresholds["ucr"] != 70 || cpu.Status != "ok" {
				t.Fatalf("powered on: fan %v, cpu %+v", on, cpu)
			}
			must(t, c.Power(ctx, "off"))
			if off, _ := fan(); off != 0 {
				t.Fatalf("powered off, the fan reads %v", off)
			}

			frus, err := c.FRUs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(frus) < 2 || frus[0].Prod.Name != srv.Hardware().Model {
				t.Fatalf("frus: %+v", frus)
			}
			if got := ipmi.NICCapacity(frus); got != "1Gb" {
				t.Fatalf("nic capacity %q from %+v", got, frus)
			}

			sel, err := c.SEL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var events []string
			for _, e := range sel {
				events = append(events, e.Event)
			}
			joined := strings.Join(events, "|")
			if !strings.Contains(joined, "Power off/down") || !strings.Contains(joined, "Initiated by power up") || !strings.Contains(joined, "Initiated by hard reset") {
				t.Fatalf("SEL: %v", events)
			}
			must(t, c.ClearSEL(ctx))
			if sel, err := c.SEL(ctx); err != nil || len(sel) != 1 || sel[0].Event != "Log area reset/cleared" {
				t.Fatalf("SEL after clear: %+v %v", sel, err)
			}
			info, err := c.BMCInfo(ctx)
			if err != nil || info.IPMIVersion != "2.0" || !info.SEL || !info.FRU || info.ManufacturerID != 11 {
				t.Fatalf("bmc info: %+v %v", info, err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func kindOf(err error) ipmi.Kind {
	var e *ipmi.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// waitGoroutines polls until the goroutine count is back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines left behind: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBadInput: wrong password, wrong cipher suite, unreachable port and a
// BMC that answers garbage each give a clear error with its kind, within the
// bounded context, without the password, and leave no goroutine behind.
func TestBadInput(t *testing.T) {
	s := simtest.Start(t, "gen10=1")
	// One good call first: the simulator's serving goroutines are all up then.
	if _, err := simClient(t, s, 0, nil).PowerStatus(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()

	// A UDP "BMC" that answers every datagram with garbage.
	garbage, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	garbageDone := make(chan struct{})
	go func() {
		defer close(garbageDone)
		buf := make([]byte, 2048)
		for {
			n, addr, err := garbage.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := []byte{0x06, 0x00, 0xff, 0x07, 0x06, 0x11, 0xde, 0xad, 0xbe, 0xef}
			reply = append(reply, buf[:min(n, 8)]...)
			_, _ = garbage.WriteTo(reply, addr)
		}
	}()
	// A UDP port nobody answers on.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "S3cret-pw-42"
	cases := []struct {
		name  string
		edit  func(*ipmi.Options)
		kind  ipmi.Kind
		bound time.Duration
	}{
		{"wrong password", func(o *ipmi.Options) { o.Password = secret }, ipmi.KindLoginFailed, 3 * time.Second},
		{"wrong user", func(o *ipmi.Options) { o.Username = "nobody"; o.Password = secret }, ipmi.KindLoginFailed, 3 * time.Second},
		{"wrong cipher suite", func(o *ipmi.Options) { o.CipherSuite = 1; o.Password = secret }, ipmi.KindIPMIError, 3 * time.Second},
		{"unreachable port", func(o *ipmi.Options) {
			o.Port = silent.LocalAddr().(*net.UDPAddr).Port
			o.Password = secret
		}, ipmi.KindTimeout, 0},
		{"garbage answers", func(o *ipmi.Options) {
			o.Port = garbage.LocalAddr().(*net.UDPAddr).Port
			o.Password = secret
		}, ipmi.KindIPMIError, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := simClient(t, s, 0, tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.PowerStatus(ctx)
			took := time.Since(start)
			if err == nil {
				t.Fatal("no error")
			}
			if kindOf(err) != tc.kind {
				t.Fatalf("kind %q, want %q: %v", kindOf(err), tc.kind, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the password is in the error: %v", err)
			}
			if took > 3*time.Second {
				t.Fatalf("took %v, beyond the 1.5 s context", took)
			}
			t.Logf("%v (%v)", err, took.Round(time.Millisecond))
		})
	}
	garbage.Close()
	silent.Close()
	<-garbageDone
	waitGoroutines(t, base)
}

// TestConsoleOverSOL: the console shows the server's serial output, echoes
// what is typed and ends on ~. at the start of a line.
func TestConsoleOverSOL(t *testing.T) {
	s := simtest.Start(t, "gen10=1")
	srv := s.Server(0)
	srv.ConsoleWrite([]byte("IPA: heartbeat ok\r\n"))
	c := simClient(t, s, 0, nil)
	inR, inW := io.Pipe()
	out := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- c.Console(ctxT(t, 30*time.Second), inR, out) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%q not seen in %q", want, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("IPA: heartbeat ok")
	inW.Write([]byte("hello\r"))
	wait("you typed: hello")
	inW.Write([]byte("~."))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("~. did not leave the console")
	}
	inW.Close()
}
