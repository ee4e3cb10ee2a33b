package iscsi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/iscsi"
	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
	"github.com/lightsout/lightsout/runtime/testenv"
)

const testIQN = "iqn.2008-10.org.openstack:11111111-2222-3333-4444-555555555555"

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func requireISCSI(t testing.TB) {
	t.Helper()
	testenv.RequireTools(t, "tgtd", "tgtadm", "qemu-img")
	testenv.RequireFiles(t, "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so")
}

// startTarget exports a sparse disk file of size bytes on 127.0.0.1.
func startTarget(t testing.TB, size int64, user, secret string) (*tgt.Target, string, iscsi.Target) {
	t.Helper()
	requireISCSI(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(mustCreate(t, disk), size); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tg, err := tgt.Start(ctx, tgt.Config{Addr: "127.0.0.1", Port: port, IQN: testIQN, Device: disk, CHAPUser: user, CHAPSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Stop(context.Background()) })
	return tg, disk, iscsi.Target{Portal: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), IQN: testIQN, LUN: 1, CHAPUser: user, CHAPSecret: secret}
}

func mustCreate(t testing.TB, p string) string {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomImage writes n random bytes to dir/name.
func randomImage(t testing.TB, dir, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func assertPrefix(t *testing.T, disk string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("disk does not hold the image (disk %d bytes, image %d)", len(got), len(want))
	}
}

func noSecretFiles(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".chap-*"))
	if len(m) != 0 {
		t.Fatalf("CHAP secret files left behind: %v", m)
	}
}

func TestWriteRawAndQcow2WithCHAP(t *testing.T) {
	const secret = "s3cr3t-chap-pass"
	_, disk, target := startTarget(t, 32<<20, "deployer", secret)
	work := t.TempDir()
	raw, data := randomImage(t, work, "image.raw", 5<<20+4096)

	var progress []float64
	res, err := iscsi.Write(context.Background(), target, raw, iscsi.Options{WorkDir: work, Progress: func(p float64) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "raw" || res.ImageSize != int64(len(data)) || res.DiskSize != 32<<20 {
		t.Fatalf("result %+v", res)
	}
	if len(progress) == 0 || progress[len(progress)-1] != 100 {
		t.Fatalf("progress %v, want it to end at 100", progress)
	}
	assertPrefix(t, disk, data)
	noSecretFiles(t, work)

	// qcow2 of different content: converted on the fly
	raw2, data2 := randomImage(t, work, "image2.raw", 3<<20)
	q := filepath.Join(work, "image2.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw2, q).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	res, err = iscsi.Write(context.Background(), target, q, iscsi.Options{WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "qcow2" {
		t.Fatalf("format %q", res.Format)
	}
	assertPrefix(t, disk, data2)
	noSecretFiles(t, work)
}

func TestWriteErrors(t *testing.T) {
	const secret = "right-secret-123"
	_, disk, target := startTarget(t, 4<<20, "deployer", secret)
	work := t.TempDir()
	small, _ := randomImage(t, work, "small.raw", 1<<20)
	big, _ := randomImage(t, work, "big.raw", 6<<20)

	wrong := target
	wrong.CHAPSecret = "wrong-secret-456"
	noIQN := target
	noIQN.IQN = testIQN + "-other"
	noCHAP := target
	noCHAP.CHAPUser, noCHAP.CHAPSecret = "", ""
	down := target
	down.Portal = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))

	for _, tc := range []struct {
		name   string
		target iscsi.Target
		image  string
		kind   iscsi.Kind
		want   []string
	}{
		{"wrong CHAP secret", wrong, small, iscsi.KindAuth, []string{"CHAP", "driver_info.iscsi_chap", "deployer"}},
		{"no CHAP given", noCHAP, small, iscsi.KindAuth, []string{"requires CHAP", "driver_info.iscsi_chap"}},
		{"unknown IQN", noIQN, small, iscsi.KindNotFound, []string{noIQN.IQN, "not found"}},
		{"image larger than disk", target, big, iscsi.KindTooLarge, []string{"Root partition is too small for requested image. Image size: 6 MB, Root size: 4 MB"}},
		{"nothing listening", down, small, iscsi.KindUnreachable, []string{down.Portal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iscsi.Write(context.Background(), tc.target, tc.image, iscsi.Options{WorkDir: work})
			wantRefused(t, err, tc.kind, tc.want, work, secret, wrong.CHAPSecret)
		})
	}
	diskUntouched(t, disk)
}

// wantRefused fails t unless err is an *iscsi.Error of kind whose message
// names every one of want and none of the CHAP secrets, and work holds no
// CHAP secret file.
func wantRefused(t *testing.T, err error, kind iscsi.Kind, want []string, work string, secrets ...string) {
	t.Helper()
	var e *iscsi.Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("err = %v (%T), want kind %s", err, err, kind)
	}
	for _, w := range want {
		if !strings.Contains(e.Error(), w) {
			t.Errorf("error %q does not mention %q", e.Error(), w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(e.Error(), s) {
			t.Fatalf("error leaks a CHAP secret: %q", e.Error())
		}
	}
	noSecretFiles(t, work)
}

// diskUntouched fails t unless the disk file holds only zeroes: nothing
// was written by refused attempts.
func diskUntouched(t *testing.T, disk string) {
	t.Helper()
	got, _ := os.ReadFile(disk)
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatal("a refused write changed the disk")
	}
}

func TestWriteLostTarget(t *testing.T) {
	tg, _, target := startTarget(t, 512<<20, "", "")
	work := t.TempDir()
	img, _ := randomImage(t, work, "image.raw", 200<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var kill sync.Once
	_, err := iscsi.Write(ctx, target, img, iscsi.Options{WorkDir: work, Stall: 2 * time.Second, Progress: func(p float64) {
		// the target dies at the first progress, before the callback
		// returns: a stop in the background (tgtadm, then SIGKILL after a
		// second) let a fast write finish first (CI)
		if p > 0 && p < 100 {
			kill.Do(func() { _ = syscall.Kill(-tg.Pid(), syscall.SIGKILL) })
		}
	}})
	var e *iscsi.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a lost connection", err)
	}
	if e.Kind != iscsi.KindLost {
		t.Fatalf("kind %s (%v), want lost", e.Kind, e)
	}
}

func TestWriteCancelled(t *testing.T) {
	_, _, target := startTarget(t, 512<<20, "", "")
	work := t.TempDir()
	img, _ := randomImage(t, work, "image.raw", 200<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := iscsi.Write(ctx, target, img, iscsi.Options{WorkDir: work, Progress: func(p float64) {
		if p > 0 {
			cancel()
		}
	}})
	var e *iscsi.Error
	if !errors.As(err, &e) || e.Kind != iscsi.KindCancelled {
		t.Fatalf("err = %v, want cancelled", err)
	}
}

func TestImageWithBackingFileRefused(t *testing.T) {
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	base, _ := randomImage(t, dir, "base.raw", 1<<20)
	ov := filepath.Join(dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", base, ov).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, err := iscsi.Inspect(context.Background(), "", ov, "")
	var e *iscsi.Error
	if !errors.As(err, &e) || e.Kind != iscsi.KindImage || !strings.Contains(e.Msg, "backing file") {
		t.Fatalf("err = %v, want a refused backing file", err)
	}
}

func TestInvalidTarget(t *testing.T) {
	for _, tg := range []iscsi.Target{
		{Portal: "nohost", IQN: testIQN},
		{Portal: "127.0.0.1:3260", IQN: ""},
		{Portal: "127.0.0.1:3260", IQN: "iqn,x"},
		{Portal: "127.0.0.1:3260", IQN: testIQN, CHAPUser: "u"},
	} {
		_, err := iscsi.Write(context.Background(), tg, "/nonexistent", iscsi.Options{})
		var e *iscsi.Error
		if !errors.As(err, &e) || e.Kind != iscsi.KindInvalid {
			t.Errorf("%+v: err = %v, want invalid", tg, err)
		}
	}
}

func TestVerifyChecksum(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sum string
		ok  bool
	}{
		{"5d41402abc4b2a76b9719d911017c592", true},
		{"md5:5d41402abc4b2a76b9719d911017c592", true},
		{"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", true},
		{"sha256:0000000000000000000000000000000000000000000000000000000000000000", false},
		{"crc32:1234", false},
	} {
		err := iscsi.VerifyChecksum(context.Background(), p, tc.sum)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.sum, err, tc.ok)
		}
	}
}
