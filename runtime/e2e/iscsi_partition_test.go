package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim/ramdisk"
	"golang.org/x/sys/unix"
)

// partitionImage builds an ext4 partition image of sizeMB
// (qemutest.Ext4Image) and returns its path, bytes and blkid's filesystem
// UUID.
func partitionImage(t *testing.T, dir string, sizeMB int) (string, []byte, string) {
	t.Helper()
	testenv.RequireTools(t, "sfdisk")
	img, uuid := qemutest.Ext4Image(t, dir, sizeMB)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, data, uuid
}

// sparseIsZero reports whether the sparse file holds only zeroes, reading
// only its data extents (SEEK_DATA/SEEK_HOLE): the ramdisk's metadata wipe
// allocates a few, the rest of the 1 GiB disk stays a hole.
func sparseIsZero(t *testing.T, file string) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		for p := data; p < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-p)], p)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], make([]byte, n)) {
				return false
			}
			if n == 0 {
				break
			}
			p += int64(n)
		}
		off = hole
	}
}

type sfdiskPart struct {
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	UUID  string `json:"uuid"`
}

func sfdiskRead(t *testing.T, disk string) (string, []sfdiskPart) {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -J: %v: %s", err, out)
	}
	var st struct {
		PT struct {
			Label      string       `json:"label"`
			Partitions []sfdiskPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st.PT.Label, st.PT.Partitions
}

// partitionNode makes gen10-0 an iscsi_ilo node deploying the partition
// image img with instance_info extra (kernel and ramdisk set).
func partitionNode(t *testing.T, e *env, port int, img string, data []byte, extra map[string]any) {
	t.Helper()
	dir := t.TempDir()
	ii := map[string]any{"kernel": filepath.Join(dir, "vmlinuz"), "ramdisk": filepath.Join(dir, "initrd")}
	for k, v := range extra {
		ii[k] = v
	}
	iscsiNode(t, e, port, img, data, ii)
}

// An iscsi_ilo deploy of a partition image, UEFI local boot: the emulated
// ramdisk's tgtd (CHAP on) exports the server's disk, lightsout partitions
// it (gpt: ESP, swap, configdrive, root last) and writes image and config
// drive; the agent installs the boot loader against the ESP lightsout
// made, the node boots from disk, and the root filesystem's UUID is
// recorded as root_uuid_or_disk_id.
func TestISCSIPartitionDeployUEFILocal(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1), diskSize: 1300 << 20})
	e := open(t, f, "")
	e.importFleet()
	img, data, fsUUID := partitionImage(t, t.TempDir(), 24)
	cd := make([]byte, 200<<10)
	_, _ = rand.Read(cd)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(cd)
	_ = zw.Close()
	port := freeTCPPort(t)
	partitionNode(t, e, port, img, data, map[string]any{"root_gb": 1, "swap_mb": 16,
		"configdrive":  base64.StdEncoding.EncodeToString(z.Bytes()),
		"capabilities": map[string]any{"boot_mode": "uefi", "boot_option": "local"}})
	diskPath := f.server(t, "gen10-0").DiskPath()
	writeJunk(t, diskPath)

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	e.mustSucceed(res)
	n := e.node("gen10-0")
	if n.ProvisionState != states.Active || n.PowerState != "power on" {
		t.Fatalf("state %q power %q", n.ProvisionState, n.PowerState)
	}
	if got := n.DriverInternalInfo["root_uuid_or_disk_id"]; got != fsUUID {
		t.Errorf("root_uuid_or_disk_id %v, want the image's filesystem UUID %s", got, fsUUID)
	}
	label, parts := sfdiskRead(t, diskPath)
	if label != "gpt" || len(parts) != 4 {
		t.Fatalf("table %s %+v, want gpt with ESP, swap, configdrive, root", label, parts)
	}
	const sector = 512
	wantTypes := []string{"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
		"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}
	wantMB := []int64{200, 16, 1, 1024}
	for i, p := range parts {
		if p.Type != wantTypes[i] || p.Size*sector != wantMB[i]<<20 {
			t.Errorf("partition %d: %+v, want type %s, %d MiB", i+1, p, wantTypes[i], wantMB[i])
		}
	}
	if !bytes.Equal(qemutest.ReadAt(t, diskPath, parts[3].Start*sector, int64(len(data))), data) {
		t.Error("the root partition does not hold the image byte for byte")
	}
	if !bytes.Equal(qemutest.ReadAt(t, diskPath, parts[2].Start*sector, int64(len(cd))), cd) {
		t.Error("the configdrive partition does not hold the config drive")
	}
	if string(qemutest.ReadAt(t, diskPath, parts[1].Start*sector+4096-10, 10)) != "SWAPSPACE2" {
		t.Error("no swap signature in the swap partition")
	}
	if sparseIsZero(t, diskPath) { // the check the refusal tests rely on sees a write
		t.Error("sparseIsZero finds no data on a deployed disk")
	}
	tl := e.timeline(res.RunID)
	for _, want := range []string{"iscsi.write_partition_image", "iscsi.start_iscsi_target", "image.install_bootloader"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %s", want)
		}
	}
	if !portalClosed(port) {
		t.Error("the iSCSI target still answers after the deploy")
	}
	e.noMediaLeft("gen10-0")
	if st := f.server(t, "gen10-0").State(); len(st.PersistentBoot) == 0 || st.PersistentBoot[0] != "HDD" {
		t.Errorf("persistent boot order %v, want HDD first", st.PersistentBoot)
	}
}

// BIOS local boot from a qcow2 partition image: msdos label, root the
// only partition, bootable, holding the image.
func TestISCSIPartitionDeployBIOSQcow2(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1), diskSize: 1100 << 20})
	e := open(t, f, "")
	e.importFleet()
	dir := t.TempDir()
	raw, data, fsUUID := partitionImage(t, dir, 16)
	qcow := filepath.Join(dir, "root.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	qdata, err := os.ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	partitionNode(t, e, port, qcow, qdata, map[string]any{"root_gb": 1,
		"capabilities": map[string]any{"boot_mode": "bios", "boot_option": "local"}})
	// the Gen10 is UEFI by default: its owner declares it BIOS
	if _, err := e.app.UpdateNode(context.Background(), "gen10-0", app.NodeChange{
		Properties: map[string]any{"capabilities": "boot_mode:bios"}}); err != nil {
		t.Fatal(err)
	}

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	e.mustSucceed(res)
	diskPath := f.server(t, "gen10-0").DiskPath()
	label, parts := sfdiskRead(t, diskPath)
	if label != "dos" || len(parts) != 1 || parts[0].Start != 2048 || parts[0].Size*512 != 1<<30 || parts[0].Type != "83" {
		t.Fatalf("table %s %+v, want dos with one 1 GiB Linux partition at 1 MiB", label, parts)
	}
	if qemutest.ReadAt(t, diskPath, 446, 1)[0] != 0x80 {
		t.Error("the root partition is not marked bootable (BIOS local boot)")
	}
	if !bytes.Equal(qemutest.ReadAt(t, diskPath, 1<<20, int64(len(data))), data) {
		t.Error("the root partition does not hold the qcow2 image's content")
	}
	if got := e.node("gen10-0").DriverInternalInfo["root_uuid_or_disk_id"]; got != fsUUID {
		t.Errorf("root_uuid_or_disk_id %v, want %s", got, fsUUID)
	}
}

// Bad input for partition images: refused in validate before the node
// changes (whole-disk image with swap_mb, ephemeral_gb or a configdrive, kernel without ramdisk,
// UEFI netboot of a whole-disk image), or failed with §5.1's message and
// nothing left exported (image larger than root_gb; partitions larger
// than the disk; a wrong CHAP secret, disk untouched).
func TestISCSIPartitionDeployBadInput(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1), diskSize: 1100 << 20})
	e := open(t, f, "")
	e.importFleet()
	dir := t.TempDir()
	img, data, _ := partitionImage(t, dir, 16)
	port := freeTCPPort(t)
	diskPath := f.server(t, "gen10-0").DiskPath()
	local := map[string]any{"boot_option": "local"}
	iscsiNode(t, e, port, img, data, nil)
	setII := func(t *testing.T, ii map[string]any) {
		t.Helper()
		if _, err := e.app.UpdateNode(context.Background(), "gen10-0", app.NodeChange{InstanceInfo: ii}); err != nil {
			t.Fatal(err)
		}
	}

	// refused in validate: the node stays available
	for _, tc := range []struct {
		name string
		ii   map[string]any
		want string
	}{
		{"whole-disk image with swap_mb", map[string]any{"swap_mb": 64},
			"Cannot deploy whole disk image with swap or ephemeral size set (instance_info.swap_mb=64"},
		{"whole-disk image with ephemeral_gb", map[string]any{"kernel": "", "ramdisk": "", "swap_mb": 0, "ephemeral_gb": 2},
			"Cannot deploy whole disk image with swap or ephemeral size set (instance_info.ephemeral_gb=2"},
		{"whole-disk image with a configdrive", map[string]any{"ephemeral_gb": 0, "configdrive": "H4sI"},
			"does not write instance_info.configdrive with a whole-disk image"},
		{"kernel without ramdisk", map[string]any{"kernel": "/k", "ramdisk": "", "configdrive": ""},
			"missing the following properties: ['ramdisk']"},
		{"no root_gb", map[string]any{"kernel": "/k", "ramdisk": "/r", "root_gb": 0, "capabilities": local},
			"Missing are: ['root_gb']"},
		{"UEFI netboot of a whole-disk image (§5.3)", map[string]any{"kernel": "", "ramdisk": "", "root_gb": 1,
			"capabilities": map[string]any{"boot_mode": "uefi", "boot_option": "netboot"}},
			"UEFI boot with netboot option: set instance_info.capabilities.boot_option to local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setII(t, tc.ii)
			res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
			if res.Status != "failed" || !strings.Contains(res.Error, tc.want) {
				t.Fatalf("run %s: %q, want failed with %q", res.Status, res.Error, tc.want)
			}
			if n := e.node("gen10-0"); n.ProvisionState != states.Available {
				t.Errorf("state %s, want available (refused before the node changed)", n.ProvisionState)
			}
		})
	}

	// failed deploys: deploy failed, powered off, nothing exported
	for _, tc := range []struct {
		name   string
		rootGB int
		chap   bool
		want   []string
	}{
		{"partitions larger than the disk", 2, false, []string{"disk has 1100 MiB", "instance_info.root_gb"}},
		{"wrong CHAP secret", 1, true, []string{"CHAP", "driver_info.iscsi_chap", "login_failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.rd.SetFailures("gen10-0", ramdisk.Failures{WrongCHAPSecret: tc.chap})
			defer f.rd.SetFailures("gen10-0", ramdisk.Failures{})
			if err := os.Truncate(diskPath, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(diskPath, 1100<<20); err != nil {
				t.Fatal(err)
			}
			ii := map[string]any{"kernel": "/k", "ramdisk": "/r", "root_gb": tc.rootGB, "ephemeral_gb": 0, "capabilities": local}
			setII(t, ii)
			res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
			n := e.node("gen10-0")
			if res.Status != "failed" || n.ProvisionState != states.DeployFailed || n.PowerState != "power off" {
				t.Fatalf("run %s state %s power %s (%s)", res.Status, n.ProvisionState, n.PowerState, n.LastError)
			}
			for _, w := range tc.want {
				if !strings.Contains(n.LastError, w) {
					t.Errorf("last_error %q lacks %q", n.LastError, w)
				}
			}
			if !portalClosed(port) {
				t.Error("the iSCSI target still answers")
			}
			if !sparseIsZero(t, diskPath) {
				t.Error("a refused deploy wrote to the disk")
			}
			e.noMediaLeft("gen10-0")
		})
	}
}
