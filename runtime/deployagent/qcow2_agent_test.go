package deployagent_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// A qcow2 image made by qemu-img, streamed through the agent onto a disk
// holding old data: the disk then equals the raw image (holes zeroed) and
// get_partition_uuids reads the GPT sgdisk wrote.
func TestPrepareImageQcow2AndPartitionUUIDs(t *testing.T) {
	testenv.RequireTools(t, "qemu-img", "sgdisk")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	raw := dir + "/img.raw"
	img := make([]byte, 12<<20)
	copy(img[3<<20:], randomBytes(2<<20)) // data in the middle, zeros around
	if err := os.WriteFile(raw, img, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "sgdisk", "-U", "11111111-2222-3333-4444-555555555555", "-n", "1:2048:+4M", "-t", "1:ef00",
		"-u", "1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "-n", "2:0:0", "-t", "2:8300", raw)
	img, _ = os.ReadFile(raw)
	q := dir + "/img.qcow2"
	sh(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q)
	qdata, _ := os.ReadFile(q)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(qdata) }))
	defer srv.Close()

	e := start(t, ctx, 16<<20) // disk pre-filled with 0xEE: holes must be zeroed
	info := map[string]any{"id": "img.qcow2", "urls": []any{srv.URL + "/img.qcow2"}, "disk_format": "qcow2",
		"os_hash_algo": "sha256", "os_hash_value": sha256hex(qdata)}
	res, err := e.client.Run(ctx, e.agentURL, token, "standby.prepare_image", map[string]any{"image_info": info}, true)
	if err != nil || res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("prepare_image: %+v %v %s", res, err, res.ErrorMessage())
	}
	disk, _ := os.ReadFile(e.disk)
	if !bytes.Equal(disk[:len(img)], img) {
		t.Fatalf("disk differs from the raw image at byte %d", firstDiff(disk, img))
	}
	if !bytes.Equal(disk[len(img):], bytes.Repeat([]byte{0xEE}, len(disk)-len(img))) {
		t.Error("disk changed beyond the image's virtual size")
	}
	if out, err := exec.Command("sfdisk", "-d", e.disk).CombinedOutput(); err == nil && !strings.Contains(string(out), "label: gpt") {
		t.Errorf("sfdisk on the written disk: %s", out)
	}
	ids, err := e.client.Run(ctx, e.agentURL, token, "standby.get_partition_uuids", map[string]any{}, true)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ids.CommandResult.(map[string]any)
	parts, _ := m["partitions"].(map[string]any)
	if m["root uuid"] != "11111111-2222-3333-4444-555555555555" || m["efi system partition uuid"] != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" ||
		parts["vda1"] != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" || len(parts) != 2 {
		t.Errorf("partition uuids = %v", m)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
