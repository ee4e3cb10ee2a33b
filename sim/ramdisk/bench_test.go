package ramdisk_test

import (
	"context"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// BenchmarkPrepareImage64MiB measures standby.prepare_image of a 64 MiB raw
// image over loopback HTTP: download, md5 and write to the virtual disk
// (the per-node data path of the 200-node deploy benchmark).
func BenchmarkPrepareImage64MiB(b *testing.B) {
	api := callback(b)
	tok, _ := api.NewToken(nodeUUID)
	files := newFileServer(b)
	img := make([]byte, 64<<20)
	for i := range img {
		img[i] = byte(i * 7)
	}
	u := files.put("img.raw", img)
	disk := b.TempDir() + "/disk.raw"
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: disk, HeartbeatInterval: time.Second, WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hb, err := api.WaitHeartbeat(ctx, nodeUUID, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	c := &agent.Client{}
	params := map[string]any{"image_info": map[string]any{"id": "i", "urls": []any{u}, "checksum": md5hex(img), "disk_format": "raw"}}
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Run(context.Background(), hb.AgentURL, tok, "standby.prepare_image", params, true)
		if err != nil || res.CommandStatus != agent.StatusSucceeded {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
