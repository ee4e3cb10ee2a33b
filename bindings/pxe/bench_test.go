package pxe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// tftpFetch is a minimal TFTP client (RRQ with blksize) used to load both
// servers alike; it returns the bytes received.
func tftpFetch(server, name string, blksize int) (int64, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return 0, err
	}
	req := append([]byte{0, opRRQ}, name+"\x00octet\x00blksize\x00"+strconv.Itoa(blksize)+"\x00"...)
	if _, err := conn.WriteTo(req, dst); err != nil {
		return 0, err
	}
	buf := make([]byte, 4+blksize)
	bs := defBlockSize
	var got int64
	var expect uint16 = 1
	var peer net.Addr
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return got, err
		}
		if n < 4 {
			continue
		}
		peer = from
		switch binary.BigEndian.Uint16(buf) {
		case opOACK:
			bs = blksize
			conn.WriteTo([]byte{0, opACK, 0, 0}, peer)
		case opERROR:
			return got, fmt.Errorf("server error %d: %s", binary.BigEndian.Uint16(buf[2:]), buf[4:n])
		case opDATA:
			blk := binary.BigEndian.Uint16(buf[2:])
			ack := []byte{0, opACK, buf[2], buf[3]}
			if blk == expect {
				got += int64(n - 4)
				expect++
			}
			conn.WriteTo(ack, peer)
			if blk == expect-1 && n-4 < bs {
				return got, nil
			}
		}
	}
}

// BenchmarkTFTP50Clients sends a 50 MB ramdisk to 50 parallel clients from
// our server and, when Debian's tftpd-hpa is installed, from in.tftpd on
// 127.0.0.1 (both with blksize 1468, as PXE ROMs ask); it reports MB/s
// (all bytes delivered / wall time) and the ratio ours/in.tftpd.
func BenchmarkTFTP50Clients(b *testing.B) {
	const size, clients, blk = 50 << 20, 50, 1468
	root, err := os.MkdirTemp("", "lightsout-tftpbench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o755) // in.tftpd drops to an unprivileged user
	dir := filepath.Join(root, node1)
	os.Mkdir(dir, 0o755)
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "deploy_ramdisk"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	name := node1 + "/deploy_ramdisk"

	run := func(addr string) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := tftpFetch(addr, name, blk)
				if err == nil && n != size {
					err = fmt.Errorf("got %d bytes, want %d", n, size)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return float64(size) * clients / (1 << 20) / time.Since(start).Seconds()
	}

	s, err := ListenTFTP("127.0.0.1:0", Tree{Root: root}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)

	var ours, theirs float64
	peer := ""
	if _, err := exec.LookPath("in.tftpd"); err == nil {
		peer = startInTFTPD(b, root)
	} else if testenv.Integration() {
		b.Fatal("in.tftpd (tftpd-hpa) not installed: run testdata/tools/deps.sh")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ours += run(s.Addr().String())
		if peer != "" {
			theirs += run(peer)
		}
	}
	b.ReportMetric(ours/float64(b.N), "MB/s")
	if peer != "" {
		b.ReportMetric(theirs/float64(b.N), "in.tftpd-MB/s")
		b.ReportMetric(ours/theirs, "ratio")
	} else {
		b.Log("in.tftpd not installed: no comparison")
	}
}

// startInTFTPD starts Debian's in.tftpd in the foreground on a free
// 127.0.0.1 port serving root, waits until it answers, and stops it at
// the end of the benchmark.
func startInTFTPD(b *testing.B, root string) string {
	b.Helper()
	for try := 0; try < 5; try++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		cmd := exec.Command("in.tftpd", "--foreground", "--secure", "--address", addr, "--blocksize", "65464", root)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := tftpFetch(addr, "nonexistent", 512); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return addr // it answered (with "file not found")
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	b.Fatal("in.tftpd did not answer")
	return ""
}
