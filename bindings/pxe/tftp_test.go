package pxe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// bootTree prepares a node with a random 3 MB ramdisk under a TFTP root,
// plus a file outside the root and a symlink escaping it, and starts the
// TFTP server on 127.0.0.1.
func bootTree(t *testing.T) (c Config, ramdisk []byte, s *TFTPServer, log *testenv.SyncBuffer) {
	t.Helper()
	c = testConfig(t, false)
	k, r := testFiles(t)
	ramdisk = make([]byte, 3<<20+123)
	rand.Read(ramdisk)
	if err := os.WriteFile(r, ramdisk, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Kernel: k, Ramdisk: r}); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(filepath.Dir(c.TFTPRoot), "secret")
	os.WriteFile(secret, []byte("not for PXE clients"), 0o600)
	os.Symlink(secret, filepath.Join(c.NodeDir(node1), "escape"))
	os.Symlink("../../secret", filepath.Join(c.TFTPRoot, "pxelinux.cfg", "01-00-00-00-00-00-01"))
	os.WriteFile(filepath.Join(c.TFTPRoot, "unregistered"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(c.TFTPRoot, "pxelinux.0"), []byte("shared loader"), 0o644)
	log = &testenv.SyncBuffer{}
	s, err := ListenTFTP("127.0.0.1:0", Tree{Root: c.TFTPRoot}, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return c, ramdisk, s, log
}

func port(s *TFTPServer) string { return strconv.Itoa(s.Addr().(*net.UDPAddr).Port) }

// TestTFTPWithTftpHpa fetches the ramdisk with Debian's tftp-hpa client
// (plain RFC 1350: it negotiates no options) in octet and netascii mode,
// and the config through its MAC link.
func TestTFTPWithTftpHpa(t *testing.T) {
	testenv.RequireTools(t, "tftp")
	c, ramdisk, s, _ := bootTree(t)
	cfg, _ := os.ReadFile(filepath.Join(c.NodeDir(node1), "config"))
	for _, tc := range []struct {
		mode, remote string
		want         []byte
	}{
		{"binary", node1 + "/deploy_ramdisk", ramdisk},
		{"ascii", "pxelinux.cfg/01-52-54-00-12-34-56", cfg}, // netascii: the client converts CR LF back
	} {
		out := filepath.Join(t.TempDir(), "got")
		cmd := exec.Command("tftp", "-m", tc.mode, "127.0.0.1", port(s), "-c", "get", tc.remote, out)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tftp %s: %v\n%s", tc.mode, err, b)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("tftp %s: got %d bytes (%v), want %d identical\n%s", tc.mode, len(got), err, len(tc.want), b)
		}
	}
}

// TestTFTPWithCurl fetches with curl's TFTP client (tsize and blksize
// options), through the MAC link as pxelinux does.
func TestTFTPWithCurl(t *testing.T) {
	testenv.RequireTools(t, "curl")
	c, ramdisk, s, _ := bootTree(t)
	for _, blk := range []string{"512", "1024", "65464"} {
		out := filepath.Join(t.TempDir(), "got")
		b, err := exec.Command("curl", "-sS", "--tftp-blksize", blk, "-o", out, "tftp://127.0.0.1:"+port(s)+"/"+node1+"/deploy_ramdisk").CombinedOutput()
		if err != nil {
			t.Fatalf("curl blksize %s: %v\n%s", blk, err, b)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, ramdisk) {
			t.Fatalf("curl blksize %s: %d bytes, want %d identical", blk, len(got), len(ramdisk))
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(c.NodeDir(node1), "config"))
	b, err := exec.Command("curl", "-sS", "tftp://127.0.0.1:"+port(s)+"/pxelinux.cfg/01-52-54-00-12-34-56").CombinedOutput()
	if err != nil || !bytes.Equal(b, cfg) {
		t.Fatalf("config through the MAC link: %v\n%s", err, b)
	}
}

// TestTFTPRefusesOutside asks for paths outside what may be served: each
// is answered with a TFTP error (access violation) and logged.
func TestTFTPRefusesOutside(t *testing.T) {
	c, _, s, log := bootTree(t)
	for _, name := range []string{
		"../secret",
		node1 + "/../../secret",
		"/etc/passwd",
		filepath.Join(filepath.Dir(c.TFTPRoot), "secret"),
		node1 + "/escape",                   // symlink out of the root
		"pxelinux.cfg/01-00-00-00-00-00-01", // MAC link out of the root
		"unregistered",                      // in the root, but no node's and no loader
		"master_images/" + strings.Repeat("0", 64),
		`..\secret`,
	} {
		code, msg := rawGet(t, s, name)
		if code != errAccess && code != errNotFound {
			t.Errorf("%q: error code %d (%s), want access violation or not found", name, code, msg)
		}
		if code == errAccess && !strings.Contains(log.String(), "request refused") {
			t.Errorf("%q refused but not logged", name)
		}
	}
	if code, msg := rawGet(t, s, node1+"/escape"); code != errAccess {
		t.Errorf("symlink escape: code %d (%s), want access violation", code, msg)
	}
	if !strings.Contains(log.String(), "escape") {
		t.Errorf("the refusal of the symlink escape is not logged:\n%s", log)
	}
	// A shared boot loader and a root-prefixed absolute path are served.
	for _, name := range []string{"pxelinux.0", "/pxelinux.0", c.TFTPRoot + "/pxelinux.0"} {
		if code, msg := rawGet(t, s, name); code != -1 {
			t.Errorf("%q: error %d %s, want the file", name, code, msg)
		}
	}
	// Writes are refused (the answer comes from the transfer's own port).
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteTo(append([]byte{0, opWRQ}, []byte(node1+"/x\x00octet\x00")...), s.Addr())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 600)
	n, _, err := conn.ReadFrom(buf)
	if err != nil || n < 4 || binary.BigEndian.Uint16(buf) != opERROR || binary.BigEndian.Uint16(buf[2:]) != errAccess {
		t.Errorf("WRQ: %v %x", err, buf[:n])
	}
	if _, err := os.Stat(filepath.Join(c.NodeDir(node1), "x")); !os.IsNotExist(err) {
		t.Errorf("a WRQ created a file")
	}
}

// rawGet sends an RRQ and returns the error code of the answer, or -1
// when the server starts sending data.
func rawGet(t *testing.T, s *TFTPServer, name string) (int, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteTo(append([]byte{0, opRRQ}, []byte(name+"\x00octet\x00")...), s.Addr())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 600)
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%q: no answer: %v", name, err)
	}
	if binary.BigEndian.Uint16(buf) == opDATA {
		conn.WriteTo(errorPacket(0, "enough"), from)
		return -1, ""
	}
	_, code, msg, _ := parseAck(buf[:n])
	return code, msg
}

// TestHTTPBootPolicy serves the same tree over HTTP with the same policy.
func TestHTTPBootPolicy(t *testing.T) {
	c, ramdisk, _, _ := bootTree(t)
	log := &testenv.SyncBuffer{}
	srv := httptest.NewServer(HTTPHandler(Tree{Root: c.TFTPRoot}, slog.New(slog.NewTextHandler(log, nil))))
	defer srv.Close()
	get := func(p string) (int, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.URL.Path = p // unnormalised, as a hostile client sends it
		req.URL.RawPath = ""
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	if code, b := get("/" + node1 + "/deploy_ramdisk"); code != 200 || !bytes.Equal(b, ramdisk) {
		t.Errorf("ramdisk: %d, %d bytes", code, len(b))
	}
	for _, p := range []string{"/" + node1 + "/escape", "/unregistered", "/../secret", "/" + node1 + "/../../secret", "/", "/" + node1 + "/"} {
		if code, _ := get(p); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("%s: %d, want 403 or 404", p, code)
		}
	}
	if code, _ := get("/" + node1 + "/escape"); code != http.StatusForbidden {
		t.Errorf("symlink escape: %d, want 403", code)
	}
	if !strings.Contains(log.String(), "request refused") {
		t.Errorf("refusals not logged")
	}
}

// FuzzParseRequest: the request parser never panics, and what it accepts
// round-trips through the wire format.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("\x00\x01pxelinux.0\x00octet\x00"))
	f.Add([]byte("\x00\x01a/b\x00netascii\x00blksize\x001468\x00tsize\x000\x00"))
	f.Add([]byte("\x00\x02x\x00octet\x00windowsize\x0016\x00timeout\x003\x00"))
	f.Add([]byte("\x00\x01\x00octet\x00"))
	f.Add([]byte("\x00\x01x\x00octet\x00blksize\x00"))
	f.Add([]byte("\x00\x05"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if r.Filename == "" || (r.Mode != "octet" && r.Mode != "netascii") || len(r.Order) != len(r.Options) {
			t.Fatalf("accepted an invalid request: %+v", r)
		}
		n := negotiate(r, maxBlockSize, 64, 1000)
		if n.blockSize < minBlockSize || n.blockSize > maxBlockSize || n.windowSize < 1 || n.windowSize > 64 || len(n.ack)%2 != 0 {
			t.Fatalf("negotiated out of range: %+v", n)
		}
		w := []byte{0, byte(r.Op)}
		w = append(w, r.Filename+"\x00"+r.Mode+"\x00"...)
		for _, k := range r.Order {
			w = append(w, k+"\x00"+r.Options[k]+"\x00"...)
		}
		r2, err := ParseRequest(w)
		if err != nil || r2.Filename != r.Filename || len(r2.Options) != len(r.Options) {
			t.Fatalf("round trip: %+v -> %v %+v", r, err, r2)
		}
	})
}

// TestTFTPWindowsizeTsizeAndRetransmit negotiates every option with a raw
// client, receives in windows of 4 blocks, drops one DATA packet (the
// server retransmits from the last acknowledged block after its timeout)
// and checks the bytes.
func TestTFTPWindowsizeTsizeAndRetransmit(t *testing.T) {
	_, ramdisk, s, _ := bootTree(t)
	s.Timeout = 200 * time.Millisecond
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := append([]byte{0, opRRQ}, node1+"/deploy_ramdisk\x00octet\x00BLKSIZE\x004096\x00tsize\x000\x00windowsize\x004\x00timeout\x001\x00unknown\x00x\x00"...)
	conn.WriteTo(req, s.Addr())
	buf := make([]byte, 8192)
	read := func() ([]byte, net.Addr) {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return buf[:n], from
	}
	p, peer := read()
	if binary.BigEndian.Uint16(p) != opOACK {
		t.Fatalf("want OACK, got %x", p[:4])
	}
	got := strings.Split(strings.TrimSuffix(string(p[2:]), "\x00"), "\x00")
	want := []string{"blksize", "4096", "tsize", strconv.Itoa(len(ramdisk)), "windowsize", "4", "timeout", "1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("OACK %q, want %q (unknown options are not acknowledged)", got, want)
	}
	if peer.String() == s.Addr().String() {
		t.Fatalf("the transfer runs on the listening port: want a new transfer ID")
	}
	conn.WriteTo([]byte{0, opACK, 0, 0}, peer)
	var data []byte
	expect, dropped, windowEnd := 1, false, 0
	for {
		p, from := read()
		if from.String() != peer.String() || binary.BigEndian.Uint16(p) != opDATA {
			t.Fatalf("unexpected packet %x from %s", p[:4], from)
		}
		blk := int(binary.BigEndian.Uint16(p[2:]))
		if blk == 6 && !dropped {
			dropped = true // lose block 6: ack nothing, wait for the retransmission
			windowEnd = 8
			continue
		}
		if blk != expect {
			continue // the rest of a window after the loss
		}
		data = append(data, p[4:]...)
		expect++
		last := len(p)-4 < 4096
		if blk%4 == 0 || last || (dropped && blk == windowEnd) {
			conn.WriteTo([]byte{0, opACK, p[2], p[3]}, peer)
		}
		if last {
			break
		}
	}
	if !dropped || !bytes.Equal(data, ramdisk) {
		t.Fatalf("got %d bytes (dropped %v), want %d identical", len(data), dropped, len(ramdisk))
	}
}

// TestTFTPBusy: beyond MaxTransfers a request is answered "server busy".
func TestTFTPBusy(t *testing.T) {
	c := testConfig(t, false)
	k, r := testFiles(t)
	if _, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Kernel: k, Ramdisk: r}); err != nil {
		t.Fatal(err)
	}
	s, err := ListenTFTP("127.0.0.1:0", Tree{Root: c.TFTPRoot}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.MaxTransfers, s.Timeout = 1, 2*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	// The first transfer waits for an ACK that never comes.
	if code, _ := rawGetHold(t, s, node1+"/deploy_kernel"); code != -1 {
		t.Fatalf("first request: code %d", code)
	}
	code, msg := rawGet(t, s, node1+"/deploy_kernel")
	if code != errNotDefined || !strings.Contains(msg, "busy") {
		t.Errorf("second request: code %d %q, want server busy", code, msg)
	}
}

// rawGetHold is rawGet that leaves the transfer hanging (no ACK, no error).
func rawGetHold(t *testing.T, s *TFTPServer, name string) (int, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.WriteTo(append([]byte{0, opRRQ}, []byte(name+"\x00octet\x00")...), s.Addr())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 600)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%q: no answer: %v", name, err)
	}
	if binary.BigEndian.Uint16(buf) == opDATA {
		return -1, ""
	}
	_, code, msg, _ := parseAck(buf[:n])
	return code, msg
}

// TestTFTPRetransmitBackoff: without a negotiated timeout each retry of a
// block waits twice as long (up to 8x the base); a negotiated timeout is
// used as it is (RFC 2349).
func TestTFTPRetransmitBackoff(t *testing.T) {
	tests := []struct {
		name       string
		server     time.Duration
		negotiated int
		want       []time.Duration
	}{
		{"default", 0, 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}},
		{"server timeout", 200 * time.Millisecond, 0, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 1600 * time.Millisecond}},
		{"client timeout", time.Second, 3, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &transfer{s: &TFTPServer{Timeout: tt.server}, neg: negotiated{timeoutSec: tt.negotiated}}
			for try, want := range tt.want {
				if got := tr.timeout(try); got != want {
					t.Errorf("try %d: %s, want %s", try, got, want)
				}
			}
		})
	}
}
