package e2e_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
)

// qemuCase is one deploy to a qemu-backed node and how it must end.
type qemuCase struct {
	name   string // what the case proves
	node   string
	opts   app.DeployOptions
	fail   string // "": the deploy succeeds; else a substring of its error
	fw     string // marker firmware=
	sb     bool   // marker secureboot=
	format string // image format written
}

// TestQemuDeploy is issue 13's end-to-end proof, on qemu-backed simulated
// servers with the deploy ramdisk `lightsout image ramdisk` built and the
// test instance image (a GPT disk: syslinux for BIOS, Debian's signed
// shim + GRUB + kernel for UEFI):
//
//   - a whole-disk raw image to a Gen10 in UEFI mode and a qcow2 image to a
//     Gen8 in BIOS mode: after the deploy the VM boots its disk and the
//     image's marker (firmware=uefi / firmware=bios) is in the console
//     captured in the run record;
//   - a secure-boot deploy (capability secure_boot=true) on a Gen10: the
//     marker says secureboot=1 (the firmware's SecureBoot variable);
//   - a wrong checksum: deploy failed, VM off, media ejected, the disk holds
//     nothing but (part of) the image the agent reported on;
//   - then automated cleaning with erase_devices_metadata (undeploy of the
//     UEFI node): no partition table or file system signature is left.
func TestQemuDeploy(t *testing.T) {
	requireQemuE2E(t)
	im := testInstanceImage(t)
	kernel, initramfs := deployRamdisk(t, "")
	f := newQemuFleet(t, "", []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 3}}, 256<<20)
	e := open(t, f.fleet, qemuConfig(t)+`
[deploy]
erase_devices_priority = 0
`, qemuSiteDir(t))
	e.importQemuFleet(kernel, initramfs)
	ctx := context.Background()

	cases := []qemuCase{
		{name: "uefi whole-disk raw", node: "gen10-0", fw: "uefi", format: "raw",
			opts: app.DeployOptions{ImageSource: im.raw, ImageChecksum: "sha256:" + im.rawSHA256,
				Capabilities: map[string]string{"boot_mode": "uefi"}}},
		{name: "bios whole-disk qcow2", node: "gen8-0", fw: "bios", format: "qcow2",
			opts: app.DeployOptions{ImageSource: im.qcow2, ImageChecksum: "sha256:" + im.qcowSHA256, ImageDiskFormat: "qcow2",
				Capabilities: map[string]string{"boot_mode": "bios"}}},
		{name: "uefi secure boot", node: "gen10-1", fw: "uefi", sb: true, format: "raw",
			opts: app.DeployOptions{ImageSource: im.raw, ImageChecksum: "sha256:" + im.rawSHA256,
				Capabilities: map[string]string{"boot_mode": "uefi", "secure_boot": "true"}}},
		{name: "wrong checksum", node: "gen10-2", fail: "checksum", format: "raw",
			opts: app.DeployOptions{ImageSource: im.raw, ImageChecksum: "sha256:" + strings.Repeat("0", 64),
				Capabilities: map[string]string{"boot_mode": "uefi"}}},
	}
	var names []string
	for _, c := range cases {
		e.makeAvailable(c.node)
		if _, err := e.app.PrepareDeploy(ctx, c.node, c.opts); err != nil {
			t.Fatalf("%s: %v", c.node, err)
		}
		names = append(names, c.node)
	}
	byNode := e.qemuDeploys(names, "deploys")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := byNode[c.node]
			console, err := e.app.RunConsole(ctx, r.RunID)
			if err != nil {
				t.Fatal(err)
			}
			srv := f.server(t, c.node)
			st := srv.State()
			n := e.node(c.node)
			dump := func() string {
				return "timeline:\n" + e.timeline(r.RunID) + "\nrun console (tail):\n" + tailText(console, 6000) +
					"\nVM console (tail):\n" + tailText(f.qb.Console(c.node), 6000)
			}
			if st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
				t.Errorf("virtual media still inserted: %+v", st.Media)
			}
			e.noMediaLeft(c.node)
			if !strings.Contains(console, "LIGHTSOUT-AGENT-UP") {
				t.Errorf("the run's console lacks the agent's LIGHTSOUT-AGENT-UP\n%s", dump())
			}
			raw := diskRaw(t, f.qb.DiskPath(c.node))
			if c.fail != "" {
				if r.Succeeded() || !strings.Contains(strings.ToLower(r.Error+" "+n.LastError), c.fail) {
					t.Fatalf("deploy %s %q (last_error %q), want a failure about %q\n%s", r.Status, r.Error, n.LastError, c.fail, dump())
				}
				if n.ProvisionState != states.DeployFailed || st.Power != "OFF" || f.qb.Running(c.node) {
					t.Errorf("state %s, power %s, VM running %v; want deploy failed, off, no VM", n.ProvisionState, st.Power, f.qb.Running(c.node))
				}
				if strings.Contains(console+f.qb.Console(c.node), qemutest.BootMarker) {
					t.Errorf("the instance booted despite the bad checksum\n%s", dump())
				}
				onlyImage(t, raw, im.raw)
				return
			}
			if !r.Succeeded() {
				t.Fatalf("deploy %s: %s\n%s", r.Status, r.Error, dump())
			}
			fw, sb, ok := qemutest.ParseBootMarker(console)
			if !ok || fw != c.fw || sb != c.sb {
				t.Fatalf("instance marker firmware=%q secureboot=%v (found %v), want %q %v\n%s", fw, sb, ok, c.fw, c.sb, dump())
			}
			if !strings.Contains(console, "LIGHTSOUT-TEST-IMAGE-ID "+im.disk.ID) {
				t.Errorf("the console lacks the image id %s", im.disk.ID)
			}
			if n.ProvisionState != states.Active || n.LastError != "" {
				t.Errorf("state %s last_error %q", n.ProvisionState, n.LastError)
			}
			if got, _ := prefixSHA256(t, raw, im.rawSize); got != im.rawSHA256 {
				t.Errorf("the disk does not start with the image (sha256 %s, want %s)", got, im.rawSHA256)
			}
			evs := mustEvents(t, e, r.RunID)
			t.Logf("%s on %s: write image %.1fs, boot deploy ramdisk..agent %.1fs, power off ramdisk..instance off %.1fs, run %.1fs",
				c.format, c.node, stepSpan(evs, "write image", "write image").Seconds(),
				stepSpan(evs, "boot deploy ramdisk", "wait for agent").Seconds(),
				stepSpan(evs, "power off ramdisk", "test: instance boots and powers off").Seconds(),
				stepSpan(evs, "validate", "test: instance boots and powers off").Seconds())
		})
	}

	// Automated cleaning on undeploy: erase_devices_metadata only (the full
	// erase is disabled above): the UEFI node's GPT disk loses its
	// partition tables (both ends) and file system signatures.
	t.Run("undeploy cleans metadata", func(t *testing.T) {
		if !byNode["gen10-0"].Succeeded() {
			t.Skip("gen10-0 was not deployed")
		}
		r := runOne(t, e, app.ScriptTeardown, "gen10-0")
		if !r.Succeeded() {
			t.Fatalf("teardown %s: %s\n%s\nVM console (tail):\n%s", r.Status, r.Error, e.timeline(r.RunID), tailText(f.qb.Console("gen10-0"), 6000))
		}
		n := e.node("gen10-0")
		if n.ProvisionState != states.Available {
			t.Errorf("state %s after undeploy", n.ProvisionState)
		}
		if got := e.steps(r.RunID, "clean step "); !slices.Contains(got, "deploy.erase_devices_metadata") || slices.Contains(got, "deploy.erase_devices") {
			t.Errorf("clean steps %v: want erase_devices_metadata and not erase_devices", got)
		}
		raw := diskRaw(t, f.qb.DiskPath("gen10-0"))
		sf, bl := partitionTable(t, raw)
		if sf != "" || bl != "" {
			t.Errorf("after erase_devices_metadata: sfdisk -d:\n%s\nblkid -p: %q", sf, bl)
		}
		if hasGPTAt(t, raw, 1) || hasGPTAt(t, raw, -1) {
			t.Errorf("a GPT header is left (primary or backup)")
		}
	})
}

// runOne runs script on a node with the qemu deploy timeout.
func runOne(t *testing.T, e *env, script, node string) runtime.Result {
	t.Helper()
	res, _ := e.app.Engine.RunMany(context.Background(), runtime.RunRequest{Script: script, Timeout: qemuDeployTimeout},
		[]string{node}, 1, nil)
	if len(res) != 1 {
		t.Fatalf("%s on %s: %d results", script, node, len(res))
	}
	return res[0]
}

// prefixSHA256 hashes the first n bytes of a file.
func prefixSHA256(t testing.TB, path string, n int64) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmp, err := os.CreateTemp(t.TempDir(), "prefix")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tmp, f, n); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	return fileSHA256(t, tmp.Name())
}

// onlyImage checks that a disk holds nothing but (part of) image: each MiB
// of the image's extent is the image's or zero, and the rest is zero.
func onlyImage(t testing.TB, disk, image string) {
	t.Helper()
	d, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	db, ib := make([]byte, 1<<20), make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	written := 0
	for off := int64(0); ; off += 1 << 20 {
		dn, derr := io.ReadFull(d, db)
		in, _ := io.ReadFull(img, ib)
		if dn == 0 {
			break
		}
		switch {
		case bytes.Equal(db[:dn], zero[:dn]):
		case in > 0 && bytes.Equal(db[:dn], ib[:dn]):
			written++
		default:
			t.Fatalf("the disk holds data at %d MiB that is not the image's", off>>20)
		}
		if derr != nil {
			break
		}
	}
	t.Logf("the disk holds %d MiB of the image and zeros elsewhere", written)
}

// hasGPTAt reports whether the 512-byte sector lba (negative: from the end)
// starts with the GPT signature.
func hasGPTAt(t testing.TB, raw string, lba int64) bool {
	t.Helper()
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := lba * 512
	if lba < 0 {
		fi, _ := f.Stat()
		off = fi.Size() + lba*512
	}
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return string(b) == "EFI PART"
}

// tailText is the last n bytes of s.
func tailText(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestQemuServerBootsTestImage is the second half of every deploy above
// without lightsout: a qemu-backed server whose disk already holds the test
// instance image boots it from HDD under the iLO's boot mode — Gen8 legacy
// BIOS, Gen10 UEFI, Gen10 UEFI with secure boot — and the guest's power off
// turns the simulated server off. When this fails, the deploy tests fail
// after the write; this says whether the image, the firmware or the
// backend's disk wiring is at fault.
func TestQemuServerBootsTestImage(t *testing.T) {
	requireQemuE2E(t)
	im := testInstanceImage(t)
	f := newQemuFleet(t, "", []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 2}}, 256<<20)
	cases := []struct {
		node, mode string
		sb         bool
		fw         string
	}{
		{"gen8-0", "LEGACY", false, "bios"},
		{"gen10-0", "UEFI", false, "uefi"},
		{"gen10-1", "UEFI", true, "uefi"},
	}
	for _, c := range cases {
		t.Run(c.node, func(t *testing.T) {
			disk := f.qb.DiskPath(c.node)
			if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", im.raw, disk).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img convert: %v\n%s", err, out)
			}
			srv := f.server(t, c.node)
			srv.Update(func(st *sim.State) {
				st.PersistentBoot = []string{"HDD"}
				st.OneTimeBoot = "Normal"
				st.BootMode, st.PendingBootMode = c.mode, ""
				st.SecureBootEnable = c.sb
			})
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			srv.PowerOn()
			out, err := f.qb.WaitConsole(ctx, c.node, qemutest.BootMarker)
			if err != nil {
				t.Fatalf("%v\nconsole:\n%s\nqemu: %q", err, tailText(out, 6000), f.qb.LastCommand(c.node))
			}
			// the image powers off right after its marker line: then the line is whole
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for srv.State().Power != "OFF" {
				select {
				case <-ctx.Done():
					t.Fatalf("the guest printed its marker but the server is still %s", srv.State().Power)
				case <-tick.C:
				}
			}
			fw, sb, ok := qemutest.ParseBootMarker(f.qb.Console(c.node))
			if !ok || fw != c.fw || sb != c.sb {
				t.Fatalf("booted firmware=%q secureboot=%v, want %q %v\nconsole:\n%s", fw, sb, c.fw, c.sb, tailText(f.qb.Console(c.node), 3000))
			}
		})
	}
}
