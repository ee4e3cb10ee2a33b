package deployagent_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/testenv"
)

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gptDisk makes a file-backed disk with a GPT (sgdisk: an ESP and a Linux
// partition) and an ext4 file system in the second partition (mkfs.ext4 at
// the partition's offset), and checks blkid sees them.
func gptDisk(t *testing.T, fill byte) (path string, size int64, part2Off int64) {
	t.Helper()
	testenv.RequireTools(t, "sgdisk", "mkfs.ext4", "blkid", "sfdisk")
	size = 64 << 20
	path = t.TempDir() + "/disk.img"
	if err := os.WriteFile(path, bytes.Repeat([]byte{fill}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "sgdisk", "-n", "1:2048:+8M", "-t", "1:ef00", "-n", "2:0:0", "-t", "2:8300", path)
	out := sh(t, "sfdisk", "-d", path)
	if !strings.Contains(out, "label: gpt") {
		t.Fatalf("sfdisk: %s", out)
	}
	part2Off = int64(2048+8*2048) * 512
	sh(t, "mkfs.ext4", "-q", "-F", "-E", "offset="+strconv.FormatInt(part2Off, 10), path, "32M")
	if out := sh(t, "blkid", "-p", "-O", strconv.FormatInt(part2Off, 10), path); !strings.Contains(out, `TYPE="ext4"`) {
		t.Fatalf("no ext4 before erasing: %s", out)
	}
	return path, size, part2Off
}

// noSignatures checks blkid and sfdisk find no partition table and no file
// system anywhere they look.
func noSignatures(t *testing.T, path string, part2Off int64) {
	t.Helper()
	if out, err := exec.Command("sfdisk", "-d", path).CombinedOutput(); err == nil {
		t.Errorf("sfdisk still reads a partition table:\n%s", out)
	}
	for _, off := range []int64{0, part2Off} {
		// blkid -p exits 2 when it finds nothing
		out, err := exec.Command("blkid", "-p", "-O", strconv.FormatInt(off, 10), path).CombinedOutput()
		if err == nil || strings.Contains(string(out), "TYPE=") {
			t.Errorf("blkid still finds a signature at offset %d: %s", off, out)
		}
	}
}

func TestEraseMetadataGPTAndExt4(t *testing.T) {
	path, size, off := gptDisk(t, 0x5A)
	before, _ := os.ReadFile(path)
	if err := deployagent.EraseMetadata(path, 0); err != nil {
		t.Fatal(err)
	}
	noSignatures(t, path, off)
	after, _ := os.ReadFile(path)
	if len(after) != int(size) {
		t.Fatalf("disk size changed to %d", len(after))
	}
	// metadata only: data in the middle of the partition is kept
	mid := off + 16<<20
	if !bytes.Equal(after[mid:mid+4096], before[mid:mid+4096]) {
		t.Error("erase_devices_metadata changed data in the middle of a partition")
	}
	if !bytes.Equal(after[size-deployagent.MiB:], make([]byte, deployagent.MiB)) {
		t.Error("last MiB (backup GPT) not zeroed")
	}
}

// The clean step through the agent API, as a clean run calls it: every
// writable disk but the virtual floppy is wiped.
func TestCleanStepEraseDevicesMetadataViaAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := start(t, ctx, 64<<20)
	path, _, off := gptDisk(t, 0)
	if err := os.Rename(path, e.disk); err != nil {
		t.Fatal(err)
	}
	step := map[string]any{"step": "erase_devices_metadata", "interface": "deploy", "priority": 99}
	bad, err := e.client.Run(ctx, e.agentURL, token, "clean.execute_clean_step",
		map[string]any{"step": step, "clean_version": map[string]any{"generic_hardware_manager": "0.9"}}, true)
	if err != nil || bad.CommandStatus != agent.StatusCleanVersionMismatch {
		t.Fatalf("old clean version: %+v %v", bad, err)
	}
	res, err := e.client.Run(ctx, e.agentURL, token, "clean.execute_clean_step",
		map[string]any{"step": step, "clean_version": map[string]any{"generic_hardware_manager": "1.2"}}, true)
	if err != nil || res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("erase_devices_metadata: %+v %v %s", res, err, res.ErrorMessage())
	}
	noSignatures(t, e.disk, off)
}

func TestOverwriteVerified(t *testing.T) {
	path := t.TempDir() + "/disk"
	if err := os.WriteFile(path, randomBytes(9<<20+512), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls int
	if err := deployagent.OverwriteVerified(context.Background(), path, 0, func(int64, int64) { calls++ }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) != 9<<20+512 || !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("disk not zeroed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := deployagent.OverwriteVerified(ctx, path, 0, nil); err == nil {
		t.Error("a cancelled erase succeeded")
	}
}
