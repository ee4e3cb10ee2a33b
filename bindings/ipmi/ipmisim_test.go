package ipmi_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gotypes "github.com/bougou/go-ipmi/pkg/types"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// ipmiSim is OpenIPMI's ipmi_sim run by a test on 127.0.0.1 (see
// /work/shared/reference/real-swift-and-ipmi.md, section B): power and boot
// device go through a chassis-control hook that keeps them in files.
type ipmiSim struct {
	dir  string
	port int
}

func (s *ipmiSim) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name))
	return strings.TrimSpace(string(b))
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

const ipmiSimHook = `#!/bin/sh
D="$(dirname "$0")"
echo "$*" >>"$D/chassis.log"
mc="$1"; op="$2"; shift 2
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
      power) echo "power:$(cat "$D/power")" ;;
      boot)  echo "boot:$(cat "$D/boot")" ;;
      *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done ;;
set)
  while [ $# -ge 2 ]; do
    p="$1"; v="$2"; shift 2
    case "$p" in
      power) echo "$v" >"$D/power" ;;
      reset) : ;;
      boot) echo "$v" >"$D/boot" ;;
      shutdown) echo 0 >"$D/power" ;;
      identify) : ;;
      *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done ;;
*) exit 1 ;;
esac
exit 0
`

func sdrSensor(num int, entity, typ, unit string, m int, name string) string {
	return fmt.Sprintf(`
sdr type 1
	sensor_owner_id 0x20
	sensor_owner_lun 0
	channel_number 0
	sensor_number %d
	entity_id %s
	entity_instance 1
	sensor_type %s
	init_scanning true
	init_sensor_type true
	default_sensor_scan_on true
	event_reading_type_code 1
	analog_data_format unsigned
	rate_unit none
	modifier_unit none
	percentage false
	base_unit %s
	modifier_unit_code unspecified
	linearization linear
	m %d
	tolerance 0
	b 0
	accuracy 1
	accuracy_exp 0
	sensor_direction input
	r_exp 0
	b_exp 0
	sensor_maximum 255
	sensor_minimum 0
	id_string "%s"
endsdr
`, num, entity, typ, unit, m, name)
}

// startIPMISim writes ipmi_sim's configuration into a temporary directory,
// starts it and stops it when the test ends.
func startIPMISim(t *testing.T) *ipmiSim {
	t.Helper()
	testenv.RequireTools(t, "ipmi_sim", "sdrcomp")
	dir := t.TempDir()
	s := &ipmiSim{dir: dir, port: freeUDPPort(t)}
	w := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	w("power", "0\n", 0o644)
	w("boot", "default\n", 0o644)
	w("fan1.rpm", "3000\n", 0o644)
	w("chassiscontrol", ipmiSimHook, 0o755)
	w("lan.conf", fmt.Sprintf(`name "ipmisim"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
  user 1 true  ""      ""         user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
`, s.port, filepath.Join(dir, "chassiscontrol")), 0o644)
	sdrs := `
sdr type 18
	device_slave_address 0x20
	device_channel_number 0
	chassis true
	ipmb_event_gen false
	ipmb_event_recv false
	fru_inventory true
	sel true
	sdr true
	sensor true
	entity_id system_board
	entity_instance 1
	id_string "ipmi-sim BMC"
endsdr
` + sdrSensor(1, "system_board", "Temperature", "degrees_C", 1, "Inlet Temp") +
		sdrSensor(2, "system_board", "Temperature", "degrees_C", 1, "CPU 1 Temp") +
		sdrSensor(3, "fan_cooling_device", "Fan", "RPM", 50, "Fan 1")
	w("sim.sdrs", sdrs, 0o644)
	state := filepath.Join(dir, "state", "ipmi_sim", "ipmisim")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sdrcomp", "-o", filepath.Join(state, "sdr.20.main"), filepath.Join(dir, "sim.sdrs")).CombinedOutput(); err != nil {
		t.Fatalf("sdrcomp: %v\n%s", err, out)
	}
	fru, err := gotypes.PackFRU(gotypes.FRUPackConfig{
		Board:   &gotypes.FRUPackBoard{Mfg: "HPE", Product: "ProLiant DL360 Gen10 (sim)", Serial: "SIMSERIAL0001", PartNumber: "P00000-001"},
		Product: &gotypes.FRUPackProduct{Manufacturer: "HPE", Name: "ProLiant DL360 Gen10", PartModel: "867959-B21", Version: "1", Serial: "SIMSERIAL0001"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w("fru0.bin", string(fru), 0o644)
	w("sim.emu", fmt.Sprintf(`mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_add_fru_data 0x20 0 %d file 0 "%s"
sensor_add 0x20 0 1 0x01 0x01
sensor_set_value 0x20 0 1 28 0
sensor_set_threshold 0x20 0 1 settable 111000 90 80 70 0 0 0
sensor_add 0x20 0 2 0x01 0x01
sensor_set_value 0x20 0 2 45 0
sensor_add 0x20 0 3 0x04 0x01 poll 1000 file "%s" div=50
mc_enable 0x20
`, len(fru), filepath.Join(dir, "fru0.bin"), filepath.Join(dir, "fan1.rpm")), 0o644)

	var out bytes.Buffer
	cmd := exec.Command("ipmi_sim", "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "sim.emu"), "-s", filepath.Join(dir, "state"), "-n")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // only the process this test started
		<-exited
	})
	// Ready when a session works (poll with a deadline).
	c := s.client(t, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.PowerStatus(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case e := <-exited:
			t.Fatalf("ipmi_sim exited: %v\n%s", e, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim not ready: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func (s *ipmiSim) client(t *testing.T, edit func(*ipmi.Options)) *ipmi.Client {
	// ipmi_sim offers no suite 17 and ignores Get Channel Cipher Suites: pin 3.
	o, err := ipmi.ParseDriverInfo(map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": s.port,
		"ipmi_username": "admin", "ipmi_password": "password", "ipmi_cipher_suite": 3, "ipmi_retry_timeout": 5})
	if err != nil {
		t.Fatal(err)
	}
	o.AttemptTimeout = 500 * time.Millisecond
	if edit != nil {
		edit(&o)
	}
	c, err := ipmi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientDrivesIPMISim drives OpenIPMI's ipmi_sim, an independent BMC:
// power, boot device, sensors, FRU, SEL, BMC info, and a wrong password.
func TestClientDrivesIPMISim(t *testing.T) {
	s := startIPMISim(t)
	c := s.client(t, nil)
	ctx := ctxT(t, 60*time.Second)

	must(t, c.Power(ctx, "on"))
	if s.file("power") != "1" {
		t.Fatalf("power file %q after power on", s.file("power"))
	}
	if p, err := c.PowerStatus(ctx); err != nil || p != "on" {
		t.Fatalf("power status %q %v", p, err)
	}
	must(t, c.Power(ctx, "off"))
	if p, _ := c.PowerStatus(ctx); p != "off" || s.file("power") != "0" {
		t.Fatalf("after power off: %q, file %q", p, s.file("power"))
	}
	must(t, c.Power(ctx, "cycle")) // ipmi_sim: off, then on after about 1 s
	deadline := time.Now().Add(5 * time.Second)
	for s.file("power") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("power cycle never powered on")
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, c.Power(ctx, "soft"))
	if s.file("power") != "0" {
		t.Fatal("soft off did not reach the hook")
	}

	for dev, want := range map[string]string{"pxe": "pxe", "cdrom": "cdrom", "bios": "bios", "disk": "default"} {
		must(t, c.SetBootDevice(ctx, ipmi.BootDevice{Device: dev, EFI: true, Persistent: true}))
		if got := s.file("boot"); got != want {
			t.Fatalf("boot device %s: hook got %q", dev, got)
		}
		// ipmi_sim drops the valid/persistent/EFI bits but keeps the device.
		if b, err := c.GetBootDevice(ctx); err != nil || b.Device != dev {
			t.Fatalf("get boot device after %s: %+v %v", dev, b, err)
		}
	}

	ss, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ipmi.Sensor{}
	for _, x := range ss {
		got[x.Name] = x
	}
	if x := got["Inlet Temp"]; x.Reading != 28 || x.Unit != "degrees C" || x.Thresholds["unc"] != 70 || x.Thresholds["ucr"] != 80 {
		t.Fatalf("Inlet Temp: %+v (all: %+v)", x, ss)
	}
	if x := got["Fan 1"]; x.Reading != 3000 || x.Unit != "RPM" {
		t.Fatalf("Fan 1: %+v", x)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "fan1.rpm"), []byte("9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		ss, err := c.Sensors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fan := 0.0
		for _, x := range ss {
			if x.Name == "Fan 1" {
				fan = x.Reading
			}
		}
		if fan == 9000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Fan 1 reads %v, want 9000", fan)
		}
		time.Sleep(100 * time.Millisecond)
	}

	frus, err := c.FRUs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(frus) == 0 || frus[0].Prod.Name != "ProLiant DL360 Gen10" || frus[0].Board.Serial != "SIMSERIAL0001" {
		t.Fatalf("frus: %+v", frus)
	}
	if _, err := c.SEL(ctx); err != nil {
		t.Fatalf("sel: %v", err)
	}
	info, err := c.BMCInfo(ctx)
	if err != nil || info.ManufacturerID != 0x1291 || info.ProductID != 0xf02 {
		t.Fatalf("bmc info: %+v %v", info, err)
	}

	bad := s.client(t, func(o *ipmi.Options) { o.Password = "not-the-password" })
	if _, err := bad.PowerStatus(ctx); kindOf(err) != ipmi.KindLoginFailed || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("wrong password: %v", err)
	}
}
