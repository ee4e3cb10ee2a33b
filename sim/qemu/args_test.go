package qemu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
)

func TestMachineArgs(t *testing.T) {
	base := machine{Disk: "/d/disk.qcow2", MAC: "aa:bb:cc:dd:ee:ff", Port: 40000, Memory: 512, CPUs: 1,
		Accel: "tcg", QMP: "/s/q.qmp", CDROM: "/m/cd.img", Floppy: "/m/fd.img"}
	tests := []struct {
		name      string
		mod       func(m *machine)
		want, not []string
	}{
		{"gen8 legacy CD boot", func(m *machine) { m.Generation, m.BootDevice = "gen8", "CDROM" },
			[]string{"-machine pc", "-accel tcg -cpu max", "ide-cd,bus=ide.1,drive=vcd,bootindex=1",
				"-device ahci,id=sata -device ide-hd,bus=sata.0,drive=hd0,bootindex=2", "if=floppy,index=0",
				"e1000,netdev=net0,mac=aa:bb:cc:dd:ee:ff,romfile=", "hostfwd=tcp:127.0.0.1:40000-:9999", "-no-reboot",
				"-qmp unix:/s/q.qmp,server=on,wait=off", "format=qcow2"},
			[]string{"pflash", "q35", "virtio", "usb-storage", ":3260"}},
		{"gen10 UEFI HDD boot", func(m *machine) {
			m.Generation, m.BootDevice, m.UEFI, m.Code, m.Vars = "gen10", "HDD", true, "/fw/CODE.fd", "/v/VARS.fd"
		},
			[]string{"-machine q35", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd", "unit=1,file=/v/VARS.fd",
				"virtio-blk-pci,drive=hd0,bootindex=1", "ide-cd,bus=ide.2,drive=vcd,bootindex=2",
				"qemu-xhci", "usb-storage,bus=xhci.0,drive=vfd,removable=on", "virtio-net-pci,netdev=net0"},
			[]string{"smm=on", "if=floppy", "e1000", "ahci"}},
		{"gen10 secure boot network boot keeps the PXE ROM", func(m *machine) {
			m.Generation, m.BootDevice, m.UEFI, m.SecureBoot, m.Code, m.Vars, m.Accel = "gen11", "NETWORK", true, true, "/c", "/v", "kvm"
		},
			[]string{"-machine q35,smm=on", "driver=cfi.pflash01,property=secure,value=on", "-accel kvm -cpu host",
				"mac=aa:bb:cc:dd:ee:ff,bootindex=1", "virtio-blk-pci,drive=hd0,bootindex=2"},
			[]string{"romfile="}},
		{"iscsi forward", func(m *machine) { m.Generation, m.BootDevice, m.ISCSIPort = "gen10", "CDROM", 40001 },
			[]string{"hostfwd=tcp:127.0.0.1:40000-:9999,hostfwd=tcp:127.0.0.1:40001-:3260"},
			nil},
		{"tap instead of user networking", func(m *machine) { m.Generation, m.BootDevice, m.Tap = "gen8", "NETWORK", "tap7" },
			[]string{"-netdev tap,id=net0,ifname=tap7,script=no,downscript=no", "e1000,netdev=net0,mac=aa:bb:cc:dd:ee:ff,bootindex=1"},
			[]string{"user,", "hostfwd", "romfile="}},
		{"no media", func(m *machine) { m.Generation, m.BootDevice, m.CDROM, m.Floppy = "gen9", "CDROM", "", "" },
			[]string{"ide-hd,bus=sata.0,drive=hd0,bootindex=2"},
			[]string{"vcd", "vfd", "floppy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.mod(&m)
			got := strings.Join(m.args(), " ")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("has %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestFirmwareFiles: the secure-boot code and a per-server copy of the
// MS-keys variable store, kept across boots; a clear error without ovmf.
func TestFirmwareFiles(t *testing.T) {
	fw := t.TempDir()
	for _, f := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"} {
		if err := os.WriteFile(filepath.Join(fw, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := New(Options{Dir: t.TempDir(), FirmwareDir: fw, Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	os.MkdirAll(b.serverDir("gen10-0"), 0o755)
	code, vars, err := b.firmware("gen10-0", true)
	if err != nil || filepath.Base(code) != "OVMF_CODE_4M.secboot.fd" || filepath.Dir(vars) != b.serverDir("gen10-0") {
		t.Fatalf("secure boot firmware %s %s %v", code, vars, err)
	}
	if data, _ := os.ReadFile(vars); string(data) != "OVMF_VARS_4M.ms.fd" {
		t.Fatalf("variable store copied from %q", data)
	}
	os.WriteFile(vars, []byte("enrolled by the guest"), 0o644)
	if _, vars2, _ := b.firmware("gen10-0", true); vars2 != vars {
		t.Fatalf("second boot uses %s, want %s", vars2, vars)
	} else if data, _ := os.ReadFile(vars); string(data) != "enrolled by the guest" {
		t.Fatal("the variable store was not kept across boots")
	}
	if code, _, _ := b.firmware("gen10-0", false); filepath.Base(code) != "OVMF_CODE_4M.fd" {
		t.Fatalf("non-secure-boot code %s", code)
	}
	b.opts.FirmwareDir = t.TempDir()
	if _, _, err := b.firmware("gen10-0", true); err == nil || !strings.Contains(err.Error(), "apt-get install ovmf") {
		t.Fatalf("missing firmware: %v", err)
	}
}

// TestPortsAndDriverInfo: one agent port per qemu-backed server, kept in
// Dir across backends, in the inventory's kernel_append_params; other
// servers get neither.
func TestPortsAndDriverInfo(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Options{Dir: dir, Accel: "tcg", Servers: []string{"gen10-0"}})
	if err != nil {
		t.Fatal(err)
	}
	p := b.AgentPort("gen10-0")
	if p == 0 || b.AgentPort("gen8-0") != 0 || b.DriverInfo("gen8-0") != nil {
		t.Fatalf("ports: gen10-0 %d, gen8-0 %d", p, b.AgentPort("gen8-0"))
	}
	want := "nofb nomodeset vga=normal console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port="
	if got := b.DriverInfo("gen10-0")["kernel_append_params"]; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "="+strconv.Itoa(p)) {
		t.Fatalf("kernel_append_params %q", got)
	}
	b.Close()
	b2, err := New(Options{Dir: dir, Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if p2 := b2.AgentPort("gen10-0"); p2 != p {
		t.Fatalf("port %d after a restart, want %d", p2, p)
	}
	// a server on a tap: no forwarded port, no advertised address (the
	// agent advertises its DHCP address), the serial console still
	b3, err := New(Options{Dir: t.TempDir(), Accel: "tcg", Taps: map[string]string{"gen8-0": "tap3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if b3.Tap("gen8-0") != "tap3" || b3.AgentPort("gen8-0") != 0 || b3.Tap("gen10-0") != "" {
		t.Fatalf("tap %q port %d", b3.Tap("gen8-0"), b3.AgentPort("gen8-0"))
	}
	if got := b3.DriverInfo("gen8-0")["kernel_append_params"]; strings.Contains(got, "ipa-advertise") || !strings.Contains(got, "console=ttyS0") {
		t.Fatalf("kernel_append_params of a tap server %q", got)
	}
	if _, err := New(Options{Accel: "xen"}); err == nil || !strings.Contains(err.Error(), "auto, kvm or tcg") {
		t.Fatalf("bad accel: %v", err)
	}
	// no VM runs: the power button powers off at once (the simulator's default)
	if b2.GracefulShutdown("gen10-0") {
		t.Fatal("graceful shutdown taken with no VM")
	}
}

// TestMediaAlias: a URL on the HostAlias is fetched from 127.0.0.1; the
// error of a failed fetch does not carry the URL's query (temp-URL
// signature).
func TestMediaAlias(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok.iso" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("iso bytes"))
	}))
	defer hs.Close()
	port := hs.URL[strings.LastIndex(hs.URL, ":")+1:]
	c := aliasClient(&http.Client{Timeout: 10 * time.Second}, "10.0.2.2")
	dst := filepath.Join(t.TempDir(), "m", "cd.img")
	ctx := context.Background()
	if err := fetch(ctx, c, "http://10.0.2.2:"+port+"/ok.iso", dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "iso bytes" {
		t.Fatalf("fetched %q", b)
	}
	err := fetch(ctx, c, "http://10.0.2.2:"+port+"/missing.iso?temp_url_sig=SECRET&temp_url_expires=1", dst)
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("failed fetch error %v", err)
	}
}

func TestConsoleMarks(t *testing.T) {
	var c consoleBuf
	c.write([]byte("boot 1 \x1b[2Jmarker\r\n"))
	m := c.mark()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if out, err := c.wait(ctx, 0, "marker\n"); err != nil || out != "boot 1 marker\n" {
		t.Fatalf("wait from 0: %q %v", out, err)
	}
	done := make(chan string)
	go func() {
		out, _ := c.wait(ctx, m, "marker")
		done <- out
	}()
	c.write([]byte("boot 2 "))
	c.write([]byte("marker"))
	if out := <-done; out != "boot 2 marker" {
		t.Fatalf("wait after the mark: %q", out)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := c.wait(short, c.mark(), "marker"); err == nil {
		t.Fatal("an old marker satisfied a wait after the mark")
	}
}

// TestUseSimPowersOffOrphans: a qemu-backed server the state directory
// brings back "on" has no VM any more: UseSim powers it off; other servers
// keep their state.
func TestUseSimPowersOffOrphans(t *testing.T) {
	b, err := New(Options{Dir: t.TempDir(), Accel: "tcg", Servers: []string{"gen10-0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	opts := sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: 2}}, DiskSize: 1 << 20}
	b.Attach(&opts)
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, srv := range s.Servers() {
		srv.Update(func(st *sim.State) { st.Power = "ON" }) // as a state dir would bring them back
	}
	b.UseSim(s)
	if p := s.Server(0).State().Power; p != "OFF" {
		t.Errorf("qemu-backed gen10-0 without a VM: power %s, want OFF", p)
	}
	if p := s.Server(1).State().Power; p != "ON" {
		t.Errorf("emulated gen10-1: power %s, want ON (not the backend's)", p)
	}
}

// TestStablePortOutsideEphemeralRange: forwarded ports come from below the
// kernel's ephemeral range, so no ":0" listener or outgoing connection on
// the host takes them between two power-ons of the VM.
func TestStablePortOutsideEphemeralRange(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ip_local_port_range: %v", err)
	}
	lo, err := strconv.Atoi(strings.Fields(string(data))[0])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		p, err := stablePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 1024 || p >= lo {
			t.Fatalf("port %d outside [1024, %d)", p, lo)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 draws gave the same port: %v", seen)
	}
}
