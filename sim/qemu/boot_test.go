package qemu_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/qemu"
)

// The boot tests run the test "deploy ramdisk" of the media tests
// (testdata/tools/media-build-ramdisk.sh: Debian's kernel + a busybox /init
// that prints RAMDISK-FIRMWARE uefi|bios, reads parameters.txt from the
// floppy, prints DEPLOY-RAMDISK-OK and powers off) in qemu VMs (TCG) behind
// simulated iLOs, driven through the iLOs' own APIs.

const marker = "DEPLOY-RAMDISK-OK"

// testMedia builds the hybrid ISO and a floppy with params, in dir; a
// non-empty initOverride replaces the ramdisk's /init (and the ISO is
// BIOS-only).
func testMedia(t *testing.T, dir string, params map[string]string, initOverride string) (iso, floppy string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := qemutest.BuildScript(t, "media-build-ramdisk.sh", "qemu-media", "KERNEL INITRD")
	initrd := f[1]
	if initOverride != "" {
		initrd = appendInit(t, dir, f[1], initOverride)
	}
	iso, floppy = filepath.Join(dir, "boot.iso"), filepath.Join(dir, "params.img")
	if err := image.WriteISO(ctx, iso, image.ISOOptions{Kernel: f[0], Ramdisk: initrd,
		Append: "console=ttyS0,115200n8 panic=-1", BIOSOnly: initOverride != ""}); err != nil {
		t.Fatal(err)
	}
	if err := image.WriteFloppy(ctx, floppy, params, image.FloppyOptions{}); err != nil {
		t.Fatal(err)
	}
	return iso, floppy
}

// appendInit returns a copy of initrd with a second (newc) archive
// appended whose /init replaces the first one's.
func appendInit(t *testing.T, dir, initrd, script string) string {
	t.Helper()
	root := filepath.Join(dir, "init-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("busybox", "cpio", "-o", "-H", "newc")
	cmd.Dir, cmd.Stdin = root, strings.NewReader("init\n")
	extra, err := cmd.Output()
	if err != nil {
		t.Fatalf("busybox cpio: %v", err)
	}
	orig, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	// the kernel unpacks a compressed archive after a compressed one, not a raw one
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(extra)
	zw.Close()
	out := filepath.Join(dir, "initrd-override.img")
	if err := os.WriteFile(out, append(orig, z.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ilo talks to one simulated iLO over HTTPS (plain HTTP client trusting the
// simulator's CA, basic authentication).
type ilo struct {
	t   *testing.T
	srv *sim.Server
	c   *http.Client
}

func newILO(t *testing.T, s *sim.Sim, srv *sim.Server) *ilo {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	return &ilo{t: t, srv: srv, c: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (i *ilo) do(method, path, body string) string {
	i.t.Helper()
	req, err := http.NewRequest(method, i.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		i.t.Fatal(err)
	}
	req.SetBasicAuth(i.srv.Username(), i.srv.Password())
	if strings.HasPrefix(path, "/redfish") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := i.c.Do(req)
	if err != nil {
		i.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		i.t.Fatalf("%s %s: %s\n%s", method, path, resp.Status, b.String())
	}
	return b.String()
}

// ribcl sends one RIBCL document with the given SERVER_INFO/RIB_INFO blocks.
func (i *ilo) ribcl(blocks string) {
	i.t.Helper()
	doc := fmt.Sprintf(`<?xml version="1.0"?><RIBCL VERSION="2.0"><LOGIN USER_LOGIN="%s" PASSWORD="%s">%s</LOGIN></RIBCL>`,
		i.srv.Username(), i.srv.Password(), blocks)
	out := i.do(http.MethodPost, "/ribcl", doc)
	if strings.Count(out, `STATUS="0x0000"`) != strings.Count(out, "STATUS=") {
		i.t.Fatalf("RIBCL error:\n%s", out)
	}
}

// waitConsole waits for the marker on the server's console (the stream SOL
// carries is fed from the same bytes).
func waitConsole(t *testing.T, b *qemu.Backend, server, want string, d time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := b.WaitConsole(ctx, server, want)
	if err != nil {
		t.Fatalf("%s: no %q on the console within %s: %v\nconsole:\n%s", server, want, d, err, tail(out))
	}
	return out
}

// keyLines are the console lines the tests look at, for -v logs.
func keyLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "RAMDISK-") || strings.Contains(l, "DEPLOY-") || strings.Contains(l, "Access Denied") ||
			strings.Contains(l, "lightsout-sim") || strings.Contains(l, "BdsDxe") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string) string {
	if len(s) > 6000 {
		return "...\n" + s[len(s)-6000:]
	}
	return s
}

// waitOff waits until the server is off and its VM has exited.
func waitOff(t *testing.T, b *qemu.Backend, srv *sim.Server, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for srv.State().Power != "OFF" || b.Running(srv.Name()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: power %s, VM running %v after %s\nconsole:\n%s", srv.Name(), srv.State().Power,
				b.Running(srv.Name()), d, tail(b.Console(srv.Name())))
		}
		<-tick.C
	}
}

// solSees attaches `ipmitool sol activate` to the server and waits for want.
func solSees(t *testing.T, srv *sim.Server, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-C", "17", "-H", "127.0.0.1", "-p", fmt.Sprint(srv.IPMIPort()),
		"-U", srv.Username(), "-P", srv.Password(), "sol", "activate")
	out := &syncBuffer{changed: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.changed:
		case <-ctx.Done():
			t.Fatalf("ipmitool sol activate: no %q:\n%s", want, tail(out.String()))
		}
	}
	in.Write([]byte("\r~."))
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or d passed.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		<-tick.C
	}
}

// qemuPIDs lists the processes whose command line mentions dir (the
// backend's directory: only its VMs).
func qemuPIDs(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(dir)) && bytes.Contains(b, []byte("qemu-system")) {
			out = append(out, e.Name())
		}
	}
	return out
}

func qemuIO(t *testing.T, disk, cmd string) string {
	t.Helper()
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", cmd, disk).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// TestQemuBoot boots a Gen10 in UEFI (media inserted and one-time CD boot
// through Redfish) and a Gen8 in legacy BIOS mode (through RIBCL) into the
// test ramdisk, in parallel; checks firmware, floppy and guest power off;
// that the Gen10's qcow2 disk persists across a power cycle; that secure
// boot runs the secure-boot firmware (and refuses the unsigned GRUB of the
// test ISO); that ipmitool sees power and console; and that Close leaves
// no qemu process.
func TestQemuBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("qemu boots take a minute or two under TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "qemu-img", "qemu-io", "xorriso", "grub-mkstandalone",
		"apt-get", "dpkg-deb", "busybox")
	testenv.RequireFiles(t, "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
		"/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
	dir := t.TempDir()
	params := map[string]string{"lightsout_nonce": nonce()}
	testMedia(t, dir, params, "") // boot.iso, params.img

	// the media server on the host's loopback; the URLs name it as the VM
	// would (10.0.2.2): the backend and the iLO's URL check reach it on 127.0.0.1
	hs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer hs.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hs.URL, "http://"))
	base := "http://10.0.2.2:" + port

	qdir := filepath.Join(dir, "qemu")
	b, err := qemu.New(qemu.Options{Dir: qdir, Accel: "tcg", Memory: 512, DiskSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	opts := sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 1}},
		DiskSize: 1 << 20}
	b.Attach(&opts)
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.UseSim(s)
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			s.Close()
			b.Close()
		}
	}
	defer closeAll()

	// the inventory carries the agent's advertised address for each node
	for _, n := range s.Inventory() {
		want := fmt.Sprintf("console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port=%d", b.AgentPort(n.Name))
		if kap, _ := n.DriverInfo["kernel_append_params"].(string); b.AgentPort(n.Name) == 0 || !strings.Contains(kap, want) {
			t.Errorf("%s: driver_info.kernel_append_params %q, want it to contain %q", n.Name, kap, want)
		}
	}

	gen8, _ := s.ServerByName("gen8-0")
	gen10, _ := s.ServerByName("gen10-0")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // Gen10, UEFI, Redfish
		defer wg.Done()
		t.Run("gen10-uefi-redfish", func(t *testing.T) {
			i := newILO(t, s, gen10)
			i.do("POST", "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia/", `{"Image":"`+base+`/boot.iso"}`)
			i.do("POST", "/redfish/v1/Managers/1/VirtualMedia/1/Actions/VirtualMedia.InsertMedia/", `{"Image":"`+base+`/params.img"}`)
			i.do("PATCH", "/redfish/v1/Systems/1/", `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`)
			i.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"On"}`)
			out := waitConsole(t, b, "gen10-0", marker, 4*time.Minute)
			for _, w := range []string{"RAMDISK-FIRMWARE uefi", "lightsout_nonce=" + params["lightsout_nonce"], "RAMDISK-FAT-LABEL ir-vfd-dev"} {
				if !strings.Contains(out, w) {
					t.Errorf("console lacks %q:\n%s", w, tail(out))
				}
			}
			waitOff(t, b, gen10, time.Minute) // the ramdisk powers off: so does the iLO's server
			gen10HW := gen10.Hardware()
			cmd := strings.Join(b.LastCommand("gen10-0"), " ")
			for _, w := range []string{"q35", "OVMF_CODE_4M.fd", "virtio-blk-pci", "virtio-net-pci", "usb-storage",
				"mac=" + strings.ToLower(gen10HW.MACs()[0])} {
				if !strings.Contains(cmd, w) {
					t.Errorf("qemu command line lacks %q: %s", w, cmd)
				}
			}
			if st := gen10.State(); st.OneTimeBoot != "Normal" {
				t.Errorf("one-time boot %q after the boot, want it consumed", st.OneTimeBoot)
			}

			// the qcow2 disk persists across power cycles
			disk := b.DiskPath("gen10-0")
			qemuIO(t, disk, "write -P 0x5a 1M 64k")
			mark := b.ConsoleMark("gen10-0")
			i.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"On"}`)
			// second boot (persistent order: CD first)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			out, err := b.WaitConsoleAfter(ctx, "gen10-0", mark, marker)
			cancel()
			if err != nil || strings.Count(out, "RAMDISK-START") != 1 {
				t.Fatalf("second boot: %v\n%s", err, tail(out))
			}
			waitOff(t, b, gen10, time.Minute)
			if out := qemuIO(t, disk, "read -P 0x5a 1M 64k"); strings.Contains(out, "Pattern verification failed") {
				t.Fatalf("the disk lost its data across a power cycle:\n%s", out)
			}

			// secure boot: the secure-boot firmware with the MS-keys store,
			// which refuses the test ISO's unsigned GRUB
			i.do("PATCH", "/redfish/v1/Systems/1/SecureBoot/", `{"SecureBootEnable":true}`)
			i.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"On"}`)
			waitConsole(t, b, "gen10-0", "Access Denied", 4*time.Minute)
			cmd = strings.Join(b.LastCommand("gen10-0"), " ")
			for _, w := range []string{"q35,smm=on", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "property=secure,value=on"} {
				if !strings.Contains(cmd, w) {
					t.Errorf("secure boot: qemu command line lacks %q: %s", w, cmd)
				}
			}
			i.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"ForceOff"}`)
			waitOff(t, b, gen10, 30*time.Second)
			t.Logf("gen10-0 console:\n%s", keyLines(b.Console("gen10-0")))
		})
	}()
	go func() { // Gen8, legacy BIOS, RIBCL
		defer wg.Done()
		t.Run("gen8-bios-ribcl", func(t *testing.T) {
			i := newILO(t, s, gen8)
			i.ribcl(`<RIB_INFO MODE="write"><INSERT_VIRTUAL_MEDIA DEVICE="CDROM" IMAGE_URL="` + base + `/boot.iso"/>` +
				`<INSERT_VIRTUAL_MEDIA DEVICE="FLOPPY" IMAGE_URL="` + base + `/params.img"/></RIB_INFO>` +
				`<SERVER_INFO MODE="write"><SET_ONE_TIME_BOOT VALUE="CDROM"/><SET_HOST_POWER HOST_POWER="Yes"/></SERVER_INFO>`)
			out := waitConsole(t, b, "gen8-0", marker, 4*time.Minute)
			for _, w := range []string{"RAMDISK-FIRMWARE bios", "RAMDISK-PARAMS-DEVICE /dev/fd0", "lightsout_nonce=" + params["lightsout_nonce"]} {
				if !strings.Contains(out, w) {
					t.Errorf("console lacks %q:\n%s", w, tail(out))
				}
			}
			waitOff(t, b, gen8, time.Minute)
			cmd := strings.Join(b.LastCommand("gen8-0"), " ")
			for _, w := range []string{"-machine pc", "e1000", "ahci", "if=floppy"} {
				if !strings.Contains(cmd, w) {
					t.Errorf("qemu command line lacks %q: %s", w, cmd)
				}
			}
			if strings.Contains(cmd, "pflash") {
				t.Errorf("legacy boot with OVMF: %s", cmd)
			}
			t.Logf("gen8-0 console:\n%s", keyLines(b.Console("gen8-0")))
			if !bytes.Contains(gen8.ConsoleBacklog(), []byte(marker)) {
				t.Errorf("the sim's console stream (SOL) lacks the marker")
			}
			if _, err := exec.LookPath("ipmitool"); err == nil {
				solSees(t, gen8, marker)
				out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "17", "-N", "1", "-R", "3", "-H", "127.0.0.1",
					"-p", fmt.Sprint(gen8.IPMIPort()), "-U", gen8.Username(), "-P", gen8.Password(), "chassis", "power", "status").CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Chassis Power is off") {
					t.Errorf("ipmitool chassis power status: %v\n%s", err, out)
				}
			}
		})
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	closeAll()
	if pids := qemuPIDs(qdir); len(pids) > 0 {
		t.Fatalf("qemu processes left after Close: %v", pids)
	}
}

// rebootInit is a test /init whose guest reboots at once.
const rebootInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "GUEST-REBOOTING uptime=$(cut -d' ' -f1 /proc/uptime)"
reboot -f
`

// TestQemuRebootAndPowerButton: a guest reboot is the iLO's reset (the
// one-time CD boot is consumed, the next qemu boots the persistent first
// device, the HDD); the power button (press) reaches the VM as an ACPI
// event and leaves the server on (firmware ignores it, as on real
// hardware), press-and-hold powers it off and ends the VM.
func TestQemuRebootAndPowerButton(t *testing.T) {
	if testing.Short() {
		t.Skip("a qemu boot takes ~20 s under TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "qemu-img", "xorriso", "apt-get", "dpkg-deb", "busybox")
	dir := t.TempDir()
	testMedia(t, dir, map[string]string{"k": "v"}, rebootInit)
	hs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer hs.Close()

	qdir := filepath.Join(dir, "qemu")
	b, err := qemu.New(qemu.Options{Dir: qdir, Accel: "tcg", DiskSize: 16 << 20, Servers: []string{"gen8-0"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: 2}}, DiskSize: 1 << 20}
	b.Attach(&opts)
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.UseSim(s)
	defer func() {
		s.Close()
		b.Close()
		if pids := qemuPIDs(qdir); len(pids) > 0 {
			t.Errorf("qemu processes left after Close: %v", pids)
		}
	}()
	if kap := s.Inventory()[1].DriverInfo["kernel_append_params"]; kap != nil {
		t.Errorf("gen8-1 is not qemu-backed but has kernel_append_params %v", kap)
	}
	srv, _ := s.ServerByName("gen8-0")
	i := newILO(t, s, srv)
	i.ribcl(`<RIB_INFO MODE="write"><INSERT_VIRTUAL_MEDIA DEVICE="CDROM" IMAGE_URL="` + hs.URL + `/boot.iso"/></RIB_INFO>` +
		`<SERVER_INFO MODE="write"><SET_PERSISTENT_BOOT><DEVICE value="HDD"/><DEVICE value="CDROM"/></SET_PERSISTENT_BOOT>` +
		`<SET_ONE_TIME_BOOT VALUE="CDROM"/><SET_HOST_POWER HOST_POWER="Yes"/></SERVER_INFO>`)
	waitConsole(t, b, "gen8-0", "GUEST-REBOOTING", 3*time.Minute)
	// the guest's reboot resets the server: boot 2, from the HDD
	waitFor(t, "reset after the guest reboot", time.Minute, func() bool {
		return srv.State().BootCount == 2 && b.Running("gen8-0") && strings.Contains(strings.Join(b.LastCommand("gen8-0"), " "), "drive=hd0,bootindex=1")
	})
	if ev, _ := srv.LastBoot(); ev.BootDevice != "HDD" {
		t.Fatalf("boot device after the guest reboot %q, want HDD (the one-time CD boot consumed)", ev.BootDevice)
	}
	i.ribcl(`<SERVER_INFO MODE="write"><PRESS_PWR_BTN/></SERVER_INFO>`)
	if st := srv.State(); st.Power != "ON" || !b.Running("gen8-0") {
		t.Fatalf("after a press of the power button: power %s, VM running %v; want the ACPI event delivered and the server on", st.Power, b.Running("gen8-0"))
	}
	i.ribcl(`<SERVER_INFO MODE="write"><HOLD_PWR_BTN/></SERVER_INFO>`)
	waitOff(t, b, srv, 30*time.Second)
	if n := srv.State().BootCount; n != 2 {
		t.Fatalf("boot count %d after press and hold, want 2", n)
	}
	if !strings.Contains(b.Console("gen8-0"), "GUEST-REBOOTING") {
		t.Fatal("console lost")
	}
	// the backend closed under a running VM: the VM ends, the server is off
	srv.PowerOn()
	waitFor(t, "VM of boot 3", time.Minute, func() bool { return b.Running("gen8-0") })
	b.Close()
	if pids := qemuPIDs(qdir); len(pids) > 0 {
		t.Fatalf("qemu processes left after Close with a running VM: %v", pids)
	}
	waitOff(t, b, srv, 30*time.Second)
}
