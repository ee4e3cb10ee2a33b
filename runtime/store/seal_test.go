package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// TestSensitiveValuesEncryptedAtRest: image_url, secret-looking keys and
// values holding a known secret or a URL credential are not in clear in the
// database file or its WAL, and read back decrypted, in every node field
// and in artifact locations.
func TestSensitiveValuesEncryptedAtRest(t *testing.T) {
	const sentinel = "S3ntinel-Zq7"
	p := filepath.Join(t.TempDir(), "x.db")
	s := open(t, p)
	red := secrets.NewRedactor()
	red.Add(sentinel)
	s.SetSensitive(red.Holds)
	ctx := context.Background()

	n := node("a")
	n.DriverInfo["ilo_deploy_iso"] = "http://iso-user:IsoPw-8842@10.0.0.9/deploy.iso"
	n.DriverInfo["copied"] = "x" + sentinel
	n.Properties = map[string]any{"cpus": float64(8), "note": sentinel}
	n.InstanceInfo = map[string]any{
		"image_url":      "http://10.0.0.9/img-ImageUrl-55.qcow2",
		"image_source":   "http://img-user:ImgPw-3310@10.0.0.9/img.qcow2",
		"image_checksum": "sha256:abc",
		"copy":           "pw=" + sentinel,
		"nested":         map[string]any{"list": []any{"a", sentinel}},
		"fake":           "enc:v1:not-really",
		"fake_json":      "json:enc:v1:nope",
	}
	n.DriverInternalInfo = map[string]any{"agent_token": "AgentTok-7781", "agent_url": "http://10.0.0.7:9999", "deep": []any{"http://h/o?temp_url_sig=SigVal-1234"}}
	if err := s.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	art := &Artifact{RunID: 1, NodeUUID: n.UUID, Kind: "iso", Location: "http://10.0.0.9/v1/AUTH_x/c/o?temp_url_sig=ArtSig-9911&temp_url_expires=1"}
	plainArt := &Artifact{RunID: 1, NodeUUID: n.UUID, Kind: "floppy", Location: "/var/lib/lightsout/publish/f.img"}
	for _, a := range []*Artifact{art, plainArt} {
		if err := s.AddArtifact(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	clear := []string{sentinel, "IsoPw-8842", "ImgPw-3310", "ImageUrl-55", "AgentTok-7781", "SigVal-1234", "ArtSig-9911"}
	check := func(s *SQLite, when string) {
		t.Helper()
		got, err := s.GetNode(ctx, "a")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for field, pair := range map[string][2]map[string]any{
			"driver_info": {got.DriverInfo, n.DriverInfo}, "properties": {got.Properties, n.Properties},
			"instance_info": {got.InstanceInfo, n.InstanceInfo}, "driver_internal_info": {got.DriverInternalInfo, n.DriverInternalInfo},
		} {
			if !reflect.DeepEqual(pair[0], pair[1]) {
				t.Errorf("%s: %s read back %v, want %v", when, field, pair[0], pair[1])
			}
		}
		arts, err := s.Artifacts(ctx, n.UUID, true)
		if err != nil || len(arts) != 2 || arts[0].Location != art.Location || arts[1].Location != plainArt.Location {
			t.Errorf("%s: artifacts %+v %v", when, arts, err)
		}
		for _, f := range []string{p, p + "-wal"} {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, c := range clear {
				if bytes.Contains(data, []byte(c)) {
					t.Errorf("%s: %s holds %q in clear", when, filepath.Base(f), c)
				}
			}
		}
	}
	check(s, "open")
	// An update keeps them sealed (the WAL gets new pages).
	if _, err := s.UpdateNode(ctx, "a", func(n *Node) error { n.LastError = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	check(s, "after update")
	// Non-sensitive values stay readable in the file (debuggable database).
	if data, _ := os.ReadFile(p + "-wal"); !bytes.Contains(data, []byte("sha256:abc")) || !bytes.Contains(data, []byte("/var/lib/lightsout/publish/f.img")) {
		t.Error("ordinary values were encrypted too")
	}
	s.Close()
	// Reopened without a sensitivity check: everything still decrypts.
	check(open(t, p), "reopened")
}
