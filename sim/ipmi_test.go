package sim_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// ipmitool runs Debian's ipmitool against a server's IPMI face.
func ipmitool(t *testing.T, srv *sim.Server, cipher string, args ...string) (string, error) {
	t.Helper()
	testenv.RequireTools(t, "ipmitool")
	bin, _ := exec.LookPath("ipmitool")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	full := append([]string{"-I", "lanplus", "-C", cipher, "-N", "1", "-R", "2", "-H", "127.0.0.1",
		"-p", fmt.Sprint(srv.IPMIPort()), "-U", srv.Username(), "-P", srv.Password()}, args...)
	out, err := exec.CommandContext(ctx, bin, full...).CombinedOutput()
	return string(out), err
}

func mustIPMItool(t *testing.T, srv *sim.Server, args ...string) string {
	t.Helper()
	out, err := ipmitool(t, srv, "17", args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestIPMItoolDrivesEveryGeneration is the acceptance test of the IPMI face:
// an independent client (ipmitool -I lanplus) drives power, boot device,
// sensors, FRU and SEL of every simulated generation, and what it does is
// seen through the server's shared state.
func TestIPMItoolDrivesEveryGeneration(t *testing.T) {
	s := simtest.Start(t, "gen8=1,gen9=1,gen10=1,gen11=1")
	for _, srv := range s.Servers() {
		t.Run(string(srv.Generation()), func(t *testing.T) {
			if srv.IPMIPort() == 0 {
				t.Fatal("no IPMI port")
			}
			srv.PowerOff()
			if out := mustIPMItool(t, srv, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is off") {
				t.Fatalf("power status: %q", out)
			}
			mustIPMItool(t, srv, "chassis", "power", "on")
			if st := srv.State(); st.Power != "ON" {
				t.Fatalf("after power on the server is %s", st.Power)
			}
			if out := mustIPMItool(t, srv, "chassis", "status"); !strings.Contains(out, "System Power         : on") {
				t.Fatalf("chassis status: %q", out)
			}

			mustIPMItool(t, srv, "chassis", "bootdev", "pxe")
			if st := srv.State(); st.OneTimeBoot != "NETWORK" {
				t.Fatalf("bootdev pxe: one-time boot %q", st.OneTimeBoot)
			}
			mustIPMItool(t, srv, "chassis", "bootdev", "cdrom", "options=persistent,efiboot")
			st := srv.State()
			if st.PersistentBoot[0] != "CDROM" || !st.ContinuousOverride {
				t.Fatalf("bootdev cdrom persistent: %+v", st.PersistentBoot)
			}
			out := mustIPMItool(t, srv, "chassis", "bootparam", "get", "5")
			if !strings.Contains(out, "Options apply to all future boots") || !strings.Contains(out, "CD/DVD") {
				t.Fatalf("bootparam get 5: %q", out)
			}

			sdrOn := mustIPMItool(t, srv, "sdr", "list")
			for _, want := range []string{"01-Inlet Ambient", "02-CPU 1", "Fan 1", "Power Meter"} {
				if !strings.Contains(sdrOn, want) {
					t.Fatalf("sdr list lacks %q:\n%s", want, sdrOn)
				}
			}
			fanRPM := regexp.MustCompile(`Fan 1\s*\|\s*(\d+) RPM`)
			if m := fanRPM.FindStringSubmatch(sdrOn); m == nil || m[1] == "0" {
				t.Fatalf("powered on, Fan 1 should spin:\n%s", sdrOn)
			}
			mustIPMItool(t, srv, "chassis", "power", "off")
			sdrOff := mustIPMItool(t, srv, "sdr", "list")
			if m := fanRPM.FindStringSubmatch(sdrOff); m == nil || m[1] != "0" {
				t.Fatalf("powered off, Fan 1 should stand still:\n%s", sdrOff)
			}
			if out := mustIPMItool(t, srv, "sensor", "get", "02-CPU 1"); !strings.Contains(out, "Upper Critical        : 70.000") {
				t.Fatalf("sensor get: %q", out)
			}

			fru := mustIPMItool(t, srv, "fru", "print")
			if !strings.Contains(fru, srv.Hardware().Model) || !strings.Contains(fru, "Product Name          : HP Ethernet 1Gb 4-port 331FLR Adapter") {
				t.Fatalf("fru print:\n%s", fru)
			}

			sel := mustIPMItool(t, srv, "sel", "list")
			if !strings.Contains(sel, "Power off/down") || !strings.Contains(sel, "Initiated by power up") {
				t.Fatalf("sel list after power on/off:\n%s", sel)
			}
			mustIPMItool(t, srv, "sel", "clear")
			if sel := mustIPMItool(t, srv, "sel", "list"); strings.Contains(sel, "Power off/down") || !strings.Contains(sel, "Log area reset/cleared") {
				t.Fatalf("sel list after clear:\n%s", sel)
			}
			if out := mustIPMItool(t, srv, "mc", "info"); !strings.Contains(out, "IPMI Version              : 2.0") {
				t.Fatalf("mc info: %q", out)
			}
		})
	}
}

// TestIPMItoolCipherSuite3AndWrongPassword: cipher suite 3 works as well as
// 17, and a wrong password is refused.
func TestIPMItoolCipherSuite3AndWrongPassword(t *testing.T) {
	_, srv := simtest.ILO(t, 10)
	if out, err := ipmitool(t, srv, "3", "chassis", "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is") {
		t.Fatalf("cipher suite 3: %v %q", err, out)
	}
	bin, _ := exec.LookPath("ipmitool")
	out, err := exec.Command(bin, "-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "-H", "127.0.0.1",
		"-p", fmt.Sprint(srv.IPMIPort()), "-U", srv.Username(), "-P", "wrong-password", "chassis", "power", "status").CombinedOutput()
	if err == nil {
		t.Fatalf("a wrong password was let in: %s", out)
	}
}

// TestIPMIPowerEventsFromOtherFaces: a power change made outside IPMI (the
// RIBCL/Redfish faces share the state) shows in the IPMI power status and SEL.
func TestIPMIPowerEventsFromOtherFaces(t *testing.T) {
	s, srv := simtest.ILO(t, 9)
	srv.PowerOn()
	if out := mustIPMItool(t, srv, "power", "status"); !strings.Contains(out, "is on") {
		t.Fatalf("%q", out)
	}
	if err := s.PowerOff(srv.Name()); err != nil {
		t.Fatal(err)
	}
	if out := mustIPMItool(t, srv, "power", "status"); !strings.Contains(out, "is off") {
		t.Fatalf("%q", out)
	}
	if sel := mustIPMItool(t, srv, "sel", "elist"); !strings.Contains(sel, "Power off/down") {
		t.Fatalf("sel:\n%s", sel)
	}
	inv := s.Inventory()[0].DriverInfo
	if inv["ipmi_address"] != "127.0.0.1" || inv["ipmi_port"] != srv.IPMIPort() {
		t.Fatalf("inventory: %v", inv)
	}
}

func waitFor(t *testing.T, what string, out *testenv.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not seen in:\n%s", what, want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIPMItoolSOL: `ipmitool sol activate` attaches to the simulated
// server's serial console: the POST banner of its boot, the echo of what is
// typed and the answer, and ~. leaves.
func TestIPMItoolSOL(t *testing.T) {
	testenv.RequireTools(t, "ipmitool")
	_, srv := simtest.ILO(t, 10)
	srv.PowerOff()
	srv.PowerOn()
	srv.ConsoleWrite([]byte("ironic-python-agent: starting\r\n"))
	bin, _ := exec.LookPath("ipmitool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-I", "lanplus", "-C", "17", "-H", "127.0.0.1", "-p", fmt.Sprint(srv.IPMIPort()),
		"-U", srv.Username(), "-P", srv.Password(), "sol", "activate")
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "activation", out, "SOL Session operational")
	waitFor(t, "POST banner", out, srv.Hardware().Model+" System ROM")
	waitFor(t, "ramdisk log", out, "ironic-python-agent: starting")
	in.Write([]byte("root\r"))
	waitFor(t, "answer", out, "you typed: root")
	in.Write([]byte("\r~."))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ipmitool sol activate: %v\n%s", err, out.String())
	}
}

// TestIPMIPortSurvivesRestart: with a StateDir the IPMI port stays the same
// across restarts, as the HTTPS port does, so imported nodes keep working.
func TestIPMIPortSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *sim.Sim {
		s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, StateDir: dir, DiskSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	port := s.Server(0).IPMIPort()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Close()
	if got := s.Server(0).IPMIPort(); got != port {
		t.Fatalf("IPMI port %d after restart, was %d", got, port)
	}
	if out := mustIPMItool(t, s.Server(0), "power", "status"); !strings.Contains(out, "Chassis Power is") {
		t.Fatalf("%q", out)
	}
}
